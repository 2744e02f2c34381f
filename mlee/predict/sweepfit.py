"""The energy model of an MLP sweep, and where it breaks (BUTTER-E's cache effects).

Three models of energy per training sample, each a non-negative least-squares fit minimising the
relative error:

- ``flops``:        E = b + a * FLOPs
- ``flops+depth``:  E = b + c * depth + a * FLOPs          (a fixed cost per layer and step)
- ``cache-aware``:  E = b + c * depth + a_level * FLOPs    (a separate energy per FLOP for each cache level
                    that holds the working set: L1d, L2, L3, DRAM)

The report gives each model's RMSPE and R², the energy per FLOP in each cache level, the ratio between
neighbouring levels ("breaks" where it rises by more than :data:`BREAK_RATIO`), and how far the plain FLOPs
model is off, on average, in each level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Energy per FLOP must rise by at least this factor between cache levels to count as a break.
BREAK_RATIO = 1.25
LEVEL_ORDER = ("l1d", "l2", "l3", "dram")


def nnls(A: Any, b: Any, max_iter: int = 500) -> Any:
    """Non-negative least squares ``min |A x - b|, x >= 0`` (Lawson and Hanson's active-set method)."""
    import numpy as np

    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    n = A.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tol = 1e-12 * max(1.0, float(np.abs(A).max(initial=0.0))) * max(A.shape)
    for _ in range(max_iter):
        w = A.T @ (b - A @ x)
        if passive.all() or w[~passive].max(initial=-np.inf) <= tol:
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
            if z[passive].min(initial=np.inf) > 0:
                x = z
                break
            bad = passive & (z <= 0)
            alpha = np.min(x[bad] / (x[bad] - z[bad]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


def _wls(A: Any, y: Any) -> Any:
    """Non-negative least squares of ``A @ c ~ y`` minimising the relative error (rows weighted by 1/y).

    Every coefficient is an energy per sample, per layer or per FLOP: none can be negative, and an
    unconstrained fit on a few overhead-dominated networks happily makes one so.
    """
    import numpy as np

    A = np.asarray(A, dtype=float)
    scale = np.abs(A).max(axis=0)
    scale[scale == 0] = 1.0
    return nnls((A / scale) / y[:, None], np.ones_like(y)) / scale


def _quality(y: Any, pred: Any, n_params: int) -> dict:
    from mlee.predict.polyfit import r2, rmspe

    return {"rmspe": rmspe(y, pred), "r2": r2(y, pred), "n_parameters": n_params}


def fit_sweep(networks: Sequence[dict], cache: Any) -> dict:
    """Fit the three models on the networks that have an energy figure.

    Returns:
        ``{"n_points", "left_out", "models": {name: {"coefficients", "rmspe", "r2"}}, "levels": [...],
        "breaks": [...], "flops_model_bias": {level: mean relative error}}``; with fewer than 4 usable
        networks only ``n_points`` and a ``note``.

    Units: coefficients in joules per sample, per layer and per FLOP; ``j_per_gflop`` joules per 10^9 FLOPs.
    """
    import numpy as np

    use = [n for n in networks if (n.get("per_sample") or {}).get("energy_j")]
    out: dict[str, Any] = {"n_points": len(use), "left_out": len(networks) - len(use)}
    if len(use) < 4:
        out["note"] = "fewer than 4 networks with an energy figure: nothing fitted"
        return out
    y = np.asarray([n["per_sample"]["energy_j"] for n in use])
    flops = np.asarray([n["flops_per_sample"] for n in use], dtype=float)
    depth = np.asarray([n["depth"] for n in use], dtype=float)
    level = [n.get("cache_level") or cache.level_of(n["working_set_bytes"]) for n in use]
    ones = np.ones_like(y)
    models: dict[str, Any] = {}

    coef = _wls(np.column_stack([ones, flops]), y)
    flops_pred = coef[0] + coef[1] * flops
    models["flops"] = {"coefficients": {"j_per_sample": coef[0], "j_per_flop": coef[1]},
                       **_quality(y, flops_pred, 2)}
    if len(set(depth)) > 1:
        coef = _wls(np.column_stack([ones, depth, flops]), y)
        models["flops+depth"] = {"coefficients": {"j_per_sample": coef[0], "j_per_layer": coef[1],
                                                  "j_per_flop": coef[2]},
                                 **_quality(y, np.column_stack([ones, depth, flops]) @ coef, 3)}
    present = [lv for lv in LEVEL_ORDER if lv in level]
    levels_out = []
    if len(present) >= 1:
        cols = [ones] + ([depth] if len(set(depth)) > 1 else [])
        base = len(cols)
        cols += [flops * np.asarray([lv == p for lv in level], dtype=float) for p in present]
        A = np.column_stack(cols)
        if len(y) > A.shape[1]:
            coef = _wls(A, y)
            named = {"j_per_sample": coef[0]}
            if base == 2:
                named["j_per_layer"] = coef[1]
            for i, p in enumerate(present):
                named[f"j_per_flop_{p}"] = coef[base + i]
            models["cache-aware"] = {"coefficients": named, **_quality(y, A @ coef, A.shape[1])}
            sizes = dict(cache.known())
            for i, p in enumerate(present):
                mask = np.asarray([lv == p for lv in level])
                bias = float(np.mean((flops_pred[mask] - y[mask]) / y[mask]))
                levels_out.append({"level": p, "capacity_bytes": sizes.get(p), "n_points": int(mask.sum()),
                                   "j_per_gflop": float(coef[base + i] * 1e9), "flops_model_bias": bias})
    out["models"] = {k: {**v, "coefficients": {c: float(x) for c, x in v["coefficients"].items()}}
                     for k, v in models.items()}
    out["levels"] = levels_out
    out["breaks"] = _breaks(levels_out)
    return out


def _breaks(levels: list[dict]) -> list[dict]:
    """Where energy per FLOP rises by :data:`BREAK_RATIO` or more from one cache level to the next."""
    found = []
    for a, b in zip(levels, levels[1:]):
        if a["j_per_gflop"] <= 0 or b["j_per_gflop"] <= 0:
            continue
        ratio = b["j_per_gflop"] / a["j_per_gflop"]
        if ratio >= BREAK_RATIO:
            cap = a.get("capacity_bytes")
            where = f"{a['level'].upper()} ({cap / 2**20:.3g} MiB)" if cap else a["level"].upper()
            found.append({"from": a["level"], "to": b["level"], "ratio": ratio,
                          "text": f"energy per FLOP rises {ratio:.2f}x once the working set outgrows {where}"})
    return found
