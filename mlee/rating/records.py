"""From database records to the figures a spec rates: grouping into entries, value extraction, means of repeats.

One pass over the records, one dictionary lookup chain per (record, metric): linear in the database size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from mlee.rating.spec import MetricSpec, Spec
from mlee.rating.taskmatch import top_level_keys
from mlee.results.summary import mean_std
from mlee.vocabulary import METHOD_STRENGTH  # a mean is reported with the weakest method among its runs

GroupKey = tuple[str, str | None, str | None]  # (task, dataset, environment)

#: Record fields rating reads besides the spec's figure paths: grouping, the "nothing to rate" message, the
#: computed summary of repeats (per_sample), and the carbon estimate of `rate --carbon` (carbon).
RATING_FIELDS = ("id", "kind", "name", "task", "model", "status", "dataset", "environment", "backend",
                 "estimated", "per_sample", "carbon", "device")


def record_keys(spec: Spec) -> frozenset[str]:
    """The top-level record fields that rating with ``spec`` reads: enough to rate a database whose records
    were read with only these fields kept (``load_database(path, keys=...)``), in a fraction of the memory."""
    keys = set(RATING_FIELDS) | top_level_keys([(t.name, t.match) for t in spec.tasks])
    for task in spec.tasks:
        for metric in task.metrics:
            for path in (metric.value, metric.fallback, metric.per, metric.times, metric.method):
                if path:
                    keys.add(path.split(".", 1)[0])
    return frozenset(keys)


class Entry:
    """One model of one group: every completed run of (task, dataset, environment, model, backend).

    A plain slotted class, not a dataclass: a database holds up to hundreds of thousands of entries.

    Attributes:
        records: The runs, in database order.
    """

    __slots__ = ("task", "dataset", "environment", "model", "backend", "records")

    def __init__(self, task: str, dataset: str | None, environment: str | None, model: str,
                 backend: str | None) -> None:
        self.task = task
        self.dataset = dataset
        self.environment = environment
        self.model = model
        self.backend = backend
        self.records: list[dict[str, Any]] = []

    @property
    def group(self) -> GroupKey:
        """(task, dataset, environment)."""
        return (self.task, self.dataset, self.environment)

    @property
    def ids(self) -> list[str]:
        """The runs' record ids, sorted."""
        if len(self.records) == 1:
            return [str(self.records[0].get("id"))]
        return sorted(str(r.get("id")) for r in self.records)


def getter(path: str | None) -> Callable[[dict[str, Any]], Any]:
    """A fast accessor for a dotted record path; missing parts give None.

    Paths of one to three parts (all that the presets use) get unrolled accessors: rating reads hundreds of
    thousands of figures and a generic loop costs twice as much per figure.
    """
    if path is None:
        return lambda record: None
    keys = tuple(path.split("."))
    if len(keys) == 1:
        (k0,) = keys
        return lambda record: record.get(k0)
    if len(keys) == 2:
        k0, k1 = keys

        def get2(record: dict[str, Any]) -> Any:
            value = record.get(k0)
            return value.get(k1) if type(value) is dict else None

        return get2
    if len(keys) == 3:
        k0, k1, k2 = keys

        def get3(record: dict[str, Any]) -> Any:
            value = record.get(k0)
            if type(value) is not dict:
                return None
            value = value.get(k1)
            return value.get(k2) if type(value) is dict else None

        return get3

    def get(record: dict[str, Any]) -> Any:
        value: Any = record
        for key in keys:
            if type(value) is not dict:
                return None
            value = value.get(key)
        return value

    return get


