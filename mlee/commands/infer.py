"""CLI: ``mlee infer``, ``mlee train`` and ``mlee models``: model runs under measurement.

Each model gets its own experiment folder. One model failing is recorded (``status: failed``) and
the others still run; the command then exits with the failure's code (1 if they differ) after a
summary table. Frameworks are imported only when a run starts, never for ``--help``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from mlee.commands import hf_options as _hf
from mlee.errors import UsageError
from mlee.signals import SignalGuard

EXIT_FAILURE = 1

_MODEL = typer.Option(None, "--model", "-m", show_default=False,
                      help="Model name (repeatable or comma-separated: -m ResNet50,VGG16). See `mlee models`.")
_BACKEND = typer.Option("pytorch", "--backend", "-b", help="pytorch, tensorflow, onnx or transformers.")
_ONNX_SOURCE = typer.Option("pytorch", "--onnx-source",
                            help="Framework an onnx model is exported from: pytorch or tensorflow.")
_WEIGHTS = typer.Option("none", "--weights", "-w", help="none (random, no network), pretrained, or a checkpoint PATH.")
_DEVICE = typer.Option("cpu", "--device", "-d", help="cpu, cuda (all visible GPUs, data parallel) or cuda:N.")
_DATA_PATH = typer.Option(None, "--data-path", show_default=False,
                          help="ImageNet folder: ImageFolder layout (val/<class>/*.JPEG, train/...) or, for "
                          "tensorflow, a tfds data_dir with imagenet2012 records.")
_BATCH = typer.Option(32, "--batch-size", help="Samples per batch.")
_N_BATCHES = typer.Option(None, "--n-batches", show_default=False,
                          help="Batches to run (default: 10; digits: the whole split).")
_N_SAMPLES = typer.Option(None, "--n-samples", show_default=False, help="Samples to run (instead of --n-batches).")
_SEED = typer.Option(0, "--seed", help="Seed of the data order, synthetic inputs and weight initialisation.")
_WARMUP = typer.Option(2, "--warmup-batches", help="Batches run before the measured window (not measured).")
_INPUT_SIZE = typer.Option(None, "--input-size", show_default=False,
                           help="Override the model's standard input size in pixels (recorded; for quick runs).")
_THREADS = typer.Option(None, "--threads", show_default=False, help="CPU threads of the framework.")
_MAX_CORRUPT = typer.Option(0.01, "--max-corrupt",
                            help="Largest fraction of unreadable images tolerated before the run fails.")
_OUTPUT = typer.Option(Path("results"), "--output-dir", "-o", help="Where the experiment folders go.")
_INTERVAL = typer.Option(0.1, "--interval", help="Sampling interval in seconds.")
_BASELINE = typer.Option(0.0, "--baseline-s", help="Idle baseline before each model, in seconds.")
_SOURCE = typer.Option(None, "--source", "-s", help="rapl, nvml, amdsmi or estimate (repeatable; default: auto-detect).")
_COUNTRY = typer.Option(None, "--country", help="ISO alpha-3 country for the estimate and carbon figures.")
_PUE = typer.Option(1.0, "--pue", help="Facility power usage effectiveness for the carbon figure (1.0: none).")
_MLFLOW = typer.Option(False, "--mlflow", help="Also log each run to MLflow (see --mlflow-uri).")
_MLFLOW_URI = typer.Option(None, "--mlflow-uri", metavar="URI", help="MLflow tracking URI; implies --mlflow "
                           "(default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")


def _progress_enabled() -> bool:
    from mlee.console import stderr_is_tty

    return stderr_is_tty() and not os.environ.get("CI")


class _BarProgress:
    """The runners' Progress drawn as two rich bars on stderr: models, and batches of the current loop."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.models = None
        self.batches = None
        self.name = ""

    def start_model(self, name: str, index: int, total: int) -> None:
        self.name = name
        if self.models is None:
            self.models = self.bar.add_task("models", total=total)
        self.bar.update(self.models, description=f"models ({name})", completed=index)

    def phase(self, description: str, total_batches: int) -> None:
        label = f"{self.name}: {description}"
        if self.batches is None:
            self.batches = self.bar.add_task(label, total=total_batches)
        else:
            self.bar.update(self.batches, description=label, total=total_batches, completed=0)

    def advance(self, n: int = 1) -> None:
        if self.batches is not None:
            self.bar.advance(self.batches, n)

    def end_model(self, outcome: Any) -> None:
        if self.models is not None:
            self.bar.advance(self.models, 1)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _energy_text(block: dict | None) -> str:
    if not block:
        return "n/a"
    energy = block.get("energy_j", {}).get("total")
    if energy is None:
        return "not measured"
    method = block.get("energy_method", {}).get("total")
    return f"{energy:.4g} J ({'ESTIMATE' if method == 'estimate' else method})"


