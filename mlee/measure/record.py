"""The session's record (docs/design.md section 2): ``config.json`` and ``results.json``, built from a snapshot.

The session hands an explicit :class:`SessionState` (and, at the end, an :class:`Ending`); nothing here reads
the session object itself.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import MleeError
from mlee.measure.settings import SessionSettings
from mlee.monitors.sampler import Snapshot
from mlee.results.layout import SCHEMA_VERSION, utc_iso, write_json
from mlee.vocabulary import Domain, Method


@dataclass(frozen=True)
class SourceInfo:
    """What the record says of one opened source."""

    name: str
    domain: Domain
    method: Method
    detail: Any = None


@dataclass(frozen=True)
class SessionState:
    """The session at one moment: what ``results.json`` is made of while it runs and at its end.

    Units: ``interval_s`` seconds.
    """

    id: str
    name: str
    settings: SessionSettings
    interval_s: float
    start_wall: dt.datetime
    sources: tuple[SourceInfo, ...]
    skipped: tuple[dict, ...]
    windows: tuple[dict, ...]
    extra: dict
    process: dict
    workload_start: Snapshot | None = None
    now: Snapshot | None = None


@dataclass(frozen=True)
class Ending:
    """How a session ended: its last snapshot and what the sampler and the traces have to say.

    Args:
        end: The final snapshot (every source's ``close()`` reading).
        end_wall: Wall time of the end.
        status, error: ``completed``/``failed``/``interrupted`` and the reason.
        baseline: Snapshots around the idle baseline, or None.
        per_source: Name -> ``{"n_samples", "invalid_intervals", "last_error"}`` (see ``Sampler.summary``).
        sampler: The sampler's own figures (interval, CPU, overruns, errors).
        truncated_traces: Channel -> why its trace stopped early (a full disk), with the rows it kept.
        notes: Lines for the record (what went wrong on the side and was survived).
    """

    end: Snapshot
    end_wall: dt.datetime
    status: str
    error: str | None
    baseline: tuple[Snapshot, Snapshot] | None
    per_source: dict
    sampler: dict
    truncated_traces: dict
    notes: tuple[str, ...] = ()


def config_json(name: str, settings: SessionSettings, interval_s: float) -> dict:
    """``config.json`` of a session: its own settings over the caller's ``config``."""
    return {**settings.config, "kind": settings.kind, "name": name, "output_dir": str(settings.output_dir),
            "interval_s": interval_s, "requested_interval_s": settings.interval_s,
            "sources": list(settings.sources) if settings.sources else None, "baseline_s": settings.baseline_s,
            "country": settings.country, "pue": settings.pue}


def rank_info(env: dict[str, str] | None = None) -> dict | None:
    """Distributed-run tags from torchrun (RANK, LOCAL_RANK, WORLD_SIZE) and SLURM; None outside one."""
    import socket

    env = os.environ if env is None else env

    def number(*keys: str) -> int | None:
        for key in keys:
            value = env.get(key, "").strip()
            if value.isdigit():
                return int(value)
        return None

    keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_JOB_ID", "SLURM_PROCID")
    if not any(env.get(k) for k in keys):
        return None
    return {
        "host": socket.gethostname(),
        "rank": number("RANK", "SLURM_PROCID"),
        "local_rank": number("LOCAL_RANK", "SLURM_LOCALID"),
        "world_size": number("WORLD_SIZE", "SLURM_NTASKS"),
        "job_id": env.get("SLURM_JOB_ID") or None,
    }


def write_environment(folder: Path, gpus: list | None, nvml: Any) -> str | None:
    """Collect the machine's facts and write ``environment.json``; on any failure the error as text (it is
    reported in ``log.txt`` at the end: a missing environment must not kill a measurement)."""
    from mlee.measure import machine

    try:
        write_json(folder, "environment.json", machine.collect(gpus=gpus, nvml=nvml))
    except Exception as exc:  # noqa: BLE001 - see above
        return f"{type(exc).__name__}: {exc}"
    return None


class EnvironmentWriter:
    """Writes ``environment.json`` in a thread, off the start path (package metadata and NVML take ~100 ms)."""

    def __init__(self, folder: Path, sources: list, skipped: list, nvml: Any) -> None:
        import threading

        gpus = [s.detail for s in sources if s.domain is Domain.gpu]
        nvml_tried = any(s["name"] == "nvml" for s in skipped)
        self._error = ""
        self._thread = threading.Thread(target=self._write, args=(folder, gpus if (gpus or nvml_tried) else None, nvml),
                                        name="mlee-environment", daemon=True)
        self._thread.start()

    def _write(self, folder: Path, gpus: list | None, nvml: Any) -> None:
        self._error = write_environment(folder, gpus, nvml) or ""

    def join(self) -> str:
        """Wait for the write; the error as text, or empty."""
        self._thread.join()
        return self._error


def _components(state: SessionState, start: Snapshot, end: Snapshot,
                figures: dict | None = None) -> tuple[dict, dict, dict]:
    """Per-source deltas and per-component sums; with ``figures``, a source without a valid figure is None."""
    from mlee.monitors.accounting import by_component

    domains = {s.name: s.domain for s in state.sources}
    methods = {s.name: s.method for s in state.sources}
    deltas = {n: end.energy_j[n] - start.energy_j[n] for n in end.energy_j}
    if figures is not None:
        deltas = {n: figures[n].energy_j for n in deltas}
    energy_j, energy_method = by_component(deltas, domains, methods)
    return deltas, energy_j, energy_method


def window_record(state: SessionState, name: str, start: Snapshot, end: Snapshot, measured: bool,
                  n_samples: int | None, complete: bool) -> dict:
    """One entry of ``windows``: the energy between two synchronous sampler snapshots."""
    deltas, energy_j, energy_method = _components(state, start, end)
    invalid = sorted(n for n in deltas if not end.valid_since(start, n))
    return {
        "name": name, "measured": bool(measured), "start_s": start.t_s, "end_s": end.t_s,
        "duration_s": end.t_s - start.t_s, "n_samples": n_samples, "energy_j": energy_j,
        "energy_method": energy_method, "valid": not invalid, "invalid_sources": invalid, "complete": complete,
    }


def _base_results(state: SessionState, status: str) -> dict:
    return {
        "schema_version": SCHEMA_VERSION, "id": state.id, "kind": state.settings.kind, "name": state.name,
        "status": status, "error": None, "start_utc": utc_iso(state.start_wall), "end_utc": None, "duration_s": None,
        "interval_s": state.interval_s,
        "energy_j": {"total": None, "cpu": None, "dram": None, "gpu": None},
        "energy_method": {"total": None, "cpu": None, "dram": None, "gpu": None},
        "estimated": any(s.method is Method.estimate for s in state.sources),
        "sources": [{"name": s.name, "domain": s.domain.value, "method": s.method.value, "energy_j": None,
                     "n_samples": 0, "valid": True, "invalid_intervals": [], "detail": _jsonable(s.detail)}
                    for s in state.sources],
        "skipped_sources": list(state.skipped), "baseline": None, "windows": list(state.windows),
        "rank": rank_info(), "carbon": None, "valid": True,
    }


def running_results(state: SessionState) -> dict:
    """``results.json`` while the session runs: ``status: running``, who runs it, and the energy so far."""
    from mlee.monitors.accounting import is_estimated

    results = _base_results(state, "running")
    results["process"] = dict(state.process)
    results["updated_utc"] = utc_iso(dt.datetime.now(dt.timezone.utc))
    if state.workload_start is not None:  # where an interrupted run's energy starts (after the baseline)
        results["workload_start_s"] = state.workload_start.t_s
    if state.workload_start is not None and state.now is not None:
        deltas, energy_j, energy_method = _components(state, state.workload_start, state.now)
        results.update(duration_s=max(0.0, state.now.t_s - state.workload_start.t_s), energy_j=energy_j,
                       energy_method=energy_method, estimated=is_estimated(energy_method))
        for entry in results["sources"]:
            entry["energy_j"] = deltas.get(entry["name"])
    return {**state.extra, **results}


def build_results(state: SessionState, ending: Ending) -> dict:
    """The final ``results.json`` of a session (docs/design.md section 2)."""
    from mlee.monitors.accounting import baseline_figures, by_component, is_estimated

    start, end = state.workload_start, ending.end
    figures = _source_figures(state, ending)
    deltas, energy_j, energy_method = _components(state, start, end, figures)
    duration_s = end.t_s - start.t_s
    results = _base_results(state, ending.status)
    for entry in results["sources"]:
        summary = ending.per_source[entry["name"]]
        invalid = [list(pair) for pair in summary["invalid_intervals"]]
        entry.update(energy_j=deltas[entry["name"]], n_samples=summary["n_samples"], valid=not invalid,
                     invalid_intervals=invalid)
        entry.update(_figure_fields(figures[entry["name"]], entry["detail"]))
        if summary["last_error"]:
            entry["last_error"] = summary["last_error"]
    results.update(_coverage_fields(state, figures), **_shared_field(results["sources"]))
    baseline = None
    if ending.baseline is not None:
        b0, b1 = ending.baseline
        domains = {s.name: s.domain for s in state.sources}
        methods = {s.name: s.method for s in state.sources}
        b_energy, _ = by_component({n: b1.energy_j[n] - b0.energy_j[n] for n in b1.energy_j}, domains, methods)
        baseline = baseline_figures(b_energy, b1.t_s - b0.t_s, energy_j, duration_s)
        baseline.update(start_s=b0.t_s, end_s=b1.t_s)
    results.update(
        error=ending.error, end_utc=utc_iso(ending.end_wall), duration_s=duration_s, energy_j=energy_j,
        energy_method=energy_method, estimated=is_estimated(energy_method), baseline=baseline,
        valid=all(s["valid"] for s in results["sources"]),
        sampler=dict(ending.sampler),
        **_carbon(state.settings.country, state.settings.pue, energy_j["total"], energy_method["total"]),
    )
    if ending.truncated_traces:
        results["truncated_traces"] = {k: dict(v) for k, v in sorted(ending.truncated_traces.items())}
    if ending.notes:
        results["notes"] = list(ending.notes)
    return {**state.extra, **results}


# -- never a silent zero, never a silent part (the rules live in mlee.monitors.accounting) ------------
def _source_figures(state: SessionState, ending: Ending) -> dict:
    """Each source's :class:`~mlee.monitors.accounting.SourceFigure` over the workload."""
    from mlee.monitors.accounting import source_figure

    start, end = state.workload_start, ending.end
    figures = {}
    for name in end.energy_j:
        summary = ending.per_source[name]
        figures[name] = source_figure(end.energy_j[name] - start.energy_j[name], summary["invalid_intervals"],
                                      start.t_s, end.t_s, summary["last_error"])
    return figures


def _figure_fields(figure: Any, detail: dict) -> dict:
    """The keys a source entry of ``results.json`` gets from its figure (and ``shared`` for a MIG parent GPU)."""
    fields = {"valid": figure.valid, "covered_fraction": figure.covered_fraction}
    if figure.reason:
        fields["reason"] = figure.reason
    if detail.get("shared"):
        fields["shared"] = True  # the whole GPU was measured, other MIG instances included
    return fields


def _coverage_fields(state: SessionState, figures: dict) -> dict:
    """``energy_coverage`` (per component), ``partial`` and ``missing_energy`` of ``results.json``."""
    from mlee.monitors.accounting import coverage

    shares = coverage(figures, {s.name: s.domain for s in state.sources})
    missing = [{"name": n, "reason": f.reason} for n, f in sorted(figures.items()) if f.energy_j is None]
    return {"energy_coverage": shares, "missing_energy": missing,
            "partial": any(v is not None and 0.0 < v < 1.0 for v in shares.values())}


def _shared_field(sources: list) -> dict:
    """``shared: true`` in ``results.json`` when a figure includes other users' work (a MIG parent GPU)."""
    return {"shared": any(s.get("shared") for s in sources)}


def _carbon(country: str, pue: float, total_j: float | None, method: str | None) -> dict:
    """``carbon``: emissions of the total energy at ``pue`` on the country's grid (codecarbon's bundled table,
    read offline); when there is no figure, ``carbon`` is None and ``carbon_reason`` says why."""
    from mlee.carbon import emissions, intensity_for

    if total_j is None or total_j < 0:
        why = "no total energy figure" if total_j is None else f"the total energy is negative ({total_j} J)"
        return {"carbon": None, "carbon_reason": why}
    try:
        record = emissions(total_j, intensity_for(country), pue=pue)
    except MleeError as exc:
        return {"carbon": None, "carbon_reason": str(exc)}
    record.update(energy_method=method, estimated=True)  # grid averages: always an estimate of emissions
    return {"carbon": record}


def _jsonable(value: Any) -> Any:
    """Source details made JSON-safe (paths to text, NaN to None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
