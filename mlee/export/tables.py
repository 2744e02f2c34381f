"""A merged database as one table for pandas, Polars and DuckDB: one row per record, one column per figure.

Parquet is written with pyarrow under an explicit schema (strings, float64, int64, bool; nulls where a figure
was not measured), CSV with the standard library (an empty field is a null). Ratings of a chosen spec become
extra columns: the compound letter and each metric's letter and index, the same for every run of a model that
was rated on the mean of its runs, and nulls for a run that could not be rated (failed, or a group without the
spec's reference model).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, OutputError, UsageError
from mlee.export.figures import COLUMNS, flat_record, typed
from mlee.fsutil import atomic_write_bytes

FORMATS = ("parquet", "csv")


def _rating_columns(rated: list[dict[str, Any]]) -> list[tuple[str, str]]:
    keys = sorted({key for r in rated for key in (r.get("metrics") or {})})
    cols = [("rating_spec", "string"), ("rating_spec_sha256", "string"), ("rating_reference", "string"),
            ("rating_compound", "string")]
    for key in keys:
        cols += [(f"rating_{key}", "string"), (f"index_{key}", "float64")]
    return cols


def _rating_values(r: dict[str, Any]) -> dict[str, Any]:
    spec = r.get("spec") or {}
    values: dict[str, Any] = {"rating_spec": spec.get("name"), "rating_spec_sha256": spec.get("sha256"),
                              "rating_reference": r.get("reference"), "rating_compound": r.get("compound")}
    for key, metric in (r.get("metrics") or {}).items():
        values[f"rating_{key}"] = metric.get("rating")
        values[f"index_{key}"] = typed(metric.get("index"), "float64")
    return values


def table(db: dict[str, Any], ratings: dict[str, dict[str, Any] | None] | None = None
          ) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """The database as (columns, rows): columns are (name, type) pairs, rows dicts in record order.

    Args:
        db: A merged database (``mlee.results.load_database``).
        ratings: Record id -> its rated record (docs/design.md §4), None for a record without a rating (see
            :func:`mlee.export.labels.rate_records`); None for no rating columns at all.
    """
    columns = [(c.name, c.kind) for c in COLUMNS]
    rows = [flat_record(record) for record in db.get("records") or []]
    if ratings is not None:
        rated = [r for r in ratings.values() if r is not None]
        extra = _rating_columns(rated)
        columns += extra
        blank = {name: None for name, _ in extra}
        for row in rows:
            r = ratings.get(str(row["id"]))
            row.update({**blank, **(_rating_values(r) if r is not None else {})})
    return columns, rows


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}[kind]


def parquet_bytes(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> bytes:
    """The table as Parquet (typed by ``columns``).

    Raises:
        BackendMissing: pyarrow is not installed.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BackendMissing("writing Parquet needs pyarrow, which is not installed",
                             "pip install 'mlee[parquet]', or use --format csv") from None
    schema = pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in columns])
    data = {name: [row.get(name) for row in rows] for name, _ in columns}
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pydict(data, schema=schema), buffer)
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


def csv_bytes(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> bytes:
    """The table as CSV: a header of column names, an empty field for a null, ``true``/``false`` for bools."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([name for name, _ in columns])
    for row in rows:
        writer.writerow([_csv_cell(row.get(name)) for name, _ in columns])
    return text.getvalue().encode("utf-8")


def write_table(db: dict[str, Any], path: str | Path, fmt: str,
                ratings: dict[str, dict[str, Any] | None] | None = None) -> tuple[Path, int]:
    """Write ``db`` as a table file (atomically) and return (path, rows written).

    Raises:
        UsageError: an unknown format.
        BackendMissing: Parquet without pyarrow.
        OutputError: the file cannot be written; an existing file is left as it was.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown table format {fmt!r}", "use --format " + " or --format ".join(FORMATS))
    columns, rows = table(db, ratings)
    data = parquet_bytes(columns, rows) if fmt == "parquet" else csv_bytes(columns, rows)
    path = Path(path)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "choose another file with -o") from None
    return path, len(rows)
