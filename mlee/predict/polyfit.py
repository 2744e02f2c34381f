"""NeuralPower-style polynomial regression: least squares, degree (and scale) chosen by cross-validation.

A ``linear`` model is ``y = sum_j c_j * prod_i (x_i / s_i) ** e_ij`` over every monomial of total degree
at most ``degree``; ``s_i`` scales each feature to about 1 so the normal equations stay well
conditioned, and rows are weighted by ``1 / y`` so the fit minimises the *relative* error (runtimes span
five orders of magnitude; an unweighted fit would ignore every small kernel). A ``log`` model is the same
polynomial in ``log(x_i / s_i)`` predicting ``log y``: runtimes are closer to products of powers of the
sizes than to sums when a kernel moves from overhead-bound to compute-bound. Cross-validation picks
among both. numpy is imported inside functions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

from mlee.errors import UsageError

#: Degrees tried by default, lowest first.
DEFAULT_DEGREES = (1, 2, 3)
TRANSFORMS = ("linear", "log")
#: A higher degree must beat the best lower one by this fraction of CV error to be chosen: the simpler
#: polynomial extrapolates more safely to layers outside the profiled range.
PARSIMONY = 0.05


def exponents(n_features: int, degree: int) -> list[tuple[int, ...]]:
    """Every monomial of total degree <= ``degree`` as an exponent tuple, constant first, stable order."""
    out: list[tuple[int, ...]] = []
    for total in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(n_features), total):
            exps = [0] * n_features
            for i in combo:
                exps[i] += 1
            out.append(tuple(exps))
    return out


@dataclass(frozen=True)
class PolyModel:
    """A fitted polynomial.

    Attributes:
        degree: Total degree.
        scale: Per-feature divisor applied before the monomials.
        exponents: One exponent tuple per coefficient.
        coefficients: Fitted coefficients (target units for ``linear``, log-target units for ``log``).
        transform: ``linear`` or ``log`` (see the module docstring).
    """

    degree: int
    scale: tuple[float, ...]
    exponents: tuple[tuple[int, ...], ...]
    coefficients: tuple[float, ...]
    transform: str = "linear"

    def predict(self, X: Any) -> Any:
        """Predict for the rows of ``X`` (n x features); returns a numpy array."""
        import numpy as np

        A = _design(np.asarray(X, dtype=float), self.scale, self.exponents, self.transform)
        out = A @ np.asarray(self.coefficients)
        return np.exp(np.minimum(out, 700.0)) if self.transform == "log" else out

    def to_json(self) -> dict:
        return {"type": "polynomial", "degree": self.degree, "scale": list(self.scale), "transform": self.transform,
                "exponents": [list(e) for e in self.exponents], "coefficients": list(self.coefficients)}

    @classmethod
    def from_json(cls, data: Any, n_features: int) -> PolyModel:
        """Rebuild from :meth:`to_json` output.

        Raises:
            ValueError: wrong shape or types (the caller names the file).
        """
        if not isinstance(data, dict) or data.get("type") != "polynomial":
            raise ValueError("model is not a polynomial")
        scale = tuple(float(v) for v in data["scale"])
        exps = tuple(tuple(int(e) for e in row) for row in data["exponents"])
        coefs = tuple(float(v) for v in data["coefficients"])
        degree = int(data["degree"])
        transform = data.get("transform", "linear")
        if transform not in TRANSFORMS:
            raise ValueError(f"transform {transform!r} is not one of {', '.join(TRANSFORMS)}")
        if len(scale) != n_features or any(not (math.isfinite(s) and s > 0) for s in scale):
            raise ValueError(f"scale must hold {n_features} positive numbers")
        if len(exps) != len(coefs) or any(len(e) != n_features or min(e) < 0 or sum(e) > degree for e in exps):
            raise ValueError("exponents and coefficients do not match the degree and features")
        if not all(math.isfinite(c) for c in coefs):
            raise ValueError("coefficients must be finite numbers")
        return cls(degree, scale, exps, coefs, transform)


#: Smallest scaled feature value a log model takes the log of (a zero feature would be minus infinity).
_LOG_FLOOR = 1e-12


def _design(X: Any, scale: Sequence[float], exps: Sequence[tuple[int, ...]], transform: str = "linear") -> Any:
    import numpy as np

    Z = X / np.asarray(scale, dtype=float)
    if transform == "log":
        Z = np.log(np.maximum(Z, _LOG_FLOOR))
    E = np.asarray(exps, dtype=float)  # monomials x features
    return np.prod(Z[:, None, :] ** E[None, :, :], axis=2)


def design(X: Any, scale: Sequence[float], exps: Sequence[tuple[int, ...]], transform: str = "linear") -> Any:
    """The monomials of the scaled (``linear``) or log-scaled (``log``) features, one column per exponent tuple."""
    return _design(X, scale, exps, transform)


def fit_polynomial(X: Any, y: Any, degree: int, scale: Sequence[float] | None = None,
                   transform: str = "linear") -> PolyModel:
    """Least-squares polynomial of total degree ``degree`` minimising the relative error.

    Args:
        X: Features, n x m, all >= 0.
        y: Targets, n values > 0.
        degree: Total degree (0 fits a constant).
        scale: Per-feature divisors; default the largest value of each feature.
        transform: ``linear`` (relative-error weighted) or ``log`` (log features, log target).

    Raises:
        UsageError: too few points for the number of monomials, or non-positive targets.
    """
    import numpy as np

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or len(y) != len(X):
        raise UsageError(f"features ({X.shape}) and targets ({y.shape}) do not match")
    if np.any(~np.isfinite(y)) or np.any(y <= 0):
        raise UsageError("targets must be positive finite numbers (a runtime or a power)")
    if scale is None:
        scale = [float(v) if v > 0 else 1.0 for v in np.max(np.abs(X), axis=0)]
    exps = exponents(X.shape[1], degree)
    if len(y) < len(exps):
        raise UsageError(f"{len(y)} points cannot fit a degree-{degree} polynomial with {len(exps)} terms",
                         "profile more configurations or use a lower degree")
    if transform == "log":
        coefs, *_ = np.linalg.lstsq(_design(X, scale, exps, "log"), np.log(y), rcond=None)
    else:
        coefs, *_ = np.linalg.lstsq(_design(X, scale, exps) / y[:, None], np.ones_like(y), rcond=None)
    return PolyModel(degree, tuple(float(s) for s in scale), tuple(exps), tuple(float(c) for c in coefs), transform)


def rmspe(y_true: Any, y_pred: Any) -> float:
    """Root mean square percentage error as a fraction (0.05 = 5 %)."""
    import numpy as np

    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    with np.errstate(over="ignore"):  # a fit that runs away scores inf (the choosers drop it), said by no warning
        return float(np.sqrt(np.mean(((p - t) / t) ** 2)))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error as a fraction (0.05 = 5 %)."""
    import numpy as np

    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    with np.errstate(over="ignore"):  # as rmspe: a runaway fit scores inf without a warning
        return float(np.mean(np.abs((p - t) / t)))


