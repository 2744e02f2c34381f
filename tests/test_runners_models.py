"""Real small models on the CPU in every backend, measured by a powercap tree that moves at known power."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runners_support import CPU_W, DRAM_W, TickingRapl

from mlee.runners.modelrun import run_model
from mlee.runners.options import RunOptions

# keras 3 on numpy 2 warns about __array__(copy=...) on every predict; it is keras's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with TickingRapl(tmp_path / "powercap") as tree:
        monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(tree.root))
        yield tree


def _run(tmp_path: Path, model: str, **options):
    outcome = run_model(model, RunOptions(**options), {"output_dir": tmp_path / "results", "interval_s": 0.05})
    assert outcome.error is None, outcome.error
    results = json.loads((outcome.folder / "results.json").read_text())
    config = json.loads((outcome.folder / "config.json").read_text())
    return outcome, results, config


def _check_per_sample_arithmetic(results: dict) -> None:
    """per_sample is the mean over the measured windows of energy / n and time / n, to the last digit."""
    measured = [w for w in results["windows"] if w["measured"]]
    assert len(measured) == results["repeats"]["n"]
    n = results["n_samples"]
    energies = [w["energy_j"]["total"] / n for w in measured]
    times = [w["duration_s"] * 1000 / n for w in measured]
    assert results["per_sample"]["energy_j"]["total"] == pytest.approx(sum(energies) / len(energies), rel=1e-12)
    assert results["per_sample"]["time_ms"] == pytest.approx(sum(times) / len(times), rel=1e-12)
    # The fake counters move at CPU_W + DRAM_W: the session's energy is that power x its duration
    # (over seconds; a window of a few ms may fall between two ticks of the fake counter). The fake ticks
    # from a thread of this process, which a loaded machine can hold back for a while: up to lag_s of
    # ticks may be missing at either end of the session.
    lag_s = 0.15
    assert results["energy_j"]["total"] == pytest.approx((CPU_W + DRAM_W) * results["duration_s"], rel=0.1,
                                                         abs=(CPU_W + DRAM_W) * lag_s)
    assert results["energy_j"]["dram"] == pytest.approx(DRAM_W * results["duration_s"], rel=0.1, abs=DRAM_W * lag_s)
    assert all(w["energy_j"]["total"] >= 0 for w in measured)
    assert results["per_sample"]["energy_method"] == {"total": "counter", "cpu": "counter", "dram": "counter",
                                                      "gpu": None}
    assert results["per_sample"]["energy_j"]["gpu"] is None


def test_pytorch_mobilenet_v3_small_inference(tmp_path: Path, rapl: TickingRapl) -> None:
    import torch

    outcome, r, config = _run(tmp_path, "mobilenet_v3_small", backend="pytorch", batch_size=2, n_batches=2,
                              repeat=2, input_size=64, threads=1)
    assert outcome.status == "completed" and outcome.model == "MobileNetV3Small"
    assert outcome.folder.name.startswith("infer-MobileNetV3Small-")
    assert r["task"] == "inference" and r["model"] == "MobileNetV3Small" and r["status"] == "completed"
    assert r["backend"] == {"name": "pytorch", "version": torch.__version__}
    assert (r["dataset"], r["n_samples"], r["batch_size"], r["device"]) == ("synthetic", 4, 2, "cpu")
    assert r["metrics"] == {"top1": None, "top5": None, "loss": None}  # random inputs: not measured, not 0
    info = r["model_info"]
    assert info["parameters"] == 2542856
    assert info["flops"] == 2 * info["macs"] and info["macs"] > 0
    assert 9_000_000 < info["weights_bytes"] < 12_000_000  # float32 state_dict of 2.5 M parameters
    _check_per_sample_arithmetic(r)
    assert r["repeats"]["per_sample_time_ms"]["std"] is not None
    names = [(w["name"], w["measured"]) for w in r["windows"]]
    assert ("build", False) in names and ("warmup", False) in names
    assert [n for n, m in names if m] == ["repeat-0", "repeat-1"]
    assert r["preprocessing"]["input_size"] == 64
    for key in ("batch_size", "n_batches", "seed", "warmup_batches", "repeat", "weights", "device", "input_size"):
        assert key in config
    assert config["model"] == "MobileNetV3Small" and config["kind"] == "infer"


@pytest.mark.filterwarnings("ignore::UserWarning")  # keras lists the layers a wrong checkpoint lacks
def test_tensorflow_mobilenet_v3_small_inference_and_checkpoints(tmp_path: Path, rapl: TickingRapl) -> None:
    from mlee.runners.tf_backend import import_tf

    tf = import_tf()
    ckpt = tmp_path / "small.weights.h5"
    tf.keras.applications.MobileNetV3Small(weights=None, input_shape=(64, 64, 3),
                                           classifier_activation=None).save_weights(ckpt)
    outcome, r, _ = _run(tmp_path, "MobileNetV3Small", backend="tensorflow", batch_size=2, n_batches=2,
                         input_size=64, weights=str(ckpt))
    assert r["backend"]["name"] == "tensorflow" and r["backend"]["version"] == tf.__version__
    assert r["model_info"]["parameters"] == 2554968
    assert r["model_info"]["flops"] == 2 * r["model_info"]["macs"]
    assert 9_000_000 < r["model_info"]["weights_bytes"] < 13_000_000
    assert r["preprocessing"]["layout"] == "nhwc"
    _check_per_sample_arithmetic(r)
    # weights of another architecture are refused with the model's name, and the folder says failed
    wrong = run_model("MobileNetV3Large", RunOptions(backend="tensorflow", batch_size=2, n_batches=1, input_size=64,
                                                     weights=str(ckpt)), {"output_dir": tmp_path / "results"})
    assert wrong.status == "failed" and "does not fit MobileNetV3Large" in str(wrong.error)
    assert json.loads((wrong.folder / "results.json").read_text())["status"] == "failed"


def test_onnx_exported_from_pytorch(tmp_path: Path, rapl: TickingRapl) -> None:
    outcome, r, _ = _run(tmp_path, "MobileNetV3Small", backend="onnx", onnx_source="pytorch", batch_size=2,
                         n_samples=3, input_size=64)
    assert r["backend"]["name"] == "onnx" and r["backend"]["source"]["name"] == "pytorch"
    assert r["n_samples"] == 3  # a short last batch
    names = [w["name"] for w in r["windows"] if not w["measured"]]
    assert "export" in names  # the export is recorded outside the measured window
    assert r["model_info"]["parameters"] == 2542856 and r["model_info"]["weights_bytes"] > 9_000_000
    _check_per_sample_arithmetic(r)


def test_onnx_exported_from_tensorflow(tmp_path: Path, rapl: TickingRapl) -> None:
    pytest.importorskip("tf2onnx")
    _, r, _ = _run(tmp_path, "MobileNetV3Small", backend="onnx", onnx_source="tensorflow", batch_size=2,
                   n_batches=1, input_size=64)
    assert r["backend"]["source"]["name"] == "tensorflow" and r["backend"]["exporter"].startswith("tf2onnx")
    _check_per_sample_arithmetic(r)


def test_training_on_digits_learns_and_its_checkpoint_reloads(tmp_path: Path, rapl: TickingRapl) -> None:
    ckpt = tmp_path / "digits.pt"
    _, r, _ = _run(tmp_path, "MobileNetV2", task="training", backend="pytorch", dataset="digits", input_size=32,
                   epochs=2, optimizer="adam", lr=0.003, batch_size=32, threads=1, save_weights=ckpt)
    t = r["training"]
    assert r["task"] == "training" and t["epochs"] == 2 and t["nominal_epochs"] == 2
    assert r["metrics"]["top1"] > 0.5  # held-out digits, chance is 0.1
    assert r["metrics"]["top5"] >= r["metrics"]["top1"]
    assert [h["epoch"] for h in t["history"]] == [1, 2]
    assert t["history"][-1]["val_top1"] == r["metrics"]["top1"]
    assert t["total"]["energy_j"] == pytest.approx(sum(h["energy_j"] for h in t["history"]))
    assert t["per_epoch"]["time_s"] == pytest.approx(t["total"]["time_s"] / 2)
    assert r["n_samples"] == 2 * t["train_samples_per_epoch"]
    assert [w["name"] for w in r["windows"] if w["measured"]] == ["epoch-1", "epoch-2"]
    # The saved weights give the same held-out accuracy when loaded by `mlee infer --weights PATH`.
    _, again, _ = _run(tmp_path, "MobileNetV2", backend="pytorch", dataset="digits", input_size=32,
                       weights=str(ckpt), batch_size=32, threads=1, warmup_batches=0)
    assert again["metrics"]["top1"] == pytest.approx(r["metrics"]["top1"])


def test_training_stops_at_the_time_budget(tmp_path: Path, rapl: TickingRapl) -> None:
    _, r, _ = _run(tmp_path, "MobileNetV3Small", task="training", backend="tensorflow", dataset="synthetic",
                   input_size=32, batch_size=2, n_batches=400, epochs=3, max_seconds=1.0, warmup_batches=1)
    t = r["training"]
    assert t["stopped_by"] == "max_seconds" and t["epochs"] == 1
    assert 0 < t["epochs_run"] < 1
    assert r["n_samples"] < 800
    assert t["per_epoch"]["energy_j"] == pytest.approx(t["total"]["energy_j"] / t["epochs_run"])
    assert t["history"][0]["top1"] is None  # random labels: accuracy is not measured
    assert r["metrics"] == {"top1": None, "top5": None, "loss": None}
    measured = [w for w in r["windows"] if w["measured"]]
    assert measured[0]["n_samples"] == r["n_samples"]
