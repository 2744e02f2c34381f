"""CLI: ``mlee export DB --format parquet|csv -o FILE`` and ``mlee export mlflow DB``."""

from __future__ import annotations

from pathlib import Path

import typer


def _export_table(db_path: Path, fmt: str | None, output: Path | None, spec: str | None) -> int:
    from mlee.console import message
    from mlee.errors import UsageError
    from mlee.export.labels import rate_records
    from mlee.export.tables import FORMATS, write_table
    from mlee.results import load_database

    if output is None:
        raise UsageError("no output file given", "add -o FILE, e.g. -o results.parquet")
    fmt = (fmt or output.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise UsageError(f"cannot tell the table format from {fmt!r}", "use --format parquet or --format csv")
    db = load_database(db_path)
    ratings = None
    if spec is not None:
        ratings = {ident: r.rated for ident, r in rate_records(db, spec).items()}
    path, n_rows = write_table(db, output, fmt, ratings)
    note = ""
    if ratings is not None:
        unrated = sum(1 for r in ratings.values() if r is None)
        note = f" with ratings of spec {spec}" + (f" ({unrated} run(s) not rated: failed, not a model run, or no "
                                                  "reference model in their group)" if unrated else "")
    message(f"wrote {n_rows} row(s) to {path}{note}")
    return 0


def _export_mlflow(db_path: Path, uri: str | None, experiment: str | None, spec: str | None, as_json: bool) -> int:
    import sys

    from mlee.console import message
    from mlee.export.tracking import log_database, runs_json

    logged = log_database(db_path, uri=uri, experiment=experiment, spec=spec)
    if as_json:
        sys.stdout.write(runs_json(logged))
    else:
        for run in logged:
            sys.stdout.write(f"{run.record_id}\t{run.run_id}\t{'existing' if run.existing else 'logged'}\n")
    new = sum(1 for r in logged if not r.existing)
    where = logged[0].tracking_uri if logged else (uri or "the tracking URI")
    message(f"logged {new} new run(s) to MLflow at {where}; {len(logged) - new} were there already")
    return 0


def export(
    target: list[str] = typer.Argument(..., metavar="[mlflow] DB",
                                       help="A merged database (`mlee merge` output); put `mlflow` first to "
                                            "log its records as MLflow runs instead of writing a table."),
    fmt: str = typer.Option(None, "--format", "-f", help="parquet or csv (default: from the -o suffix)."),
    output: Path = typer.Option(None, "--output", "-o", help="The table file to write."),
    spec: str = typer.Option(None, "--spec", "-s", metavar="PRESET|FILE",
                             help="Add the ratings of this spec as columns (table), or rate the labels "
                                  "logged to MLflow with it (default there: mlee)."),
    mlflow_uri: str = typer.Option(None, "--mlflow-uri", metavar="URI",
                                   help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else "
                                        "sqlite:///mlflow.db in the current folder)."),
    experiment: str = typer.Option(None, "--experiment", metavar="NAME",
                                   help="MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, else mlee)."),
    as_json: bool = typer.Option(False, "--json", help="mlflow: print the logged runs as JSON."),
) -> int:
    """Export a merged database: a typed table for pandas, Polars and DuckDB, or MLflow runs.

    Table: one row per record, one column per figure (units in the names), nulls where not measured.
    MLflow: one run per record with parameters, metrics (energy method as tags), power traces as step
    metrics and results.json, traces and label as artifacts; records logged before are left alone.
    Exit codes: 0 ok, 1 failure (unreadable database, MLflow refused), 2 bad usage.
    """
    from mlee.errors import UsageError

    if target == ["mlflow"]:
        raise UsageError("`mlee export mlflow` needs the database to log", "use `mlee export mlflow DB`")
    if target[0] == "mlflow" and len(target) == 2:
        if fmt is not None or output is not None:
            raise UsageError("--format and -o write a table, not MLflow runs",
                             "drop them, or drop `mlflow` to write a table")
        return _export_mlflow(Path(target[1]), mlflow_uri, experiment, spec, as_json)
    if len(target) != 1:
        raise UsageError(f"expected one database, got {len(target)} arguments",
                         "use `mlee export DB -o FILE` or `mlee export mlflow DB`")
    if mlflow_uri is not None or experiment is not None or as_json:
        raise UsageError("--mlflow-uri, --experiment and --json apply to `mlee export mlflow DB`",
                         "put `mlflow` before the database")
    return _export_table(Path(target[0]), fmt, output, spec)
