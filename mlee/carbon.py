"""Emissions from energy: gCO2e = energy [kWh] x PUE x carbon intensity [gCO2e/kWh].

Intensities come from the per-country table codecarbon ships inside its package
(``data/private_infra/global_energy_mix.json``, Our World in Data), read as a file: codecarbon
itself is not imported, nothing is looked up on the network, and the location is never guessed.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mlee.errors import ResultFormatError, UsageError

#: Used when no country is given: the world average codecarbon ships (IEA, 475 gCO2e/kWh).
WORLD = "WORLD"
#: The grid of a measurement when neither the run nor ``MLEE_COUNTRY`` names one.
DEFAULT_COUNTRY = "DEU"
ENV_COUNTRY = "MLEE_COUNTRY"

_J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class CarbonIntensity:
    """Grid carbon intensity of one country.

    Units: ``g_per_kwh`` grams CO2-equivalent per kilowatt-hour; ``year`` the data's year (None if unstated).
    """

    country: str
    country_name: str
    g_per_kwh: float
    year: int | None
    source: str


def _codecarbon_data_dir() -> Path:
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("codecarbon is not installed, so no carbon intensity table is available",
                         "pip install codecarbon (a dependency of mlee)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "private_infra"


@functools.lru_cache(maxsize=8)
def _load(data_dir: Path | None) -> tuple[dict, dict]:
    base = data_dir or _codecarbon_data_dir()
    try:
        mix = json.loads((base / "global_energy_mix.json").read_text(encoding="utf-8"))
        per_source = json.loads((base / "carbon_intensity_per_source.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultFormatError(f"cannot read codecarbon's carbon intensity table in {base}: {exc}",
                                "reinstall codecarbon: pip install --force-reinstall codecarbon") from exc
    return mix, per_source


def resolve_country(country: str | None) -> str:
    """The ISO 3166-1 alpha-3 country to use: the argument, ``MLEE_COUNTRY``, or the default (DEU).

    Raises:
        UsageError: not three letters.
    """
    code = (country or os.environ.get(ENV_COUNTRY) or DEFAULT_COUNTRY).strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise UsageError(f"country {code!r} is not an ISO 3166-1 alpha-3 code",
                         fix="use three letters, e.g. --country DEU, USA, FRA")
    return code


def check_country(code: str) -> None:
    """Refuse a country codecarbon has no data for, before anything runs.

    Raises:
        UsageError: unknown country (the message lists the closest codes).
    """
    intensity_for(code)


def intensity_for(country: str | None = None, data_dir: Path | None = None) -> CarbonIntensity:
    """The carbon intensity of ``country`` (ISO 3166-1 alpha-3, e.g. ``DEU``) or the world average.

    Raises:
        UsageError: unknown country code (the message lists the closest codes).
    """
    mix, per_source = _load(data_dir)
    code = (country or WORLD).strip().upper()
    version = _codecarbon_version()
    if code == WORLD:
        return CarbonIntensity(WORLD, "World average", float(per_source["world_average"]), 2019,
                               f"codecarbon {version} bundled table: world average (IEA Global Energy & CO2 Status Report 2019)")
    row = mix.get(code)
    if row is None or "carbon_intensity" not in row:
        names = {k: v.get("country_name", "") for k, v in mix.items()}
        by_name = [k for k, n in names.items() if n.lower() == code.lower()]
        hint = by_name or difflib.get_close_matches(code, list(names), n=3)
        closest = ", ".join(f"{k} ({names[k]})" for k in hint) or "none"
        raise UsageError(f"unknown country code {country!r} for carbon intensity; closest: {closest}",
                         "use an ISO 3166-1 alpha-3 code such as DEU, FRA, USA, or WORLD for the world average")
    year = row.get("year")
    return CarbonIntensity(code, str(row.get("country_name", code)), float(row["carbon_intensity"]),
                           int(year) if isinstance(year, (int, float)) else None,
                           f"codecarbon {version} bundled table: Our World in Data energy mix, {code} {year}")


def emissions(energy_j: float, intensity: CarbonIntensity, pue: float = 1.0) -> dict:
    """Emissions of ``energy_j`` joules drawn at ``pue`` (facility energy / IT energy) on ``intensity``'s grid.

    Units: ``energy_j`` joules; returned ``emissions_g`` grams CO2e; ``intensity_g_per_kwh`` gCO2e/kWh.

    Raises:
        UsageError: PUE below 1 or energy negative.
    """
    if not pue >= 1.0:
        raise UsageError(f"PUE must be at least 1.0, got {pue}", "pass --pue 1.0 for no facility overhead")
    if not energy_j >= 0:
        raise UsageError(f"energy must be a non-negative number of joules, got {energy_j}")
    record = asdict(intensity)
    record["intensity_g_per_kwh"] = record.pop("g_per_kwh")
    record.update(pue=pue, energy_j=energy_j, emissions_g=energy_j / _J_PER_KWH * pue * intensity.g_per_kwh)
    return record


@functools.lru_cache(maxsize=1)
def _codecarbon_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("codecarbon")
    except PackageNotFoundError:  # pragma: no cover - find_spec already required it
        return "unknown"


def per_sample_energy_j(record: dict) -> float | None:
    """Energy per sample of a database record or summary (the mean over repeats for a summary).

    Units: joules.
    """
    block = (record.get("per_sample") or {}).get("energy_j")
    if isinstance(block, dict):
        value = block.get("total", block.get("mean"))
    else:
        value = block
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def carbon_per_sample(rated: dict, country: str | None = None, pue: float | None = None,
                      data_dir: Path | None = None) -> dict | None:
    """Emissions per sample of one rated record (``mlee.rating.rate_database`` output).

    The grid is ``country`` when given, else the one the run recorded, else ``MLEE_COUNTRY`` or the default;
    likewise ``pue``. None when the record has no energy per sample. Always an estimate (grid averages).

    Units: ``emissions_g`` grams CO2e per sample.
    """
    record = rated.get("record") or {}
    energy_j = per_sample_energy_j(record)
    if energy_j is None:
        return None
    own = record.get("carbon") or {}
    if country is None:
        country = own.get("country") or resolve_country(None)
    pue_used = pue if pue is not None else float(own.get("pue") or 1.0)
    result = emissions(energy_j, intensity_for(country, data_dir), pue=pue_used)
    energy_estimated = bool(rated.get("estimated"))
    result.update(per="sample", estimated=True, energy_estimated=energy_estimated)
    return result
