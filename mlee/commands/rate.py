"""CLI: `mlee rate` - rate a merged database against a spec: value, index and rating per metric, and the compound."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

#: Marker shown after a figure that comes from an estimate, not a measurement.
EST = "est."
#: A rated metric without a figure: shown in grey without a letter (the compound counts it as E).
NOT_MEASURED = "not measured"
GREY = "grey50"


def rate(
    db: Path = typer.Argument(..., help="Merged database (the JSON file `mlee merge` writes), or a folder of "
                                        "experiment folders or 2022 logs to merge in memory."),
    spec: str = typer.Option("mlee", "--spec", "-s",
                             help="Preset mlee, mlee-2022, relative, ai-energy-score or a .json/.toml spec file."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Only this task (inference, training)."),
    env: Optional[str] = typer.Option(None, "--env", "-e",
                                      help="Only this environment, named as the tables show it (any case)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Only this model (any case)."),
    as_json: bool = typer.Option(False, "--json", help="Rated records as JSON on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="One CSV row per rated model on stdout."),
    country: Optional[str] = typer.Option(None, "--country",
                                          help="Grid for the emissions per sample (ISO alpha-3 or WORLD; "
                                               "default: the country each run recorded, else MLEE_COUNTRY or DEU)."),
    pue: Optional[float] = typer.Option(None, "--pue", help="Facility PUE for the emissions (default: as recorded, "
                                                            "else 1.0)."),
) -> int:
    """Rate every model against its group's reference: value, index and rating per metric, and the compound.

    Groups are (task, dataset, environment); repeated runs of a model are rated on their mean.
    """
    from mlee.commands._rated import add_carbon, load_database_or_folder
    from mlee.console import message, print_json, write_data
    from mlee.errors import UsageError
    from mlee.rating import load_spec, rate_database
    from mlee.rating.records import record_keys
    from mlee.rating.speccheck import reference_gaps

    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other", "pick one output format")
    loaded = load_spec(spec)
    # --json carries each rated record whole; the table and CSV only need what rating reads.
    database = load_database_or_folder(db, None if as_json else record_keys(loaded))
    rated = rate_database(database, loaded, task=task, env=env, model=model)
    add_carbon(rated, country, pue)
    if as_json:
        print_json(rated)
    elif as_csv:
        write_data(to_csv(rated))
    else:
        _render(rated, loaded)
    for line in reference_gaps(rated):
        message(f"warning: {line}")
    return 0


# ---------------------------------------------------------------------------------------------------- formats


def fmt_value(value: float | None) -> str:
    """A figure with four significant digits ("n/a" when not measured)."""
    if value is None:
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def fmt_index(index: float | None) -> str:
    return "n/a" if index is None else f"{index:.2f}"


def _csv_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(rated: list[dict[str, Any]]) -> str:
    """One row per rated record; per metric ``<key>_value``, ``_unit``, ``_index``, ``_rating``, ``_method``.

    ``stars`` holds 1-5 for a spec that shows stars (``ai-energy-score``) and stays empty for a letter spec.

    Metric columns are the union over the rows in order of first appearance (tasks may rate different metrics);
    a metric a row does not have stays empty. Floats are written in full precision.
    """
    import csv
    import io

    keys: list[str] = []
    for record in rated:
        for key in record["metrics"]:
            if key not in keys:
                keys.append(key)
    head = ["id", "task", "dataset", "environment", "model", "backend", "n", "reference", "compound", "stars",
            "estimated", "spec", "spec_version", "spec_sha256", "carbon_g_per_sample", "carbon_country", "carbon_pue"]
    fields = ("value", "unit", "index", "rating", "method")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head + [f"{k}_{f}" for k in keys for f in fields])
    for r in rated:
        row = [r["id"], r["task"], r["dataset"], r["environment"], r["model"], r["backend"], r["n"], r["reference"],
               r["compound"], r.get("stars"), r["estimated"], r["spec"]["name"], r["spec"]["version"], r["spec"]["sha256"]]
        carbon = r.get("carbon") or {}
        row += [carbon.get("emissions_g"), carbon.get("country"), carbon.get("pue")]
        for key in keys:
            m = r["metrics"].get(key)
            row.extend(m.get(f) if m else None for f in fields)
        writer.writerow([_csv_number(v) for v in row])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------- table


def _render(rated: list[dict[str, Any]], spec: Any) -> None:
    """One table per group: wide (a column per metric) when the terminal fits it, else long (a row per metric)."""
    from mlee.console import escape, message, out

    console = out()
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rated:
        groups.setdefault((r["task"], r["dataset"], r["environment"]), []).append(r)
    for (task, dataset, environment), rows in groups.items():
        keys = list(rows[0]["metrics"])
        name_width = max(len(_name(r)) for r in rows)
        # A metric cell needs about 9 characters ("0.8518 est.", "1.28 B") plus 3 of padding and rule.
        wide = console.width >= name_width + 12 + 12 * len(keys)
        title = escape(f"{task} · {dataset or '-'} · {environment or '-'}")
        reference = rows[0]["reference"]
        caption = f"index against {reference}" if reference else "index against the best model of the group"
        if spec.index_base == "range":  # issue 19: the ai-energy-score preset's five equal bands
            caption = "index: place between the group's worst (0) and best (1) figure; five equal bands"
        console.print(_wide(title, caption, keys, rows) if wide else _long(title, caption, keys, rows))
    _render_carbon(rated)
    message(f"rated {len(rated)} model(s) in {len(groups)} group(s) with spec {spec.name} v{spec.version} "
            f"(sha256 {spec.sha256[:12]})")
    if any(m["value"] is None for r in rated for m in r["metrics"].values()):
        message(f"{NOT_MEASURED} (grey, no letter): counted as E in the compound rating, so a rating never claims "
                "what nobody measured")
    if any(r["estimated"] for r in rated):
        message(f"{EST}: energy from an estimate (codecarbon's model of power), not a measurement")


def _render_carbon(rated: list[dict[str, Any]]) -> None:
    """Emissions per sample: energy per sample x PUE x the grid's intensity (codecarbon's bundled table)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from mlee.console import escape, out

    rows = [r for r in rated if r.get("carbon")]
    if not rows:
        return
    sources = sorted({r["carbon"]["source"] for r in rows})
    table = Table(title=Text("Emissions per sample (estimate: grid averages)", style="bold"), title_justify="left",
                  caption=Text("intensity: " + "; ".join(sources)), caption_justify="left", box=box.SIMPLE_HEAD)
    for header in ("Model", "Environment", "gCO2e / sample", "Grid", "gCO2e/kWh", "PUE"):
        table.add_column(header, justify="right" if header in ("gCO2e / sample", "gCO2e/kWh", "PUE") else "left")
    for r in rows:
        c = r["carbon"]
        grams = fmt_value(c["emissions_g"]) + (f" {EST}" if c["energy_estimated"] else "")
        table.add_row(Text(_name(r)), Text(escape(r["environment"] or "-")), grams, c["country"],
                      f"{c['intensity_g_per_kwh']:.4g}", f"{c['pue']:g}")
    out().print(table)


