"""Calibration: a spec's boundaries from the index quantiles of a database, task by task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlee.errors import RatingError, UsageError
from mlee.rating.groups import pooled_indices, quantile, records_of, reference_position, relative_boundaries
from mlee.rating.records import collect
from mlee.rating.table import build_tables
from mlee.rating.spec import Spec, load_spec, spec_from_dict
from mlee.rating.speccheck import check_paths


def calibrate(db: dict[str, Any], spec: Spec | str | None = None, quantiles: Sequence[float] = (0.8, 0.6, 0.4, 0.2),
              task: str | None = None, name: str | None = None) -> dict[str, Any]:
    """A new spec (as data) whose boundaries are the quantiles of the database's indices, per task and metric.

    Indices are computed as the spec computes them (against the reference, or the best of each group) and pooled
    over every group of the task, as the 2022 paper calibrated its boundaries. Each task is calibrated from its
    own runs only, so a metric two tasks share (``parameters``) never takes one task's boundaries into the
    other. Tasks without runs in the database (or other than ``task``), and metrics whose quantiles are not
    strictly descending (too few distinct indices), keep their boundaries; ``calibration`` in the result records
    what was done.

    Args:
        db: Merged database.
        spec: The spec to calibrate (default the ``mlee`` preset).
        quantiles: Four quantiles, strictly descending in (0, 1), for the A/B, B/C, C/D, D/E boundaries.
        task: Calibrate only this task.
        name: Name of the new spec (default ``<spec>-calibrated``).

    Raises:
        UsageError: bad quantiles, unknown task. RatingError: the database has no run of a task to calibrate, or
            a group lacks the reference model.
    """
    spec = load_spec(spec)
    qs = _check_quantiles(quantiles)
    if task is not None:
        spec.task(task)
    tables = build_tables(collect(records_of(db), spec), spec)
    check_paths(tables)
    data = spec.to_dict()
    report: dict[str, Any] = {"quantiles": list(qs), "from_spec": spec.ident(), "tasks": {}}
    for task_spec in spec.tasks:
        if task is not None and task_spec.name != task:
            continue
        table = tables[task_spec.name]
        if not table.spans:
            report["tasks"][task_spec.name] = {"groups": 0, "metrics": {}, "note": "no runs: boundaries kept"}
            continue
        if spec.index_base == "reference":
            for key, start, stop in table.spans:
                reference_position(table, key, start, stop)
        pooled = pooled_indices(spec, table)
        notes: dict[str, Any] = {}
        for position, metric in enumerate(task_spec.metrics):
            values = pooled[metric.key]
            notes[metric.key] = _calibrate_metric(data["tasks"][task_spec.name]["metrics"][position], values, qs,
                                                  relative=spec.index_base in ("best", "range"))
        report["tasks"][task_spec.name] = {"groups": len(table.spans), "metrics": notes}
    if task is not None and not report["tasks"].get(task, {}).get("groups"):
        raise RatingError(f"the database has no completed {task} run to calibrate from")
    if not any(t.get("groups") for t in report["tasks"].values()):
        raise RatingError(f"the database has no completed {' or '.join(spec.task_names)} run to calibrate from")
    data["name"] = name or f"{spec.name}-calibrated"
    data["description"] = (f"{spec.name} v{spec.version} with boundaries at index quantiles "
                           f"{', '.join(f'{q:g}' for q in qs)} of a database. " + spec.description).strip()
    data["calibration"] = report
    spec_from_dict(data, source="calibrated")  # the result must itself be a valid spec
    return data


def _check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    qs = tuple(quantiles)
    if (len(qs) != 4 or any(not isinstance(q, (int, float)) or isinstance(q, bool) or not 0 < q < 1 for q in qs)
            or any(a <= b for a, b in zip(qs, qs[1:]))):
        raise UsageError(f"quantiles must be four numbers strictly between 0 and 1, descending, got {list(qs)}",
                         "for example 0.8,0.6,0.4,0.2")
    return tuple(float(q) for q in qs)


def _calibrate_metric(target: dict[str, Any], values: list[float], qs: tuple[float, ...],
                      relative: bool) -> dict[str, Any]:
    if not values:
        return {"n": 0, "status": "kept: no index could be computed (no value measured)"}
    # Best-relative indices tie at 1.0; the tie rule of rating time applies, so a calibrated `relative` spec
    # rates the database it came from exactly as `relative` does.
    bounds = list(relative_boundaries(values, qs)) if relative else [quantile(values, q) for q in qs]
    if any(a <= b for a, b in zip(bounds, bounds[1:])) or bounds[-1] < 0:
        return {"n": len(values), "distinct": len(set(values)), "quantile_values": bounds,
                "status": "kept: quantiles not strictly descending (too few distinct indices)"}
    target["boundaries"] = bounds
    target["quantiles"] = None
    return {"n": len(values), "status": "calibrated"}
