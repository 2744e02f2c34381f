"""`mlee demo`: the main job end to end (measure, merge, rate, label, report) on a small configuration."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlee.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    pytest.importorskip("torch")
    out, labels = tmp_path / "results", tmp_path / "labels"
    res = CliRunner().invoke(app, ["demo", "-o", str(out), "--labels-dir", str(labels), "--models",
                                   "ResNet50,MobileNetV3Small", "--batch-size", "1", "--n-batches", "1",
                                   "--repeat", "1", "--threads", "1"], env=ENV)
    assert res.exit_code == 0, res.output
    db = json.loads((out / "merged.json").read_text())
    assert sorted(r["model"] for r in db["records"]) == ["MobileNetV3Small", "ResNet50"]
    for r in db["records"]:  # this machine has no RAPL: every figure is a labelled estimate, never a silent zero
        assert r["status"] == "completed" and r["per_sample"]["energy_j"]["total"] > 0
        assert r["estimated"] is True and r["per_sample"]["energy_method"]["total"] == "estimate"
        assert r["metrics"]["top1"] is None  # synthetic inputs: accuracy not measured, never 0
    pdfs = sorted(p.name for p in labels.glob("*.pdf"))
    assert len(pdfs) == 2 and pdfs[0].startswith("MobileNetV3Small") and pdfs[1].startswith("ResNet50")
    assert (labels / "report.html").stat().st_size > 10_000
    assert f"labels: {labels.resolve()}" in res.output


def test_demo_refuses_a_model_list_without_the_reference(tmp_path):
    res = CliRunner().invoke(app, ["demo", "-o", str(tmp_path), "--models", "VGG16"], env=ENV)
    assert res.exit_code == 2
    assert "lack the reference ResNet50" in res.output and "--models ResNet50,VGG16" in res.output
    assert not any(tmp_path.iterdir())  # nothing measured or written
