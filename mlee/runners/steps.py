"""The steps inference and training runs share: progress reports, the engine, device batches, per-window figures,
accuracy.

:mod:`mlee.runners.modelrun` (inference, and the run of one model under its session) and
:mod:`mlee.runners.training` (the epochs) both build on these; neither imports the other's loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlee.errors import MleeError
from mlee.runners import registry, stats
from mlee.runners.data import ImageSet
from mlee.runners.engine import BatchCallback, WeightsChoice
from mlee.runners.options import RunOptions
from mlee.runners.preprocess import Preprocessing, batch_bounds, normalize


class Progress(Protocol):
    """What a caller sees of a run while it goes (the CLI draws a progress bar with it)."""

    def start_model(self, name: str, index: int, total: int) -> None:
        """A model starts (``index`` counts from 0)."""

    def phase(self, description: str, total_batches: int) -> None:
        """A loop over ``total_batches`` batches starts (warm-up, repeat, epoch)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more batches are done."""

    def end_model(self, outcome: ModelOutcome) -> None:
        """A model finished (completed or failed)."""


@dataclass(frozen=True)
class ModelOutcome:
    """How one model's run ended. ``results`` is the content of its results.json (None if no folder)."""

    model: str
    status: str
    folder: Path | None
    error: MleeError | None
    results: dict | None


def on_batch_callback(progress: Progress | None) -> BatchCallback | None:
    """The per-batch callback that advances ``progress`` (None without progress: nothing to call)."""
    if progress is None:
        return None
    advance = progress.advance
    return lambda _i, _n: advance(1)


def class_count(data: ImageSet) -> int:
    """Width of the classifier head: 10 for digits, else at least ImageNet's 1000."""
    if data.name == "digits":
        return 10
    return max(1000, data.n_classes or 0)


def make_engine(spec: registry.ModelSpec, framework: str, options: RunOptions, weights: WeightsChoice,
                num_classes: int, input_size: int) -> Any:
    """The framework engine for ``spec`` (the ONNX export is a separate step, :func:`export_onnx`)."""
    entry = spec.entry(framework)
    # An ONNX model is built on the CPU only to be exported; onnxruntime runs it on the device.
    device = "cpu" if options.backend == "onnx" else options.device
    if framework == "pytorch":
        from mlee.runners import torch_backend

        return torch_backend.make_engine(entry, weights, num_classes, input_size, spec.name, device,  # type: ignore[arg-type]
                                         options.threads, options.seed)
    from mlee.runners import tf_backend

    return tf_backend.make_engine(entry, weights, num_classes, input_size, spec.name, device,  # type: ignore[arg-type]
                                  options.threads, options.seed)


def export_onnx(engine: Any, framework: str, options: RunOptions, input_size: int) -> Any:
    """Export ``engine``'s model to ONNX and open it in onnxruntime."""
    from mlee.runners.onnx_backend import OnnxEngine

    return OnnxEngine(engine, framework, options.device, input_size, options.threads)


def to_batches(engine: Any, data: ImageSet, prep: Preprocessing, batch_size: int) -> tuple[list, list]:
    """Normalised device batches and their numpy labels (empty when the labels are not real)."""
    batches, labels = [], []
    for start, stop in batch_bounds(data.n_samples, batch_size):
        batches.append(engine.inputs(normalize(data.pixels[start:stop], prep)))
        if data.labels is not None:
            labels.append(data.labels[start:stop])
    return batches, labels


def window_figures(record: dict, n_samples: int) -> stats.WindowFigures:
    """A session window record as per-sample arithmetic input."""
    return stats.WindowFigures(record["energy_j"], record["energy_method"], record["duration_s"], n_samples)


def accuracy(logits: Any, labels: Sequence[Any]) -> dict:
    """``metrics`` from outputs and real labels: top-1, top-5 (fractions) and mean cross-entropy (nats)."""
    import numpy as np

    truth = np.concatenate(list(labels))
    n = len(truth)
    top5 = stats.topk_hits(logits, truth, 5) / n if logits.shape[1] >= 5 else None
    return {"top1": stats.topk_hits(logits, truth, 1) / n, "top5": top5, "loss": stats.cross_entropy(logits, truth)}
