"""`mlee label --carbon` prints emissions per sample in the energy block, never rated (issue 7)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from mlee.carbon import intensity_for
from mlee.cli import app
from mlee.label.content import format_mass_g, label_content
from test_cli_rate import ENV, record, write_db


def test_format_mass():
    assert format_mass_g(2.5) == "2.50 g"
    assert format_mass_g(0.0025) == "2.50 mg"
    assert format_mass_g(1.05e-5) == "10.5 \u00b5g"


def test_carbon_line_joins_the_energy_block_unrated():
    rated = {"id": "x", "model": "M", "compound": "B", "metrics": {}, "estimated": False,
             "carbon": {"emissions_g": 1.05e-5, "country": "FRA", "pue": 1.4}}
    content = label_content(rated)
    energy = next(b for b in content.blocks if b.kind == "energy")
    line = energy.lines[-1]
    assert line.key == "carbon_per_sample" and line.rating is None and line.method is None
    assert line.text == "\u2248 10.5 \u00b5g" and "FRA" in line.label and "PUE 1.4" in line.label


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_label_cli_carbon(tmp_path):
    db = write_db(tmp_path / "db.json", record("ResNet50", energy=36.0), record("VGG16", energy=72.0))
    res = CliRunner().invoke(app, ["label", str(db), "--model", "VGG16", "--carbon", "--country", "FRA",
                                   "-o", str(tmp_path / "labels")], env=ENV)
    assert res.exit_code == 0, res.output
    pdf = next((tmp_path / "labels").glob("*.pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    grams = 72.0 / 3.6e6 * intensity_for("FRA").g_per_kwh
    assert "CO2e/sample, FRA" in text
    assert format_mass_g(grams) == "1.12 mg" and "1.12 mg" in text
    plain = CliRunner().invoke(app, ["label", str(db), "--model", "VGG16", "-o", str(tmp_path / "plain")], env=ENV)
    assert plain.exit_code == 0
    text = subprocess.run(["pdftotext", str(next((tmp_path / "plain").glob("*.pdf"))), "-"],
                          capture_output=True, text=True).stdout
    assert "CO2e" not in text


def test_country_without_carbon_is_a_usage_error(tmp_path):
    db = write_db(tmp_path / "db.json", record("ResNet50"))
    res = CliRunner().invoke(app, ["label", str(db), "--all", "--country", "FRA", "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 2 and "--carbon" in res.output
