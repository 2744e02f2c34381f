"""The predictor file: JSON round trip, malformed files, another machine's predictor, and the CLI's answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import ResultFormatError
from mlee.predict import predictor as P
from mlee.predict.kernels import KERNEL_KINDS, KernelConfig
from mlee.predict.training import Point, fit_predictor

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


def synthetic_points(fingerprint: dict | None = None) -> list[Point]:
    """Points of every kind whose runtime is a known linear function of its MACs (else its first cost feature)."""
    from mlee.predict.grids import grid

    fp = fingerprint or P.machine_fingerprint()
    pts = []
    for kind in KERNEL_KINDS:
        for cfg in grid(kind, "quick"):
            work = cfg.features().get("macs", cfg.feature_vector()[0])
            t = 1e-5 + 1e-10 * work
            pts.append(Point(cfg, t, t, 25.0, "estimate", True, f"profile-{kind}", "Test env", fp))
    return pts


@pytest.fixture(scope="module")
def predictor() -> P.Predictor:
    return fit_predictor(synthetic_points())


def test_json_round_trip_predicts_the_same(tmp_path, predictor):
    path = predictor.save(tmp_path / "p.json")
    loaded, warnings = P.load(path)
    assert warnings == []  # same machine, same versions
    assert loaded.to_json() == predictor.to_json()
    assert path.read_text() == tmp_path.joinpath("p.json").read_text()
    assert json.loads(path.read_text())["kind"] == "mlee-predictor"  # data, not a pickle
    cfg = KernelConfig.make("fc", batch=1, fin=512, fout=1000)
    a = predictor.kinds["fc"].time_s.model.predict([cfg.feature_vector()])
    b = loaded.kinds["fc"].time_s.model.predict([cfg.feature_vector()])
    np.testing.assert_array_equal(a, b)
    assert a[0] == pytest.approx(1e-5 + 1e-10 * 512 * 1000, rel=1e-6)


def test_gbm_predictor_round_trip(tmp_path):
    pytest.importorskip("sklearn")
    pts = [p for p in synthetic_points() if p.config.kind == "relu"]
    pred = fit_predictor(pts, "gbm")
    loaded, _ = P.load(pred.save(tmp_path / "g.json"))
    X = [p.config.feature_vector() for p in pts]
    np.testing.assert_allclose(loaded.kinds["relu"].time_s.model.predict(X), pred.kinds["relu"].time_s.model.predict(X))
    assert loaded.model_type == "gbm"


def test_predictor_from_another_machine_warns_naming_both(tmp_path, predictor):
    data = predictor.to_json()
    data["fingerprint"] = {**data["fingerprint"], "cpu_model": "Intel(R) Xeon(R) W-2155", "torch_version": "1.10.2"}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    _, warnings = P.load(path)
    (w,) = warnings
    here = P.machine_fingerprint()
    assert "Intel(R) Xeon(R) W-2155" in w and str(here["cpu_model"]) in w
    assert "torch 1.10.2" in w and f"here {here['torch_version']}" in w
    assert "mlee 0.1.0" not in w  # the mlee versions agree: only differing fields are named


def _mutate(data: dict, how: str) -> object:
    d = json.loads(json.dumps(data))
    if how == "not a predictor":
        return {"records": []}
    if how == "newer schema":
        d["schema_version"] = 99
    elif how == "unknown kind":
        d["kernels"]["conv-relu"] = d["kernels"].pop("relu")
    elif how == "nan coefficient":
        d["kernels"]["fc"]["time_s"]["model"]["coefficients"][0] = "NaN"
    elif how == "short scale":
        d["kernels"]["fc"]["time_s"]["model"]["scale"] = [1.0]
    elif how == "missing power quality":
        del d["kernels"]["relu"]["power_w"]["quality"]
    elif how == "bad model type":
        d["model_type"] = "pickle"
    return d


@pytest.mark.parametrize("how, words", [
    ("not a predictor", "is not an mlee predictor"),
    ("newer schema", "schema version 99"),
    ("unknown kind", "kernel 'conv-relu' is not a known kernel kind"),
    ("nan coefficient", "kernel 'fc' is malformed"),
    ("short scale", "scale must hold 2"),
    ("missing power quality", "kernel 'relu' is malformed"),
    ("bad model type", "model_type 'pickle'"),
])
def test_malformed_predictor_is_a_clear_error(tmp_path, predictor, how, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutate(predictor.to_json(), how)))
    with pytest.raises(ResultFormatError) as info:
        P.load(path)
    assert words in str(info.value)
    assert "mlee fit" in str(info.value) or "upgrade" in str(info.value)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(ResultFormatError, match="no predictor at"):
        P.load(tmp_path / "absent.json")
    (tmp_path / "cut.json").write_text('{"kind": "mlee-predictor", "kern')
    with pytest.raises(ResultFormatError, match="not valid JSON"):
        P.load(tmp_path / "cut.json")


def test_cli_predict_with_malformed_predictor_exits_1_with_one_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[1, 2]")
    res = CliRunner().invoke(app, ["predict", "--model", "resnet18", "--predictor", str(path)], env=ENV)
    assert res.exit_code == 1
    assert "is not an mlee predictor" in res.output and "Traceback" not in res.output


def test_cli_predict_unknown_model_and_backend_are_usage_errors(tmp_path, predictor):
    path = predictor.save(tmp_path / "p.json")
    res = CliRunner().invoke(app, ["predict", "--model", "resnet19", "--predictor", str(path)], env=ENV)
    assert res.exit_code == 2 and "unknown model 'resnet19'" in res.output and "resnet18" in res.output
    res = CliRunner().invoke(app, ["predict", "--model", "resnet18", "--backend", "tensorflow",
                                   "--predictor", str(path)], env=ENV)
    assert res.exit_code == 2 and "PyTorch" in res.output
    res = CliRunner().invoke(app, ["predict", "--model", "resnet18", "--per-layer", "--predictor", str(path)], env=ENV)
    assert res.exit_code == 2 and "--per-layer needs --measure" in res.output
