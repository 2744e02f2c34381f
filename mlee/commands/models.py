"""CLI: `mlee models` - the models `mlee infer` and `mlee train` know."""

from __future__ import annotations

from typing import Any

import typer


def models(
    backend: str = typer.Option(None, "--backend", "-b", show_default=False,
                                help="Only models this backend runs: pytorch, tensorflow or onnx."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the models `mlee infer`/`mlee train` know, with parameters and input sizes."""
    from mlee.console import print_json

    rows = models_table(backend)
    if as_json:
        print_json(rows)
    else:
        _render_models(rows)


def models_table(backend: str | None) -> list[dict]:
    """The registry as JSON-ready rows (``mlee models``)."""
    from mlee.runners.registry import MODELS, check_backend

    if backend is not None:
        check_backend(backend)
    rows = []
    for spec in MODELS:
        if backend is not None and backend not in spec.backends:
            continue
        row: dict[str, Any] = {"name": spec.name, "family": spec.family, "backends": list(spec.backends)}
        for framework in ("pytorch", "tensorflow"):
            entry = getattr(spec, framework)
            row[framework] = None if entry is None else {
                "builder": entry.builder, "input_size": entry.input_size, "resize_size": entry.resize_size,
                "parameters": entry.parameters}
        rows.append(row)
    return rows


def _render_models(rows: list[dict]) -> None:
    from rich.table import Table

    from mlee.console import out

    table = Table(title="Models", title_justify="left")
    for column in ("model", "backends", "pytorch params", "tensorflow params", "input px (pt/tf)"):
        table.add_column(column, justify="right" if "params" in column else "left")

    def params(entry: dict | None) -> str:
        return "-" if entry is None else f"{entry['parameters']:,}"

    def size(entry: dict | None) -> str:
        return "-" if entry is None else str(entry["input_size"])

    for r in rows:
        table.add_row(r["name"], ", ".join(r["backends"]), params(r["pytorch"]), params(r["tensorflow"]),
                      f"{size(r['pytorch'])}/{size(r['tensorflow'])}")
    out().print(table)
