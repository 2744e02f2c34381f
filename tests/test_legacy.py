"""The 2022 mlee logs: all 232 convert, to the paper's published figures, with honest fields."""

from __future__ import annotations

import collections
import json

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import ResultFormatError
from mlee.results.legacy import convert_legacy, read_legacy_file
from results_builders import legacy_dir  # noqa: F401 - fixture

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


@pytest.fixture(scope="module")
def records():
    from results_builders import find_legacy_dir

    found = find_legacy_dir()
    if found is None:
        pytest.skip("the 2022 mlee logs are not here (set MLEE_LEGACY_DIR)")
    files = sorted((found / "results").glob("*.json"))
    return {f.name: read_legacy_file(f) for f in files}


def _find(records, env, model, task="inference"):
    hits = [r for r in records.values() if r["environment"] == env and r["model"] == model and r["task"] == task]
    assert len(hits) == 1, (env, model, len(hits))
    return hits[0]


def test_all_232_logs_convert(records):
    assert len(records) == 232
    tasks = collections.Counter(r["task"] for r in records.values())
    assert tasks == {"inference": 176, "training": 56}
    assert {r["origin"] for r in records.values()} == {"mlee-2022"}
    assert len({r["id"] for r in records.values()}) == 232


def test_environments_are_named_as_in_the_paper(records):
    envs = collections.Counter(r["environment"] for r in records.values() if r["task"] == "inference")
    assert envs == {
        "A100 x8 - TensorFlow 2.8.0": 26, "A100 x8 - PyTorch 1.10.2+cu113": 22,
        "RTX 5000 - TensorFlow 2.4.1": 26, "RTX 5000 - PyTorch 1.10.2+cu113": 22,
        "Xeon(R) W-2155 - TensorFlow 2.4.1": 26, "Xeon(R) W-2155 - PyTorch 1.10.2+cu113": 22,
        "Xeon(R) W-2155 - ONNX TF 1.10.0": 17, "Xeon(R) W-2155 - ONNX PT 1.10.0": 15,
    }


def test_per_sample_figures_match_the_paper(records):
    a100 = _find(records, "A100 x8 - TensorFlow 2.8.0", "EfficientNetB0")
    assert round(a100["per_sample"]["energy_j"]["total"], 3) == 0.673
    assert round(a100["per_sample"]["time_ms"], 3) == 1.369
    xeon = _find(records, "Xeon(R) W-2155 - PyTorch 1.10.2+cu113", "EfficientNetB0")
    assert round(xeon["per_sample"]["energy_j"]["total"], 3) == 1.330
    assert xeon["n_samples"] == 50_000


def test_energy_methods_and_sources(records):
    a100 = _find(records, "A100 x8 - TensorFlow 2.8.0", "EfficientNetB0")
    assert a100["energy_method"] == {"total": "power_integration", "cpu": None, "dram": None,
                                     "gpu": "power_integration"}
    assert a100["energy_j"]["cpu"] is None and a100["estimated"] is False
    gpus = [s for s in a100["sources"] if s["domain"] == "gpu"]
    assert len(gpus) == 8 and len({s["detail"]["uuid"] for s in gpus}) == 8
    assert sum(s["energy_j"] for s in gpus) == pytest.approx(a100["energy_j"]["gpu"])
    assert any(s["name"] == "rapl" for s in a100["skipped_sources"])
    rtx = _find(records, "RTX 5000 - PyTorch 1.10.2+cu113", "ResNet50")
    assert rtx["energy_method"]["cpu"] == "counter" and rtx["energy_method"]["gpu"] == "power_integration"
    assert rtx["energy_method"]["total"] == "power_integration"
    assert rtx["energy_j"]["total"] == pytest.approx(rtx["energy_j"]["cpu"] + rtx["energy_j"]["gpu"])
    assert rtx["energy_j"]["dram"] is None  # logged as power statistics only, never summed in 2022
    xeon = _find(records, "Xeon(R) W-2155 - PyTorch 1.10.2+cu113", "ResNet50")
    assert xeon["energy_method"]["total"] == "counter" and xeon["device"] == "cpu"


def test_model_info_names_macs_honestly(records):
    tf = _find(records, "A100 x8 - TensorFlow 2.8.0", "ResNet50")["model_info"]
    # The TensorFlow scripts halved the profiler's float operations: the logged "flops" are MACs.
    assert tf["macs"] == 3864435640 and tf["flops"] == 2 * tf["macs"]
    assert tf["parameters"] == 25636712 and tf["weights_bytes"] == 102985688
    pt = _find(records, "Xeon(R) W-2155 - PyTorch 1.10.2+cu113", "ResNet50")["model_info"]
    assert pt["macs"] == 4121925096  # ptflops counts multiply-accumulates
    onnx = _find(records, "Xeon(R) W-2155 - ONNX PT 1.10.0", "VGG16")["model_info"]
    # onnx_opcounter.calculate_params counts parameters: no operation count is claimed.
    assert onnx["macs"] is None and onnx["flops"] is None and onnx["onnx_parameters"] == 138357544


