"""A spec checked against the data it rates: figure paths that exist in no record, references missing figures.

A misspelt path (``per_sample.energy_j.totl``) reads None from every record, so every model, the reference too,
would rate E on that metric without a word. Rating refuses that as a usage error naming the path and the closest
paths the records do have; a path that exists but holds no figure (a metric nobody measured) is not an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from mlee.errors import UsageError
from mlee.rating.table import TaskTable

#: Records of a task searched for a path before it is called unknown, and for the closest paths to suggest.
#: A path in none of the first records of a task that holds it nowhere is rare; the cap keeps the check cheap.
_SAMPLE = 2000
_MISSING = object()


def leaf_paths(record: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted path of a record that ends in a value that is not an object (``per_sample.time_ms``)."""
    if not isinstance(record, dict):
        return
    for key, value in record.items():
        if not isinstance(key, str):
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, path + ".")
        else:
            yield path


def _resolves(record: Any, keys: list[str]) -> bool:
    value = record
    for key in keys:
        if not isinstance(value, dict):
            return False
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return False
    return True


def _runs(table: TaskTable) -> Iterable[dict[str, Any]]:
    count = 0
    for entry in table.entries:
        for record in entry.records:
            yield record
            count += 1
            if count >= _SAMPLE:
                return


def check_paths(tables: dict[str, TaskTable]) -> None:
    """Raise UsageError for a spec path (value, times, method) that no record of its task has.

    Only metrics without a single figure in the whole task are checked, so a database the spec fits costs
    nothing beyond one look at each column.
    """
    for table in tables.values():
        if not table.entries:
            continue
        for metric in table.task.metrics:
            if any(v is not None for v in table.values.get(metric.key, ())):
                continue
            fields = (("value", metric.value), ("fallback", metric.fallback), ("per", metric.per),
                      ("times", metric.times), ("method", metric.method))
            for field, path in fields:
                if path is None or (field not in ("value", "fallback") and metric.from_task is not None):
                    continue
                alternatives = [path] + ([metric.fallback] if field == "value" and metric.fallback else [])
                if field == "fallback" or any(_resolves(record, p.split(".")) for p in alternatives
                                              for record in _runs(table)):
                    continue  # a fallback is checked with its value: one of the two must resolve
                known = sorted({p for record in _runs(table) for p in leaf_paths(record)})
                near = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
                raise UsageError(
                    f"spec: tasks.{table.task.name}.metrics.{metric.key}.{field} {path!r} is in no "
                    f"{table.task.name} record of the database",
                    ("closest paths: " + ", ".join(near)) if near else "check the dotted path against a record "
                    "of the database (e.g. per_sample.energy_j.total)")


def reference_gaps(rated: Iterable[dict[str, Any]]) -> list[str]:
    """One line per (group, metric) whose reference model has no figure: every model of it rates E there.

    ``rated`` are rated records (:func:`~mlee.rating.rate.rate_database`); index-against-best specs have none.
    """
    lines = []
    for r in rated:
        if r.get("reference") is None or r.get("model") != r["reference"]:
            continue
        for key, cell in r["metrics"].items():
            if cell.get("value") is None and cell.get("weight", 0) > 0:
                lines.append(f"reference model {r['model']} has no {cell.get('label') or key} figure in group "
                             f"{r['task']} / {r.get('dataset') or '-'} / {r.get('environment') or '-'}: "
                             f"every model of the group rates E on it")
    return lines
