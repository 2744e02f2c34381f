"""The tree-based alternative to the polynomial: gradient-boosted regression trees stored as plain data.

scikit-learn fits the trees (it is the optional extra ``data``); the fitted trees are exported to JSON
arrays and evaluated here with numpy, so a predictor file never holds a pickle and predicting needs no
scikit-learn. Trees work on log features and a log target: runtimes are multiplicative in the sizes.
Trees cannot extrapolate: outside the profiled range they predict the value at the range's edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlee.errors import BackendMissing, UsageError

#: Boosting settings: small trees, many rounds, a slow rate (the defaults that work on ~30-point sets).
N_ESTIMATORS = 200
MAX_DEPTH = 3
LEARNING_RATE = 0.1


def sklearn_ensemble() -> Any:
    try:
        from sklearn import ensemble
    except ImportError as exc:
        raise BackendMissing("the gbm predictor needs scikit-learn, which is not installed",
                             "pip install 'mlee[data]' (the extra 'data'), or use --kind polynomial") from exc
    return ensemble


@dataclass(frozen=True)
class Tree:
    """One regression tree as arrays (scikit-learn's layout; a leaf has ``left == -1``).

    Units: ``threshold`` in log-feature units; ``value`` in log-target units.
    """

    left: tuple[int, ...]
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    value: tuple[float, ...]

    def predict_one(self, x: list[float]) -> float:
        node = 0
        while self.left[node] != -1:
            node = self.left[node] if x[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


def tree_from_sklearn(tree: Any, shift: float = 0.0) -> Tree:
    """A fitted scikit-learn tree (``estimator.tree_``) as a :class:`Tree`, ``shift`` added to every value."""
    return Tree(tuple(int(v) for v in tree.children_left), tuple(int(v) for v in tree.children_right),
                tuple(max(0, int(v)) for v in tree.feature), tuple(float(v) for v in tree.threshold),
                tuple(float(v) + shift for v in tree.value[:, 0, 0]))


@dataclass(frozen=True)
class GbmModel:
    """Boosted trees: ``log y = init + rate * sum(tree(log x))``."""

    init: float
    learning_rate: float
    trees: tuple[Tree, ...]

    def predict(self, X: Any) -> Any:
        """Predict for the rows of ``X`` (n x features, all >= 0); returns a numpy array."""
        import numpy as np

        out = []
        for row in np.asarray(X, dtype=float):
            z = [math.log1p(float(v)) for v in row]
            out.append(math.exp(self.init + self.learning_rate * sum(t.predict_one(z) for t in self.trees)))
        return np.asarray(out)

    def to_json(self) -> dict:
        return {"type": "gbm", "init": self.init, "learning_rate": self.learning_rate,
                "trees": [{"left": list(t.left), "right": list(t.right), "feature": list(t.feature),
                           "threshold": list(t.threshold), "value": list(t.value)} for t in self.trees]}

    @classmethod
    def from_json(cls, data: Any, n_features: int) -> GbmModel:
        """Rebuild from :meth:`to_json` output.

        Raises:
            ValueError: wrong shape or types, or a tree that does not form a tree.
        """
        if not isinstance(data, dict) or data.get("type") != "gbm":
            raise ValueError("model is not a gbm")
        trees = []
        for raw in data["trees"]:
            t = Tree(tuple(int(v) for v in raw["left"]), tuple(int(v) for v in raw["right"]),
                     tuple(int(v) for v in raw["feature"]), tuple(float(v) for v in raw["threshold"]),
                     tuple(float(v) for v in raw["value"]))
            n = len(t.left)
            if n == 0 or not (len(t.right) == len(t.feature) == len(t.threshold) == len(t.value) == n):
                raise ValueError("tree arrays differ in length")
            for i in range(n):
                if t.left[i] == -1:
                    continue
                # Children always follow their parent in scikit-learn's layout, so walks terminate.
                if not (i < t.left[i] < n and i < t.right[i] < n and 0 <= t.feature[i] < n_features):
                    raise ValueError("tree node points outside the tree or the features")
            trees.append(t)
        init, rate = float(data["init"]), float(data["learning_rate"])
        if not (math.isfinite(init) and math.isfinite(rate)):
            raise ValueError("init and learning_rate must be finite")
        return cls(init, rate, tuple(trees))


def fit_gbm(X: Any, y: Any, seed: int = 0) -> GbmModel:
    """Fit boosted trees on log features and log targets and export them.

    Raises:
        BackendMissing: scikit-learn is not installed (names the extra).
        UsageError: no points, or non-positive targets.
    """
    import numpy as np

    ensemble = sklearn_ensemble()
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(y) == 0 or np.any(~np.isfinite(y)) or np.any(y <= 0):
        raise UsageError("gbm needs at least one point and positive finite targets")
    reg = ensemble.GradientBoostingRegressor(n_estimators=N_ESTIMATORS, max_depth=MAX_DEPTH,
                                             learning_rate=LEARNING_RATE, random_state=seed,
                                             min_samples_leaf=min(3, max(1, len(y) // 4)))
    reg.fit(np.log1p(X), np.log(y))
    init = float(np.log(y).mean())  # the squared-error loss starts from the mean target
    trees = tuple(tree_from_sklearn(est.tree_) for est in reg.estimators_[:, 0])
    return GbmModel(init, float(reg.learning_rate), trees)


def cross_validate_gbm(X: Any, y: Any, k: int = 5, seed: int = 0) -> float | None:
    """k-fold cross-validated RMSPE of :func:`fit_gbm` (None with fewer than 4 points)."""
    import numpy as np

    from mlee.predict.polyfit import kfold_indices, rmspe

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(y) < 4:
        return None
    preds = np.empty_like(y)
    for train, test in kfold_indices(len(y), max(2, min(k, len(y))), seed):
        preds[test] = fit_gbm(X[train], y[train], seed).predict(X[test])
    return rmspe(y, preds)
