"""The measurement session (docs/design.md section 1): ``mlee.measure``, settings, windows, marks, the record, and the
machine facts of ``environment.json`` (``machine``).

``session`` runs a session; ``settings`` validates what it is asked for; ``record`` builds ``config.json`` and
``results.json`` from an explicit snapshot of the session's state.

This package is also ``mlee.measure`` the function: once it is imported, Python binds the name ``mlee.measure``
to the package, so the package is made callable (``mlee.measure("name")``, ``@mlee.measure``) and calls
:func:`mlee.measure.session.measure`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["Measurement", "MeasurementResult", "SessionSettings", "WindowHandle", "measure"]
#: Public name -> its module, imported on first use (the sampler process imports parts of this package only).
_LAZY = {"Measurement": "session", "measure": "session", "MeasurementResult": "result", "WindowHandle": "result",
         "SessionSettings": "settings"}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f"mlee.measure.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mlee.measure' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from mlee.measure.session import measure

        return measure(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
