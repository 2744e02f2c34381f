"""The report page's data: rated records reduced to what the page shows, the spec it re-rates with, traces.

Everything here is plain JSON-ready data built deterministically (stable order, no clock) from the database, the
spec and the rated records of :func:`mlee.rating.rate_database`; the page computes nothing it could not check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlee.fsutil import finite
from mlee.rating.core import COLOURS
from mlee.report.hfblock import hf_block
from mlee.report.traces import record_traces


def page_spec(spec: Any, rated: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The spec as the page uses it: per task its reference and metrics with weight, direction, boundaries.

    Boundaries given as quantiles are resolved at rating time; the page takes the resolved boundaries from the
    rated records (every record of a task carries the same ones) so that it rates with exactly those.

    Args:
        spec: A :class:`mlee.rating.Spec`.
        rated: The rated records (for resolved boundaries).
    """
    resolved: dict[tuple[str, str], list[float]] = {}
    for r in rated:
        for key, m in (r.get("metrics") or {}).items():
            if isinstance(m, Mapping) and m.get("boundaries") is not None:
                resolved.setdefault((r.get("task", ""), key), [float(b) for b in m["boundaries"]])
    tasks: dict[str, Any] = {}
    for task in spec.tasks:
        metrics = []
        for m in task.metrics:
            bounds = list(m.boundaries) if m.boundaries is not None else resolved.get((task.name, m.key))
            if bounds is None:
                # A quantile spec on a task without records: nothing to rate, nothing to resolve.
                continue
            metrics.append({"key": m.key, "label": m.label, "unit": m.unit, "higher_is_better": m.higher_is_better,
                            "weight": m.weight, "boundaries": bounds})
        tasks[task.name] = {"reference": task.reference, "metrics": metrics}
    return {"name": spec.name, "version": spec.version, "sha256": spec.sha256, "compound": spec.compound,
            "index_base": spec.index_base, "zero_division_index": spec.zero_division_index, "tasks": tasks,
            "display": spec.display}


def _backend_text(backend: Any) -> str:
    if isinstance(backend, Mapping):
        return " ".join(str(backend[k]) for k in ("name", "version") if backend.get(k))
    return str(backend) if backend else ""


def _number(value: Any) -> float | None:
    """A finite float for the page, or None (NaN and infinities are not JSON and not figures)."""
    if not finite(value):
        return None
    return float(value)


def page_record(rated: Mapping[str, Any], spec_tasks: Mapping[str, Any], label: Mapping[str, Any] | None,
                traces: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One rated record as the page needs it.

    ``values`` and ``methods`` per metric key; ``py`` holds the letters Python computed, which the page
    compares with its own on load.
    """
    record = rated.get("record") or {}
    task = str(rated.get("task") or "")
    metrics = rated.get("metrics") or {}
    values: dict[str, float | None] = {}
    methods: dict[str, str | None] = {}
    letters: dict[str, str] = {}
    for key, m in metrics.items():
        if not isinstance(m, Mapping):
            continue
        values[key] = _number(m.get("value"))
        methods[key] = m.get("method")
        if m.get("rating"):
            letters[key] = str(m["rating"])
    reference = (spec_tasks.get(task) or {}).get("reference")
    model = str(rated.get("model") or "")
    dataset, environment = rated.get("dataset"), rated.get("environment")
    backend_name = rated.get("backend")
    n = rated.get("n")
    return {
        "id": str(rated.get("id") or ""),
        "model": model,
        "task": task,
        # The group exactly as mlee.rating forms it (None stays None), for the page's re-rating.
        "group": [task, dataset, environment],
        "backend_name": backend_name if isinstance(backend_name, str) else None,
        "dataset": str(dataset) if dataset is not None else "n/a",
        "environment": str(environment) if environment is not None else "n/a",
        "backend": _backend_text(record.get("backend")) or (backend_name or ""),
        "device": str(record.get("device") or ""),
        "origin": str(record.get("origin") or ""),
        "start_utc": str(record.get("start_utc") or ""),
        "n": n if isinstance(n, int) and not isinstance(n, bool) else 1,
        "estimated": bool(rated.get("estimated")),
        "partial": record.get("partial") is True,  # issue 14: a figure covering part of the run
        "shared": record.get("shared") is True,  # issue 14: a MIG instance's whole parent GPU
        "is_reference": reference is not None and model == reference,
        "values": values,
        "methods": methods,
        "py": {"compound": str(rated.get("compound") or ""), "rating": letters},
        "label": dict(label) if label is not None else None,
        "traces": traces,
        "transformers": hf_block(record),  # issue 19: per-token figures and phases (None for other runs)
    }


def rated_traces(rated: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]],
                 max_points: int) -> list[dict[str, Any]]:
    """Power series of the runs behind one rated record: its own, or each run of a mean (named by run)."""
    record = rated.get("record") or {}
    ids = record.get("ids") if isinstance(record.get("ids"), list) else [rated.get("id")]
    runs = [by_id[str(i)] for i in ids if str(i) in by_id]
    out = []
    for run in runs:
        per_run = max(50, max_points // max(1, len(runs)))
        for series in record_traces(run, per_run):
            if len(runs) > 1:
                series["name"] = f"{run.get('id')}: {series['name']}"
            out.append(series)
    return out


def build_payload(database: Mapping[str, Any], spec: Any, rated: Sequence[Mapping[str, Any]], *,
                  labels: Mapping[str, Mapping[str, Any]] | None = None, database_name: str = "database",
                  title: str = "mlee report", mlee_version: str = "", max_trace_points: int = 1500,
                  notes: Sequence[str] = ()) -> dict[str, Any]:
    """The complete page data.

    Args:
        database: The merged database (for traces by record id).
        spec: The :class:`mlee.rating.Spec` the records were rated with.
        rated: Rated records (docs/design.md section 4), in the order the page lists them.
        labels: Per rated-record id, the page's label entry (:func:`mlee.report.labels.page_label`).
        database_name: How the header names the database (its file name).
        title: Page title.
        mlee_version: Version of mlee that made the report.
        max_trace_points: Most points per power series. Units: samples.
        notes: Extra lines for the header (what was skipped and why).
    """
    pspec = page_spec(spec, rated)
    by_id = {str(r.get("id")): r for r in database.get("records", []) if isinstance(r, Mapping)}
    records = []
    has_traces = False
    for r in rated:
        traces = rated_traces(r, by_id, max_trace_points)
        has_traces = has_traces or bool(traces)
        label = (labels or {}).get(str(r.get("id")))
        records.append(page_record(r, pspec["tasks"], label, traces or None))
    records.sort(key=lambda p: (p["task"], p["dataset"], p["environment"], p["model"], p["id"]))
    return {
        "title": title,
        "database": database_name,
        "mlee_version": mlee_version,
        "colors": dict(COLOURS),
        "spec": pspec,
        "spec_file": spec.to_dict(),
        "records": records,
        "has_traces": has_traces,
        "notes": list(notes),
    }

