"""CLI: `mlee merge` - experiment folders and 2022 logs into one database."""

from __future__ import annotations

from pathlib import Path

import typer


def merge(
    paths: list[Path] = typer.Argument(
        None, help="Experiment folders, folders holding them (searched recursively) or 2022 logs "
                   "(infer_*.json, train_*.json). Default: results/."),
    output: Path = typer.Option(Path("results/merged.json"), "--output", "-o", help="Database file to write (- for stdout)."),
    update: bool = typer.Option(False, "--update", "-u",
                                help="Add new or changed folders to the existing database; unchanged ones "
                                     "are not read again and no record is removed."),
    include_traces: bool = typer.Option(False, "--include-traces",
                                        help="Store raw trace samples in each record (large)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any input was skipped (for CI)."),
    archive: Path = typer.Option(None, "--archive", metavar="DIR",
                                 help="Also pack each merged folder as DIR/<id>.tar.gz (raw traces kept)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an existing database even if records would disappear."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, help="Reader processes (default: the idle CPUs, 1 to 4)."),
    lock_timeout: float = typer.Option(600.0, "--lock-timeout", min=0.0,
                                       help="Seconds to wait for another merge into the same file."),
    stale_after: float = typer.Option(600.0, "--stale-after", min=0.0,
                                      help="Seconds without an update after which a running folder of another "
                                           "host counts as interrupted (same host: its process is checked)."),
) -> int:
    """Merge experiment folders into one JSON database: one record per experiment, summaries of repeats.

    Folders that cannot be read are listed with the reason on stderr and under "skipped" in the output.
    The output is written atomically under a lock; the same inputs always give the same bytes.
    """
    from mlee.console import message, progress
    from mlee.errors import UsageError
    from mlee.results import merge_into

    if not paths:
        default = Path("results")
        if not default.is_dir():
            raise UsageError("no folders given and results/ does not exist",
                             "give experiment folders: mlee merge DIR...")
        paths = [default]
    if update and not output.exists():
        message(f"{output} does not exist yet: --update starts a new database")
    with progress() as bar:
        task = bar.add_task("merging", total=None)
        report = merge_into(
            output, list(paths), update=update, include_traces=include_traces,
            overwrite=overwrite, jobs=jobs, archive=archive, lock_timeout_s=lock_timeout,
            stale_after_s=_finite_seconds(stale_after, "--stale-after"),
            on_total=lambda n: bar.update(task, total=n),
            on_progress=lambda n: bar.advance(task, n),
        )
    if report.skipped:
        _skipped_table(report.skipped)
    reused = f", {report.reused} unchanged (not read again)" if report.reused else ""
    archived = f", {len(report.archived)} archive(s) written to {archive}" if archive is not None else ""
    done = f"{output} is up to date (not rewritten)" if report.unchanged else f"wrote {output}"
    message(f"{done}: {report.records} record(s), {report.summaries} summary(ies), "
            f"{len(report.skipped)} skipped; {report.read} input(s) read{reused}{archived}")
    if report.traces_parsed and not include_traces:
        message(f"{report.traces_parsed} trace(s) had no matching power/stats.json and were parsed "
                "(folders of an older mlee or of killed runs, or traces changed after the run)")
    if report.stale_removed:
        message(f"removed {report.stale_removed} temporary file(s) left by an interrupted merge into {output}")
    if report.invalid_rows:
        message(f"{report.invalid_rows} trace row(s) in {report.invalid_inputs} experiment(s) were malformed or "
                "not finite: left out of the trace statistics and counted as invalid samples "
                "(invalid_rows under traces in the records)")
    if strict and report.skipped:
        message(f"--strict: {len(report.skipped)} input(s) were skipped")
        return 1
    return 0


def _finite_seconds(value: float, option: str) -> float:
    import math

    from mlee.errors import UsageError

    if not math.isfinite(value):
        raise UsageError(f"{option} {value} is not a finite number of seconds", fix=f"use e.g. {option} 600")
    return value


def _skipped_table(skipped: list[dict]) -> None:
    from rich.table import Table
    from rich.text import Text

    from mlee.console import err, escape

    table = Table(title=f"skipped ({len(skipped)})", title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("reason", overflow="fold")
    for s in skipped:
        # Text, not str: paths and reasons are user data and must never be read as rich markup.
        table.add_row(Text(escape(s["path"])), Text(escape(s["reason"])))
    err().print(table)
