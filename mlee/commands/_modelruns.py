"""The model runs of `mlee infer` and `mlee train`: check, run under measurement, summarise, choose the exit code.

Each model gets its own experiment folder. One model failing is recorded (``status: failed``) and the others
still run; the command then exits with the failure's code (1 if they differ) after a summary table. Frameworks
are imported only when a run starts, never for ``--help``.
"""

from __future__ import annotations

import os
from typing import Any

from mlee.errors import UsageError
from mlee.signals import SignalGuard

EXIT_FAILURE = 1


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
    """The failures' exit code (from their error classes), 1 when they differ, 0 without a failure."""
    codes = {o.error.exit_code for o in outcomes if o.error is not None}
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else EXIT_FAILURE


def execute(models: list[str], options: Any, settings: Any, as_json: bool,
            mlflow: tuple[bool, str | None] = (False, None)) -> int:
    """Check every model and option (usage errors leave no folder), run the models, show the summary, and
    choose the exit code; with ``mlflow``, log the finished folders to MLflow."""
    from mlee.console import error, message, print_json, progress
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
        print_json(data)
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
            from mlee.commands._predict_tables import render_breakdown

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
