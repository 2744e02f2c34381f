"""What runs under measurement: model registry, data, preprocessing, the framework loops and per-layer timing.

Importing this package is light; torch, tensorflow and onnxruntime are imported inside the
functions that need them (``mlee --help`` must not pay for them).
"""

from __future__ import annotations
