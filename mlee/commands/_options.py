"""Options and small helpers shared by several commands (not a command itself).

The model-run options are shared by `mlee infer` and `mlee train`; the ``--backend transformers`` ones are
taken by both; the prediction defaults and helpers by `mlee profile`, `predict`, `fit` and `sweep`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

DEFAULT_PREDICTOR = Path("results/predictor.json")
DEFAULT_DATABASE = Path("results/merged.json")

MODEL = typer.Option(None, "--model", "-m", show_default=False,
                     help="Model name (repeatable or comma-separated: -m ResNet50,VGG16). See `mlee models`.")
BACKEND = typer.Option("pytorch", "--backend", "-b", help="pytorch, tensorflow, onnx or transformers.")
ONNX_SOURCE = typer.Option("pytorch", "--onnx-source",
                           help="Framework an onnx model is exported from: pytorch or tensorflow.")
WEIGHTS = typer.Option("none", "--weights", "-w", help="none (random, no network), pretrained, or a checkpoint PATH.")
DEVICE = typer.Option("cpu", "--device", "-d", help="cpu, cuda (all visible GPUs, data parallel) or cuda:N.")
DATA_PATH = typer.Option(None, "--data-path", show_default=False,
                         help="ImageNet folder: ImageFolder layout (val/<class>/*.JPEG, train/...) or, for "
                         "tensorflow, a tfds data_dir with imagenet2012 records.")
BATCH = typer.Option(32, "--batch-size", help="Samples per batch.")
N_BATCHES = typer.Option(None, "--n-batches", show_default=False,
                         help="Batches to run (default: 10; digits: the whole split).")
N_SAMPLES = typer.Option(None, "--n-samples", show_default=False, help="Samples to run (instead of --n-batches).")
SEED = typer.Option(0, "--seed", help="Seed of the data order, synthetic inputs and weight initialisation.")
WARMUP = typer.Option(2, "--warmup-batches", help="Batches run before the measured window (not measured).")
INPUT_SIZE = typer.Option(None, "--input-size", show_default=False,
                          help="Override the model's standard input size in pixels (recorded; for quick runs).")
THREADS = typer.Option(None, "--threads", show_default=False, help="CPU threads of the framework.")
MAX_CORRUPT = typer.Option(0.01, "--max-corrupt",
                           help="Largest fraction of unreadable images tolerated before the run fails.")
OUTPUT = typer.Option(Path("results"), "--output-dir", "-o", help="Where the experiment folders go.")
INTERVAL = typer.Option(0.1, "--interval", help="Sampling interval in seconds.")
BASELINE = typer.Option(0.0, "--baseline-s", help="Idle baseline before each model, in seconds.")
SOURCE = typer.Option(None, "--source", "-s", help="rapl, nvml, amdsmi or estimate (repeatable; default: auto-detect).")
COUNTRY = typer.Option(None, "--country", help="ISO alpha-3 country for the estimate and carbon figures.")
PUE = typer.Option(1.0, "--pue", help="Facility power usage effectiveness for the carbon figure (1.0: none).")
MLFLOW = typer.Option(False, "--mlflow", help="Also log each run to MLflow (see --mlflow-uri).")
MLFLOW_URI = typer.Option(None, "--mlflow-uri", metavar="URI", help="MLflow tracking URI; implies --mlflow "
                          "(default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")
RUNS_JSON = typer.Option(False, "--json", help="Print the runs' results as JSON instead of a table.")

# The options only ``--backend transformers`` takes.
HF_TASK = typer.Option(None, "--task", show_default=False,
                       help="transformers: text-classification, text-generation, image-classification or "
                            "automatic-speech-recognition (default: from the model's config).")
HF_MAX_NEW_TOKENS = typer.Option(16, "--max-new-tokens",
                                 help="transformers text-generation: new tokens per query (EOS does not stop early).")
HF_INPUT_TOKENS = typer.Option(32, "--input-tokens", help="transformers text tasks: tokens per synthetic prompt, "
                               "and the cut for prompts read from --data-path.")
HF_DTYPE = typer.Option("float32", "--dtype", help="transformers: float32, float16 or bfloat16.")


def session_settings(kind: str, output_dir: Path, interval: float, baseline_s: float, source: list[str] | None,
                     country: str | None, pue: float) -> Any:
    """The validated session settings (UsageError before anything is opened or written)."""
    from mlee.measure.settings import SessionSettings, check_baseline, check_interval, check_pue

    return SessionSettings(kind=kind, output_dir=output_dir, interval_s=check_interval(interval),
                           sources=tuple(source) if source else None, baseline_s=check_baseline(baseline_s),
                           country=country, pue=check_pue(pue))


def power_sources(value: str | None) -> list[str] | None:
    """``"rapl,nvml"`` -> ``["rapl", "nvml"]``; None or empty: auto-detect."""
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def busy_warning() -> None:
    """Warn when other processes already use more CPUs than there are: timings will not be clean."""
    import os

    from mlee.console import message

    try:
        load = os.getloadavg()[0]
    except OSError:
        return
    cores = os.cpu_count() or 1
    if load > cores:
        message(f"warning: the machine is busy (load {load:.1f} on {cores} CPUs): timings will be noisy; "
                "--threads 1 keeps parallel kernels from waiting on descheduled threads")
