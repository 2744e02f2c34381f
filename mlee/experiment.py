"""The experiment folder (docs/design.md section 2): its name, its JSON files and its trace CSVs.

``<output_dir>/<kind>-<name>-<YYYYmmddTHHMMSSZ>-<6 hex>/`` holding ``config.json``,
``environment.json``, ``power/<source>.csv``, ``power/host.csv``, ``log.txt`` and ``results.json``.
JSON is written atomically; CSVs are streamed and flushed so that a killed run keeps its samples.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from mlee.errors import MleeError, ResultFormatError, UsageError
from mlee.fsutil import atomic_write_json, safe_name

SCHEMA_VERSION = 1
KINDS = ("run", "infer", "train", "measure", "profile", "sweep")
POWER_COLUMNS = ("t_s", "energy_j", "power_w", "valid")
DEFAULT_OUTPUT_DIR = "results"


def utc_stamp(when: dt.datetime) -> str:
    """``YYYYmmddTHHMMSSZ`` for folder names."""
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def utc_iso(when: dt.datetime) -> str:
    """``2026-11-22T07:01:02.123456Z`` for JSON."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def folder_name(kind: str, name: str, when: dt.datetime, short_id: str | None = None) -> str:
    """The folder name for one experiment; safe for any ``name`` (spaces, slashes, Unicode)."""
    if kind not in KINDS:
        raise UsageError(f"unknown experiment kind {kind!r}", fix=f"use one of: {', '.join(KINDS)}")
    return f"{kind}-{safe_name(name)}-{utc_stamp(when)}-{short_id or secrets.token_hex(3)}"


def create_folder(output_dir: str | os.PathLike, kind: str, name: str, when: dt.datetime) -> Path:
    """Make a fresh experiment folder (and ``power/``) under ``output_dir``.

    Raises:
        MleeError: the output folder cannot be created or written.
    """
    base = Path(output_dir)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MleeError(f"cannot create output folder {base}: {exc.strerror or exc}",
                        fix="choose a writable --output-dir") from exc
    for _ in range(8):
        folder = base / folder_name(kind, name, when)
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # two runs in the same second drew the same 6 hex digits
        except OSError as exc:
            raise MleeError(f"cannot create experiment folder in {base}: {exc.strerror or exc}",
                            fix="choose a writable --output-dir") from exc
        (folder / "power").mkdir()
        return folder
    raise MleeError(f"cannot find a free experiment folder name in {base}", fix="retry")


def trace_file_name(source_name: str) -> str:
    """``rapl:package-0`` -> ``rapl_package-0.csv``."""
    return safe_name(source_name.replace(":", "_"), max_len=120) + ".csv"


def write_json(folder: Path, file_name: str, data: Any) -> Path:
    """Write one of the folder's JSON files atomically (sorted keys, no NaN)."""
    return atomic_write_json(folder / file_name, data)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:.6f}".rstrip("0").rstrip(".") if value != 0 else "0"
    return str(value)


class TraceWriter:
    """A CSV trace streamed to disk, flushed at least every ``flush_s`` seconds of wall time.

    Args:
        path: File to create.
        columns: Header.
        flush_s: Longest time rows may sit in the buffer. Units: seconds.
    """

    def __init__(self, path: Path, columns: Sequence[str], flush_s: float = 0.5) -> None:
        import time

        self.path = path
        self.columns = tuple(columns)
        self._now = time.monotonic
        self._flush_s = flush_s
        self._fh: TextIO | None = open(path, "w", encoding="utf-8", newline="")
        self._fh.write(",".join(self.columns) + "\n")
        self._fh.flush()
        self._last_flush = self._now()
        self.rows = 0

    def write(self, row: Sequence[Any]) -> None:
        if self._fh is None:
            return
        self._fh.write(",".join(_cell(v) for v in row) + "\n")
        self.rows += 1
        if self._now() - self._last_flush >= self._flush_s:
            self.flush()

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            self._last_flush = self._now()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            self._fh.close()
            self._fh = None


def read_trace(path: str | os.PathLike) -> dict[str, list[float | None]]:
    """Read a trace CSV written by :class:`TraceWriter` into columns (empty cells -> None).

    A last line cut short by a crash is dropped; anything else malformed is an error.

    Raises:
        ResultFormatError: not a trace file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultFormatError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    lines = text.split("\n")
    complete = lines[:-1] if not text.endswith("\n") else lines  # a torn last row from a kill
    rows = list(csv.reader([ln for ln in complete if ln]))
    if not rows:
        raise ResultFormatError(f"trace {path} is empty", fix="the run wrote no header; it did not start")
    header = rows[0]
    columns: dict[str, list[float | None]] = {c: [] for c in header}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ResultFormatError(f"trace {path} line {number}: {len(row)} cells, expected {len(header)}")
        for column, cell in zip(header, row):
            try:
                columns[column].append(float(cell) if cell != "" else None)
            except ValueError as exc:
                raise ResultFormatError(f"trace {path} line {number}: {column}={cell!r} is not a number") from exc
    return columns


def rows_of(columns: dict[str, list[float | None]]) -> Iterable[dict[str, float | None]]:
    """The rows of :func:`read_trace`'s columns, as dicts."""
    names = list(columns)
    for values in zip(*(columns[n] for n in names)):
        yield dict(zip(names, values))


