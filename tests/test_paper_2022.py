"""`mlee rate --spec mlee-2022` on the 232 published 2022 logs gives the paper's own figures (docs/paper-2022.md).

Only published figures are asserted: the rating histogram of ``hist_ratings.pdf``, the indexing table, the two
example labels and the quirks the paper's code had (ONNX "FLOPs" that are parameter counts, GPU-only training
energy, an accuracy index exactly on a boundary, a logged FLOP count of 0). The logs stay outside the repository
(``<repo>/../shared/legacy-mlee-2022`` or ``$MLEE_LEGACY_DIR``); the tests skip when they are absent.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from results_builders import find_legacy_dir

LEGACY = find_legacy_dir()
pytestmark = pytest.mark.skipif(LEGACY is None, reason="the 2022 mlee logs are not here (set MLEE_LEGACY_DIR)")
ENV = {"NO_COLOR": "1", "COLUMNS": "200"}

A100_TF, A100_PT = "A100 x8 - TensorFlow 2.8.0", "A100 x8 - PyTorch 1.10.2+cu113"
RTX_TF, RTX_PT = "RTX 5000 - TensorFlow 2.4.1", "RTX 5000 - PyTorch 1.10.2+cu113"
XEON_TF, XEON_PT = "Xeon(R) W-2155 - TensorFlow 2.4.1", "Xeon(R) W-2155 - PyTorch 1.10.2+cu113"
ONNX_TF, ONNX_PT = "Xeon(R) W-2155 - ONNX TF 1.10.0", "Xeon(R) W-2155 - ONNX PT 1.10.0"

#: The bar heights (A/B/C/D/E) of the paper's hist_ratings.pdf: inference compound ratings per environment.
PAPER_HISTOGRAM = {
    A100_TF: (2, 8, 10, 6, 0), A100_PT: (3, 6, 7, 6, 0), RTX_TF: (6, 6, 8, 6, 0), RTX_PT: (5, 5, 5, 7, 0),
    XEON_TF: (5, 7, 8, 6, 0), XEON_PT: (5, 4, 6, 7, 0), ONNX_TF: (3, 5, 6, 3, 0), ONNX_PT: (3, 4, 6, 2, 0),
}


def logs() -> Path:
    assert LEGACY is not None
    return LEGACY / "results" if (LEGACY / "results").is_dir() else LEGACY


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture(scope="module")
def rated() -> dict[tuple[str, str, str], dict]:
    result = invoke("rate", str(logs()), "--spec", "mlee-2022", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 232
    return {(r["task"], r["environment"], r["model"]): r for r in records}


def test_the_rating_histogram_of_the_paper(rated):
    counts: dict[str, Counter] = {env: Counter() for env in PAPER_HISTOGRAM}
    for (task, env, _), r in rated.items():
        if task == "inference":
            counts[env][r["compound"]] += 1
    assert {env: tuple(c[letter] for letter in "ABCDE") for env, c in counts.items()} == PAPER_HISTOGRAM


def test_onnx_flops_are_the_logged_parameter_count_as_the_paper_rated_them(rated):
    r = rated[("inference", ONNX_PT, "ResNet101")]
    assert r["record"]["model_info"]["flops"] is None  # mlee's own reading: not a FLOP count
    assert r["metrics"]["gflops"]["value"] == r["record"]["model_info"]["onnx_parameters"] * 1e-9
    assert r["metrics"]["gflops"]["index"] == 1.0 and r["metrics"]["gflops"]["rating"] == "C"
    mobile = rated[("inference", ONNX_PT, "MobileNetV2")]
    assert mobile["metrics"]["gflops"]["value"] == mobile["record"]["model_info"]["onnx_parameters"] * 1e-9


def test_training_energy_is_the_gpus_alone_with_the_published_boundaries(rated):
    r = rated[("training", RTX_PT, "MobileNetV3Large")]
    assert r["compound"] == "B"
    record = r["record"]
    per_epoch = record["energy_j"]["gpu"] / record["training"]["epochs"] / 3600000
    assert r["metrics"]["energy_per_epoch"]["value"] == per_epoch  # the CPU's RAPL energy is not in it
    assert r["metrics"]["energy_total"]["value"] == per_epoch * 600
    assert r["metrics"]["energy_total"]["boundaries"] == [1.1262860986893752, 1.0, 0.7588663854696236,
                                                          0.5627471141302683]
    # The reference sits exactly on the B/C boundary: "B if index > 1.0" makes it C in every environment.
    for env in (A100_TF, A100_PT, RTX_TF, RTX_PT):
        total = rated[("training", env, "ResNet101")]["metrics"]["energy_total"]
        assert (total["index"], total["rating"]) == (1.0, "C")


def test_accuracy_index_from_the_logged_fraction_ties_the_boundary_as_in_the_paper(rated):
    for task in ("inference", "training"):
        top1 = rated[(task, A100_PT, "EfficientNetB1")]["metrics"]["top1"]
        assert top1["index"] == 1.0214309865015994 == top1["boundaries"][0]
        assert top1["rating"] == "B" and top1["unit"] == "fraction"


def test_a_logged_flop_count_of_zero_keeps_the_papers_index_zero(rated):
    gflops = rated[("training", A100_PT, "ResNet50")]["metrics"]["gflops"]
    assert (gflops["value"], gflops["index"], gflops["rating"]) == (0.0, 0.0, "E")


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("db") / "merged.json"
    result = invoke("merge", str(logs()), "-o", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("task, model, compound, figures", [
    # The paper's example labels (paper_results/label_A100 x8 - TensorFlow 2.8.0_*.pdf). Their "Flops" are the
    # logged multiply-accumulates (0.30 B, 1.01 B); mlee shows FLOPs, twice that, with the same index.
    ("inference", "MobileNetV2", "A", {"energy_per_sample": 0.63, "time_per_sample": 1.31, "top1": 0.62,
                                       "top5": 0.83, "parameters": 3.54, "gflops": 0.60}),
    ("training", "EfficientNetB2", "C", {"energy_per_epoch": 0.57, "energy_total": None, "time_per_epoch": 0.55,
                                         "time_total": None, "top1": 0.75, "top5": 0.92, "parameters": 9.18,
                                         "gflops": 2.02}),
])
def test_the_papers_example_labels(rated, database, tmp_path, task, model, compound, figures):
    r = rated[(task, A100_TF, model)]
    assert r["compound"] == compound
    shown = {k: (round(r["metrics"][k]["value"], 2) if r["metrics"][k]["value"] is not None else None)
             for k in figures}
    assert shown == figures
    result = invoke("label", str(database), "--spec", "mlee-2022", "--model", model, "--env", A100_TF, "--task",
                    task, "--format", "svg", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    (svg,) = tmp_path.glob("*.svg")
    text = svg.read_text(encoding="utf-8")
    assert f"Rating {compound} against the reference ResNet101" in text
    # The paper printed "n.a" for EfficientNets' totals (no nominal epochs): a grey "not measured" here.
    assert ("not measured" in text) == (None in figures.values())
