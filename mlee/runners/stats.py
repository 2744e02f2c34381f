"""Per-sample arithmetic and repeat statistics: pure functions over measured windows.

A figure that was not measured stays ``None`` through every step (never 0), and every energy
figure keeps the method it was measured with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlee.errors import MleeError

#: Energy components of results.json, in their stable order.
COMPONENTS = ("total", "cpu", "dram", "gpu")


@dataclass(frozen=True)
class WindowFigures:
    """What one measured window of a model run yielded.

    Units: ``energy_j`` joules per component (None = not measured); ``duration_s`` seconds.
    """

    energy_j: Mapping[str, float | None]
    energy_method: Mapping[str, str | None]
    duration_s: float
    n_samples: int


def per_sample(window: WindowFigures) -> dict:
    """Per-sample figures of one window: energy per component, time and throughput.

    Returns:
        ``{"energy_j": {...}, "energy_method": {...}, "time_ms": .., "throughput_per_s": ..}``.

    Units: energy_j joules per sample, time_ms milliseconds per sample, throughput samples per second.

    Raises:
        MleeError: the window holds no samples or took no time (nothing to divide by).
    """
    n = window.n_samples
    if n <= 0:
        raise MleeError("a measured window processed no samples", fix="raise --n-batches or --n-samples")
    if not (window.duration_s > 0 and math.isfinite(window.duration_s)):
        raise MleeError(f"a measured window lasted {window.duration_s!r} s; per-sample figures need a duration > 0")
    energy = {c: _div(window.energy_j.get(c), n) for c in COMPONENTS}
    method = {c: (window.energy_method.get(c) if energy[c] is not None else None) for c in COMPONENTS}
    return {
        "energy_j": energy,
        "energy_method": method,
        "time_ms": window.duration_s * 1000.0 / n,
        "throughput_per_s": n / window.duration_s,
    }


def _div(value: float | None, n: int) -> float | None:
    return None if value is None else float(value) / n


def summary(values: Sequence[float | None]) -> dict:
    """Mean, sample standard deviation and coefficient of variation of ``values``.

    Any ``None`` makes every figure ``None`` (a partly measured series has no honest mean).
    One value has no spread: ``std`` and ``cv`` are ``None``, not 0. ``cv`` is ``std / mean``.
    """
    if not values or any(v is None for v in values):
        return {"mean": None, "std": None, "cv": None}
    xs = [float(v) for v in values]  # type: ignore[arg-type]
    mean = math.fsum(xs) / len(xs)
    if len(xs) < 2:
        return {"mean": mean, "std": None, "cv": None}
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return {"mean": mean, "std": std, "cv": (std / mean) if mean != 0 else None}


def combine_repeats(windows: Sequence[WindowFigures]) -> tuple[dict, dict]:
    """The run's ``per_sample`` and ``repeats`` blocks from its measured windows (one per repeat).

    ``per_sample`` figures are the means over the repeats; each component's method is the weakest
    any repeat used for it (a mean is only as strong as its weakest part).

    Returns:
        ``(per_sample, repeats)`` in the results.json shapes of docs/design.md §2.
    """
    if not windows:
        raise MleeError("no measured window to summarise", fix="use --repeat 1 or more")
    each = [per_sample(w) for w in windows]
    energy: dict[str, float | None] = {}
    method: dict[str, str | None] = {}
    for c in COMPONENTS:
        energy[c] = summary([p["energy_j"][c] for p in each])["mean"]
        method[c] = weakest([p["energy_method"][c] for p in each]) if energy[c] is not None else None
    total_n = sum(w.n_samples for w in windows)
    total_s = math.fsum(w.duration_s for w in windows)
    block = {
        "energy_j": energy,
        "energy_method": method,
        "time_ms": summary([p["time_ms"] for p in each])["mean"],
        "throughput_per_s": total_n / total_s,
    }
    repeats = {
        "n": len(windows),
        "per_sample_energy_j": summary([p["energy_j"]["total"] for p in each]),
        "per_sample_time_ms": summary([p["time_ms"] for p in each]),
        "throughput_per_s": summary([p["throughput_per_s"] for p in each]),
    }
    return block, repeats


_STRENGTH = {"counter": 2, "power_integration": 1, "estimate": 0}


def weakest(methods: Sequence[str | None]) -> str | None:
    known = [m for m in methods if m is not None]
    if not known:
        return None
    return min(known, key=lambda m: _STRENGTH.get(m, -1))


def topk_hits(logits: object, labels: object, k: int) -> int:
    """How many rows of ``logits`` (numpy, n x classes) have their label among the ``k`` highest scores.

    Ties are broken by class index, as ``argsort`` with a stable sort would.
    """
    import numpy as np

    scores = np.asarray(logits)
    truth = np.asarray(labels).reshape(-1)
    k = min(k, scores.shape[1])
    # argpartition is O(n) per row; the exact order inside the top k does not matter for a hit.
    top = np.argpartition(-scores, kth=k - 1, axis=1)[:, :k]
    return int((top == truth[:, None]).any(axis=1).sum())


def cross_entropy(logits: object, labels: object) -> float:
    """Mean softmax cross-entropy of ``logits`` (n x classes) against integer ``labels`` (nats)."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    z = z - z.max(axis=1, keepdims=True)
    logsum = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(logsum - z[np.arange(len(y)), y]))
