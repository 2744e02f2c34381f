"""`mlee rate` states emissions per sample from energy, the grid's intensity and the PUE (issue 7)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlee.carbon import carbon_per_sample, intensity_for
from mlee.cli import app
from test_cli_rate import ENV, record, write_db


def test_rate_json_carries_emissions_per_sample(tmp_path):
    db = write_db(tmp_path / "db.json", record("ResNet50", energy=2.0), record("VGG16", energy=4.0))
    res = CliRunner().invoke(app, ["rate", str(db), "--json", "--country", "FRA", "--pue", "1.2"], env=ENV)
    assert res.exit_code == 0, res.output
    rated = {r["model"]: r for r in json.loads(res.stdout)}
    fra = intensity_for("FRA").g_per_kwh
    c = rated["VGG16"]["carbon"]
    assert c["emissions_g"] == pytest.approx(4.0 / 3.6e6 * 1.2 * fra)
    assert (c["country"], c["pue"], c["per"], c["estimated"]) == ("FRA", 1.2, "sample", True)


def test_rate_table_shows_emissions_and_marks_estimates(tmp_path):
    db = write_db(tmp_path / "db.json", record("ResNet50", method="estimate"), record("VGG16", energy=4.0))
    res = CliRunner().invoke(app, ["rate", str(db), "--country", "DEU"], env={**ENV, "COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Emissions per sample (estimate: grid averages)" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("ResNet50") and "DEU" in ln)
    assert "est." in line


def test_recorded_grid_is_used_unless_overridden():
    rated = {"estimated": False, "record": {"per_sample": {"energy_j": {"total": 3.6e6}},
                                            "carbon": {"country": "FRA", "pue": 2.0}}}
    own = carbon_per_sample(rated)
    assert own["country"] == "FRA" and own["emissions_g"] == pytest.approx(2.0 * intensity_for("FRA").g_per_kwh)
    assert carbon_per_sample(rated, country="DEU", pue=1.0)["emissions_g"] == pytest.approx(
        intensity_for("DEU").g_per_kwh)
    assert carbon_per_sample({"record": {"per_sample": None}}) is None


def test_rate_unknown_country_is_a_usage_error(tmp_path):
    db = write_db(tmp_path / "db.json", record("ResNet50"))
    res = CliRunner().invoke(app, ["rate", str(db), "--country", "ZZZ"], env=ENV)
    assert res.exit_code == 2 and "unknown country code 'ZZZ'" in res.output