# -- results.json ---------------------------------------------------------------------------------
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


def config_json(m: Any) -> dict:
    """``config.json`` of a session: its own arguments over the caller's ``config``."""
    return {**m.config, "kind": m.kind, "name": m.name, "output_dir": str(m.output_dir),
            "interval_s": m.interval_s, "requested_interval_s": m.requested_interval_s,
            "sources": m.requested_sources, "baseline_s": m.baseline_s, "country": m.country, "pue": m.pue}


def write_environment(folder: Path, gpus: list | None, nvml: Any) -> str | None:
    """Collect the machine's facts and write ``environment.json``; on any failure the error as text (it is
    reported in ``log.txt`` at the end: a missing environment must not kill a measurement)."""
    from mlee import environment

    try:
        write_json(folder, "environment.json", environment.collect(gpus=gpus, nvml=nvml))
    except Exception as exc:  # noqa: BLE001 - see above
        return f"{type(exc).__name__}: {exc}"
    return None


def store_trace_stats(folder: Path) -> list[str]:
    """Write ``power/stats.json`` (the traces' statistics, so that merges need not parse the traces) and
    return the lines for ``log.txt`` about what could not be stored. A merge parses any trace without a
    matching entry, so a failure here costs merge time only, never data."""
    from mlee.results.statsfile import write_trace_stats

    try:
        _, problems = write_trace_stats(folder)
    except (OSError, ValueError) as exc:
        return [f"power/stats.json not written ({exc}); mlee merge will parse the traces"]
    return [f"power/{name}: no statistics stored ({reason})" for name, reason in problems.items()]


def window_record(m: Any, name: str, start: Any, end: Any, measured: bool, n_samples: int | None,
                  complete: bool) -> dict:
    """One entry of ``windows``: the energy between two synchronous sampler snapshots."""
    from mlee.monitors.accounting import by_component

    domains, methods = m._source_meta()
    deltas = {n: end.energy_j[n] - start.energy_j[n] for n in end.energy_j}
    energy_j, energy_method = by_component(deltas, domains, methods)
    invalid = sorted(n for n in deltas if not end.valid_since(start, n))
    return {
        "name": name, "measured": bool(measured), "start_s": start.t_s, "end_s": end.t_s,
        "duration_s": end.t_s - start.t_s, "n_samples": n_samples, "energy_j": energy_j,
        "energy_method": energy_method, "valid": not invalid, "invalid_sources": invalid, "complete": complete,
    }


def _base_results(m: Any, status: str) -> dict:
    from mlee.monitors.base import Method

    skipped = list(m._opened.skipped) if m._opened else []
    return {
        "schema_version": SCHEMA_VERSION, "id": m.id, "kind": m.kind, "name": m.name, "status": status,
        "error": None, "start_utc": utc_iso(m._start_wall), "end_utc": None, "duration_s": None,
        "interval_s": m.interval_s,
        "energy_j": {"total": None, "cpu": None, "dram": None, "gpu": None},
        "energy_method": {"total": None, "cpu": None, "dram": None, "gpu": None},
        "estimated": any(Method(s.method) is Method.estimate for s in m.sources),
        "sources": [{"name": s.name, "domain": s.domain.value, "method": Method(s.method).value, "energy_j": None,
                     "n_samples": 0, "valid": True, "invalid_intervals": [], "detail": _jsonable(s.detail)}
                    for s in m.sources],
        "skipped_sources": skipped, "baseline": None, "windows": m.windows, "rank": rank_info(),
        "carbon": None, "valid": True,
    }


def running_results(m: Any) -> dict:
    """``results.json`` while the session runs: ``status: running`` and what is known so far."""
    return {**m._extra, **_base_results(m, "running")}


