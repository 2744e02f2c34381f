"""Reference values and indices per group, and boundaries from index quantiles: what rating and calibration share.

A group is one (task, dataset, environment) span of a :class:`~mlee.rating.table.TaskTable`; an index compares a
model's figure with its group's reference model (or, for ``index_base: best``, with the group's best figure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlee.errors import RatingError, UsageError
from mlee.rating.records import GroupKey
from mlee.rating.spec import Spec
from mlee.rating.table import TaskTable

#: The command that measures a missing reference model, per task.
MEASURE_COMMAND = {"inference": "mlee infer", "training": "mlee train"}
_INF = float("inf")


def records_of(db: Any) -> list[Any]:
    """The records of a database; UsageError when it is not one."""
    if not isinstance(db, dict) or not isinstance(db.get("records"), list):
        raise UsageError("not an mlee database: it has no list of records",
                         "pass the JSON file written by `mlee merge`")
    return db["records"]


def reference_position(table: TaskTable, key: GroupKey, start: int, stop: int) -> int:
    """Where the task's reference model is in the group; RatingError naming the group, its models and the fix."""
    reference = table.task.reference
    for position in range(start, stop):
        if table.entries[position].model == reference:
            return position
    members = table.entries[start:stop]
    models = sorted({e.model for e in members})
    # A group of hundreds of models would bury the fix: name the first few and count the rest.
    have = ", ".join(models[:12]) + (f" and {len(models) - 12} more" if len(models) > 12 else "")
    backend = next((e.backend for e in members if e.backend), None)
    device = next((r.get("device") for e in members for r in e.records if isinstance(r.get("device"), str)), None)
    command = f"{MEASURE_COMMAND.get(key[0], 'mlee infer')} --model {reference}"
    if backend:
        command += f" --backend {backend}"
    if device and device != "cpu":
        command += f" --device {device}"
    hf_task, _, data = (key[1] or "").partition(":")
    if backend == "transformers" and data:  # a transformers run's dataset is <pipeline task>:<inputs>
        command += f" --task {hf_task}" + ("" if data == "synthetic" else f" --data-path {data}")
    elif key[1]:
        command += f" --dataset {key[1]}"
    raise RatingError(
        f"no reference model {reference} in group {key[0]} / {key[1] or '-'} / {key[2] or '-'}; the group has: {have}",
        f"measure it with `{command}` on the same machine and merge again, or rate with --spec relative")


def group_bases(table: TaskTable, index_base: str, key: GroupKey, start: int, stop: int) -> dict[str, float | None]:
    """Per metric, the value the group's indices are taken against: the reference model's, or the group's best."""
    if index_base == "reference":
        position = reference_position(table, key, start, stop)
        return {m.key: table.values[m.key][position] for m in table.task.metrics}
    bases: dict[str, float | None] = {}
    for metric in table.task.metrics:
        values = [v for v in table.values[metric.key][start:stop] if v is not None and v >= 0]
        if metric.higher_is_better:
            bases[metric.key] = max(values) if values else None
        else:
            positive = [v for v in values if v > 0]
            bases[metric.key] = min(positive) if positive else None
    return bases


def index_column(values: list[float | None], base: float | None, higher_is_better: bool,
                 zero: float | None = None) -> list[float | None]:
    """:func:`mlee.rating.core.index_of` of every value against one base, as one list comprehension.

    Higher is better: ``value / base`` (base > 0); lower is better: ``base / value`` (value > 0); a negative
    figure, a division by zero or an overflow to infinity has no index. ``zero`` is the index of a division by
    zero instead (the spec's ``zero_division_index``; the 2022 code gave 0).
    """
    if base is None or base < 0:
        return [None] * len(values)
    if higher_is_better:
        if base == 0:
            return [None if v is None or v < 0 else zero for v in values]
        return [None if v is None or v < 0 else (i if (i := v / base) != _INF else None) for v in values]
    return [None if v is None or v < 0 else zero if v == 0 else (i if (i := base / v) != _INF else None)
            for v in values]


