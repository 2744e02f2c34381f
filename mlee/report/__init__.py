"""The interactive HTML report of a rated database (``mlee report``): one self-contained file, no network.

Public API: :func:`build_report` (rate a database and build the page), :func:`write_report` (write it
atomically), :class:`Report`. Light to import: the parts load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Report", "build_report", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlee.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'mlee.report' has no attribute {name!r}")
