"""CLI: `mlee train` - measure training of one or more models (see :mod:`mlee.commands._modelruns`)."""

from __future__ import annotations

from pathlib import Path

import typer

from mlee.commands import _options as O
from mlee.commands._modelruns import execute


def train(
    model: list[str] = O.MODEL, backend: str = O.BACKEND, weights: str = O.WEIGHTS, device: str = O.DEVICE,
    dataset: str = typer.Option(None, "--dataset", show_default=False,
                                help="digits (default), synthetic, or imagenet (default with --data-path)."),
    data_path: Path = O.DATA_PATH, batch_size: int = O.BATCH,
    n_batches: int = typer.Option(None, "--n-batches", show_default=False,
                                  help="Training batches per epoch (default: the whole split)."),
    n_samples: int = typer.Option(None, "--n-samples", show_default=False,
                                  help="Training samples per epoch (instead of --n-batches)."),
    seed: int = O.SEED, warmup_batches: int = typer.Option(
        2, "--warmup-batches", help="Training steps before epoch 1, not measured."),
    epochs: int = typer.Option(1, "--epochs", help="Epochs to train."),
    lr: float = typer.Option(0.01, "--lr", help="Learning rate."),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd (momentum 0.9) or adam."),
    max_seconds: float = typer.Option(None, "--max-seconds", show_default=False,
                                      help="Training time budget; stops after the batch that crosses it."),
    save_weights: Path = typer.Option(None, "--save-weights", show_default=False,
                                      help="Write the trained weights here (usable with --weights PATH)."),
    input_size: int = O.INPUT_SIZE, threads: int = O.THREADS, max_corrupt: float = O.MAX_CORRUPT,
    output_dir: Path = O.OUTPUT, interval: float = O.INTERVAL, baseline_s: float = O.BASELINE,
    source: list[str] = O.SOURCE, country: str = O.COUNTRY, pue: float = O.PUE,
    mlflow: bool = O.MLFLOW, mlflow_uri: str = O.MLFLOW_URI, input_tokens: int = O.HF_INPUT_TOKENS,
    as_json: bool = O.RUNS_JSON,
) -> int:
    """Measure training of one or more models: `mlee train -m MobileNetV3Small --epochs 3`.

    One measured window per epoch; validation after each epoch is not measured. Records per-epoch
    and total energy and time, the loss/accuracy history and the final held-out top-1/top-5.
    Exit code: 0 ok, 1 failure, 2 bad option, 3 device or power source unavailable.
    """
    from mlee.runners.options import RunOptions

    options = RunOptions(
        task="training", backend=backend, weights=weights, device=device, dataset=dataset,
        input_tokens=input_tokens,
        data_path=data_path, batch_size=batch_size, n_batches=n_batches, n_samples=n_samples, seed=seed,
        warmup_batches=warmup_batches, input_size=input_size, threads=threads, max_corrupt_fraction=max_corrupt,
        epochs=epochs, lr=lr, optimizer=optimizer, max_seconds=max_seconds, save_weights=save_weights)
    return execute(model, options, O.session_settings("train", output_dir, interval, baseline_s, source, country, pue),
                   as_json, (mlflow, mlflow_uri))