def range_column(values: list[float | None], higher_is_better: bool) -> tuple[list[float | None], float | None,
                                                                              float | None]:
    """Indices of ``index_base: range``: where each figure lies between the group's worst (0) and best (1) figure.

    Lower is better: ``(max - value) / (max - min)``; higher is better: ``(value - min) / (max - min)``. Boundaries
    at 0.8, 0.6, 0.4, 0.2 then cut the group's range into five equal bands, as the AI Energy Score cuts a task's
    GPU energy range into its stars. Every model of a group without spread (one model, or equal figures) has
    index 1; a missing or negative figure has none.

    Returns:
        The indices, and the group's smallest and largest figure (None when it has none).

    Units: indices dimensionless; ``min`` and ``max`` those of the values.
    """
    present = [v for v in values if v is not None and v >= 0]
    if not present:
        return [None] * len(values), None, None
    lo, hi = min(present), max(present)
    span = hi - lo
    if span == 0 or span == _INF:
        return [None if v is None or v < 0 else 1.0 for v in values], lo, hi
    if higher_is_better:
        return [None if v is None or v < 0 else (v - lo) / span for v in values], lo, hi
    return [None if v is None or v < 0 else (hi - v) / span for v in values], lo, hi


def range_value_boundaries(lo: float | None, hi: float | None, boundaries: Sequence[float],
                           higher_is_better: bool) -> list[float | None] | None:
    """The index boundaries of ``index_base: range`` as figures: the edges of the bands. Units: the figures'."""
    if lo is None or hi is None:
        return None
    span = hi - lo
    return [lo + b * span if higher_is_better else hi - b * span for b in boundaries]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of ascending values, linear interpolation exactly as numpy's default (``method="linear"``).

    Units: those of the values.
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of no values")
    virtual = (n - 1) * q
    lo = min(max(math.floor(virtual), 0), n - 1)
    hi = min(lo + 1, n - 1)
    gamma = virtual - lo
    a, b = sorted_values[lo], sorted_values[hi]
    diff = b - a
    # numpy interpolates from the nearer end, which makes the result bit-identical to np.quantile.
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


def pooled_indices(spec: Spec, table: TaskTable, skip_missing_reference: bool = False) -> dict[str, list[float]]:
    """Every defined index of each of the task's metrics over all its groups, sorted ascending."""
    pooled: dict[str, list[float]] = {m.key: [] for m in table.task.metrics}
    for key, start, stop in table.spans:
        if skip_missing_reference and spec.index_base == "reference" and not any(
                e.model == table.task.reference for e in table.entries[start:stop]):
            continue
        if spec.index_base == "range":
            for metric in table.task.metrics:
                column = range_column(table.values[metric.key][start:stop], metric.higher_is_better)[0]
                pooled[metric.key].extend(i for i in column if i is not None)
            continue
        bases = group_bases(table, spec.index_base, key, start, stop)
        for metric in table.task.metrics:
            column = index_column(table.values[metric.key][start:stop], bases[metric.key], metric.higher_is_better,
                                  spec.zero_division_index)
            pooled[metric.key].extend(i for i in column if i is not None)
    for values in pooled.values():
        values.sort()
    return pooled


def relative_boundaries(sorted_indices: Sequence[float], quantiles: Sequence[float]) -> tuple[float, ...]:
    """Boundaries at index quantiles such that a model whose index equals a quantile rates on the better side.

    Indices relative to a group's best tie at exactly 1.0 (every group's best), so a plain quantile often equals
    a data value and, under "A if index > b1", no model could reach A. A boundary that equals an index value in
    the pool moves down to the midpoint between that value and the next lower distinct one (to 0 when there is
    none): ratings then follow the models' quantile ranks, ties sharing the better letter.

    Units: dimensionless.
    """
    if not sorted_indices:
        return tuple(0.0 for _ in quantiles)
    present = set(sorted_indices)
    distinct = sorted(present)
    out = []
    for q in quantiles:
        bound = quantile(sorted_indices, q)
        if bound in present:
            position = distinct.index(bound)
            bound = (bound + distinct[position - 1]) / 2 if position > 0 else 0.0
        out.append(bound)
    return tuple(out)


def resolved_boundaries(spec: Spec, tables: dict[str, TaskTable]) -> dict[tuple[str, str], tuple[float, ...]]:
    """Per (task, metric) the boundaries in force: the spec's, or those its quantiles give on this database."""
    resolved: dict[tuple[str, str], tuple[float, ...]] = {}
    for task in spec.tasks:
        pooled = None
        for metric in task.metrics:
            if metric.boundaries is not None:
                resolved[(task.name, metric.key)] = metric.boundaries
                continue
            if pooled is None:
                # Quantiles are over the whole database, never the filtered part, and skip groups that cannot
                # be indexed; the groups that are rated still fail loudly on a missing reference.
                pooled = pooled_indices(spec, tables[task.name], skip_missing_reference=True)
            resolved[(task.name, metric.key)] = relative_boundaries(pooled[metric.key], metric.quantiles or ())
    return resolved
