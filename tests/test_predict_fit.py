"""Polynomial fitting with the degree chosen by cross-validation, the gbm alternative, and fitting from points."""

from __future__ import annotations

import numpy as np
import pytest

from mlee.errors import UsageError
from mlee.predict import polyfit
from mlee.predict.kernels import KernelConfig


def _known_polynomial(X):
    # y = 2e-3 + 4e-3 x0 + 1e-3 x1 + 3e-3 x0 x1 + 5e-3 x0^2 on features scaled to [0, 1]
    z = X / X.max(axis=0)
    return 2e-3 + 4e-3 * z[:, 0] + 1e-3 * z[:, 1] + 3e-3 * z[:, 0] * z[:, 1] + 5e-3 * z[:, 0] ** 2


def test_fit_recovers_the_coefficients_of_a_known_polynomial():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 1000, (40, 2))
    y = _known_polynomial(X)
    report = polyfit.fit_with_cv(X, y)
    assert report.model.degree == 2  # degree 1 cannot fit, degree 3 is not better
    got = dict(zip(report.model.exponents, report.model.coefficients))
    want = {(0, 0): 2e-3, (1, 0): 4e-3, (0, 1): 1e-3, (1, 1): 3e-3, (2, 0): 5e-3, (0, 2): 0.0}
    assert set(got) == set(want)
    for exps, value in want.items():
        assert got[exps] == pytest.approx(value, abs=1e-9)
    assert report.rmspe < 1e-9 and report.r2 == pytest.approx(1.0)


def test_cross_validation_prefers_the_simpler_degree_under_noise():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 100, (60, 1))
    y = (1.0 + 0.5 * X[:, 0]) * (1 + 0.02 * rng.standard_normal(60))
    report = polyfit.fit_with_cv(X, y)
    assert report.model.degree == 1
    slope = dict(zip(report.model.exponents, report.model.coefficients))[(1,)] / report.model.scale[0]
    assert slope == pytest.approx(0.5, rel=0.05)


def test_too_few_points_and_bad_targets():
    with pytest.raises(UsageError, match="cannot fit a degree-2"):
        polyfit.fit_polynomial(np.ones((3, 2)), np.ones(3), 2)
    with pytest.raises(UsageError, match="positive"):
        polyfit.fit_polynomial(np.ones((3, 1)), np.array([1.0, 0.0, 1.0]), 0)
    one = polyfit.fit_with_cv(np.ones((1, 1)), np.array([2.0]))  # too few for CV: a constant
    assert one.model.degree == 0 and one.model.predict([[5.0]])[0] == pytest.approx(2.0)


