"""`mlee label` end to end: experiment folders -> `mlee merge` database -> label files."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.results import merge_into
from results_builders import make_experiment

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}
CPU_ENV = "AMD EPYC 7B13 - PyTorch 2.14.1"

#: model -> (parameters, flops, weights bytes, energy per sample J, time per sample ms, top1, top5)
FIGURES = {
    "ResNet50": (25.6e6, 8.2e9, 102e6, 0.55, 11.0, 0.761, 0.929),
    "ResNet101": (44.5e6, 15.6e9, 178e6, 1.00, 20.0, 0.774, 0.936),
    "MobileNetV2": (3.5e6, 0.6e9, 14e6, 0.12, 3.0, 0.718, 0.904),
}


def experiment(root: Path, model: str, *, figures: tuple | None = None, day: int = 22,
               sources: tuple | None = None, name: str | None = None) -> Path:
    params, flops, size_b, energy_j, time_ms, top1, top5 = figures or FIGURES[model]
    kw = {"sources": sources} if sources else {}
    return make_experiment(
        root, name=name or model.lower(), model=model, start=dt.datetime(2026, 11, day, 7, 1, 2), **kw,
        overrides={"dataset": "imagenet", "metrics": {"top1": top1, "top5": top5, "loss": None},
                   "model_info": {"parameters": params, "flops": flops, "macs": flops / 2, "weights_bytes": size_b},
                   "per_sample": {"energy_j": {"total": energy_j, "cpu": energy_j, "dram": None, "gpu": None},
                                  "energy_method": {"total": "counter", "cpu": "counter", "dram": None,
                                                    "gpu": None},
                                  "time_ms": time_ms, "throughput_per_s": 1000.0 / time_ms}})


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """results/ with three models' runs and results/merged.json."""
    root = tmp_path / "results"
    root.mkdir()
    for model in FIGURES:
        experiment(root, model)
    merge_into(root / "merged.json", [root])
    return root


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def err(r) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(r.stderr.split())


def _written(stdout: str) -> list[Path]:
    return [Path(line) for line in stdout.splitlines() if line.strip()]


def test_all_models_get_a_label_and_the_files_are_listed(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels"
    r = invoke("label", str(results / "merged.json"), "--all", "-o", str(out))
    assert r.exit_code == 0, r.output
    files = _written(r.stdout)
    assert len(files) == 3 and all(f.is_file() and f.suffix == ".pdf" for f in files)
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)
    assert all(f.read_bytes().startswith(b"%PDF-") for f in files)
    assert any(f.name.startswith("MobileNetV2--AMD-EPYC-7B13-PyTorch-2.14.1--inference-imagenet-") for f in files)
    assert f"wrote 3 PDF label(s) to {out.resolve()}" in err(r)


def test_one_model_and_the_pdf_text(results: Path, tmp_path: Path) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed (poppler-utils)")
    r = invoke("label", str(results / "merged.json"), "--model", "MobileNetV2", "--env", CPU_ENV,
               "-o", str(tmp_path / "l"))
    assert r.exit_code == 0, r.output
    (pdf,) = _written(r.stdout)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True).stdout.decode()
    assert "MobileNetV2" in text and "0.120 J" in text and "3.00 ms" in text and "71.8 %" in text
    assert "reference ResNet50" in text  # the default spec is the project's own, `mlee`


def test_same_command_twice_gives_the_same_bytes(results: Path, tmp_path: Path) -> None:
    digests = []
    for out in ("a", "b"):
        r = invoke("label", str(results / "merged.json"), "--all", "-o", str(tmp_path / out), "--spec", "mlee-2022")
        assert r.exit_code == 0, r.output
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in _written(r.stdout)})
    assert digests[0] == digests[1] and len(digests[0]) == 3


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_other_formats(fmt: str, magic: bytes, results: Path, tmp_path: Path) -> None:
    from mlee.label import png_support

    if fmt == "png" and png_support() is None:
        pytest.skip("no PNG renderer (rlPyCairo or pdftoppm)")
    r = invoke("label", str(results / "merged.json"), "--model", "ResNet50", "--format", fmt, "-o", str(tmp_path))
    assert r.exit_code == 0, r.output
    (path,) = _written(r.stdout)
    assert path.suffix == f".{fmt}" and path.read_bytes().startswith(magic)


