"""Power over time per source, from a database record's ``trace_samples`` (``mlee merge --include-traces``).

``trace_samples`` maps ``<file>.<column>`` to a list of samples, one per row of ``power/<file>.csv``
(docs/design.md section 2): columns ``t_s``, ``energy_j`` (cumulative, counter sources), ``power_w`` and
``valid``. The page draws measured power where a source reports it, else the average power between counter
readings (energy difference over time difference); invalid samples leave a gap, never a made-up value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlee.fsutil import finite

#: Files of ``power/`` that are not power sources (psutil's host load).
NOT_SOURCES = frozenset({"host"})


def _column(samples: Mapping[str, Any], name: str) -> list[float | None] | None:
    raw = samples.get(name)
    if not isinstance(raw, list):
        return None
    return [float(v) if finite(v) else None for v in raw]


def _source_names(record: Mapping[str, Any]) -> dict[str, tuple[str, str | None]]:
    """File stem -> (source name, method) from the record's ``sources`` list (``rapl:package-0`` -> ``rapl_package-0``)."""
    out: dict[str, tuple[str, str | None]] = {}
    for src in record.get("sources") or []:
        if isinstance(src, Mapping) and isinstance(src.get("name"), str):
            out[src["name"].replace(":", "_")] = (src["name"], src.get("method"))
    return out


def power_series(t_s: Sequence[float | None], energy_j: Sequence[float | None] | None,
                 power_w: Sequence[float | None] | None, valid: Sequence[float | None] | None,
                 max_points: int) -> tuple[list[float], list[float | None]] | None:
    """Power samples of one source, reduced to at most ``max_points`` points.

    Measured power (``power_w``) is averaged over equal runs of samples; counter sources give the exact average
    power of each run (energy difference over time difference). A run that holds an invalid sample gives None.

    Args:
        t_s: Sample times. Units: seconds since the session start.
        energy_j: Cumulative energy per sample, or None. Units: joules.
        power_w: Power per sample, or None. Units: watts.
        valid: 1/0 validity flags, or None (all valid).
        max_points: Upper bound on the points returned.

    Returns:
        ``(t_s, power_w)`` lists of equal length, or None when the source holds no usable power figure.

    Units: returned times in seconds, power in watts.
    """
    n = len(t_s)
    ok = [t is not None and (valid is None or i >= len(valid) or valid[i] != 0) for i, t in enumerate(t_s)]
    has_power = power_w is not None and any(p is not None for p in power_w)
    has_energy = energy_j is not None and any(e is not None for e in energy_j)
    if n < 2 or not (has_power or has_energy):
        return None
    def run_length(count: int) -> int:  # ceiling division: at most max_points runs of ``count`` items
        return max(1, -(-count // max(1, max_points)))

    times: list[float] = []
    powers: list[float | None] = []
    if has_power and power_w is not None:
        step = run_length(n)
        for start in range(0, n, step):
            run = range(start, min(n, start + step))
            t_run = [t_s[i] for i in run if t_s[i] is not None]
            if not t_run:
                continue
            vals = [power_w[i] if i < len(power_w) else None for i in run]
            times.append(round(sum(t_run) / len(t_run), 6))  # type: ignore[arg-type]
            bad = not all(ok[i] for i in run) or any(v is None for v in vals)
            powers.append(None if bad else round(sum(vals) / len(vals), 6))  # type: ignore[arg-type]
    elif energy_j is not None:
        step = run_length(n - 1)  # counters: runs of intervals between readings
        for start in range(0, n - 1, step):
            end = min(n - 1, start + step)
            t0, t1, e0, e1 = t_s[start], t_s[end], energy_j[start], energy_j[end]
            run_ok = all(ok[start:end + 1])
            if t0 is None or t1 is None:
                continue
            times.append(round((t0 + t1) / 2, 6))
            if not run_ok or e0 is None or e1 is None or t1 <= t0 or e1 < e0:
                powers.append(None)
            else:
                powers.append(round((e1 - e0) / (t1 - t0), 6))
    if not any(p is not None for p in powers):
        return None
    return times, powers


def record_traces(record: Mapping[str, Any], max_points: int = 1500) -> list[dict[str, Any]]:
    """Power series per source of one database record (empty when it holds no trace samples).

    Each item: ``{"name", "method", "t_s": [...], "power_w": [...]}``, sorted by source name.
    """
    samples = record.get("trace_samples")
    if not isinstance(samples, Mapping) or not samples:
        return []
    stems = sorted({key.rsplit(".", 1)[0] for key in samples if isinstance(key, str) and "." in key})
    names = _source_names(record)
    out = []
    for stem in stems:
        # Records merged from several ranks prefix their channels: "rank1/rapl_package-0.t_s".
        prefix, _, base = stem.rpartition("/")
        if base in NOT_SOURCES:
            continue
        t_s = _column(samples, f"{stem}.t_s")
        if t_s is None:
            continue
        series = power_series(t_s, _column(samples, f"{stem}.energy_j"), _column(samples, f"{stem}.power_w"),
                              _column(samples, f"{stem}.valid"), max_points)
        if series is None:
            continue
        name, method = names.get(base, (base, None))
        out.append({"name": f"{prefix}: {name}" if prefix else name, "method": method,
                    "t_s": series[0], "power_w": series[1]})
    out.sort(key=lambda s: s["name"])
    return out
