"""What runs under measurement: model registry, data, preprocessing and the framework loops.

Importing this package is light; torch, tensorflow and onnxruntime are imported inside the
functions that need them (``mlee --help`` must not pay for them).
"""

from __future__ import annotations
