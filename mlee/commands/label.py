"""CLI: `mlee label` - energy labels (PDF, SVG, PNG) of rated models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

#: Gives the measurement times behind a rated record (see ``mlee.label.dates_from_database``).
DatesFn = Callable[[dict], tuple[str, ...]]

FONT_FIX = ("install a font that covers them (Debian: fonts-wqy-microhei or fonts-droid-fallback for CJK) "
            "or name a TrueType file in MLEE_LABEL_FONTS")


def label(
    source: Path = typer.Argument(..., metavar="DB|EXPERIMENT_DIR",
                                  help="A merged database (`mlee merge` output) or one experiment folder."),
    model: str = typer.Option(None, "--model", "-m", help="Label this model (every environment unless --env)."),
    env: str = typer.Option(None, "--env", "-e",
                            help="Only this environment, e.g. 'AMD EPYC 7B13 - PyTorch 2.14.1'."),
    task: str = typer.Option(None, "--task", "-t", help="Only this task (inference, training)."),
    all_records: bool = typer.Option(False, "--all", "-a", help="Label every rated model of the database."),
    output: Path = typer.Option(Path("labels"), "--output", "-o", help="Folder for the label files."),
    fmt: str = typer.Option("pdf", "--format", "-f", help="pdf, svg or png."),
    spec: str = typer.Option(None, "--spec", "-s", metavar="PRESET|FILE",
                             help="Rating spec: a preset (mlee, mlee-2022, relative, ai-energy-score) or a file. "
                                  "Default: mlee."),
    qr_url: str = typer.Option(None, "--qr-url", metavar="URL",
                               help="Put this URL in the QR code instead of a summary of the record; "
                                    "may use {model} {env} {task} {dataset} {compound} {id} {spec} "
                                    "{spec_sha256} (URL-quoted)."),
    carbon: bool = typer.Option(False, "--carbon", help="Also print emissions per sample (gCO2e, an estimate "
                                "from grid averages) in the energy block."),
    country: str = typer.Option(None, "--country", help="Grid for --carbon (ISO alpha-3 or WORLD; default: "
                                "as recorded, else MLEE_COUNTRY or DEU)."),
    pue: float = typer.Option(None, "--pue", help="Facility PUE for --carbon (default: as recorded, else 1.0)."),
) -> int:
    """Render A-E energy labels of rated models (the scale, compound and per-metric ratings, QR code).

    With an experiment folder, that one run is rated against the reference in the database beside it.

    Identical input gives identical files. Prints the written files, one per line.
    """
    from mlee.commands._rated import add_carbon
    from mlee.console import progress
    from mlee.errors import UsageError
    from mlee.fsutil import output_folder
    from mlee.label import FORMATS, check_selection, ordered, write_labels
    from mlee.label.qrtext import check_qr_template

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", "use one of: " + ", ".join(FORMATS))
    if qr_url is not None:
        check_qr_template(qr_url)
    output_folder(output, create=False)  # a file there is a usage error before anything is rated
    if fmt == "png":
        from mlee.label.render import require_png

        require_png()  # before anything is rated or written
    if source.is_dir():
        if model is not None or env is not None or task is not None:
            raise UsageError("an experiment folder holds one run: --model, --env and --task select from a "
                             "database", "drop them, or pass the database file instead of the folder")
        rated, dates = _rate_experiment(source, spec)
    else:
        check_selection(model=model, env=env, all_records=all_records)
        rated, dates = _rate_database(source, spec, task=task, env=env, model=model)
    rated = ordered(rated)
    if carbon:
        add_carbon(rated, country, pue)  # an unknown country fails before anything is written
    elif country is not None or pue is not None:
        raise UsageError("--country and --pue only apply with --carbon", "add --carbon to print emissions")
    with progress() as bar:
        job = bar.add_task("rendering labels", total=len(rated))
        written = write_labels(rated, output, fmt=fmt, qr_url=qr_url, dates=dates,
                               on_written=lambda _w: bar.advance(job))
    _show_written(written, fmt, output)
    return 0


def _show_written(written: list, fmt: str, output: Path) -> None:
    """The written files on stdout, one per line; font warnings and the count of each compound rating on stderr."""
    from mlee.console import message, out

    console = out()
    for item in written:
        console.print(str(item.path), markup=False, highlight=False, soft_wrap=True)
    for item in written:
        if item.missing:
            chars = "".join(item.missing[:12]) + ("..." if len(item.missing) > 12 else "")
            message(f"warning: {item.path.name}: {len(item.missing)} character(s) no installed font can "
                    f"show ({chars}) are drawn as \ufffd; the QR code holds the full text. Fix: {FONT_FIX}")
    counts = {letter: sum(1 for w in written if w.compound == letter) for letter in "ABCDE"}
    ratings = ", ".join(f"{letter}: {n}" for letter, n in counts.items() if n)
    message(f"wrote {len(written)} {fmt.upper()} label(s) to {output.resolve()}"
            + (f" (compound ratings {ratings})" if ratings else ""))


def _rate_database(path: Path, spec: str | None, **filters: str | None) -> tuple[list[dict], DatesFn]:
    from mlee.errors import UsageError
    from mlee.label import dates_from_database
    from mlee.rating import load_spec, rate_database
    from mlee.rating.records import record_keys
    from mlee.results import load_database
    from mlee.results.dbread import records_by_id

    if not path.exists():
        raise UsageError(f"{path} does not exist", "pass a database written by `mlee merge` or an experiment folder")
    rating_spec = load_spec(spec)
    # Rated with only the fields rating reads; the labels of single runs then get their whole records.
    db = load_database(path, keys=record_keys(rating_spec) | {"start_utc"})
    rated = rate_database(db, rating_spec, **filters)
    whole = records_by_id(path, [r["id"] for r in rated if r["n"] == 1])
    for r in rated:
        if r["n"] == 1 and r["id"] in whole:
            r["record"] = whole[r["id"]]
    return rated, dates_from_database(db)


def _backend_name(record: dict) -> object:
    backend = record.get("backend")
    return backend.get("name") if isinstance(backend, dict) else backend


def _rate_experiment(folder: Path, spec: str | None) -> tuple[list[dict], DatesFn]:
    """Rate one experiment against the reference in the database beside it (or alone, if it is the reference)."""
    from mlee.errors import RatingError, UsageError
    from mlee.label import dates_from_database
    from mlee.rating import load_spec, rate_database
    from mlee.results import load_database, read_experiment
    from mlee.results.dbread import database_beside

    if not (folder / "results.json").is_file():
        raise UsageError(f"{folder} is a folder but not an experiment folder (no results.json)",
                         "pass an experiment folder, or the database file written by `mlee merge`")
    record = read_experiment(folder)
    if record.get("status") != "completed":
        raise UsageError(f"experiment {folder.name} did not complete (status {record.get('status')}): "
                         "it has no figures to rate", "label a completed run")
    if not isinstance(record.get("model"), str) or record.get("task") is None:
        raise UsageError(f"{folder} is a `{record.get('kind')}` session, not a model run: there is no model to rate",
                         "label runs of `mlee infer` (or a database of them)")
    rating_spec = load_spec(spec)
    db_path = database_beside(folder)
    others: list = []
    summaries: list = []
    if db_path is not None:
        from mlee.rating.records import record_keys

        db = load_database(db_path, keys=record_keys(rating_spec) | {"start_utc"})
        same = (record.get("task"), record.get("dataset"), record.get("environment"), record.get("model"),
                _backend_name(record))
        # Other runs of the same model would be averaged with this one: leave them out, keep everything else.
        others = [r for r in db["records"] if r.get("id") != record.get("id") and
                  (r.get("task"), r.get("dataset"), r.get("environment"), r.get("model"), _backend_name(r)) != same]
        summaries = db.get("summaries") or []
    merged = {"records": others + [record], "summaries": summaries}
    try:
        rated = rate_database(merged, rating_spec, task=record["task"], env=record.get("environment"),
                              model=record["model"])
    except RatingError as exc:
        where = (f" (rating {folder.name} against {db_path})" if db_path is not None
                 else f"; there is no database beside the experiment ({folder.resolve().parent}/merged.json)")
        raise RatingError(f"{exc.message}{where}",
                          exc.fix or "merge the reference model's run into a database beside the experiment") from None
    rated = [r for r in rated if r.get("id") == record.get("id")]
    return rated, dates_from_database(merged)
