"""Decomposing real torchvision models into kernels, and predicting them without running them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlee.cli import app

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from mlee.predict.decompose import decompose  # noqa: E402
from mlee.predict.forecast import predict_model  # noqa: E402
from mlee.predict.kernels import KernelConfig  # noqa: E402
from mlee.predict.models import build_model, resolve_model  # noqa: E402

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


def _decompose(name: str, batch: int = 1):
    ref = resolve_model(name)
    return decompose(build_model(ref, "meta"), (batch, 3, ref.input_size, ref.input_size), ref.name)


def test_resnet18_decomposes_into_fused_kernels_with_torchvision_macs():
    dec = _decompose("resnet18")
    kinds = [(layer.kind, layer.variant) for layer in dec.layers]
    assert kinds[:2] == [("conv-bn-relu", ""), ("maxpool", "")]  # stem conv+bn+relu fused, then maxpool
    assert kinds.count(("add", "")) == 8  # one residual addition per basic block
    assert kinds.count(("conv-bn-relu", "conv-bn")) == 11  # second convs and downsamples: no ReLU before the add
    assert dec.unsupported == []
    assert dec.macs == pytest.approx(1.814e9, rel=2e-3)  # torchvision's published 1.81 GMACs
    stem = dec.layers[0]
    assert stem.name == "conv1" and stem.ops == ["conv2d", "batch_norm", "relu"]
    assert stem.config.as_dict() == {"batch": 1, "cin": 3, "h": 224, "w": 224, "cout": 64, "kh": 7, "kw": 7,
                                     "stride": 2, "ph": 3, "pw": 3}


def test_functional_calls_are_found_and_named_after_their_module():
    dense = _decompose("densenet121")
    assert sum(layer.kind == "concat" for layer in dense.layers) > 50  # torch.cat inside forward, no module
    mobile = _decompose("MobileNetV2")  # registry name works too
    dw = [layer for layer in mobile.layers if layer.kind == "dwconv-bn-relu"]
    assert len(dw) == 17 and all(layer.approx == "" for layer in dw)  # ReLU6 is a ReLU with a cap
    adds = [layer for layer in mobile.layers if layer.kind == "add"]
    assert adds and all(layer.name.startswith("features.") for layer in adds)


def test_unknown_ops_are_reported_not_dropped():
    vit = _decompose("vit_b_16")
    names = {op for layer in vit.unsupported for op in layer.ops}
    assert "layer_norm" in names


def test_prediction_of_a_small_real_model_sums_its_layers():
    from test_predict_predictor import synthetic_points

    from mlee.predict.training import fit_predictor

    pred = predict_model(fit_predictor(synthetic_points()), _decompose("resnet18", batch=2))
    assert pred.complete and pred.batch == 2
    assert pred.time_s == pytest.approx(sum(lp.time_s for lp in pred.layers))
    assert pred.energy_j == pytest.approx(sum(lp.energy_j for lp in pred.layers))
    assert pred.per_sample_time_ms == pytest.approx(pred.time_s * 1e3 / 2)
    stem = pred.layers[0]
    # the synthetic runtime is 1e-5 s + 1e-10 s per MAC, power 25 W
    assert stem.time_s == pytest.approx(1e-5 + 1e-10 * 2 * 64 * 112 * 112 * 3 * 49, rel=1e-6)
    assert stem.energy_j == pytest.approx(25.0 * stem.time_s, rel=1e-6)
    # a conv-bn (no ReLU before the residual add) is the fused kernel less a ReLU of its output
    conv_bn = next(lp for lp in pred.layers if lp.variant == "conv-bn")
    cfg = KernelConfig.from_key(conv_bn.config)
    fused = 1e-5 + 1e-10 * cfg.features()["macs"]
    n, c, h, w = cfg.output_shape()
    relu = 1e-5 + 1e-10 * n * c * h * w
    assert conv_bn.time_s == pytest.approx(max(fused - relu, 0.5 * fused), rel=1e-6)


def test_cli_predict_prints_layers_and_totals(tmp_path):
    from test_predict_predictor import synthetic_points

    from mlee.predict.training import fit_predictor

    path = fit_predictor(synthetic_points()).save(tmp_path / "p.json")
    res = CliRunner().invoke(app, ["predict", "--model", "resnet18", "--predictor", str(path), "--top", "5"], env=ENV)
    assert res.exit_code == 0, res.output
    assert "Predicted per-layer runtime and energy of resnet18" in res.output
    assert "smaller layers not shown" in res.output and "complete" in res.output
    assert "a prediction from estimate measurements" in res.output
    res = CliRunner().invoke(app, ["predict", "-m", "resnet18", "-p", str(path), "--json"], env=ENV)
    data = json.loads(res.stdout)
    assert data["prediction"]["per_sample"]["energy_method"] == "predicted"
    assert data["prediction"]["per_sample"]["energy_basis"] == "estimate"
    # 20 convs (9 fused, 11 conv-bn), maxpool, 8 adds, 8 relus, avgpool, fc
    assert len(data["prediction"]["layers"]) == 39


def test_layers_the_predictor_cannot_cover_are_flagged_and_the_total_says_so():
    from test_predict_predictor import synthetic_points

    from mlee.predict.training import fit_predictor

    only_relu = fit_predictor([p for p in synthetic_points() if p.config.kind == "relu"])
    pred = predict_model(only_relu, _decompose("resnet18"))
    counts = pred.counts()
    assert counts["no model"] == 39 - 8 and pred.complete is False
    assert pred.time_s == pytest.approx(sum(lp.time_s for lp in pred.layers if lp.kind == "relu"))
    relu_cfgs = [KernelConfig.from_key(lp.config) for lp in pred.layers if lp.kind == "relu"]
    assert any(not only_relu.kinds["relu"].in_range(c) for c in relu_cfgs) == ("extrapolated" in counts)
    vit = predict_model(only_relu, _decompose("vit_b_16"))
    assert vit.counts()["unsupported"] > 0 and vit.complete is False
