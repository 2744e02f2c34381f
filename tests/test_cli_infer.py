"""`mlee infer`, `mlee train` and `mlee models` through the CLI: output, exit codes, folders of failed runs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from test_runners_support import TickingRapl
from typer.testing import CliRunner

from mlee.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}
QUICK = ["--batch-size", "2", "--n-batches", "2", "--input-size", "64", "--threads", "1", "--warmup-batches", "1"]


@pytest.fixture
def rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with TickingRapl(tmp_path / "powercap") as tree:
        monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(tree.root))
        yield tree


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args, env=ENV)


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the console width


def _folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def _assert_failed_run(result, out: Path, code: int, *needles: str) -> dict:
    """One clear error, the documented exit code, and the folder kept with status failed."""
    assert result.exit_code == code, result.output
    err = _flat(result.stderr)
    assert err.count("error:") == 1, result.stderr
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in result.output
    [folder] = _folders(out)
    assert folder.name in err  # the message says where the failed run is recorded
    r = _results(folder)
    assert r["status"] == "failed"
    assert needles[0] in r["error"]
    return r


def _assert_usage_error(result, out: Path, *needles: str) -> None:
    """Exit 2, one clear error line naming the problem, and no folder left behind (issue 13 item 6)."""
    assert result.exit_code == 2, result.output
    err = _flat(result.stderr)
    assert err.count("error:") == 1, result.stderr
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in result.output
    assert _folders(out) == [] if out.exists() else True


def test_models_table_and_json() -> None:
    result = _invoke(["models"])
    assert result.exit_code == 0
    assert "ResNet50" in result.stdout and "25,557,032" in result.stdout and "ViT-B/16" in result.stdout
    rows = json.loads(_invoke(["models", "--json"]).stdout)
    assert len(rows) == 30
    by_name = {r["name"]: r for r in rows}
    assert by_name["EfficientNetB7"]["tensorflow"]["input_size"] == 600
    assert by_name["Xception"]["pytorch"] is None
    tf_rows = json.loads(_invoke(["models", "--backend", "tensorflow", "--json"]).stdout)
    assert len(tf_rows) == 23 and "ResNeXt50" not in {r["name"] for r in tf_rows}
    bad = _invoke(["models", "--backend", "jax"])
    assert bad.exit_code == 2 and "unknown backend 'jax'" in bad.stderr


def test_infer_one_model_prints_the_summary(tmp_path: Path, rapl: TickingRapl) -> None:
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--repeat", "2", *QUICK])
    assert result.exit_code == 0, result.output
    assert "MobileNetV3Small" in result.stdout and "completed" in result.stdout
    assert "J (counter)" in result.stdout
    [folder] = _folders(out)
    r = _results(folder)
    assert r["status"] == "completed" and r["repeats"]["n"] == 2 and r["n_samples"] == 4
    assert "models" not in result.stderr  # no progress bar when stderr is not a terminal


def test_infer_json_output(tmp_path: Path, rapl: TickingRapl) -> None:
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--json", *QUICK])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert entry["status"] == "completed" and entry["results"]["per_sample"]["energy_method"]["cpu"] == "counter"


def test_several_models_one_failing(tmp_path: Path, rapl: TickingRapl) -> None:
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small,NoSuchNet", "-o", str(out), *QUICK])
    # An unknown model is a usage error found before any model runs: nothing is measured, no folder is made.
    _assert_usage_error(result, out, "unknown model 'NoSuchNet'")
    assert "completed" not in result.stdout


def test_several_models_on_a_missing_device_record_each_failure(tmp_path: Path, rapl: TickingRapl) -> None:
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-m", "MobileNetV3Large", "-o", str(out), "--device",
                      "cuda:7", *QUICK])
    assert result.exit_code == 3  # the device is found missing only when a run starts; each run is recorded
    assert sorted(_results(f)["status"] for f in _folders(out)) == ["failed", "failed"]


@pytest.mark.parametrize("args, code, needle", [
    (["--batch-size", "0"], 2, "--batch-size 0 must be a positive whole number"),
    (["--backend", "tensorflw"], 2, "unknown backend 'tensorflw'"),
    (["--n-samples", "3"], 2, "--n-batches and --n-samples both given"),
    (["--device", "cuda"], 3, "no CUDA GPU is visible"),
    (["--device", "tpu"], 2, "unknown device 'tpu'"),
    (["--weights", "/no/such/file.pt"], 2, "weights file /no/such/file.pt does not exist"),
])
def test_bad_options(tmp_path: Path, rapl: TickingRapl, args: list[str], code: int, needle: str) -> None:
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), *QUICK, *args])
    if code == 2:  # a usage error leaves no folder behind
        _assert_usage_error(result, out, needle)
    else:
        _assert_failed_run(result, out, code, needle)


def test_unknown_model_lists_the_closest(tmp_path: Path, rapl: TickingRapl) -> None:
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "efficientnet-b9", "-o", str(out), *QUICK])
    _assert_usage_error(result, out, "unknown model 'efficientnet-b9'", "EfficientNetB")


def test_data_path_missing_empty_and_corrupt(tmp_path: Path, rapl: TickingRapl) -> None:
    base = ["infer", "-m", "MobileNetV3Small", *QUICK]
    out = tmp_path / "r1"
    _assert_usage_error(_invoke([*base, "-o", str(out), "--data-path", str(tmp_path / "nope")]), out,
                        "does not exist")
    empty = tmp_path / "empty"
    (empty / "val" / "n01").mkdir(parents=True)
    out = tmp_path / "r2"
    _assert_failed_run(_invoke([*base, "-o", str(out), "--data-path", str(empty)]), out, 1, "no images under")
    broken = tmp_path / "broken"
    (broken / "val" / "n01").mkdir(parents=True)
    Image.new("RGB", (40, 40), (9, 9, 9)).save(broken / "val" / "n01" / "ok.JPEG")
    for i in range(3):
        (broken / "val" / "n01" / f"bad{i}.JPEG").write_bytes(b"\x00garbage")
    out = tmp_path / "r3"
    _assert_failed_run(_invoke([*base, "-o", str(out), "--data-path", str(broken)]), out, 1,
                       "could not be read", "--max-corrupt")


def test_pretrained_offline_fails_fast(tmp_path: Path, rapl: TickingRapl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # nothing cached
    out = tmp_path / "results"
    started = time.monotonic()
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--weights", "pretrained", *QUICK])
    assert time.monotonic() - started < 60
    _assert_failed_run(result, out, 1, "pretrained weights are not cached", "--weights none")


def test_bad_checkpoint_file(tmp_path: Path, rapl: TickingRapl) -> None:
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"not a checkpoint")
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--weights", str(ckpt), *QUICK])
    _assert_failed_run(result, out, 1, f"cannot read checkpoint {ckpt}")


def test_framework_not_installed_names_the_extra(tmp_path: Path, rapl: TickingRapl,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now raises ImportError
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-b", "tensorflow", "-o", str(out), *QUICK])
    _assert_failed_run(result, out, 1, "the tensorflow backend needs tensorflow", 'pip install "mlee[tensorflow]"')


def test_out_of_memory_is_one_line(tmp_path: Path, rapl: TickingRapl, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlee.runners import torch_backend

    def oom(self, batches, on_batch=None):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(torch_backend.TorchEngine, "infer", oom)
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), *QUICK])
    _assert_failed_run(result, out, 1, "out of memory with --batch-size 2", "lower --batch-size")


def test_train_synthetic_and_onnx_refused(tmp_path: Path, rapl: TickingRapl) -> None:
    out = tmp_path / "results"
    result = _invoke(["train", "-m", "MobileNetV3Small", "--dataset", "synthetic", "--epochs", "2", "-o", str(out),
                      "--lr", "0.001", "--optimizer", "adam", *QUICK])
    assert result.exit_code == 0, result.output
    assert "energy/epoch" in result.stdout
    [folder] = _folders(out)
    r = _results(folder)
    assert folder.name.startswith("train-MobileNetV3Small-")
    assert r["task"] == "training" and len(r["training"]["history"]) == 2
    assert r["training"]["optimizer"] == "adam"
    out2 = tmp_path / "onnx"
    refused = _invoke(["train", "-m", "MobileNetV3Small", "-b", "onnx", "-o", str(out2), *QUICK])
    _assert_usage_error(refused, out2, "the onnx backend runs inference only")


def test_bar_progress_counts_models_and_batches() -> None:
    from mlee.commands._modelruns import _BarProgress

    class Bar:
        def __init__(self) -> None:
            self.tasks: dict[int, dict] = {}

        def add_task(self, description: str, total: int) -> int:
            self.tasks[len(self.tasks)] = {"description": description, "total": total, "completed": 0}
            return len(self.tasks) - 1

        def update(self, task: int, **fields) -> None:
            self.tasks[task].update(fields)

        def advance(self, task: int, n: int = 1) -> None:
            self.tasks[task]["completed"] += n

    bar = Bar()
    p = _BarProgress(bar)
    p.start_model("ResNet50", 0, 2)
    p.phase("repeat 1/1", 3)
    for _ in range(3):
        p.advance()
    p.end_model(None)
    p.start_model("VGG16", 1, 2)
    p.phase("warm-up", 2)
    assert bar.tasks[0]["completed"] == 1 and bar.tasks[0]["total"] == 2
    assert bar.tasks[1] == {"description": "VGG16: warm-up", "total": 2, "completed": 0}


def test_image_folder_gives_real_accuracy(tmp_path: Path, rapl: TickingRapl) -> None:
    root = tmp_path / "imagenet"
    for c, cls in enumerate(("n01", "n02")):
        for i in range(3):
            (root / "val" / cls).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (80, 60), (c * 200, i * 40, 50)).save(root / "val" / cls / f"{i}.JPEG")
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--data-path", str(root),
                      "--batch-size", "4", "--input-size", "64", "--threads", "1", "--warmup-batches", "1"])
    assert result.exit_code == 0, result.output
    [folder] = _folders(out)
    r = _results(folder)
    assert r["dataset"] == "imagenet" and r["n_samples"] == 6
    assert r["dataset_info"]["layout"] == "imagefolder" and r["dataset_info"]["n_classes"] == 2
    assert 0.0 <= r["metrics"]["top1"] <= r["metrics"]["top5"] <= 1.0  # real labels: measured
    assert r["metrics"]["loss"] > 0


def test_interrupt_records_the_run(tmp_path: Path, rapl: TickingRapl, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlee.runners import torch_backend

    def interrupted(self, batches, on_batch=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch_backend.TorchEngine, "infer", interrupted)
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small,MobileNetV2", "-o", str(out), *QUICK])
    assert result.exit_code == 130
    [folder] = _folders(out)  # the second model never started
    assert _results(folder)["status"] == "interrupted"
    assert "interrupted while running MobileNetV3Small" in _flat(result.stderr)


def test_corrupt_cached_pretrained_weights(tmp_path: Path, rapl: TickingRapl, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    url = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.url
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated download")  # cached: no network is tried, the file itself is bad
    out = tmp_path / "results"
    result = _invoke(["infer", "-m", "MobileNetV3Small", "-o", str(out), "--weights", "pretrained", *QUICK])
    _assert_failed_run(result, out, 1, "pretrained weights of MobileNetV3Small in", "delete that file")