@pytest.mark.parametrize("args, words", [
    ((), "say which labels to render"),
    (("--all", "--model", "ResNet50"), "--all cannot be combined"),
    (("--model", "VGG16"), "ResNet101; ResNet50"),
    (("--model", "ResNet50", "--env", "TPU v4 - JAX"), CPU_ENV),
    (("--all", "--format", "gif"), "unknown --format 'gif'"),
    (("--all", "--qr-url", "https://e.org/{nope}"), "unknown placeholder {nope}"),
    (("--all", "--spec", "no-such-spec"), "no rating spec 'no-such-spec'"),
])
def test_bad_requests_are_usage_errors_naming_the_fix(args: tuple, words: str, results: Path,
                                                      tmp_path: Path) -> None:
    r = invoke("label", str(results / "merged.json"), *args, "-o", str(tmp_path / "l"))
    assert r.exit_code == 2, r.output
    assert words in err(r)
    assert "Traceback" not in r.output and not (tmp_path / "l").exists()


def test_missing_database_is_a_usage_error(tmp_path: Path) -> None:
    r = invoke("label", str(tmp_path / "nope.json"), "--all")
    assert r.exit_code == 2 and "does not exist" in err(r)


def test_an_experiment_folder_is_rated_against_the_database_beside_it(results: Path, tmp_path: Path) -> None:
    folder = experiment(results, "MobileNetV2", name="mobilenet-again", day=23,
                        figures=(3.5e6, 0.6e9, 14e6, 0.30, 3.0, 0.718, 0.904))
    r = invoke("label", str(folder), "-o", str(tmp_path / "l"), "--format", "svg")
    assert r.exit_code == 0, r.output
    (svg,) = _written(r.stdout)
    text = svg.read_text(encoding="utf-8")
    # This run alone (0.30 J, not the merged run's 0.12 J), dated by its own start.
    assert "0.300 J" in text and "0.120 J" not in text and "2026-11-23" in text


def test_an_experiment_without_a_reference_says_what_to_measure(tmp_path: Path) -> None:
    folder = experiment(tmp_path / "results", "MobileNetV2")
    r = invoke("label", str(folder), "-o", str(tmp_path / "l"))
    assert r.exit_code == 1, r.output
    assert "no reference model ResNet50" in err(r) and "mlee infer --model ResNet50" in err(r)
    assert "there is no database beside the experiment" in err(r)


def test_the_reference_run_alone_can_be_labelled(tmp_path: Path) -> None:
    folder = experiment(tmp_path / "results", "ResNet50")
    r = invoke("label", str(folder), "-o", str(tmp_path / "l"))
    assert r.exit_code == 0, r.output
    assert len(_written(r.stdout)) == 1


def test_selection_options_do_not_apply_to_an_experiment_folder(results: Path, tmp_path: Path) -> None:
    folder = next(p for p in results.iterdir() if p.is_dir() and "resnet50" in p.name)
    r = invoke("label", str(folder), "--model", "ResNet50", "-o", str(tmp_path / "l"))
    assert r.exit_code == 2 and "experiment folder holds one run" in err(r)


def test_a_plain_folder_is_not_an_experiment(tmp_path: Path) -> None:
    r = invoke("label", str(tmp_path), "-o", str(tmp_path / "l"))
    assert r.exit_code == 2 and "not an experiment folder" in err(r)


def test_hostile_model_names_give_safe_file_names_and_a_font_warning(tmp_path: Path) -> None:
    root = tmp_path / "results"
    root.mkdir()
    experiment(root, "ResNet50")
    hostile = "../<b>&amp; \u041c\u043e\u0434\u0435\u043b\u044c \u6a21\u578b\U00013000/x:y " + "z" * 200
    experiment(root, hostile, name="hostile", figures=FIGURES["MobileNetV2"])
    merge_into(root / "merged.json", [root])
    out = tmp_path / "labels"
    r = invoke("label", str(root / "merged.json"), "--all", "-o", str(out))
    assert r.exit_code == 0, r.output
    files = _written(r.stdout)
    assert len(files) == 2 and all(f.parent == out and f.is_file() for f in files)
    assert all(set(f.name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")
               for f in files)
    assert "drawn as \ufffd" in err(r) and "MLEE_LABEL_FONTS" in err(r)


def test_a_file_where_the_folder_should_be_is_a_usage_error(results: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for output in (blocker / "sub", blocker):
        r = invoke("label", str(results / "merged.json"), "--all", "-o", str(output))
        assert r.exit_code == 2, r.output
        assert f"{blocker} is a file, not a folder" in err(r) and "Traceback" not in r.output
    assert blocker.read_text() == "x"
