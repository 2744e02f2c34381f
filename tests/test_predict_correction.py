"""Issue 18: the shape correction (``polynomial+shape``) of ``mlee fit --kind auto``.

The synthetic layers run as the fully connected layers of this project's machine do: a cost that scales
with the weights, except that layers of 256 inputs run twice as slowly as their cost says (the library
takes another path for them). A polynomial in the costs cannot hold both; the correction by the layer's
own fields can, and cross-validation keeps it only where it wins.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlee.errors import ResultFormatError
from mlee.predict import predictor as P
from mlee.predict.evaluate import evaluate, predict_point, split_points
from mlee.predict.families import SHAPE_MIN_POINTS
from mlee.predict.kernels import KernelConfig
from mlee.predict.layerdata import make_point
from mlee.predict.training import fit_predictor

pytest.importorskip("sklearn")

FINS = (64, 256, 1000, 1024, 2048, 4096)
FOUTS = (64, 256, 1000, 1024, 2048)


def _runtime_s(batch: int, fin: int, fout: int) -> float:
    cost = 8e-6 + 2.5e-10 * fin * fout + 8e-11 * batch * fin * fout
    return cost * (2.0 if fin == 256 else 1.0)


def _points(noise: float = 0.02, seed: int = 0, fins=FINS) -> list:
    rng = np.random.default_rng(seed)
    pts = []
    for batch in (1, 8):
        for fin in fins:
            for fout in FOUTS:
                cfg = KernelConfig.make("fc", batch=batch, fin=fin, fout=fout)
                t = _runtime_s(batch, fin, fout) * (1 + noise * rng.standard_normal())
                pts.append(make_point(cfg, t, 25.0 * (1 + noise * rng.standard_normal()), None, "counter",
                                      "Test CPU", "lab", f"fc-{batch}-{fin}-{fout}"))
    return pts


@pytest.fixture(scope="module")
def fitted():
    """An ``auto`` predictor on every synthetic point (fit once: the families' cross-validation is slow)."""
    return _points(), fit_predictor(_points(), "auto")


def _runtime_mape(predictor, test) -> float:
    (score,) = [s for s in evaluate(predictor, test) if s.target == "runtime"]
    return score.mape


def test_the_correction_learns_a_shape_the_costs_do_not_explain_and_beats_the_polynomial_held_out():
    pts = _points()
    wins = []
    for seed in range(3):
        train, test = split_points(pts, 0.3, seed)
        auto, poly = fit_predictor(train, "auto"), fit_predictor(train, "polynomial")
        q = auto.kinds["fc"].time_s.quality
        assert "polynomial+shape" in q["cv_rmspe_by_family"]
        wins.append((q["model"], _runtime_mape(auto, test), _runtime_mape(poly, test)))
    assert all(model == "polynomial+shape" for model, _, _ in wins), wins
    assert all(a < 0.5 * p for _, a, p in wins), wins  # the polynomial misses every fin=256 layer by ~2x
    assert max(a for _, a, _ in wins) < 0.08, wins


def test_the_correction_is_stored_as_data_and_predicts_the_same_after_a_round_trip(tmp_path, fitted):
    pts, pred = fitted
    km = pred.kinds["fc"]
    assert km.time_s.correction is not None and km.time_s.correction.fields == ("batch", "fin", "fout")
    path = pred.save(tmp_path / "auto.json")
    data = json.loads(path.read_text())
    corr = data["kernels"]["fc"]["time_s"]["correction"]
    assert corr["fields"] == ["batch", "fin", "fout"] and corr["model"]["type"] == "gbm" and corr["model"]["init"] == 0
    again, _ = P.load(path)
    for p in pts[::7]:
        assert predict_point(again.kinds["fc"], p) == pytest.approx(predict_point(km, p))
    # the factor is the whole difference between the base polynomial and the runtime read
    cfg = KernelConfig.make("fc", batch=1, fin=256, fout=1024)
    base = float(km.time_s.model.predict([km.vector(cfg)])[0])
    assert km.predict_time(cfg) == pytest.approx(base * km.time_s.correction.factor(cfg))
    assert km.predict_time(cfg) == pytest.approx(_runtime_s(1, 256, 1024), rel=0.15)


def test_trees_do_not_extrapolate_the_polynomial_does():
    pts = _points(noise=0.0)
    km = fit_predictor(pts, "auto").kinds["fc"]
    ratios = [p.time_s / float(km.time_s.model.predict([km.vector(p.config)])[0]) for p in pts]
    far = KernelConfig.make("fc", batch=64, fin=100000, fout=8192)  # beyond every field of the profile
    assert min(ratios) * 0.9 <= km.time_s.correction.factor(far) <= max(ratios) * 1.1
    assert km.predict_time(far) == pytest.approx(_runtime_s(64, 100000, 8192), rel=0.5)


def test_too_few_points_never_try_the_correction():
    pts = _points(fins=(64, 256))  # 20 points
    assert len(pts) < SHAPE_MIN_POINTS
    km = fit_predictor(pts, "auto").kinds["fc"]
    assert "polynomial+shape" not in km.time_s.quality["cv_rmspe_by_family"] and km.time_s.correction is None


@pytest.mark.parametrize("where, change, fragment", [
    ("time_s", lambda c: c.update(fields=["batch", "depth"]), "not fields of fc"),
    ("time_s", lambda c: c["model"].update(init=0.5), "start from 0"),
    ("time_s", lambda c: c["model"]["trees"][0].update(feature=[7] * len(c["model"]["trees"][0]["feature"])),
     "outside the tree or the features"),
    ("power_w", None, "only a runtime may carry a shape correction"),
])
def test_a_malformed_correction_is_refused_with_its_kernel_named(tmp_path, fitted, where, change, fragment):
    data = json.loads(json.dumps(fitted[1].to_json()))  # a deep copy to spoil
    corr = data["kernels"]["fc"]["time_s"]["correction"]
    if change is None:
        data["kernels"]["fc"][where]["correction"] = corr
    else:
        change(corr)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFormatError, match=fragment) as info:
        P.load(path)
    assert "kernel 'fc'" in str(info.value)
