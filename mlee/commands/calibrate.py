"""CLI: `mlee calibrate` - a spec whose boundaries are the quantiles of a database's indices."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


def calibrate(
    db: Path = typer.Argument(..., help="Merged database (the JSON file `mlee merge` writes), or a folder of "
                                        "experiment folders or 2022 logs to merge in memory."),
    quantiles: str = typer.Option("0.8,0.6,0.4,0.2", "--quantiles", "-q",
                                  help="Four index quantiles for the A/B, B/C, C/D, D/E boundaries, descending."),
    spec: str = typer.Option("mlee", "--spec", "-s", help="The spec to calibrate: preset name or spec file."),
    task: Optional[str] = typer.Option(None, "--task", "-t",
                                       help="Calibrate only this task; the others keep their boundaries."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the new spec (default <spec>-calibrated)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the new spec here (JSON; - for stdout)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
) -> int:
    """Write a spec whose boundaries are the quantiles of the database's indices, per task and metric."""
    from mlee.commands._rated import load_database_or_folder
    from mlee.console import message, write_data
    from mlee.errors import UsageError
    from mlee.fsutil import canonical_json, output_target, write_output
    from mlee.rating import calibrate as calibrate_spec
    from mlee.rating import load_spec
    from mlee.rating.records import record_keys

    qs = parse_quantiles(quantiles)
    target = output_target(output, "--output") if output is not None else None
    if target is not None and target.is_file:
        if output.suffix.lower() != ".json":
            raise UsageError(f"--output {output}: calibrate writes JSON", "give the file a .json name")
        if target.path.exists() and not force:
            raise UsageError(f"{output} exists; it is kept", "pass --force to overwrite it, or choose another name")
    base = load_spec(spec)
    new = calibrate_spec(load_database_or_folder(db, record_keys(base)), base, qs, task=task, name=name)
    _explain(new)
    if target is None or target.kind == "stdout":
        write_data(canonical_json(new))
    else:
        write_output(target, canonical_json(new))
        message(f"wrote {output} (spec {new['name']} v{new['version']}, sha256 {load_spec(new).sha256[:12]})")
    return 0


def parse_quantiles(text: str) -> tuple[float, ...]:
    """``"0.8,0.6,0.4,0.2"`` -> four floats; UsageError naming --quantiles otherwise."""
    from mlee.errors import UsageError

    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise UsageError(f"--quantiles {text!r}: not a comma-separated list of numbers",
                         "for example --quantiles 0.8,0.6,0.4,0.2") from None
    if len(values) != 4 or any(not 0 < v < 1 for v in values) or any(a <= b for a, b in zip(values, values[1:])):
        raise UsageError(f"--quantiles {text!r}: need four numbers strictly between 0 and 1, descending",
                         "for example --quantiles 0.8,0.6,0.4,0.2")
    return values


def _explain(new: dict[str, Any]) -> None:
    from mlee.console import message

    for task_name, info in new["calibration"]["tasks"].items():
        if not info.get("groups"):
            message(f"{task_name}: {info.get('note', 'not calibrated')}")
            continue
        metrics = {m["key"]: m for m in new["tasks"][task_name]["metrics"]}
        for key, note in info["metrics"].items():
            if note["status"] == "calibrated":
                bounds = ", ".join(f"{b:.4g}" for b in metrics[key]["boundaries"])
                message(f"{task_name}.{key}: boundaries {bounds} (from {note['n']} indices)")
            else:
                message(f"{task_name}.{key}: {note['status']} ({note['n']} indices)")
