"""Held-out evaluation of a predictor: per kernel kind and target, MAPE and RMSPE beside a constant baseline.

A researcher's question is how well a predictor does on points it never saw. :func:`split_points`
holds out a fraction of every kind's points (seeded, so a split can be repeated), and :func:`evaluate`
compares a predictor's runtime, power and energy (runtime x power) with the measured values of points,
next to the constant baseline: the median of the predictor's training targets (stored in the
predictor file as ``baseline``). A model that cannot beat the median is no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlee.errors import UsageError
from mlee.fsutil import finite
from mlee.predict.kernels import KERNEL_KINDS
from mlee.predict.predictor import KindModel, Predictor, positive
from mlee.predict.training import Point

#: Targets evaluated, with the predictor file's baseline key.
TARGETS = (("runtime", "time_s"), ("power", "power_w"), ("energy", "energy_j"))


def split_points(points: Sequence[Point], fraction: float, seed: int = 0) -> tuple[list[Point], list[Point]]:
    """Hold out ``fraction`` of every kind's points, chosen at random with ``seed``.

    Every kind keeps at least two training points; a kind with fewer than three points is not held out.

    Returns:
        ``(train, test)``.

    Raises:
        UsageError: ``fraction`` outside (0, 1).
    """
    import numpy as np

    if not 0.0 < fraction < 1.0:
        raise UsageError(f"--test-fraction {fraction} is not between 0 and 1", "use e.g. --test-fraction 0.3")
    rng = np.random.default_rng(seed)
    train: list[Point] = []
    test: list[Point] = []
    for kind in KERNEL_KINDS:
        mine = [p for p in points if p.config.kind == kind]
        n_test = min(int(round(fraction * len(mine))), len(mine) - 2) if len(mine) >= 3 else 0
        order = rng.permutation(len(mine))
        held = set(int(i) for i in order[:n_test])
        for i, p in enumerate(mine):
            (test if i in held else train).append(p)
    return train, test


def predict_point(km: KindModel, point: Point) -> tuple[float | None, float | None]:
    """Predicted runtime and power of one point's configuration (as ``mlee predict`` evaluates a layer).

    Units: seconds per call on the whole batch; watts.
    """
    cfg = point.config
    time_s = km.predict_time(cfg)
    if not positive(time_s):
        time_s = km.predict_time(cfg, clip=True)
    return (time_s if positive(time_s) else None), km.power_for(cfg)


@dataclass(frozen=True)
class Score:
    """Errors of one kind and target over the evaluated points.

    Units: ``mape`` and ``rmspe`` (and the baseline's) are fractions (0.05 = 5 %).
    """

    kind: str
    target: str
    n: int
    mape: float | None
    rmspe: float | None
    baseline_mape: float | None
    baseline_rmspe: float | None
    note: str = ""

    @property
    def beats_baseline(self) -> bool | None:
        if self.mape is None or self.baseline_mape is None:
            return None
        return self.mape < self.baseline_mape

    def to_json(self) -> dict:
        return {"kind": self.kind, "target": self.target, "n": self.n, "mape": self.mape, "rmspe": self.rmspe,
                "baseline_mape": self.baseline_mape, "baseline_rmspe": self.baseline_rmspe,
                "beats_baseline": self.beats_baseline, "note": self.note}


def _errors(measured: Any, predicted: Any) -> tuple[float, float]:
    """MAPE and RMSPE of ``predicted`` against ``measured`` (fractions)."""
    from mlee.predict.polyfit import mape, rmspe

    return mape(measured, predicted), rmspe(measured, predicted)


def _measured(point: Point, target: str, clock: str, probe_ref_s: float | None = None,
              power_ref_w: float | None = None) -> float | None:
    time_s = point.runtime(clock, probe_ref_s)
    if target == "runtime":
        return time_s
    power_w = point.power_at(power_ref_w)
    if power_w is None:
        return None
    return power_w if target == "power" else (time_s * power_w if time_s else None)


def evaluate(predictor: Predictor, points: Sequence[Point], clock: str | None = None,
             drift: bool = True) -> list[Score]:
    """Score ``predictor`` on ``points`` per kind and target, beside the constant baseline.

    Args:
        clock: ``wall`` or ``cpu`` runtimes of the points (default: the predictor's clock). Points with
            speed-probe times are scaled to the predictor's reference probe speed first, as in fitting.
        drift: Measure points as the predictor was fit: runtimes at its reference probe speed and powers
            at its reference background (``power_ref_w``; see :mod:`mlee.predict.background`) where both
            are known. False scores against the raw measured figures.

    Raises:
        UsageError: no points.
    """
    import numpy as np

    if not points:
        raise UsageError("no points to evaluate on", "give layer data or profiles with measured runtimes")
    clock = clock or predictor.basis.get("clock") or "wall"
    # runtimes scaled to the machine speed the predictor was fit at, as its training runtimes were
    probe_ref = predictor.basis.get("probe_ref_s") if drift else None
    power_ref = predictor.basis.get("power_ref_w") if drift else None
    power_ref = float(power_ref) if finite(power_ref) and power_ref > 0 else None
    scores: list[Score] = []
    for kind in KERNEL_KINDS:
        mine = [p for p in points if p.config.kind == kind]
        if not mine:
            continue
        km = predictor.kinds.get(kind)
        if km is None:
            scores.append(Score(kind, "runtime", len(mine), None, None, None, None, "no model in the predictor"))
            continue
        preds = [predict_point(km, p) for p in mine]
        for target, key in TARGETS:
            rows = []
            for p, (t, w) in zip(mine, preds):
                y = _measured(p, target, clock, probe_ref, power_ref)
                guess = t if target == "runtime" else (w if target == "power" else (t * w if t and w else None))
                if y is not None and y > 0:
                    rows.append((y, guess))
            if not rows:
                continue
            y = np.asarray([r[0] for r in rows])
            ok = [r[1] is not None for r in rows]
            note = "" if all(ok) else f"{len(ok) - sum(ok)} point(s) without a prediction left out"
            mape = rmspe = None
            if any(ok):
                mape, rmspe = _errors(y[ok], [r[1] for r in rows if r[1] is not None])
            base = (km.baseline or {}).get(key)
            b_mape, b_rmspe = _errors(y, np.full_like(y, base)) if base else (None, None)
            if not base:
                note = "; ".join(filter(None, [note, "no baseline in the predictor (refit it)"]))
            scores.append(Score(kind, target, len(rows), mape, rmspe, b_mape, b_rmspe, note))
    return scores
