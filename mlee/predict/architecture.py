"""What ``mlee predict --model`` names: a registry or torchvision model, or an architecture file.

Files: an ONNX graph (``.onnx``, read by :mod:`mlee.predict.onnx_graph`), a whole PyTorch model saved
with ``torch.save(model)`` (``.pt``/``.pth``; loaded onto the ``meta`` device, so no weights are read into
memory, and decomposed like a registry model), or a Keras model (``.keras``/``.h5``; exported to ONNX
with tf2onnx, then read as a graph). Loading a PyTorch file unpickles it: only load files you trust.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlee.errors import UsageError
from mlee.predict.decompose import Decomposition

ONNX_SUFFIXES = (".onnx",)
TORCH_SUFFIXES = (".pt", ".pth")
KERAS_SUFFIXES = (".keras", ".h5")


def is_file_model(model: str) -> bool:
    return Path(model).suffix.lower() in ONNX_SUFFIXES + TORCH_SUFFIXES + KERAS_SUFFIXES


def _torch_file(path: Path, shape: tuple[int, ...]) -> Decomposition:
    from mlee.predict.decompose import decompose
    from mlee.runners.torch_backend import import_torch

    torch = import_torch()
    try:
        obj = torch.load(str(path), map_location="meta", weights_only=False)
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except Exception as exc:  # torch raises pickle, zip and runtime errors for files it cannot read
        raise UsageError(f"cannot load {path} with torch.load ({type(exc).__name__}: {exc})",
                         "save the whole model with torch.save(model), or export it to ONNX") from None
    if not isinstance(obj, torch.nn.Module):
        raise UsageError(f"{path} holds a {type(obj).__name__}, not a model (a state dict has weights only)",
                         "save the whole model with torch.save(model), or export it to ONNX")
    return decompose(obj.eval(), shape, path.name)


def _keras_file(path: Path, batch: int, input_size: int) -> Decomposition:
    from mlee.predict.onnx_graph import decompose_onnx
    from mlee.runners.onnx_backend import export_keras
    from mlee.runners.tf_backend import import_tf

    import_tf()
    import keras

    if not path.exists():
        raise UsageError(f"{path} does not exist")
    try:
        model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # keras raises many types for a file it cannot read
        raise UsageError(f"cannot load {path} with keras ({type(exc).__name__}: {exc})") from None
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / (path.stem + ".onnx")
        export_keras(model, input_size, onnx_path)
        dec = decompose_onnx(onnx_path, batch)
    return Decomposition(path.name, dec.input_shape, dec.layers)


def decompose_model(model: str, backend: str, batch: int, input_size: int | None = None
                    ) -> tuple[str, Decomposition, Any]:
    """Decompose a model name or architecture file.

    Returns:
        ``(name, decomposition, ref)``: ``ref`` is the :class:`mlee.predict.models.ModelRef` of a named
        model (None for a file: it cannot be measured by name).

    Raises:
        UsageError: unknown model, unreadable file, or a backend other than pytorch for a name.
    """
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        from mlee.predict.onnx_graph import decompose_onnx

        dec = decompose_onnx(path, batch)
        return path.name, dec, None
    if suffix in TORCH_SUFFIXES:
        size = input_size or 224
        return path.name, _torch_file(path, (batch, 3, size, size)), None
    if suffix in KERAS_SUFFIXES:
        return path.name, _keras_file(path, batch, input_size or 224), None
    from mlee.predict.decompose import decompose
    from mlee.predict.models import build_model, resolve_model

    ref = resolve_model(model, backend)
    size = input_size or ref.input_size
    return ref.name, decompose(build_model(ref, "meta"), (batch, 3, size, size), ref.name), ref