def build_results(m: Any, end: Any, end_wall: dt.datetime, status: str, error: str | None) -> dict:
    """The final ``results.json`` of a session (docs/design.md section 2)."""
    from mlee.monitors.accounting import baseline_figures, by_component, is_estimated

    domains, methods = m._source_meta()
    start = m._workload_start
    sampler = m._sampler
    deltas = {n: end.energy_j[n] - start.energy_j[n] for n in end.energy_j}
    figures = _source_figures(m, start, end, deltas)  # issue 14: no figure without a valid interval
    deltas = {n: figures[n].energy_j for n in deltas}
    energy_j, energy_method = by_component(deltas, domains, methods)
    duration_s = end.t_s - start.t_s
    results = _base_results(m, status)
    sources = []
    for source, entry in zip(m.sources, results["sources"]):
        track = sampler.tracks[source.name]
        invalid = [[a - sampler.t0_s, b - sampler.t0_s] for a, b in track.invalid_until(m._clock())]
        entry.update(energy_j=deltas[source.name], n_samples=track.n_samples, valid=not invalid,
                     invalid_intervals=invalid, detail=_jsonable(source.detail))
        entry.update(_figure_fields(figures[source.name], entry["detail"]))  # issue 14
        if track.last_error:
            entry["last_error"] = track.last_error
        sources.append(entry)
    results.update(_coverage_fields(figures, domains), **_shared_field(sources))  # issue 14
    baseline = None
    if m._baseline_snaps is not None:
        b0, b1 = m._baseline_snaps
        b_energy, _ = by_component({n: b1.energy_j[n] - b0.energy_j[n] for n in b1.energy_j}, domains, methods)
        baseline = baseline_figures(b_energy, b1.t_s - b0.t_s, energy_j, duration_s)
        baseline.update(start_s=b0.t_s, end_s=b1.t_s)
    results.update(
        error=error, end_utc=utc_iso(end_wall), duration_s=duration_s, energy_j=energy_j,
        energy_method=energy_method, estimated=is_estimated(energy_method), sources=sources,
        baseline=baseline, windows=m.windows, valid=all(s["valid"] for s in sources),
        carbon=_carbon(m.country, m.pue, energy_j["total"], energy_method["total"]),
        sampler={"interval_s": sampler.interval_s, "thread_cpu_s": sampler.thread_cpu_s,
                 "overruns": sampler.overruns, "errors": sampler.loop_errors,
                 "last_error": sampler.last_loop_error or None},
    )
    return {**m._extra, **results}


# -- issue 14: never a silent zero, never a silent part (logic in mlee.monitors.accounting) ----------
def _source_figures(m: Any, start: Any, end: Any, deltas: dict) -> dict:
    """Each source's :class:`~mlee.monitors.accounting.SourceFigure` over the workload."""
    from mlee.monitors.accounting import source_figure

    sampler = m._sampler
    figures = {}
    for name, delta in deltas.items():
        track = sampler.tracks[name]
        invalid = [(a - sampler.t0_s, b - sampler.t0_s) for a, b in track.invalid_until(m._clock())]
        figures[name] = source_figure(delta, invalid, start.t_s, end.t_s, track.last_error)
    return figures


def _figure_fields(figure: Any, detail: dict) -> dict:
    """The keys a source entry of ``results.json`` gets from its figure (and ``shared`` for a MIG parent GPU)."""
    fields = {"valid": figure.valid, "covered_fraction": figure.covered_fraction}
    if figure.reason:
        fields["reason"] = figure.reason
    if detail.get("shared"):
        fields["shared"] = True  # the whole GPU was measured, other MIG instances included
    return fields


def _coverage_fields(figures: dict, domains: dict) -> dict:
    """``energy_coverage`` (per component), ``partial`` and ``missing_energy`` of ``results.json``."""
    from mlee.monitors.accounting import coverage

    shares = coverage(figures, domains)
    missing = [{"name": n, "reason": f.reason} for n, f in sorted(figures.items()) if f.energy_j is None]
    return {"energy_coverage": shares, "missing_energy": missing,
            "partial": any(v is not None and 0.0 < v < 1.0 for v in shares.values())}


def _shared_field(sources: list) -> dict:
    """``shared: true`` in ``results.json`` when a figure includes other users' work (a MIG parent GPU)."""
    return {"shared": any(s.get("shared") for s in sources)}


def check_session_args(kind: str, interval_s: Any, baseline_s: Any, pue: Any) -> None:
    """Refuse session arguments no measurement can use, before anything is opened or written.

    Units: ``interval_s`` and ``baseline_s`` seconds; ``pue`` dimensionless (facility / IT energy).
    """
    if not isinstance(interval_s, (int, float)) or not interval_s > 0:
        raise UsageError(f"sampling interval {interval_s!r} s is not positive", fix="use e.g. --interval 0.1")
    if not isinstance(baseline_s, (int, float)) or baseline_s < 0:
        raise UsageError(f"baseline {baseline_s!r} s is negative", fix="use --baseline-s 0 (none) or more")
    if kind not in KINDS:
        raise UsageError(f"unknown experiment kind {kind!r}", fix=f"use one of: {', '.join(KINDS)}")
    if not isinstance(pue, (int, float)) or not pue >= 1.0:
        raise UsageError(f"PUE {pue!r} is below 1.0", fix="use --pue 1.0 (no facility overhead) or more, e.g. 1.4")


def _carbon(country: str, pue: float, total_j: float | None, method: str | None) -> dict | None:
    """Emissions of the total energy at ``pue`` on the country's grid (codecarbon's bundled table, read offline)."""
    from mlee.carbon import emissions, intensity_for

    if total_j is None or total_j < 0:
        return None
    try:
        record = emissions(total_j, intensity_for(country), pue=pue)
    except MleeError:
        return None
    record.update(energy_method=method, estimated=True)  # grid averages: always an estimate of emissions
    return record


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
