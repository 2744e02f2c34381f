"""mlee: measure the energy of machine-learning inference and training, and rate it.

``import mlee`` stays light: no torch, tensorflow, codecarbon or reportlab import happens here.
The measurement API (:func:`mlee.measure`) is loaded on first use.
"""

from __future__ import annotations

import sys
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "measure", "Measurement", "MleeError"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import mlee` (and `mlee --help`) never pays for psutil/threads set-up.
    if name == "measure":
        import mlee.measure  # the package is callable: mlee.measure("name") (see mlee/measure/__init__.py)

        return sys.modules["mlee.measure"]
    if name == "Measurement":
        from mlee.measure.session import Measurement

        return Measurement
    if name == "MleeError":
        from mlee.errors import MleeError

        return MleeError
    raise AttributeError(f"module 'mlee' has no attribute {name!r}")
