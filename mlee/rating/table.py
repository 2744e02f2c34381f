"""One task's models as a table: entries in group order and one column of figures per metric.

Rating works column by column (one metric over every model at a time, as list comprehensions) rather than record
by record: that is what keeps 100,000 records well under two seconds in plain Python.
"""

from __future__ import annotations

import math
from typing import Any

from mlee.rating.records import METHOD_STRENGTH, Entry, Extractor, GroupKey, getter, mean_value, weakest_method
from mlee.rating.spec import Spec, TaskSpec


class TaskTable:
    """The entries of one task, sorted by group then (model, backend), with their figures.

    Attributes:
        task: The task's spec.
        entries: Every entry of the task, in group order.
        spans: ``(group key, start, stop)`` per group, sorted by (task, dataset, environment): the group's entries
            are ``entries[start:stop]``.
        values: metric key -> the mean figure of each entry (None: not measured), aligned with ``entries``.
        methods: metric key -> the weakest method of each entry's figure, for metrics with a method path only.
    """

    __slots__ = ("task", "entries", "spans", "values", "methods")

    def __init__(self, task: TaskSpec, entries: list[Entry], spans: list[tuple[GroupKey, int, int]]) -> None:
        self.task = task
        self.entries = entries
        self.spans = spans
        self.values: dict[str, list[float | None]] = {}
        self.methods: dict[str, list[str | None]] = {}


def group_sort(key: GroupKey) -> tuple[str, str, str]:
    """Sort key of a group: task, dataset, environment (a missing name sorts first)."""
    return (key[0], key[1] or "", key[2] or "")


def _member_sort(entry: Entry) -> tuple[str, str]:
    return (entry.model, entry.backend or "")


def build_tables(entries: dict[tuple, Entry], spec: Spec) -> dict[str, TaskTable]:
    """A filled :class:`TaskTable` per task of the spec (tasks without runs get an empty table)."""
    grouped: dict[GroupKey, list[Entry]] = {}
    for entry in entries.values():
        key = (entry.task, entry.dataset, entry.environment)
        members = grouped.get(key)
        if members is None:
            grouped[key] = [entry]
        else:
            members.append(entry)
    tables: dict[str, TaskTable] = {}
    for task in spec.tasks:
        order: list[Entry] = []
        spans: list[tuple[GroupKey, int, int]] = []
        for key in sorted((k for k in grouped if k[0] == task.name), key=group_sort):
            members = sorted(grouped[key], key=_member_sort)
            spans.append((key, len(order), len(order) + len(members)))
            order.extend(members)
        tables[task.name] = TaskTable(task, order, spans)
    for table in tables.values():
        _fill(table, entries)
    return tables


def _fill(table: TaskTable, entries: dict[tuple, Entry]) -> None:
    order = table.entries
    # Every run of every entry in one flat list: each figure is read by one comprehension over all runs, then
    # entries with repeated runs take the mean of their slice.
    counts = [len(entry.records) for entry in order]
    repeated = any(count != 1 for count in counts)
    runs = [record for entry in order for record in entry.records] if repeated else \
        [entry.records[0] for entry in order]
    starts = []
    if repeated:
        offset = 0
        for count in counts:
            starts.append(offset)
            offset += count
    for metric in table.task.metrics:
        extractor = Extractor(metric)
        if metric.from_task is not None:
            sources = [_other_runs(entries, metric.from_task, entry) for entry in order]
            table.values[metric.key] = [mean_value(extractor, source) for source in sources]
            if metric.method is not None:
                table.methods[metric.key] = [weakest_method(extractor, source) for source in sources]
            continue
        if metric.times is None and metric.fallback is None and metric.per is None and metric.divisor is None:
            get = getter(metric.value)
            scale = metric.scale
            # x - x is 0 for finite numbers and NaN for NaN and infinities: a cheap isfinite (bools are excluded by
            # the exact type test).
            flat = [v * scale if ((kind := type(v)) is float or kind is int) and v - v == 0 else None
                    for v in [get(record) for record in runs]]
        else:
            flat = [extractor.value(record) for record in runs]
        table.values[metric.key] = [_mean(flat[a:a + n]) for a, n in zip(starts, counts)] if repeated else flat
        if metric.method is not None:
            get_method = getter(metric.method)
            flat_methods = [m if type(m := get_method(record)) is str else None for record in runs]
            table.methods[metric.key] = ([_weakest(flat_methods[a:a + n]) for a, n in zip(starts, counts)]
                                         if repeated else flat_methods)


def _mean(values: list[float | None]) -> float | None:
    """:func:`~mlee.rating.records.mean_value` of figures already read."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else math.fsum(present) / len(present)


def _weakest(methods: list[str | None]) -> str | None:
    present = [m for m in methods if m is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else min(present, key=lambda m: METHOD_STRENGTH.get(m, -1))


def _other_runs(entries: dict[tuple, Entry], task: str, entry: Entry) -> list[dict[str, Any]]:
    other = entries.get((task, entry.dataset, entry.environment, entry.model, entry.backend))
    return other.records if other is not None else []
