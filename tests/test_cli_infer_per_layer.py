"""`mlee infer --per-layer`: the layer breakdown lands in results.json and sums to its window (issue 8)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlee.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


@pytest.mark.slow
def test_per_layer_breakdown_is_recorded_and_shown(tmp_path):
    pytest.importorskip("torchvision")
    res = CliRunner().invoke(app, ["infer", "-m", "MobileNetV3Small", "--batch-size", "2", "--n-batches", "2",
                                   "--input-size", "64", "--warmup-batches", "1", "--threads", "1", "--per-layer",
                                   "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 0, res.output
    results = json.loads(next(tmp_path.glob("infer-*/results.json")).read_text())
    breakdown = results["per_layer"]
    assert breakdown["backend"] == "pytorch"
    window = next(w for w in results["windows"] if w["name"] == "per-layer")
    assert window["measured"] is False  # the hooks cost time: never a repeat
    assert [w["name"] for w in results["windows"] if w["measured"]] == ["repeat-0"]
    layers = breakdown["layers"]
    assert len(layers) > 10
    # Every joule of the window is accounted for: in the layers or outside them (Python overhead), nothing lost.
    assert breakdown["layers_sum"]["energy_j"] + breakdown["outside_layers"]["energy_j"] == pytest.approx(
        breakdown["energy_j"], rel=1e-6)
    assert breakdown["agreement"] == pytest.approx(breakdown["layers_sum"]["energy_j"] / breakdown["energy_j"])
    assert breakdown["energy_method"] == "estimate"  # no RAPL here: the breakdown says so too
    assert "per-layer" in res.stdout.lower() or "layer" in res.stdout.lower()


def test_per_layer_needs_a_backend_with_layers(tmp_path):
    # onnxruntime runs the whole graph in C++: there are no layer edges to time (TensorFlow: test_tf_per_layer.py)
    res = CliRunner().invoke(app, ["infer", "-m", "MobileNetV3Small", "--backend", "onnx", "--per-layer",
                                   "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 2 and "--per-layer" in res.output and "--backend pytorch or tensorflow" in res.output
