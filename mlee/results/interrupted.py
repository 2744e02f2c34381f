"""A folder left ``running`` by a process that is gone (``kill -9``, a lost node): read as ``interrupted``.

Its traces hold every sample that reached the disk (the session flushes them at least twice a second), so the
energy up to the last sample is integrated from them exactly as the sampler would have (same rules: counter
differences, trapezoid for power-only sources, failed reads and gaps not counted and marked invalid). The
record says so in ``notes``; nothing is written back into the folder.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from mlee.errors import ResultFormatError
from mlee.results.liveness import DEFAULT_STALE_AFTER_S, is_gone
from mlee.results.tracefile import read_trace, trace_file_name


def recover_interrupted(folder: str | os.PathLike, results: dict, stat: os.stat_result | None,
                        stale_after_s: float = DEFAULT_STALE_AFTER_S, now_s: float | None = None) -> dict:
    """The record of a running folder whose process is gone, with ``status: interrupted``.

    Args:
        folder: The experiment folder.
        results: Its ``results.json`` (``status: running``), schema-checked.
        stat: The stat of ``results.json`` when it was read (its age decides for runs of other hosts).
        stale_after_s: See :func:`mlee.results.liveness.is_gone`.
        now_s: Wall time now (tests); default ``time.time()``.

    Raises:
        ResultFormatError: the run is still in progress, or its traces cannot be read.

    Units: seconds.
    """
    age_s = ((time.time() if now_s is None else now_s) - stat.st_mtime) if stat is not None else float("inf")
    gone, why = is_gone(results.get("process"), age_s, stale_after_s)
    if not gone:
        raise ResultFormatError(f"the run is still in progress (status running; {why})",
                                "merge again when it has finished")
    from mlee.monitors.accounting import by_component, is_estimated
    from mlee.vocabulary import Domain, Method

    start_s = float(results.get("workload_start_s") or 0.0)
    deltas, domains, methods, last_s = {}, {}, {}, start_s
    sources = []
    for entry in results["sources"]:
        track, n_rows, t_last = _integrate(os.path.join(folder, "power", trace_file_name(entry["name"])),
                                           Method(entry["method"]), start_s)
        deltas[entry["name"]] = track.energy_j
        domains[entry["name"]], methods[entry["name"]] = Domain(entry["domain"]), Method(entry["method"])
        last_s = max(last_s, t_last)
        invalid = [[a, b] for a, b in track.invalid_until(t_last)]
        sources.append({**entry, "energy_j": track.energy_j, "n_samples": n_rows, "valid": not invalid,
                        "invalid_intervals": invalid})
    energy_j, energy_method = by_component(deltas, domains, methods)
    note = (f"interrupted: {why}; energy integrated by mlee merge from the traces up to the last sample "
            f"({last_s:.3f} s after the start); anything after it was not recorded")
    start = dt.datetime.strptime(results["start_utc"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(seconds=last_s)
    out = dict(results)
    out.update(status="interrupted", error=f"the process that ran it is gone ({why})",
               end_utc=end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), duration_s=max(0.0, last_s - start_s),
               energy_j=energy_j, energy_method=energy_method, estimated=is_estimated(energy_method),
               sources=sources, valid=all(s["valid"] for s in sources),
               notes=[*(results.get("notes") or []), note])
    return out


def _integrate(path: str, method: object, start_s: float) -> tuple:
    """A sampler track fed with the trace's rows from ``start_s`` on; the rows used and the last time."""
    from mlee.monitors.base import Reading
    from mlee.monitors.sampler import Track

    try:
        columns = read_trace(path)
    except ResultFormatError as exc:
        raise ResultFormatError(f"interrupted run: {exc}") from exc
    track, n_rows, last_s = Track(method), 0, start_s  # type: ignore[arg-type]
    for t_s, energy_j, power_w, valid in zip(columns.get("t_s", []), columns.get("energy_j", []),
                                             columns.get("power_w", []), columns.get("valid", [])):
        if t_s is None or t_s < start_s:
            continue
        last_s = max(last_s, t_s)
        if valid:
            n_rows += 1
            track.add(Reading(t_s, energy_j, power_w))
        else:
            track.fail(t_s, "a failed read in the trace")
    return track, n_rows, last_s