def _name(r: dict[str, Any]) -> str:
    from mlee.console import escape

    return escape(r["model"]) + (f" (mean of {r['n']})" if r["n"] > 1 else "")


def _compound(r: dict[str, Any]) -> Any:
    from rich.text import Text

    from mlee.rating import COLOURS

    text = Text(_rating_text(r["compound"], r.get("stars")), style=f"bold {COLOURS[r['compound']]}")
    if r["estimated"]:
        text.append(f" {EST}")
    return text


def _rating_text(letter: str, stars: Any) -> str:
    """The letter, or the stars of a spec that shows stars (issue 19: ai-energy-score)."""
    from mlee.rating.stars import star_text

    return star_text(stars) if isinstance(stars, int) and not isinstance(stars, bool) else letter


def _value_text(m: dict[str, Any]) -> str:
    return fmt_value(m["value"]) + (f" {EST}" if m["method"] == "estimate" else "")


def _group_table(title: str, caption: str) -> Any:
    """The empty table of one group: bold title and caption left-aligned, a rule under the header only."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    return Table(title=Text(title, style="bold"), caption=Text(caption), title_justify="left",
                 caption_justify="left", box=box.SIMPLE_HEAD)


def _wide(title: str, caption: str, keys: list[str], rows: list[dict[str, Any]]) -> Any:
    from rich.text import Text

    from mlee.rating import COLOURS

    table = _group_table(title, caption)
    table.add_column("Model", no_wrap=True)
    table.add_column("Rating", justify="center", no_wrap=True)
    for key in keys:
        m = rows[0]["metrics"][key]
        # Text, not a markup string: "[ms]" or "[kWh]" would be read as style tags and vanish.
        table.add_column(Text(f"{m['label']} [{m['unit']}]" if m["unit"] else m["label"]), justify="right")
    for r in rows:
        cells = []
        for key in keys:
            m = r["metrics"].get(key)
            if m is None:
                cells.append(Text("-"))
            elif m["value"] is None:
                cells.append(Text(NOT_MEASURED, style=GREY))  # no letter: the compound counted it as E
            else:
                text = f"{_value_text(m)}\n{fmt_index(m['index'])} {_rating_text(m['rating'], m.get('stars'))}"
                cells.append(Text(text, style=COLOURS[m["rating"]]))
        table.add_row(Text(_name(r)), _compound(r), *cells)
    return table


def _long(title: str, caption: str, keys: list[str], rows: list[dict[str, Any]]) -> Any:
    from rich.text import Text

    from mlee.rating import COLOURS

    table = _group_table(title, caption)
    for header, justify in (("Model", "left"), ("Rating", "center"), ("Metric", "left"), ("Value", "right"),
                            ("Unit", "left"), ("Index", "right"), ("", "center")):
        table.add_column(header, justify=justify, no_wrap=header != "Model")
    for r in rows:
        for position, key in enumerate(k for k in keys if k in r["metrics"]):
            m = r["metrics"][key]
            measured = m["value"] is not None
            colour = COLOURS[m["rating"]] if measured else GREY
            rating = _rating_text(m["rating"], m.get("stars")) if measured else ""
            table.add_row(Text(_name(r)) if position == 0 else "", _compound(r) if position == 0 else "",
                          Text(m["label"]), Text(_value_text(m) if measured else NOT_MEASURED, style=colour),
                          Text(m["unit"]), Text(fmt_index(m["index"]) if measured else "", style=colour),
                          Text(rating, style=f"bold {colour}"),
                          end_section=position == len(keys) - 1)
    return table
