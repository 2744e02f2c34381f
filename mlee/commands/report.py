"""CLI: `mlee report` - one self-contained, interactive HTML page of a rated database."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    db: Path = typer.Argument(..., help="Merged database (mlee merge output)."),
    output: Path = typer.Option(Path("results/report.html"), "--output", "-o",
                                help="HTML file to write (its folder is created); - for stdout."),
    spec: str = typer.Option("mlee", "--spec",
                             help="Rating spec: preset (mlee, mlee-2022, relative, ai-energy-score) or file."),
    labels: list[Path] = typer.Option(None, "--labels",
                                      help="Folder of labels from `mlee label` (repeatable; default: the "
                                           "report's folder). PNG or SVG labels are embedded, PDFs linked."),
    label_images: bool = typer.Option(True, "--label-images/--no-label-images",
                                      help="Embed label images (about 30 kB each) or only link the PDFs."),
    title: str = typer.Option(None, "--title", help="Page title (default: mlee report: DB name)."),
    max_trace_points: int = typer.Option(1500, "--max-trace-points",
                                         help="Most points per power-over-time series (traces are in the "
                                              "database when merged with --include-traces)."),
) -> int:
    """Write an interactive HTML report: scatter of any two metrics, ratings per environment, a sortable
    table, metric correlations, labels, power over time, and weights and boundaries to adjust live.

    The file needs no server and no network: open it from disk, a CI artifact or an e-mail.
    """
    from mlee.console import message, out
    from mlee.errors import UsageError
    from mlee.report.build import build_report, record_fields, report_target, write_report
    from mlee.results import load_database

    if db.is_dir():
        raise UsageError(f"{db} is a folder, not a database",
                         f"merge experiment folders first: mlee merge {db} -o db.json, then mlee report db.json")
    for folder in labels or []:
        if not folder.is_dir():
            raise UsageError(f"--labels {folder}: no such folder", "give the folder `mlee label -o` wrote to")
    target = report_target(output)
    database = load_database(db, keys=record_fields(spec))  # only what the page shows: bounded memory
    page = Path("report.html") if target.kind == "stdout" else target.path
    built = build_report(database, spec, report_path=page, label_dirs=labels or None, title=title,
                         database_name=db.name, max_trace_points=max_trace_points,
                         label_images=label_images)
    write_report(built, target)
    for note in built.notes:
        message(f"note: {note}")
    message(f"wrote {target.given}: {built.n_records} rated record(s), {built.n_labels} with a label, "
            f"{built.n_traced} with power traces ({built.size_bytes / 1e6:.2f} MB)")
    if target.kind != "stdout":
        out().print(target.given, markup=False, highlight=False, soft_wrap=True)
    return 0
