"""CLI: `mlee infer` - measure inference of one or more models (see :mod:`mlee.commands._modelruns`)."""

from __future__ import annotations

from pathlib import Path

import typer

from mlee.commands import _options as O
from mlee.commands._modelruns import execute


def infer(
    model: list[str] = O.MODEL, backend: str = O.BACKEND, onnx_source: str = O.ONNX_SOURCE,
    weights: str = O.WEIGHTS, device: str = O.DEVICE,
    dataset: str = typer.Option(None, "--dataset", show_default=False,
                                help="synthetic (default), digits, or imagenet (default with --data-path)."),
    data_path: Path = O.DATA_PATH, batch_size: int = O.BATCH, n_batches: int = O.N_BATCHES,
    n_samples: int = O.N_SAMPLES, seed: int = O.SEED, warmup_batches: int = O.WARMUP,
    repeat: int = typer.Option(1, "--repeat", help="Measured windows; mean, std and CV are reported."),
    input_size: int = O.INPUT_SIZE, threads: int = O.THREADS, max_corrupt: float = O.MAX_CORRUPT,
    output_dir: Path = O.OUTPUT, interval: float = O.INTERVAL, baseline_s: float = O.BASELINE,
    source: list[str] = O.SOURCE, country: str = O.COUNTRY, pue: float = O.PUE,
    mlflow: bool = O.MLFLOW, mlflow_uri: str = O.MLFLOW_URI, hf_task: str = O.HF_TASK, dtype: str = O.HF_DTYPE,
    max_new_tokens: int = O.HF_MAX_NEW_TOKENS, input_tokens: int = O.HF_INPUT_TOKENS,
    per_layer: bool = typer.Option(False, "--per-layer", help="Also time every layer in an extra window and "
                                   "attribute its energy to layers (stored as per_layer, shown as a table)."),
    as_json: bool = O.RUNS_JSON,
) -> int:
    """Measure inference of one or more models: `mlee infer -m ResNet50 --backend pytorch`.

    Only the timed loop is measured; build, data loading, export and warm-up are recorded as
    unmeasured windows. Writes <output-dir>/infer-<model>-<UTC time>-<id>/ per model. Exit code:
    0 ok, 1 failure, 2 bad option, 3 device or power source unavailable.
    """
    from mlee.runners.options import RunOptions

    options = RunOptions(
        task="inference", backend=backend, onnx_source=onnx_source, weights=weights, device=device, dataset=dataset,
        data_path=data_path, batch_size=batch_size, n_batches=n_batches, n_samples=n_samples, seed=seed,
        warmup_batches=warmup_batches, repeat=repeat, input_size=input_size, threads=threads,
        max_corrupt_fraction=max_corrupt, per_layer=per_layer, hf_task=hf_task, max_new_tokens=max_new_tokens,
        input_tokens=input_tokens, dtype=dtype)
    return execute(model, options, O.session_settings("infer", output_dir, interval, baseline_s, source, country, pue),
                   as_json, (mlflow, mlflow_uri))
