"""`mlee card`: the model card's co2_eq_emissions and Energy section, parsed back with huggingface_hub (offline)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from results_builders import environment, make_experiment, run_merge

pytest.importorskip("huggingface_hub")
from huggingface_hub import ModelCard  # noqa: E402
from huggingface_hub.repocard import metadata_load  # noqa: E402

ENV = {"NO_COLOR": "1", "COLUMNS": "160"}
CARBON = {"country": "FRA", "intensity_g_per_kwh": 56.0, "source": "test", "pue": 1.0, "emissions_g": 0.0042}
TRAIN_CARBON = {**CARBON, "emissions_g": 12.5}
EXISTING = """---
license: apache-2.0
tags:
- image-classification
---
# MobileNetV2 fine-tuned

Some words the authors wrote.

## Energy

An old hand-written note that mlee replaces.

## Limitations

Keep this section.
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    make_experiment(results, name="resnet50", model="ResNet50")
    make_experiment(results, name="mnv2", model="MobileNetV2", overrides={"carbon": CARBON})
    make_experiment(results, name="mnv2-train", kind="train", model="MobileNetV2", start=dt.datetime(2026, 11, 21),
                    overrides={"carbon": TRAIN_CARBON})
    make_experiment(results, name="other-host", model="VGG16", env=environment(cpu_model="Intel(R) Xeon(R) W-2155"))
    make_experiment(results, name="vgg", model="VGG16")
    out = results / "merged.json"
    assert run_merge(results, "-o", out).exit_code == 0
    return out


def _invoke(*args: object):
    return CliRunner().invoke(app, ["card", *map(str, args)], env=ENV)


def test_new_card_parses_with_huggingface_hub(tmp_path, db):
    card_path = tmp_path / "card" / "README.md"
    card_path.parent.mkdir()
    result = _invoke(db, "--model", "MobileNetV2", "-o", card_path)
    assert result.exit_code == 0, result.output
    meta = metadata_load(card_path)
    co2 = meta["co2_eq_emissions"]
    # The training run's emissions, where a training run exists; weights "none" in its config: pre-training.
    assert co2 == {"emissions": 12.5, "source": "mlee", "training_type": "pre-training",
                   "geographical_location": "FRA", "hardware_used": "AMD EPYC 7B13"}
    card = ModelCard.load(card_path)
    assert card.data.co2_eq_emissions["emissions"] == 12.5
    text = card.text
    record = next(r for r in json.loads(db.read_text())["records"]
                  if r["model"] == "MobileNetV2" and r["task"] == "inference")
    per_sample = record["per_sample"]
    assert "## Energy" in text and "![Energy label: rating " in text and "(energy-label.png)" in text
    assert f"| Energy per sample (total) | {per_sample['energy_j']['total']:.4g} J | counter |" in text
    assert f"| Energy per sample (CPU) | {per_sample['energy_j']['cpu']:.4g} J | counter |" in text
    assert "GPU" not in text  # not measured: no row
    assert "spec sha256 `fd8d11d822af8a1e8ecbc75aa1b353f7a7be818b0c8d62e3828f7e2d8f866fb5`" in text
    label = card_path.parent / "energy-label.png"
    assert label.read_bytes().startswith(b"\x89PNG")


def test_update_keeps_the_rest_of_an_existing_card(tmp_path, db):
    card_path = tmp_path / "README.md"
    card_path.write_text(EXISTING)
    assert _invoke(db, "--model", "MobileNetV2", "-o", card_path).exit_code == 0
    first = card_path.read_text()
    assert _invoke(db, "--model", "MobileNetV2", "-o", card_path).exit_code == 0
    assert card_path.read_text() == first  # updating again changes nothing
    card = ModelCard.load(card_path)
    assert card.data.license == "apache-2.0" and card.data.tags == ["image-classification"]
    assert "Some words the authors wrote." in card.text and "## Limitations\n\nKeep this section." in card.text
    assert "old hand-written note" not in card.text and card.text.count("## Energy") == 1
    assert card.text.index("## Energy") < card.text.index("## Limitations")


def test_unrated_model_gets_figures_but_no_label(tmp_path, db):
    results = db.parent
    make_experiment(results, name="alone", model="EfficientNetB0", env=environment(cpu_model="Some Other CPU"))
    assert run_merge(results, "-o", db).exit_code == 0
    card_path = tmp_path / "README.md"
    result = _invoke(db, "--model", "EfficientNetB0", "-o", card_path)
    assert result.exit_code == 0, result.output
    text = ModelCard.load(card_path).text
    assert "Rating: none (not rated with spec mlee" in text and "energy-label.png" not in text
    meta = metadata_load(card_path)["co2_eq_emissions"]
    assert meta["training_type"].startswith("inference") and meta["emissions"] > 0
    assert meta["geographical_location"] == "world average (location unknown)"
    assert not (tmp_path / "energy-label.png").exists()


def test_bad_usage_exits_2_and_leaves_the_card_alone(tmp_path, db):
    card_path = tmp_path / "README.md"
    card_path.write_text(EXISTING)
    unknown = _invoke(db, "--model", "NoSuchNet", "-o", card_path)
    assert unknown.exit_code == 2 and "no completed run of model 'NoSuchNet'" in unknown.output
    ambiguous = _invoke(db, "--model", "VGG16", "-o", card_path)
    assert ambiguous.exit_code == 2 and "--env" in ambiguous.output
    assert card_path.read_text() == EXISTING
    chosen = _invoke(db, "--model", "VGG16", "--env", "AMD EPYC 7B13 - PyTorch 2.14.1", "-o", card_path)
    assert chosen.exit_code == 0, chosen.output
    folder = _invoke(db, "--model", "VGG16", "--env", "AMD EPYC 7B13 - PyTorch 2.14.1", "-o", tmp_path)
    assert folder.exit_code == 2 and "is a folder" in folder.output
    broken = tmp_path / "broken.md"
    broken.write_text("---\nlicense: [unclosed\n---\ntext\n")
    bad = _invoke(db, "--model", "VGG16", "--env", "AMD EPYC 7B13 - PyTorch 2.14.1", "-o", broken)
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert broken.read_text() == "---\nlicense: [unclosed\n---\ntext\n"
