"""ONNX backend: a torchvision or keras model exported to ONNX and run by onnxruntime.

The export happens at build time, outside every measured window, as the 2022 paper's "ONNX PT" and
"ONNX TF" environments did. onnxruntime, onnx and the exporters are imported inside the functions.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, DeviceUnavailable, MleeError, UsageError
from mlee.runners.engine import BatchCallback, EpochStats, ModelInfo, parse_device

OPSET = 17


def import_ort() -> Any:
    """The ``onnxruntime`` module, or BackendMissing naming the extra."""
    try:
        import onnx  # noqa: F401 - the exporters need it
        import onnxruntime
    except ImportError as exc:
        raise BackendMissing(f"the onnx backend needs onnx and onnxruntime ({exc.name} is not installed)",
                             fix='pip install "mlee[onnx]"') from exc
    return onnxruntime


def export_torch(module: Any, input_size: int, path: Path) -> str:
    """Export a torch module to ONNX with a dynamic batch axis; returns the exporter's name."""
    import torch

    module = module.eval()
    example = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no onnxscript; its warning is noise here.
        warnings.simplefilter("ignore")
        torch.onnx.export(module.cpu(), example, str(path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return f"torch.onnx (torchscript) {torch.__version__}"


def export_keras(model: Any, input_size: int, path: Path) -> str:
    """Export a keras model to ONNX with tf2onnx; returns the exporter's name.

    Raises:
        BackendMissing: tf2onnx is not installed.
    """
    try:
        import tf2onnx
    except ImportError as exc:
        raise BackendMissing("exporting a keras model to ONNX needs tf2onnx, which is not installed",
                             fix='pip install tf2onnx (or use --onnx-source pytorch)') from exc
    import logging

    import numpy as np

    model(np.zeros((1, input_size, input_size, 3), np.float32))  # keras exports only called models
    # tf2onnx logs every optimizer pass at INFO and a harmless optimizer failure at ERROR; the export
    # result is checked below by loading it.
    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # keras's tf2onnx shim probes np.object
        model.export(str(path), format="onnx", verbose=False, opset_version=OPSET)
    return f"tf2onnx {tf2onnx.__version__}"


def providers_for(device: str) -> tuple[list[str], int | None]:
    """onnxruntime providers for ``--device`` and the GPU index.

    Raises:
        DeviceUnavailable: CUDA asked for but onnxruntime has no CUDA provider.
    """
    ort = import_ort()
    kind, index = parse_device(device)
    if kind == "cpu":
        return ["CPUExecutionProvider"], None
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise DeviceUnavailable(f"--device {device}: this onnxruntime has no CUDA provider",
                                fix="use --device cpu, or pip install onnxruntime-gpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"], index or 0


class OnnxEngine:
    """An exported model in an onnxruntime session; inputs are placed on the device before the window."""

    def __init__(self, source: Any, framework: str, device: str, input_size: int,
                 threads: int | None) -> None:
        ort = import_ort()
        self._ort = ort
        self.source = source  # the framework engine: parameters and FLOPs are the source model's
        self.device = device
        self.input_size = input_size
        providers, self.gpu = providers_for(device)
        with tempfile.TemporaryDirectory(prefix="mlee-onnx-") as tmp:
            path = Path(tmp) / "model.onnx"
            started = time.monotonic()
            try:
                if framework == "pytorch":
                    exporter = export_torch(source.module, input_size, path)
                else:
                    exporter = export_keras(source.model, input_size, path)
            except BackendMissing:
                raise
            except Exception as exc:  # noqa: BLE001 - exporters raise anything on unsupported graphs
                raise MleeError(f"exporting the {framework} model to ONNX failed: {exc.__class__.__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}",
                                fix="use --backend pytorch or tensorflow for this model") from exc
            self.export_s = time.monotonic() - started
            self.weights_bytes = path.stat().st_size
            options = ort.SessionOptions()
            if threads is not None:
                options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.exporter = exporter
        self.backend = {"name": "onnx", "version": ort.__version__, "source": dict(source.backend),
                        "exporter": exporter, "opset": OPSET}

    def model_info(self) -> ModelInfo:
        """The source model's parameters and FLOPs; weight size is the ONNX file's."""
        info = self.source.model_info()
        return ModelInfo(info.parameters, info.flops, info.macs, self.weights_bytes, info.flops_counter)

    def inputs(self, batch: Any) -> Any:
        """numpy float32 (the source framework's layout) -> OrtValue on the device."""
        import numpy as np

        if self.gpu is None:
            return self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(batch))
        return self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(batch), "cuda", self.gpu)

    def infer(self, batches: Sequence[Any], on_batch: BatchCallback | None = None) -> list[Any]:
        """``session.run`` per batch on device-resident inputs."""
        run = self.session.run_with_ort_values
        names = [self.output_name]
        name = self.input_name
        outputs = []
        for i, x in enumerate(batches):
            outputs.append(run(names, {name: x})[0])
            if on_batch is not None:
                on_batch(i, int(x.shape()[0]))
        return outputs

    def synchronize(self) -> None:
        """``session.run`` returns when its outputs are ready: nothing is queued."""
        return None

    def to_numpy(self, outputs: Sequence[Any]) -> Any:
        """Concatenated outputs as a float32 numpy array."""
        import numpy as np

        return np.concatenate([np.asarray(o.numpy(), dtype=np.float32) for o in outputs])

    def train_epoch(self, batches: Sequence[tuple[Any, Any]], deadline_s: float | None,
                    on_batch: BatchCallback | None = None) -> EpochStats:
        """onnxruntime here runs inference only."""
        raise UsageError("the onnx backend runs inference only", fix="train with --backend pytorch or tensorflow")
