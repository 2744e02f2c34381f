"""`mlee demo`: the main job end to end (train, measure inference, merge, rate, label, report) on small settings."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.commands.demo import DemoPlan, rating_summary

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


@pytest.mark.slow
def test_demo_trains_measures_and_rates_both_tasks_on_digits(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out, labels = tmp_path / "results", tmp_path / "labels"
    res = CliRunner().invoke(app, ["demo", "-o", str(out), "--labels-dir", str(labels), "--models",
                                   "ResNet50,MobileNetV2", "--train-samples", "384", "--epochs", "2",
                                   "--n-batches", "2", "--repeat", "1", "--threads", "1"], env=ENV)
    assert res.exit_code == 0, res.output
    db = json.loads((out / "merged.json").read_text())
    runs = sorted((r["task"], r["model"]) for r in db["records"])
    assert runs == [("inference", "MobileNetV2"), ("inference", "ResNet50"),
                    ("training", "MobileNetV2"), ("training", "ResNet50")]
    for r in db["records"]:
        assert r["status"] == "completed" and r["dataset"] == "digits"
        # this machine has no RAPL: every energy is a labelled estimate, never a silent zero
        assert r["estimated"] is True and r["per_sample"]["energy_method"]["total"] == "estimate"
        assert r["per_sample"]["energy_j"]["total"] > 0
        assert 0 <= r["metrics"]["top1"] <= r["metrics"]["top5"] <= 1  # real labels: accuracy measured
        checkpoint = str(out / "weights" / f"{r['model']}.pt")
        if r["task"] == "inference":  # measured from the checkpoint the training run saved
            assert r["config"]["weights"] == checkpoint and r["config"]["input_size"] == 32
        else:
            assert r["saved_weights"] == checkpoint and r["training"]["epochs"] == 2
    reference = {r["task"]: r for r in db["records"] if r["model"] == "ResNet50"}
    assert reference["training"]["metrics"]["top1"] > 0.2  # above chance (0.1) on the held-out split
    assert reference["inference"]["metrics"]["top1"] > 0.2

    from mlee.rating import rate_database

    rated = rate_database(db, "mlee")
    assert sorted({r["task"] for r in rated}) == ["inference", "training"]  # both tasks rated
    for r in rated:  # every rated metric of every label is measured: no "n/a" on a label
        missing = [k for k, m in r["metrics"].items() if m["value"] is None or m["rating"] is None]
        assert not missing, (r["task"], r["model"], missing)
    pdfs = sorted(labels.glob("*.pdf"))
    assert len(pdfs) == 4
    if shutil.which("pdftotext"):
        for pdf in pdfs:
            text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True,
                                  text=True).stdout
            assert "n/a" not in text and "ESTIMATE" in text, pdf.name
    page = re.search(r'<script type="application/json" id="mlee-data">(.*?)</script>',
                     (labels / "report.html").read_text(), re.S)
    shown = sorted((p["task"], p["model"]) for p in json.loads(page.group(1))["records"])
    assert shown == runs  # the report shows both tasks
    tail = res.output.strip().splitlines()[-5:]  # where everything is, then one line per task
    assert tail[0] == f"labels: {labels.resolve()}" and tail[1] == f"report: {(labels / 'report.html').resolve()}"
    assert tail[2] == f"database: {(out / 'merged.json').resolve()}"
    assert tail[3].startswith("inference (digits): ") and tail[4].startswith("training (digits): ")
    assert "ResNet50 C" in tail[3] and "ResNet50 C" in tail[4] and tail[3].endswith("(energy estimated)")


@pytest.mark.slow
def test_demo_synthetic_measures_inference_only_as_before(tmp_path):
    pytest.importorskip("torch")
    out, labels = tmp_path / "results", tmp_path / "labels"
    res = CliRunner().invoke(app, ["demo", "--dataset", "synthetic", "-o", str(out), "--labels-dir", str(labels),
                                   "--models", "ResNet50,MobileNetV3Small", "--batch-size", "1", "--n-batches", "1",
                                   "--repeat", "1", "--threads", "1"], env=ENV)
    assert res.exit_code == 0, res.output
    db = json.loads((out / "merged.json").read_text())
    assert sorted((r["task"], r["model"]) for r in db["records"]) == [("inference", "MobileNetV3Small"),
                                                                     ("inference", "ResNet50")]
    for r in db["records"]:
        assert r["status"] == "completed" and r["dataset"] == "synthetic" and r["config"]["weights"] == "none"
        assert r["per_sample"]["energy_j"]["total"] > 0 and r["per_sample"]["energy_method"]["total"] == "estimate"
        assert r["metrics"]["top1"] is None  # synthetic inputs: accuracy not measured, never 0
    assert len(list(labels.glob("*.pdf"))) == 2 and not (out / "weights").exists()
    assert res.output.strip().splitlines()[-1].startswith("inference (synthetic): ")


def test_demo_plan_trains_then_infers_from_each_checkpoint(tmp_path):
    plan = DemoPlan("digits", ("ResNet50", "ViT-B/16"), "mlee", "pytorch", tmp_path / "runs", tmp_path / "w",
                    tmp_path / "db.json", tmp_path / "labels", tmp_path / "labels/report.html", 32, None, 2, None,
                    2, 0.001, 32, None)
    steps = plan.steps()
    titles = [t for t, _ in steps]
    assert titles == ["train ResNet50", "train ViT-B/16", "measure inference of ResNet50",
                      "measure inference of ViT-B/16", "merge", "rate", "label", "report"]
    train, infer = steps[1][1], steps[3][1]
    saved = train[train.index("--save-weights") + 1]
    assert saved == str(tmp_path / "w" / "ViT-B-16.pt")  # one file per model, a safe name
    assert infer[infer.index("--weights") + 1] == saved and infer[infer.index("--dataset") + 1] == "digits"
    assert "--n-batches" not in infer  # the whole held-out split
    keras = dataclasses.replace(plan, backend="tensorflow")
    assert keras.weights_path("ResNet50").name == "ResNet50.keras"  # the whole model: its 10-class head included


def test_demo_synthetic_keeps_the_inference_only_plan(tmp_path):
    plan = DemoPlan("synthetic", ("ResNet50", "VGG16"), "mlee", "pytorch", tmp_path / "runs", tmp_path / "w",
                    tmp_path / "db.json", tmp_path / "labels", tmp_path / "labels/report.html", 8, None, 2, None,
                    2, 0.001, None, None)
    steps = plan.steps()
    assert [t for t, _ in steps] == ["measure inference", "merge", "rate", "label", "report"]
    infer = steps[0][1]
    assert infer[:3] == ["infer", "-m", "ResNet50,VGG16"] and "--input-size" not in infer
    assert infer[infer.index("--dataset") + 1] == "synthetic" and infer[infer.index("--n-batches") + 1] == "4"


def test_rating_summary_lists_each_task_best_first_and_marks_estimates():
    rated = [
        {"task": "inference", "dataset": "digits", "model": "ResNet50", "compound": "C", "estimated": True},
        {"task": "inference", "dataset": "digits", "model": "MobileNetV2", "compound": "A", "estimated": True},
        {"task": "training", "dataset": "digits", "model": "ResNet50", "compound": "C", "estimated": False},
        {"task": "inference", "dataset": "synthetic", "model": "VGG16", "compound": "E", "estimated": True},
    ]
    assert rating_summary(rated, "digits") == [
        "inference (digits): MobileNetV2 A, ResNet50 C (energy estimated)",
        "training (digits): ResNet50 C",
    ]


def test_demo_refuses_a_model_list_without_the_reference(tmp_path):
    res = CliRunner().invoke(app, ["demo", "-o", str(tmp_path), "--models", "VGG16"], env=ENV)
    assert res.exit_code == 2
    assert "lack the reference ResNet50" in res.output and "--models ResNet50,VGG16" in res.output
    assert not any(tmp_path.iterdir())  # nothing measured or written


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist"], "unknown demo dataset 'mnist'"),
    (["--epochs", "0"], "--epochs 0 must be a positive whole number"),
    (["--lr", "-1"], "--lr -1.0 is not a positive number"),
    (["--backend", "onnx"], "the onnx backend runs inference only"),
])
def test_demo_refuses_bad_options_before_writing_anything(tmp_path, args, message):
    res = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "out"), "--labels-dir", str(tmp_path / "lab"),
                                   *args], env=ENV)
    assert res.exit_code == 2 and message in res.output, res.output
    assert not any(tmp_path.iterdir())