class Extractor:
    """Reads one metric's figure and method from a record, as the spec says.

    The figure is ``((value / per) * scale / divisor) * times`` (each step only where the spec sets it), the
    order in which the 2022 code computed its figures, so that indices and ties agree to the last bit.
    """

    def __init__(self, metric: MetricSpec) -> None:
        self.metric = metric
        self._value = getter(metric.value)
        self._fallback = getter(metric.fallback) if metric.fallback else None
        self._per = getter(metric.per) if metric.per else None
        self._times = getter(metric.times) if metric.times else None
        self._method = getter(metric.method)
        self._scale = metric.scale
        self._divisor = metric.divisor

    def value(self, record: dict[str, Any]) -> float | None:
        """The scaled figure, or None when it is missing or not a finite number (never invented)."""
        value = self._value(record)
        if value is None and self._fallback is not None:
            value = self._fallback(record)
        if not _finite(value):
            return None
        if self._per is not None:
            per = self._per(record)
            if not _finite(per) or per == 0:
                return None
            value = value / per
        value = value * self._scale
        if self._divisor is not None:
            value = value / self._divisor
        if self._times is not None:
            factor = self._times(record)
            if not _finite(factor):
                return None
            value = value * factor
        return value

    def method(self, record: dict[str, Any]) -> str | None:
        method = self._method(record)
        return method if type(method) is str else None


def _finite(value: Any) -> bool:
    kind = type(value)
    return (kind is float or kind is int) and math.isfinite(value)


def mean_value(extractor: Extractor, records: Iterable[dict[str, Any]]) -> float | None:
    """Mean of the runs' figures that were measured; None when no run measured it."""
    values = [v for v in (extractor.value(r) for r in records) if v is not None]
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return math.fsum(values) / len(values)


def weakest_method(extractor: Extractor, records: Iterable[dict[str, Any]]) -> str | None:
    """The weakest method among the runs (a mean is only as good as its weakest part); None when none is given."""
    methods = [m for m in (extractor.method(r) for r in records) if m is not None]
    if not methods:
        return None
    return min(methods, key=lambda m: METHOD_STRENGTH.get(m, -1))


def collect(records: Iterable[Any], spec: Spec) -> dict[tuple, Entry]:
    """Group the ratable records into entries keyed (task, dataset, environment, model, backend).

    The task is the spec's task that rates the record (:attr:`Spec.task_of`): a record's ``task`` field unless a
    task of the spec matches it more closely (a transformers run's own task, issue 19).
    """
    task_of = spec.task_of
    entries: dict[tuple, Entry] = {}
    for record in records:
        if type(record) is not dict:
            continue
        task = task_of(record)
        model = record.get("model")
        if task is None or type(model) is not str or record.get("status", "completed") != "completed":
            continue
        if record.get("partial") is True and not spec.allow_partial:
            continue  # energy covering part of the run is rated only where the spec says so (issue 14)
        dataset = record.get("dataset")
        environment = record.get("environment")
        backend = record.get("backend")
        if type(backend) is dict:
            backend = backend.get("name")
        key = (task, dataset if type(dataset) is str else None, environment if type(environment) is str else None,
               model, backend if type(backend) is str else None)
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = Entry(*key)
        entry.records.append(record)
    return entries


def summary_payload(entry: Entry, summaries: dict[tuple[str, ...], dict[str, Any]]) -> dict[str, Any]:
    """What a rated record carries as ``record``: the run itself, or the database's summary of its repeats."""
    if len(entry.records) == 1:
        return entry.records[0]
    ids = tuple(entry.ids)
    found = summaries.get(ids)
    if found is not None:
        return found
    # The database has no summary of these runs (built by hand, or an older merge): the same shape, computed here.
    return {
        "task": entry.task, "model": entry.model, "backend": entry.backend, "environment": entry.environment,
        "dataset": entry.dataset, "n": len(entry.records), "ids": list(ids),
        "per_sample": {"energy_j": _mean_std(entry.records, "per_sample.energy_j.total"),
                       "time_ms": _mean_std(entry.records, "per_sample.time_ms")},
        "estimated": any(r.get("estimated") is True for r in entry.records),
    }


def _mean_std(records: list[dict[str, Any]], path: str) -> dict[str, float | None]:
    """``{"mean", "std"}`` of a figure over runs: sample standard deviation (n - 1), None below two figures."""
    get = getter(path)
    values = [get(r) for r in records]
    return mean_std([v for v in values if ((kind := type(v)) is float or kind is int) and v - v == 0])


def summaries_by_ids(db: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    """The database's summaries keyed by their sorted record ids."""
    found = {}
    for summary in db.get("summaries") or []:
        if type(summary) is dict and isinstance(summary.get("ids"), list):
            found[tuple(sorted(str(i) for i in summary["ids"]))] = summary
    return found