def _marks(results: dict) -> str:
    """`` PARTIAL`` / `` SHARED`` after a figure that covers part of the run or a whole MIG parent GPU (issue 14)."""
    return (" PARTIAL" if results.get("partial") else "") + (" SHARED" if results.get("shared") else "")


def _summary_rows(outcomes: list) -> list[dict]:
    rows = []
    for o in outcomes:
        r = o.results or {}
        per = r.get("per_sample")
        training = r.get("training") or {}
        rows.append({
            "model": o.model, "status": o.status, "backend": (r.get("backend") or {}).get("name"),
            "energy_per_sample": _energy_text(per) + _marks(r),
            "time_ms": _fmt(per.get("time_ms") if per else None, ".3f"),
            "throughput_per_s": _fmt(per.get("throughput_per_s") if per else None, ".1f"),
            "top1": _fmt((r.get("metrics") or {}).get("top1"), ".3f"),
            "energy_per_epoch": _energy_text(training.get("per_epoch") and {
                "energy_j": {"total": training["per_epoch"]["energy_j"]},
                "energy_method": {"total": training["per_epoch"]["energy_method"]}}),
            "folder": str(o.folder) if o.folder else "-",
            "error": str(o.error) if o.error else "",
        })
    return rows


def _render(outcomes: list, training: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from mlee.console import out

    table = Table(title="mlee train" if training else "mlee infer", title_justify="left")
    columns = ["model", "status", "energy/sample", "ms/sample", "samples/s", "top-1"]
    if training:
        columns.append("energy/epoch")
    for column in columns:
        table.add_column(column, overflow="fold")
    rows = _summary_rows(outcomes)
    for row in rows:
        status = Text(row["status"], style="green" if row["status"] == "completed" else "bold red")
        cells = [Text(row["model"]), status, Text(row["energy_per_sample"]), row["time_ms"],
                 row["throughput_per_s"], row["top1"]]
        if training:
            cells.append(Text(row["energy_per_epoch"]))
        table.add_row(*cells)
    console = out()
    console.print(table)
    # Folders below the table, one per line: a path folded inside a narrow column cannot be copied.
    for row in rows:
        console.print(Text(f"{row['model']}: {row['folder']}"), soft_wrap=True)


def _exit_code(outcomes: list) -> int:
    from mlee.cli import exit_code_for

    codes = {exit_code_for(o.error) for o in outcomes if o.error is not None}
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else EXIT_FAILURE


def execute(models: list[str], options: Any, settings: Any, as_json: bool,
            mlflow: tuple[bool, str | None] = (False, None)) -> int:
    """Check every model and option (usage errors leave no folder), run the models, show the summary, and
    choose the exit code; with ``mlflow``, log the finished folders to MLflow."""
    from mlee.console import error, message, progress
    from mlee.runners.modelrun import check_models, run_models
    from mlee.runners.registry import split_model_args

    names = split_model_args(models or [])
    if not names:
        raise UsageError("no model given", fix="pass --model NAME (see `mlee models`)")
    check_models(names, options.backend)
    options.validate()
    enabled = _progress_enabled()
    # The first SIGINT/SIGTERM/SIGHUP stops the run (recorded as interrupted, exit 130/143/129); later ones
    # cannot cut the record short.
    with SignalGuard(raise_first=True), progress(enabled) as bar:
        outcomes = run_models(names, options, settings, _BarProgress(bar) if enabled else None)
    training = options.task == "training"
    if mlflow[0] or mlflow[1]:
        from mlee.export.tracking import log_finished

        message(log_finished([o.folder for o in outcomes], mlflow[1]))
    if len(outcomes) == 1 and outcomes[0].error is not None:
        exc = outcomes[0].error
        where = f"the failed run is recorded in {outcomes[0].folder}"
        raise type(exc)(exc.message, fix=f"{exc.fix}; {where}" if exc.fix else where) from exc
    if as_json:
        data = [{"model": o.model, "status": o.status, "folder": str(o.folder) if o.folder else None,
                 "error": str(o.error) if o.error else None, "results": o.results} for o in outcomes]
        out_json(data)
    else:
        _render(outcomes, training)
        _render_layers(outcomes)
    no_energy = False
    for o in outcomes:
        missing = _missing_energy(o.results)  # issue 14: a run without any valid figure fails
        if o.error is not None:
            error(f"{o.model}: {o.error}")
        elif missing:
            no_energy = no_energy or (o.results or {}).get("energy_j", {}).get("total") is None and not any(
                (o.results or {}).get("energy_j", {}).get(c) is not None for c in ("cpu", "dram", "gpu"))
            error(f"{o.model}: {missing}")
        elif o.results and o.results.get("estimated"):
            message(f"mlee: {o.model}: energy figures are ESTIMATES (no energy counter was readable)")
    code = _exit_code(outcomes)
    return EXIT_FAILURE if code == 0 and no_energy else code


def _missing_energy(results: dict | None) -> str | None:
    """The line saying which sources gave no valid reading (issue 14), or None."""
    from mlee.monitors.accounting import missing_energy_text

    return missing_energy_text((results or {}).get("sources") or [])


def _render_layers(outcomes: list) -> None:
    """The per-layer breakdown of each run that has one (``--per-layer``)."""
    from mlee.console import message, out

    for o in outcomes:
        breakdown = (o.results or {}).get("per_layer")
        if breakdown:
            from mlee.predict.layers import render_breakdown

            out().print(render_breakdown(breakdown, top=20))
            note = _eager_note(o.model, o.results, breakdown)
            if note:
                message(note)


def _eager_note(model: str, results: dict, breakdown: dict) -> str | None:
    """Why a TensorFlow breakdown's times exceed the measured ones (its window ran eagerly), or None."""
    compiled_ms = (results.get("per_sample") or {}).get("time_ms")
    if breakdown.get("execution") != "eager" or not compiled_ms or not breakdown.get("n_samples"):
        return None
    eager_ms = breakdown["duration_s"] * 1e3 / breakdown["n_samples"]
    return (f"mlee: {model}: the per-layer window ran eagerly ({eager_ms:.3g} ms/sample, {eager_ms / compiled_ms:.1f}x "
            f"the compiled {compiled_ms:.3g} ms/sample measured): compare layers by their shares")


def out_json(data: Any) -> None:
    """Deterministic JSON on stdout."""
    import sys

    sys.stdout.write(json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n")


def _settings(kind: str, output_dir: Path, interval: float, baseline_s: float, source: list[str] | None,
              country: str | None, pue: float) -> Any:
    """The validated session settings (UsageError before anything is opened or written)."""
    from mlee.measure.settings import SessionSettings, check_baseline, check_interval, check_pue

    return SessionSettings(kind=kind, output_dir=output_dir, interval_s=check_interval(interval),
                           sources=tuple(source) if source else None, baseline_s=check_baseline(baseline_s),
                           country=country, pue=check_pue(pue))


def models_table(backend: str | None) -> list[dict]:
    """The registry as JSON-ready rows (``mlee models``)."""
    from mlee.runners.registry import MODELS, check_backend

    if backend is not None:
        check_backend(backend)
    rows = []
    for spec in MODELS:
        if backend is not None and backend not in spec.backends:
            continue
        row: dict[str, Any] = {"name": spec.name, "family": spec.family, "backends": list(spec.backends)}
        for framework in ("pytorch", "tensorflow"):
            entry = getattr(spec, framework)
            row[framework] = None if entry is None else {
                "builder": entry.builder, "input_size": entry.input_size, "resize_size": entry.resize_size,
                "parameters": entry.parameters}
        rows.append(row)
    return rows


def _render_models(rows: list[dict]) -> None:
    from rich.table import Table

    from mlee.console import out

    table = Table(title="Models", title_justify="left")
    for column in ("model", "backends", "pytorch params", "tensorflow params", "input px (pt/tf)"):
        table.add_column(column, justify="right" if "params" in column else "left")

    def params(entry: dict | None) -> str:
        return "-" if entry is None else f"{entry['parameters']:,}"

    def size(entry: dict | None) -> str:
        return "-" if entry is None else str(entry["input_size"])

    for r in rows:
        table.add_row(r["name"], ", ".join(r["backends"]), params(r["pytorch"]), params(r["tensorflow"]),
                      f"{size(r['pytorch'])}/{size(r['tensorflow'])}")
    out().print(table)


def register(app: typer.Typer) -> None:
    """Register ``mlee infer``, ``mlee train`` and ``mlee models``."""

    @app.command("infer")
    def infer(
        model: list[str] = _MODEL, backend: str = _BACKEND, onnx_source: str = _ONNX_SOURCE,
        weights: str = _WEIGHTS, device: str = _DEVICE,
        dataset: str = typer.Option(None, "--dataset", show_default=False,
                                    help="synthetic (default), digits, or imagenet (default with --data-path)."),
        data_path: Path = _DATA_PATH, batch_size: int = _BATCH, n_batches: int = _N_BATCHES,
        n_samples: int = _N_SAMPLES, seed: int = _SEED, warmup_batches: int = _WARMUP,
        repeat: int = typer.Option(1, "--repeat", help="Measured windows; mean, std and CV are reported."),
        input_size: int = _INPUT_SIZE, threads: int = _THREADS, max_corrupt: float = _MAX_CORRUPT,
        output_dir: Path = _OUTPUT, interval: float = _INTERVAL, baseline_s: float = _BASELINE,
        source: list[str] = _SOURCE, country: str = _COUNTRY, pue: float = _PUE,
        mlflow: bool = _MLFLOW, mlflow_uri: str = _MLFLOW_URI, hf_task: str = _hf.TASK, dtype: str = _hf.DTYPE,
        max_new_tokens: int = _hf.MAX_NEW_TOKENS, input_tokens: int = _hf.INPUT_TOKENS,
        per_layer: bool = typer.Option(False, "--per-layer", help="Also time every layer in an extra window and "
                                       "attribute its energy to layers (stored as per_layer, shown as a table)."),
        as_json: bool = typer.Option(False, "--json", help="Print the runs' results as JSON instead of a table."),
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
        return execute(model, options, _settings("infer", output_dir, interval, baseline_s, source, country, pue),
                       as_json, (mlflow, mlflow_uri))

    @app.command("train")
    def train(
        model: list[str] = _MODEL, backend: str = _BACKEND, weights: str = _WEIGHTS, device: str = _DEVICE,
        dataset: str = typer.Option(None, "--dataset", show_default=False,
                                    help="digits (default), synthetic, or imagenet (default with --data-path)."),
        data_path: Path = _DATA_PATH, batch_size: int = _BATCH,
        n_batches: int = typer.Option(None, "--n-batches", show_default=False,
                                      help="Training batches per epoch (default: the whole split)."),
        n_samples: int = typer.Option(None, "--n-samples", show_default=False,
                                      help="Training samples per epoch (instead of --n-batches)."),
        seed: int = _SEED, warmup_batches: int = typer.Option(
            2, "--warmup-batches", help="Training steps before epoch 1, not measured."),
        epochs: int = typer.Option(1, "--epochs", help="Epochs to train."),
        lr: float = typer.Option(0.01, "--lr", help="Learning rate."),
        optimizer: str = typer.Option("sgd", "--optimizer", help="sgd (momentum 0.9) or adam."),
        max_seconds: float = typer.Option(None, "--max-seconds", show_default=False,
                                          help="Training time budget; stops after the batch that crosses it."),
        save_weights: Path = typer.Option(None, "--save-weights", show_default=False,
                                          help="Write the trained weights here (usable with --weights PATH)."),
        input_size: int = _INPUT_SIZE, threads: int = _THREADS, max_corrupt: float = _MAX_CORRUPT,
        output_dir: Path = _OUTPUT, interval: float = _INTERVAL, baseline_s: float = _BASELINE,
        source: list[str] = _SOURCE, country: str = _COUNTRY, pue: float = _PUE,
        mlflow: bool = _MLFLOW, mlflow_uri: str = _MLFLOW_URI, input_tokens: int = _hf.INPUT_TOKENS,
        as_json: bool = typer.Option(False, "--json", help="Print the runs' results as JSON instead of a table."),
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
        return execute(model, options, _settings("train", output_dir, interval, baseline_s, source, country, pue),
                       as_json, (mlflow, mlflow_uri))

    @app.command("models")
    def models(
        backend: str = typer.Option(None, "--backend", "-b", show_default=False,
                                    help="Only models this backend runs: pytorch, tensorflow or onnx."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List the models `mlee infer`/`mlee train` know, with parameters and input sizes."""
        rows = models_table(backend)
        if as_json:
            out_json(rows)
        else:
            _render_models(rows)


