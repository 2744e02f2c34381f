"""Per-query, per-token and per-phase figures of a transformers run: pure arithmetic over window records.

Every energy figure keeps its method; a component not measured in a window stays ``None`` through every step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mlee.runners.stats import COMPONENTS, WindowFigures, summary, weakest


def add_windows(records: Sequence[Mapping], n_samples: int) -> WindowFigures:
    """One figure from windows that together processed ``n_samples`` queries (prefill + decode of a repeat).

    A component missing from any window is missing from the sum; its method is the weakest of the parts.
    """
    energy: dict[str, float | None] = {}
    method: dict[str, str | None] = {}
    for c in COMPONENTS:
        parts = [r["energy_j"].get(c) for r in records]
        energy[c] = None if any(p is None for p in parts) else math.fsum(parts)  # type: ignore[arg-type]
        method[c] = weakest([r["energy_method"].get(c) for r in records]) if energy[c] is not None else None
    return WindowFigures(energy, method, math.fsum(r["duration_s"] for r in records), n_samples)


def per_unit(energies: Sequence[Mapping], methods: Sequence[Mapping], units: Sequence[int | None]) -> dict | None:
    """Mean over repeats of energy divided by units (tokens, queries); None when there are no units.

    Units: ``energy_j`` joules per unit.
    """
    if not units or any(not u for u in units):
        return None
    energy, method = {}, {}
    for c in COMPONENTS:
        values = [None if e.get(c) is None else float(e[c]) / u  # type: ignore[operator]
                  for e, u in zip(energies, units)]
        energy[c] = summary(values)["mean"]
        method[c] = weakest([m.get(c) for m in methods]) if energy[c] is not None else None
    return {"energy_j": energy, "energy_method": method}


def phase_block(records: Sequence[Mapping], tokens: Sequence[int]) -> dict:
    """The ``phases.<name>`` block: mean energy and time per repeat, tokens, energy per token, tokens/s.

    Units: ``energy_j`` joules per repeat, ``duration_s`` seconds per repeat, ``tokens_per_s`` tokens per second.
    """
    energy, method = {}, {}
    for c in COMPONENTS:
        energy[c] = summary([r["energy_j"].get(c) for r in records])["mean"]
        method[c] = weakest([r["energy_method"].get(c) for r in records]) if energy[c] is not None else None
    duration = math.fsum(r["duration_s"] for r in records)
    per_token = per_unit([r["energy_j"] for r in records], [r["energy_method"] for r in records], tokens)
    return {
        "energy_j": energy, "energy_method": method,
        "duration_s": duration / len(records),
        "tokens": int(tokens[0]) if tokens else 0,
        "per_token": per_token,
        "tokens_per_s": (sum(tokens) / duration) if duration > 0 and sum(tokens) else None,
        "valid": all(r.get("valid", True) for r in records),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between order statistics; None if empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def latency_block(batch_latencies_s: Sequence[float]) -> dict:
    """p50 and p95 latency of a query: the time of the batch it was answered in. Units: milliseconds."""
    ms = [1e3 * s for s in batch_latencies_s]
    return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "n_batches": len(ms)}
