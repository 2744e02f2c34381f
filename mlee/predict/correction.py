"""A shape correction on top of a polynomial runtime model: small boosted trees on the kernel's own fields.

The cost features (MACs, bytes, weights) say how a kernel's runtime scales, and a polynomial in them
extrapolates sensibly; but the library behind a kernel picks its algorithm by shape, and some shapes run
at a different speed than their costs say. Measured on this project's 2-core machine (one thread, weights
read cold): a fully connected layer of 256 inputs and 1024 outputs took 183 us while 1024 inputs and 256
outputs, the same weights and MACs, took 90 us. No smooth function of the costs holds both.

The correction multiplies the polynomial's runtime by ``exp(sum of trees)``, trees fit by scikit-learn's
gradient boosting on ``log1p`` of the kernel's fields (``batch``, ``fin``, ``fout`` ...) to the log ratio
of measured over polynomial runtime on the training points. Trees predict inside the range of ratios they
saw, so the polynomial still decides how far a prediction extrapolates; the correction only bends it by
shape. ``mlee fit --kind auto`` tries it from 30 points and keeps it only where it wins cross-validation
(``polynomial+shape``). On this machine's quick grids it was kept for fc layers in most held-out splits
of a profile with 64 of them, and for the 152 depthwise convolutions (not the 96 fc layers) of a later
profile; for the 90 convolutions the polynomial alone did as well (CV RMSPE 13.7 % against 14.1 % on
one profile). With the denser fc grid (160 layers, 13 input widths) it was kept for fc and for the
convolutions (CV MAPE 8.2 % and 8.6 %), while a random forest won for depthwise convolutions.

Stored as plain tree arrays (:class:`mlee.predict.gbm.GbmModel` with ``init`` 0), never a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlee.predict.gbm import GbmModel
from mlee.predict.kernels import KIND_FIELDS, KernelConfig

#: Boosting settings of the correction: shallow trees, a slow rate and subsampling (it fits residuals
#: of a few dozen to a few hundred points and must not chase their noise).
N_TREES = 100
MAX_DEPTH = 3
LEARNING_RATE = 0.1
SUBSAMPLE = 0.8
MIN_LEAF = 3


@dataclass(frozen=True)
class ShapeCorrection:
    """Multiplicative runtime correction by the kernel's fields.

    Attributes:
        fields: The kernel fields the trees read, in order (a kind's :data:`KIND_FIELDS`).
        model: Trees on ``log1p(field)`` whose prediction is the factor (``GbmModel.predict`` exponentiates).
    """

    fields: tuple[str, ...]
    model: GbmModel

    def factor(self, cfg: KernelConfig) -> float:
        """The factor the base runtime of ``cfg`` is multiplied by (dimensionless, > 0)."""
        values = cfg.as_dict()
        return float(self.model.predict([[float(values[f]) for f in self.fields]])[0])

    def to_json(self) -> dict:
        return {"fields": list(self.fields), "model": self.model.to_json()}

    @classmethod
    def from_json(cls, data: Any, kind: str) -> ShapeCorrection:
        """Rebuild from :meth:`to_json` output.

        Raises:
            ValueError: not a correction, fields that are not the kind's, or malformed trees.
        """
        if not isinstance(data, dict) or not isinstance(data.get("fields"), list):
            raise ValueError("a correction needs 'fields' and 'model'")
        fields = tuple(str(f) for f in data["fields"])
        if not fields or any(f not in KIND_FIELDS[kind] for f in fields):
            raise ValueError(f"correction fields {list(fields)} are not fields of {kind}")
        model = GbmModel.from_json(data.get("model"), len(fields))
        if model.init != 0.0:
            raise ValueError("a correction's trees start from 0 (a factor of 1)")
        return cls(fields, model)


def field_matrix(configs: list[KernelConfig], kind: str) -> Any:
    """The kernels' fields as a numpy matrix, one row per configuration, in :data:`KIND_FIELDS` order."""
    import numpy as np

    return np.asarray([[float(c.as_dict()[f]) for f in KIND_FIELDS[kind]] for c in configs], dtype=float)


def fit_correction(fields: tuple[str, ...], F: Any, log_ratio: Any, seed: int = 0) -> ShapeCorrection:
    """Fit the trees to ``log_ratio`` (log of measured over base runtime) on the field matrix ``F``.

    Raises:
        BackendMissing: scikit-learn is not installed (names the extra).
    """
    import numpy as np

    from mlee.predict.gbm import sklearn_ensemble, tree_from_sklearn

    reg = sklearn_ensemble().GradientBoostingRegressor(
        n_estimators=N_TREES, max_depth=MAX_DEPTH, learning_rate=LEARNING_RATE, subsample=SUBSAMPLE,
        min_samples_leaf=MIN_LEAF, random_state=seed)
    target = np.asarray(log_ratio, dtype=float)
    reg.fit(np.log1p(np.asarray(F, dtype=float)), target)
    # scikit-learn starts boosting from the mean; fold it into the first tree so the stored init is 0.
    mean = float(reg.init_.constant_[0][0]) if hasattr(reg.init_, "constant_") else float(target.mean())
    trees = tuple(tree_from_sklearn(est.tree_, mean / reg.learning_rate if i == 0 else 0.0)
                  for i, est in enumerate(reg.estimators_[:, 0]))
    return ShapeCorrection(fields, GbmModel(0.0, float(reg.learning_rate), trees))


@dataclass(frozen=True)
class CorrectedFit:
    """A base model and its shape correction, fit together (what cross-validation scores)."""

    base: Any
    correction: ShapeCorrection
    n_features: int  # columns of the combined matrix that are cost features; the fields follow

    def predict(self, XF: Any) -> Any:
        import numpy as np

        XF = np.asarray(XF, dtype=float)
        n = self.n_features
        return self.base.predict(XF[:, :n]) * self.correction.model.predict(XF[:, n:])


def fit_corrected(XF: Any, y: Any, n_features: int, fields: tuple[str, ...], degrees: tuple[int, ...],
                  seed: int = 0) -> CorrectedFit:
    """The polynomial on the first ``n_features`` columns of ``XF``, then the correction on the rest."""
    import numpy as np

    from mlee.predict import polyfit

    XF = np.asarray(XF, dtype=float)
    y = np.asarray(y, dtype=float)
    base = polyfit.fit_with_cv(XF[:, :n_features], y, degrees).model
    pred = base.predict(XF[:, :n_features])
    if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
        raise ValueError("the base polynomial predicts a non-positive runtime on its own points")
    return CorrectedFit(base, fit_correction(fields, XF[:, n_features:], np.log(y / pred), seed), n_features)