def test_accuracy_and_time(records):
    rec = _find(records, "A100 x8 - TensorFlow 2.8.0", "VGG16")
    assert rec["metrics"]["top1"] == pytest.approx(0.6704927682876587)
    assert rec["metrics"]["top5"] == pytest.approx(0.8667868375778198)
    assert rec["duration_s"] == pytest.approx(58.51584601402283)
    assert rec["start_utc"].startswith("2022-03-03T17:17:17")
    assert rec["traces"]["pynvml_0.power_usage"]["n"] == 293


def test_training_logs_have_per_epoch_energy_and_time(records):
    trains = [r for r in records.values() if r["task"] == "training"]
    for r in trains:
        t = r["training"]
        assert t["epochs"] == len(t["history"]) == 10
        assert t["per_epoch"]["energy_j"] == pytest.approx(r["energy_j"]["total"] / 10)
        assert t["per_epoch"]["time_s"] == pytest.approx(r["duration_s"] / 10)
        assert all(h["energy_j"] is None for h in t["history"])  # the 2022 monitors kept one total per run
        assert sum(h["time_s"] for h in t["history"]) == pytest.approx(r["duration_s"], rel=0.01)
    vgg = next(r for r in trains if r["id"] == "train_2022_03_04_08_52_22")
    assert vgg["training"]["nominal_epochs"] == 90
    assert vgg["metrics"]["top1"] == pytest.approx(0.27996793389320374)  # last epoch's validation accuracy


def test_diverged_trainings_keep_nan_losses_as_null(records):
    rec = records["train_2022_03_18_09_42_52.json"]
    assert rec["training"]["nonfinite_loss_epochs"] == [7, 8, 9, 10]
    assert rec["training"]["history"][6]["loss"] is None
    json.dumps(rec, allow_nan=False)  # the record is valid JSON


def test_mlee_merge_reads_the_legacy_folder(legacy_dir, tmp_path):
    out = tmp_path / "db.json"
    result = CliRunner().invoke(app, ["merge", str(legacy_dir), "-o", str(out), "--strict"], env=ENV)
    assert result.exit_code == 0, result.output
    db = json.loads(out.read_text())
    assert len(db["records"]) == 232 and db["skipped"] == []
    assert all(r["origin_path"].startswith(f"{legacy_dir.name}/results/") for r in db["records"])
    assert len(db["summaries"]) == 232  # each model ran once per environment in 2022
    assert "232 record(s)" in result.output


def _minimal_log() -> dict:
    return {
        "directory_name": "infer_2030_01_01_00_00_00",
        "config": {"model": "ResNet50", "backend": "pytorch", "batch_size": 32},
        "execution_platform": {"Processor": "Intel(R) Xeon(R) W-2155 CPU @ 3.30GHz", "GPU": {}},
        "requirements": ["torch==1.10.2"],
        "validation": {
            "monitoring_pynvml": None,
            "monitoring_pyrapl": {"0": {"nr_measurements": 10}, "total": {"total_power_draw": 5000.0}},
            "results": {"metrics": {"accuracy": 0.7, "top_5_accuracy": 0.9, "loss": 1.0},
                        "model": {"params": 10, "fsize": 40, "flops": 100}, "start": 1.0e9, "end": 1.0e9 + 10},
            "duration": 10.0,
        },
    }


def test_a_minimal_log_converts():
    rec = convert_legacy(_minimal_log(), "infer_x.json")
    assert rec["environment"] == "Xeon(R) W-2155 - PyTorch 1.10.2"
    assert rec["per_sample"]["energy_j"]["total"] == 0.1 and rec["per_sample"]["time_ms"] == 0.2


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["validation"].pop("duration"), "validation.duration is missing"),
    (lambda d: d["validation"]["monitoring_pyrapl"]["total"].update(total_power_draw="5"), "not a number"),
    (lambda d: d["validation"]["monitoring_pyrapl"]["total"].update(total_power_draw=float("nan")), "not finite"),
    (lambda d: d["validation"].update(monitoring_pyrapl=None), "neither NVML nor RAPL"),
    (lambda d: d["config"].pop("backend"), "config.backend is missing"),
    (lambda d: d["validation"]["results"].update(model=[]), "results.model is an array"),
])
def test_broken_logs_fail_closed_naming_the_key(edit, words):
    log = _minimal_log()
    edit(log)
    with pytest.raises(ResultFormatError) as info:
        convert_legacy(log, "infer_x.json")
    assert words in str(info.value)


def test_truncated_legacy_file_is_skipped_in_a_merge(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    text = json.dumps(_minimal_log())
    (logs / "infer_2030_01_01_00_00_00.json").write_text(text)
    (logs / "infer_2030_01_01_00_00_01.json").write_text(text[:100])
    out = tmp_path / "db.json"
    result = CliRunner().invoke(app, ["merge", str(logs), "-o", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    db = json.loads(out.read_text())
    assert [r["id"] for r in db["records"]] == ["infer_2030_01_01_00_00_00"]
    assert len(db["skipped"]) == 1
    assert db["skipped"][0]["path"] == "logs/infer_2030_01_01_00_00_01.json"
    assert db["skipped"][0]["reason"].startswith("infer_2030_01_01_00_00_01.json is truncated")
    assert "truncated" in result.output