def test_metrics():
    assert polyfit.rmspe([1.0, 2.0], [1.1, 1.8]) == pytest.approx(0.1)
    assert polyfit.r2([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert polyfit.r2([1.0, 1.0], [1.0, 2.0]) is None  # undefined, not 0


def test_a_runaway_prediction_scores_inf_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow RuntimeWarning would be noise on the user's terminal
        assert polyfit.rmspe([1e-10, 1.0], [1e300, 1.0]) == float("inf")


def test_gbm_export_predicts_exactly_like_scikit_learn():
    pytest.importorskip("sklearn")
    from sklearn import ensemble

    from mlee.predict import gbm

    rng = np.random.default_rng(2)
    X = rng.uniform(1, 1000, (40, 3))
    y = 1e-4 * X[:, 0] + 2e-6 * X[:, 1] * X[:, 2] + 1e-3
    model = gbm.fit_gbm(X, y)
    ref = ensemble.GradientBoostingRegressor(n_estimators=gbm.N_ESTIMATORS, max_depth=gbm.MAX_DEPTH,
                                             learning_rate=gbm.LEARNING_RATE, random_state=0,
                                             min_samples_leaf=3).fit(np.log1p(X), np.log(y))
    np.testing.assert_allclose(model.predict(X), np.exp(ref.predict(np.log1p(X))), rtol=1e-12)
    again = gbm.GbmModel.from_json(model.to_json(), 3)
    np.testing.assert_allclose(again.predict(X), model.predict(X))


def test_gbm_without_scikit_learn_names_the_extra(monkeypatch):
    import builtins

    from mlee.errors import BackendMissing
    from mlee.predict import gbm

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(BackendMissing, match=r"mlee\[data\]"):
        gbm.fit_gbm(np.ones((4, 1)), np.ones(4))


def _points(kind_fn, n=30, noise=0.0, seed=0):
    from mlee.predict.training import Point

    rng = np.random.default_rng(seed)
    fp = {"cpu_model": "Test CPU", "torch_version": "9.9", "mlee_version": "0.1.0", "device": "cpu"}
    pts = []
    for i in range(n):
        c = int(rng.integers(1, 64)) * 16
        h = int(rng.choice([7, 14, 28, 56]))
        cfg = KernelConfig.make("relu", batch=1, c=c, h=h, w=h)
        t = kind_fn(cfg.features()["elems"]) * (1 + noise * rng.standard_normal())
        pts.append(Point(cfg, t, t, 20.0 + 1e-6 * cfg.features()["elems"], "estimate", True, f"rec{i % 2}", "env A",
                         fp))
    return pts


def test_fit_predictor_on_synthetic_points_reports_quality_per_kind():
    from mlee.predict.training import fit_predictor, quality_rows

    pts = _points(lambda e: 5e-6 + 2e-9 * e)
    pred = fit_predictor(pts)
    km = pred.kinds["relu"]
    assert km.n_points == 30 and km.time_s.quality["degree"] == 1
    assert km.time_s.quality["rmspe"] < 1e-9
    big = KernelConfig.make("relu", batch=1, c=512, h=28, w=28)
    assert km.time_s.model.predict([big.feature_vector()])[0] == pytest.approx(5e-6 + 2e-9 * 512 * 28 * 28)
    assert pred.basis["energy_method"] == "estimate" and pred.basis["records"] == ["rec0", "rec1"]
    (row,) = quality_rows(pred)
    assert row["kind"] == "relu" and row["time_r2"] == pytest.approx(1.0)


def test_fit_needs_one_environment():
    from dataclasses import replace

    from mlee.predict.training import select_environment

    pts = _points(lambda e: 1e-6 * e)
    mixed = pts[:5] + [replace(p, environment="env B") for p in pts[5:10]]
    with pytest.raises(UsageError, match="2 environments"):
        select_environment(mixed, None)
    assert len(select_environment(mixed, "env B")) == 5
    with pytest.raises(UsageError, match="env C"):
        select_environment(mixed, "env C")
    with pytest.raises(UsageError, match="no profiled kernels"):
        select_environment([], None)


def test_runtimes_are_normalised_to_the_reference_probe_speed():
    from mlee.predict.training import Point, fit_predictor

    cfg = KernelConfig.make("relu", batch=1, c=8, h=8, w=8)
    # the machine ran twice as slow in the second repeat (probe 4 ms instead of 2 ms): same kernel speed
    p = Point(cfg, 1.5, 0.75, None, None, True, "r", "env", {}, "cpu", ((1.0, 0.5, 0.002), (2.0, 1.0, 0.004)))
    assert p.runtime("wall") == 1.5 and p.runtime("cpu") == 0.75  # the recorded medians
    assert p.runtime("wall", 0.002) == pytest.approx(1.0) and p.runtime("cpu", 0.002) == pytest.approx(0.5)
    assert p.runtime("cpu", 0.004) == pytest.approx(1.0)  # expressed at the slower speed
    pts = [Point(KernelConfig.make("relu", batch=1, c=8 * k, h=8, w=8), 1.0, 1.0, None, None, True, "r", "env", {},
                 "cpu", ((1e-6 * k, 1e-6 * k, 0.002), (2e-6 * k, 2e-6 * k, 0.004))) for k in range(1, 9)]
    pred = fit_predictor(pts, probe_s=[0.002, 0.003, 0.004])
    assert pred.basis["probe_ref_s"] == 0.003
    cfg = KernelConfig.make("relu", batch=1, c=32, h=8, w=8)  # k = 4: 4 us at probe 2 ms, 6 us at probe 3 ms
    assert pred.kinds["relu"].time_s.model.predict([cfg.feature_vector()])[0] == pytest.approx(6e-6, rel=1e-6)
