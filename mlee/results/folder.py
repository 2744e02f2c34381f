"""Reading one experiment folder (docs/design.md §2) into a database record, failing closed with a reason."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from mlee.errors import ResultFormatError
from mlee.results.environment import environment_name
from mlee.results.jsonio import read_json_object
from mlee.results.liveness import DEFAULT_STALE_AFTER_S
from mlee.results.schema import check_version, problem
from mlee.results.statsfile import load_trace_stats, stored_stats
from mlee.results.traces import trace_names, trace_stats

ORIGIN = "mlee"
#: Files every experiment folder must hold.
REQUIRED_FILES = ("results.json", "config.json", "environment.json")
#: Relative tolerance of the check that ``energy_j.total`` is the sum of its components.
SUM_TOLERANCE = 1e-6


def source_file(source_name: str) -> str:
    """The trace file name of a source: ``"rapl:package-0"`` -> ``"rapl_package-0.csv"``."""
    return source_name.replace(":", "_") + ".csv"


def trace_files(folder: str | Path) -> list[str]:
    """The ``power/*.csv`` file names of a folder, sorted (missing ``power/`` gives none)."""
    try:
        return trace_names(os.path.join(folder, "power"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ResultFormatError(f"power/ cannot be listed: {exc.strerror or exc}") from None


def _check_sum(energy: dict, where: str, extra_j: float = 0.0, missing: bool = False) -> None:
    """``total`` must be the sum of the components (plus ``extra_j``: sources of domain ``system``, which
    count in the total but have no component of their own). ``missing``: a source had no figure, so the
    total is null while other components have one (issue 14: never a silent part)."""
    total = energy.get("total")
    parts = [v for k, v in energy.items() if k != "total" and v is not None]
    if total is None:
        if parts and not missing:
            raise ResultFormatError(f"{where}.total is null although components were measured")
        return
    if not parts and not extra_j:
        return
    s = math.fsum(parts) + extra_j
    if abs(s - total) > SUM_TOLERANCE * max(abs(total), abs(s)) + 1e-9:
        raise ResultFormatError(f"{where}.total ({total:g} J) is not the sum of its components ({s:g} J)")


def check_results(results: dict, label: str = "results.json", allow_running: bool = False) -> dict:
    """Version-check, schema-check and sanity-check a parsed results.json.

    Raises:
        ResultFormatError: newer version, wrong types, figures that do not add up, or a run in progress
            (unless ``allow_running``).
    """
    results = check_version("results", results, label)
    err = problem("results", results)
    if err is not None:
        raise ResultFormatError(f"{label}: {err}")
    if results["status"] == "running" and allow_running:
        return results
    if results["status"] == "running":
        raise ResultFormatError("the run is still in progress (status running)",
                                "merge again when it has finished")
    system = [s for s in results["sources"] if s["domain"] == "system"]
    if "system" not in results["energy_j"] and system:
        if all(isinstance(s.get("energy_j"), (int, float)) for s in system):
            _check_sum(results["energy_j"], "energy_j", math.fsum(s["energy_j"] for s in system))
    else:
        _check_sum(results["energy_j"], "energy_j", missing=bool(results.get("missing_energy")))
        for w in results.get("windows") or []:
            if isinstance(w.get("energy_j"), dict):
                _check_sum(w["energy_j"], f"windows[{w.get('name')}].energy_j")
    return results


def read_experiment(folder: str | Path, include_traces: bool = False, trace_names: list[str] | None = None,
                    seen: dict[str, os.stat_result] | None = None, parsed: list[str] | None = None,
                    stale_after_s: float = DEFAULT_STALE_AFTER_S) -> dict:
    """Read one experiment folder into a database record.

    The record is ``results.json`` plus ``environment`` (group name), ``origin``, ``config``,
    ``environment_info``, ``traces`` (statistics per channel) and, with ``include_traces``, ``trace_samples``.

    Args:
        folder: The experiment folder.
        include_traces: Also keep the raw samples.
        trace_names: A listing of ``power/`` just taken (see :func:`power_listing`); None lists it.
        seen: Filled with the stat of every file as it is opened (keys as in the fingerprint:
            ``"results.json"``, ``"power/host.csv"``), for :func:`compose_fingerprint`.
        parsed: Given, the names of the traces that were parsed (no matching ``power/stats.json`` entry)
            are appended to it.
        stale_after_s: A folder still ``running`` whose process is gone is read as ``interrupted`` (see
            :mod:`mlee.results.interrupted`); this is how long a run of another host may go without an update.

    Raises:
        ResultFormatError: the folder cannot be trusted, with the reason (missing or truncated file, wrong
            types, newer schema, NaN/infinite figures, a trace that does not parse, run still in progress).
    """
    base = os.fspath(folder) + os.sep
    note = (lambda key: lambda st: seen.__setitem__(key, st)) if seen is not None else (lambda key: None)
    stat: list[os.stat_result] = []
    noted = note("results.json")

    def on_results_stat(st: os.stat_result) -> None:
        stat.append(st)  # its age tells whether a running folder of another host is stale
        if noted is not None:
            noted(st)

    results = check_results(read_json_object(base + "results.json", on_stat=on_results_stat), allow_running=True)
    if results["status"] == "running":
        from mlee.results.interrupted import recover_interrupted

        results = check_results(recover_interrupted(folder, results, stat[0] if stat else None, stale_after_s))
    config = read_json_object(base + "config.json", on_stat=note("config.json"))
    err = problem("config", config)
    if err is not None:
        raise ResultFormatError(f"config.json: {err}")
    env = read_json_object(base + "environment.json", on_stat=note("environment.json"))
    err = problem("environment", env)
    if err is not None:
        raise ResultFormatError(f"environment.json: {err}")
    names = trace_files(base) if trace_names is None else trace_names
    present = set(names)
    for src in results["sources"]:
        if source_file(src["name"]) not in present:
            raise ResultFormatError(f"power/{source_file(src['name'])} is missing (trace of source {src['name']})")
    traces: dict[str, dict] = {}
    samples: dict[str, list] | None = {} if include_traces else None
    stored = load_trace_stats(base) if names and not include_traces else {}
    for name in names:
        path = base + "power" + os.sep + name
        entry = stored.get(name)
        stats = stored_stats(path, name[:-4], entry, note("power/" + name)) if entry is not None else None
        if stats is None:
            if parsed is not None:
                parsed.append(name)
            stats, raw = trace_stats(path, name[:-4], include_samples=include_traces, on_stat=note("power/" + name))
            if samples is not None and raw is not None:
                samples.update(raw)
        traces.update(stats)
    record: dict[str, Any] = dict(results)
    record["origin"] = ORIGIN
    record["config"] = config
    record["environment_info"] = env
    record["traces"] = traces
    if samples is not None:
        record["trace_samples"] = samples
    record["environment"] = environment_name(record)
    return record


_FS, _RS = "\x1f", "\x1e"  # unit and record separators of the fingerprint text


def stamp(st: os.stat_result) -> str:
    """The part of a fingerprint that changes whenever a file's content may have: size, mtime, ctime and inode.

    mtime alone misses an edit whose tool restored it (``touch -r``, ``rsync -t``, an editor keeping the
    timestamp); ctime cannot be set back from user space and a rename-into-place changes the inode.
    """
    return f"{st.st_size}{_FS}{st.st_mtime_ns}{_FS}{st.st_ctime_ns}{_FS}{st.st_ino}"


def fingerprint(folder: str | Path, known: str | None = None, probe: os.stat_result | None = None) -> str:
    """What ``--update`` compares to decide whether a folder changed: :func:`stamp` of each file read.

    Args:
        folder: The experiment folder.
        known: A previous fingerprint; when given, its files are stat-ed by name and ``power/`` is listed only
            if its own mtime changed (a file was added, removed or renamed), which keeps an update of a large
            results folder to a few stat calls per experiment.
        probe: A stat of ``results.json`` just taken (by discovery), used instead of a new one.

    Returns:
        One string of ``name, size, mtime_ns, ctime_ns, inode`` entries: cheap to store and to compare. Only equality matters:
        an odd file name that confused the parsing of ``known`` could only cause a re-read, never a miss.

    Units: sizes in bytes, mtimes in nanoseconds.
    """
    base = os.fspath(folder) + os.sep
    if probe is not None:
        out = [f"results.json{_FS}{stamp(probe)}"]
        out.extend(_stat_entry(base + name, name) for name in REQUIRED_FILES[1:])
    else:
        out = [_stat_entry(base + name, name) for name in REQUIRED_FILES]
    try:
        power = f"power/{_FS}{os.stat(base + 'power').st_mtime_ns}"
    except OSError:
        out.append(f"power/{_FS}missing")
        return _RS.join(out)
    out.append(power)
    names = None
    if known is not None:
        parts = known.split(_RS)
        if len(parts) > len(REQUIRED_FILES) and parts[len(REQUIRED_FILES)] == power:
            names = [p.split(_FS, 1)[0] for p in parts[len(REQUIRED_FILES) + 1:]]
    if names is None:
        try:
            names = [f"power/{n}" for n in trace_names(base + "power")]
        except OSError:
            names = []
    out.extend(_stat_entry(base + n, n) for n in names)
    return _RS.join(out)


def power_listing(folder: str | Path) -> tuple[str, list[str] | None]:
    """The ``power/`` entry of a fingerprint and the trace file names (as :func:`trace_files` gives them);
    names None when ``power/`` is missing or cannot be listed (:func:`read_experiment` then says why)."""
    base = os.fspath(folder) + os.sep
    try:
        entry = f"power/{_FS}{os.stat(base + 'power').st_mtime_ns}"
    except OSError:
        return f"power/{_FS}missing", None
    try:
        return entry, trace_names(base + "power")
    except OSError:
        return entry, None


def compose_fingerprint(folder: str | Path, seen: dict[str, os.stat_result], power: str,
                        trace_names: list[str] | None) -> str:
    """:func:`fingerprint` of a folder just read: from the stats its files had when opened (``seen``, see
    :func:`read_experiment`), stat-ing only those it did not get to; ``power`` and ``trace_names`` as
    :func:`power_listing` gave them. The same text :func:`fingerprint` gives for unchanged files."""
    base = os.fspath(folder) + os.sep
    out = []
    for name in REQUIRED_FILES:
        st = seen.get(name)
        out.append(f"{name}{_FS}{stamp(st)}" if st is not None else _stat_entry(base + name, name))
    out.append(power)
    if power.endswith(f"{_FS}missing"):
        return _RS.join(out)
    for n in trace_names or ():
        key = "power/" + n
        st = seen.get(key)
        out.append(f"{key}{_FS}{stamp(st)}" if st is not None else _stat_entry(base + key, key))
    return _RS.join(out)


def _stat_entry(path: str, name: str) -> str:
    try:
        st = os.stat(path)
        return f"{name}{_FS}{stamp(st)}"
    except OSError:
        return f"{name}{_FS}missing"
