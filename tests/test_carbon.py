"""Carbon arithmetic against codecarbon's bundled table, read as a file."""

from __future__ import annotations

import json
import sys

import pytest

from mlee.carbon import WORLD, emissions, intensity_for
from mlee.errors import UsageError


def test_germany_intensity_matches_bundled_table():
    import importlib.util
    from pathlib import Path

    base = Path(list(importlib.util.find_spec("codecarbon").submodule_search_locations)[0])
    table = json.loads((base / "data/private_infra/global_energy_mix.json").read_text())
    got = intensity_for("deu")
    assert got.country == "DEU"
    assert got.g_per_kwh == pytest.approx(table["DEU"]["carbon_intensity"])
    assert got.year == table["DEU"]["year"]
    assert "DEU" in got.source and "codecarbon" in got.source


def test_emissions_arithmetic():
    fra = intensity_for("FRA")
    one_kwh = 3.6e6
    rec = emissions(one_kwh, fra, pue=1.5)
    assert rec["emissions_g"] == pytest.approx(1.5 * fra.g_per_kwh)
    assert rec["pue"] == 1.5 and rec["country"] == "FRA"
    assert emissions(0.0, fra)["emissions_g"] == 0.0


def test_world_default_is_stated():
    w = intensity_for(None)
    assert w.country == WORLD and w.g_per_kwh == 475.0


def test_unknown_country_names_closest():
    with pytest.raises(UsageError) as info:
        intensity_for("DEX")
    assert "DEX" in str(info.value) and "DEU" in str(info.value)


def test_country_name_instead_of_code_is_suggested():
    with pytest.raises(UsageError) as info:
        intensity_for("France")
    assert "FRA" in str(info.value)


def test_bad_pue():
    with pytest.raises(UsageError, match="PUE"):
        emissions(1.0, intensity_for("DEU"), pue=0.5)


def test_codecarbon_not_imported():
    import subprocess

    code = "import sys; from mlee.carbon import intensity_for; intensity_for('DEU'); print('codecarbon' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
