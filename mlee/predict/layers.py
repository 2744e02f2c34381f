"""The per-layer breakdown as a rich table (the timing itself is :mod:`mlee.runners.layers`)."""

from __future__ import annotations

from typing import Any


def render_breakdown(breakdown: dict, top: int | None = None) -> Any:
    """A rich Table of a breakdown: one row per layer (the ``top`` most energy-hungry, in run order), then totals."""
    from rich.table import Table
    from rich.text import Text

    from mlee.console import escape

    rows = breakdown["layers"]
    if top is not None and top < len(rows):
        keep = sorted(rows, key=lambda r: -(r["energy_j"] if r["energy_j"] is not None else r["time_s"]))[:top]
        ids = {id(r) for r in keep}
        rows = [r for r in rows if id(r) in ids]
    method = breakdown.get("energy_method") or "n/a"
    run = ", ".join(str(v) for v in (breakdown.get("backend"), breakdown.get("execution")) if v)
    table = Table(title=f"Per-layer breakdown of window {breakdown.get('window')!s} "
                        f"({run + '; ' if run else ''}energy by {breakdown['attribution']}, method: {method})")
    for col, justify in (("layer", "left"), ("type", "left"), ("calls", "right"), ("time ms/sample", "right"),
                         ("time %", "right"), ("energy J/sample", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]

    def fmt_j(v: float | None) -> str:
        return f"{v:.4g}" if v is not None else "n/a"

    for r in rows:
        ps = r["per_sample"]
        table.add_row(Text(escape(r["name"])), r["type"], str(r["calls"]), f"{ps['time_ms']:.4g}" if ps["time_ms"] is not None
                      else "n/a", f"{100 * r['time_share']:.1f}", fmt_j(ps["energy_j"]))
    n = breakdown["n_samples"] or 1
    if top is not None and len(rows) < len(breakdown["layers"]):
        table.add_row(f"({len(breakdown['layers']) - len(rows)} smaller layers not shown)", "", "", "", "", "")
    s, o = breakdown["layers_sum"], breakdown["outside_layers"]
    table.add_section()
    table.add_row("sum of layers", "", "", f"{s['time_s'] * 1e3 / n:.4g}",
                  f"{100 * s['time_s'] / breakdown['duration_s']:.1f}",
                  fmt_j(s["energy_j"] / n if s["energy_j"] is not None else None))
    table.add_row("outside layers (loop)", "", "", f"{o['time_s'] * 1e3 / n:.4g}",
                  f"{100 * o['time_s'] / breakdown['duration_s']:.1f}",
                  fmt_j(o["energy_j"] / n if o["energy_j"] is not None else None))
    table.add_row("window", "", "", f"{breakdown['duration_s'] * 1e3 / n:.4g}", "100.0",
                  fmt_j(breakdown["energy_j"] / n if breakdown["energy_j"] is not None else None))
    return table
