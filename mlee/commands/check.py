"""CLI: `mlee check` - gate a pull request or CI job on energy."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def check(
    db: Path = typer.Argument(..., help="Merged database (mlee merge output)."),
    model: str = typer.Option(None, "--model", "-m", help="Check only this model."),
    env: str = typer.Option(None, "--env", "-e", help="Check only this environment."),
    task: str = typer.Option(None, "--task", "-t", help="Check only this task: inference or training "
                                                        "(default: every task; the summary says which)."),
    spec: str = typer.Option("mlee", "--spec", help="Rating spec: preset name or file (for --min-rating)."),
    min_rating: str = typer.Option(None, "--min-rating", help="Worst acceptable compound rating, A-E."),
    max_energy: str = typer.Option(None, "--max-energy-per-sample",
                                   help="Ceiling on mean energy per sample, e.g. 0.5J, 500mJ, 1e-4Wh."),
    baseline: Path = typer.Option(None, "--baseline", help="Older database to compare against."),
    max_regression: str = typer.Option(None, "--max-regression",
                                       help="Allowed growth of energy per sample over --baseline, e.g. 5%."),
    markdown_file: Path = typer.Option(None, "--markdown", help="Write a Markdown summary (CI job summary, PR comment); - for stdout."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> int:
    """Exit 0 when every condition holds, 1 with a list of what failed.

    Regression compares the mean over repeats and says whether the change exceeds the runs' own spread.
    """
    from mlee.rating import gate as chk
    from mlee.console import error, message, out
    from mlee.errors import UsageError
    from mlee.fsutil import output_target, write_output
    from mlee.results import load_database

    markdown_target = output_target(markdown_file, "--markdown") if markdown_file else None

    if max_regression is not None and baseline is None:
        raise UsageError("--max-regression needs --baseline OLD_DB", "add --baseline with the database to compare to")
    limit_rating = chk.parse_rating(min_rating) if min_rating else None
    limit_energy = chk.parse_energy(max_energy) if max_energy else None
    limit_regression = chk.parse_percent(max_regression) if max_regression else None
    from mlee.rating import load_spec, rate_database
    from mlee.rating.records import record_keys

    # Checks read the summaries and the ratings: records keep only what rating reads (bounded memory).
    loaded = load_spec(spec) if limit_rating else None
    database = load_database(db, keys=record_keys(loaded) if loaded is not None else ("id",))
    old = load_database(baseline, keys=("id",)) if baseline else None
    rated = None
    if loaded is not None:
        rated = rate_database(database, loaded, model=model, env=env, task=task)
    report = chk.run_checks(database, model=model, env=env, rated=rated, min_rating=limit_rating,
                            max_energy_j=limit_energy, baseline=old, max_regression=limit_regression,
                            task=task)
    if markdown_target is not None:
        write_output(markdown_target, chk.markdown(report))
        if markdown_target.kind != "stdout":
            message(f"wrote {markdown_file}")
    if as_json:
        out().print_json(json.dumps(report.to_dict(), sort_keys=True))
    elif markdown_target is None or markdown_target.kind != "stdout":  # --markdown - is the data on stdout
        _render(report)
    for o in report.failures:
        error(f"{o.model} ({o.environment}, {o.task or 'no task'}): {chk.describe(o)}")
    if task is None:
        for condition, tasks in report.coverage().items():
            message(f"{condition} covered task(s): {', '.join(t or 'none' for t in tasks)}"
                    + (" (--task picks one)" if len(tasks) > 1 else ""))
    if report.passed:
        message(f"check passed: {len(report.outcomes)} condition(s) hold")
        return 0
    message(f"check failed: {len(report.failures)} of {len(report.outcomes)} condition(s) do not hold")
    return 1


def _render(report) -> None:
    from rich.table import Table
    from rich.text import Text

    from mlee.console import escape, out

    table = Table(title="mlee check")
    for col in ("model", "environment", "n", "rating", "energy/sample", "baseline", "change"):
        table.add_column(col)
    for r in report.rows:
        e = "n/a" if r["energy_per_sample_j"] is None else f"{r['energy_per_sample_j']:.4g} J"
        if r["estimated"] and r["energy_per_sample_j"] is not None:
            e += " (estimate)"
        b = "" if r["baseline_energy_per_sample_j"] is None else f"{r['baseline_energy_per_sample_j']:.4g} J"
        c = "" if r["change"] is None else f"{r['change'] * 100:+.1f} %"
        table.add_row(Text(escape(r["model"])), Text(escape(r["environment"])), str(r["n"]), r["rating"] or "", e, b, c)
    out().print(table)