def r2(y_true: Any, y_pred: Any) -> float | None:
    """Coefficient of determination; None when the targets do not vary (R² is undefined)."""
    import numpy as np

    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return None
    return 1.0 - float(np.sum((t - p) ** 2)) / ss_tot


def kfold_indices(n: int, k: int, seed: int = 0) -> list[tuple[Any, Any]]:
    """Deterministic shuffled k-fold splits as (train, test) index arrays."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(order, k)
    return [(np.concatenate([f for j, f in enumerate(folds) if j != i]), folds[i]) for i in range(k)]


def candidates(degrees: Sequence[int] = DEFAULT_DEGREES, transforms: Sequence[str] = TRANSFORMS) -> list[str]:
    """Model names ``linear-1``, ``log-1``, ``linear-2`` ... from simplest to most flexible."""
    return [f"{t}-{d}" for d in sorted(degrees) for t in transforms if not (t == "log" and d == 0)]


def _parse(name: str) -> tuple[str, int]:
    transform, _, degree = name.partition("-")
    return transform, int(degree)


def cross_validate(X: Any, y: Any, names: Sequence[str] | None = None, k: int = 5,
                   seed: int = 0) -> dict[str, float]:
    """Cross-validated RMSPE for each candidate (``linear-2`` ...) with enough points in every training fold."""
    import numpy as np

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    k = max(2, min(k, len(y)))
    scale = [float(v) if v > 0 else 1.0 for v in np.max(np.abs(X), axis=0)]
    folds = kfold_indices(len(y), k, seed)
    scores: dict[str, float] = {}
    for name in names or candidates():
        transform, degree = _parse(name)
        n_terms = len(exponents(X.shape[1], degree))
        if any(len(train) < n_terms + 1 for train, _ in folds):
            continue
        preds = np.empty_like(y)
        for train, test in folds:
            preds[test] = fit_polynomial(X[train], y[train], degree, scale, transform).predict(X[test])
        scores[name] = rmspe(y, preds) if np.all(np.isfinite(preds)) else float("inf")
    return scores


def choose(scores: dict[str, float]) -> str:
    """The simplest candidate whose CV error is within :data:`PARSIMONY` of the best one's.

    ``scores`` is ordered simplest first (as :func:`candidates` lists them).
    """
    best = min(scores.values())
    return next(n for n, s in scores.items() if s <= best * (1 + PARSIMONY) or s - best <= 1e-12)


@dataclass(frozen=True)
class FitReport:
    """The chosen model and how well it fits.

    Units: ``rmspe`` and ``cv_rmspe`` are fractions; ``r2`` is dimensionless.
    """

    model: PolyModel
    cv_rmspe: dict[str, float]
    rmspe: float
    r2: float | None

    @property
    def name(self) -> str:
        return f"{self.model.transform}-{self.model.degree}"


def fit_with_cv(X: Any, y: Any, degrees: Sequence[int] = DEFAULT_DEGREES, transforms: Sequence[str] = TRANSFORMS,
                k: int = 5, seed: int = 0) -> FitReport:
    """Choose degree and transform by k-fold cross-validation, refit on all points, report the fit quality.

    Falls back to degree 0 (a constant) when no candidate has enough points.

    Raises:
        UsageError: no points at all, or non-positive targets.
    """
    import numpy as np

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        raise UsageError("no points to fit", "profile some kernels first: mlee profile --grid quick")
    scores = cross_validate(X, y, candidates(degrees, transforms), k, seed) if len(y) >= 3 else {}
    transform, degree = _parse(choose(scores)) if scores else ("linear", 0)
    model = fit_polynomial(X, y, degree, transform=transform)
    pred = model.predict(X)
    return FitReport(model, scores, rmspe(y, pred), r2(y, pred))


def extra_features_help(X: Any, X_extra: Any, y: Any, degrees: Sequence[int] = DEFAULT_DEGREES) -> bool:
    """Whether the polynomial chosen on ``X_extra`` (``X`` plus more columns) beats the one chosen on ``X``
    in cross-validation by more than :data:`PARSIMONY` (the same folds; the simpler set wins ties)."""
    if len(y) < 3:
        return False
    plain = cross_validate(X, y, candidates(degrees))
    extra = cross_validate(X_extra, y, candidates(degrees))
    if not extra or not plain:
        return bool(extra) and not plain
    return min(extra.values()) < min(plain.values()) * (1 - PARSIMONY)
