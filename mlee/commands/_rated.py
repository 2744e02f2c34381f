"""Helpers shared by the commands that rate (`mlee rate`, `calibrate`, `label`): their input and the carbon block."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_database_or_folder(path: Path, keys: Any = None) -> dict[str, Any]:
    """A merged database file, or a folder of experiment folders / 2022 logs merged in memory (nothing written).

    ``keys``: keep only these record fields (see ``load_database``): the table and CSV need no more than rating
    reads, and a database then needs a fraction of its size in memory.
    """
    from mlee.console import message
    from mlee.errors import UsageError
    from mlee.results import load_database, merge

    if path.is_dir():
        database = merge([path])
        skipped = database.get("skipped") or []
        message(f"merged {len(database['records'])} experiment(s) under {path} in memory "
                f"(`mlee merge {path} -o merged.json` keeps a database)")
        for item in skipped[:5]:
            message(f"skipped {item.get('path')}: {item.get('reason')}")
        if len(skipped) > 5:
            message(f"... and {len(skipped) - 5} more skipped; `mlee merge` lists them all")
        return database
    if not path.exists():
        raise UsageError(f"no database file {path}", "give the JSON file written by `mlee merge`, or a results folder")
    return load_database(path, keys=keys)


def add_carbon(rated: list[dict[str, Any]], country: str | None, pue: float | None) -> None:
    """Attach emissions per sample (``carbon``) to each rated record; None where energy per sample is missing.

    An unknown ``country`` fails once, before anything is shown or written.
    """
    from mlee.carbon import carbon_per_sample, intensity_for

    if country is not None:
        intensity_for(country)
    for r in rated:
        r["carbon"] = carbon_per_sample(r, country=country, pue=pue)
