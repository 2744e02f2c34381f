"""The rich tables of the prediction commands (`profile`, `predict`, `fit`, `evaluate`, `sweep`) and of the per-layer
breakdown `infer --per-layer` shows; the library hands over data, these make the renderables the commands print."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlee.predict.forecast import ModelPrediction


def _t(text: object) -> Any:
    """User data as rich Text: kernel keys hold brackets that rich would read as markup."""
    from rich.text import Text

    from mlee.console import escape

    return Text(escape(text))


def _num(value: float | None, fmt: str = ".4g") -> str:
    return format(value, fmt) if value is not None else "n/a"


def _pct(value: float | None) -> str:
    return f"{100 * value:.1f} %" if value is not None else "n/a"


def grid_table(configs: list[Any], grid_name: str) -> Any:
    """The configurations a profile would measure."""
    from rich.table import Table

    table = Table(title=f"{grid_name} grid: {len(configs)} configurations")
    for col in ("kind", "configuration", "GFLOP per call"):
        table.add_column(col, justify="right" if col.startswith("GFLOP") else "left")
    for cfg in configs:
        table.add_row(cfg.kind, _t(cfg.key()), f"{cfg.flops() / 1e9:.4g}")
    return table


def profile_table(summaries: list[dict]) -> Any:
    """One row per profiled kind: points, how many settled, the worst robust CV, the energy method."""
    from rich.table import Table

    table = Table(title="Kernel profile")
    for col, justify in (("kind", "left"), ("points", "right"), ("stable", "right"), ("max robust CV", "right"),
                         ("energy method", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in summaries:
        table.add_row(s["kind"], str(s["points"]), str(s["stable"]), _pct(s["max_cv"]), s["energy_method"] or "n/a")
    return table


def quality_table(rows: list[dict], model_type: str) -> Any:
    """Fit quality per kind: RMSPE (in-sample, cross-validated) and R² of runtime and power."""
    from rich.table import Table

    table = Table(title=f"Fit quality ({model_type}): t = runtime per call, P = power, E = energy; model = "
                        "transform-degree or family chosen by cross-validation (CV), constant where the median "
                        "did better; RMSPE relative to the measured value")
    cols = ["kind", "points", "t model", "t RMSPE", "t CV RMSPE", "t R²", "P model", "P RMSPE", "P R²"]
    energy = any(r.get("energy_choice") for r in rows)
    cols += ["E from", "E CV RMSPE"] if energy else []
    for col in cols:
        table.add_column(col, justify="left" if col in ("kind", "t model", "P model", "E from") else "right")
    for r in rows:
        cells = [r["kind"], str(r["n_points"]), r["time_model"] or "-", _pct(r["time_rmspe"]),
                 _pct(r["time_cv_rmspe"]), _num(r["time_r2"], ".3f"), r["power_model"] or "-",
                 _pct(r["power_rmspe"]), _num(r["power_r2"], ".3f")]
        if energy:
            cells += [r.get("energy_choice") or "-", _pct(r.get("energy_cv_rmspe"))]
        table.add_row(*cells)
    return table


def prediction_table(pred: ModelPrediction, top: int | None = None) -> Any:
    """Per-layer predictions (the ``top`` largest by time, in run order) and the per-sample totals."""
    from rich.table import Table

    layers = list(enumerate(pred.layers, 1))
    if top is not None and top < len(layers):
        keep = {i for i, _ in sorted(layers, key=lambda il: -(il[1].time_s or 0.0))[:top]}
        layers = [(i, lp) for i, lp in layers if i in keep]
    b = pred.batch
    total_flops = sum(lp.flops for lp in pred.layers if lp.flops is not None)
    table = Table(title=f"Predicted per-layer runtime and energy of {pred.model} (batch {b}; per sample)")
    for col, justify in (("#", "right"), ("layer", "left"), ("kernel", "left"), ("status", "left"),
                         ("time ms", "right"), ("energy J", "right"), ("note", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for i, lp in layers:
        kernel = (lp.kind or "-") + (f" ({lp.variant})" if lp.variant else "")
        note = lp.approx
        if lp.time_s is None and lp.flops is not None and total_flops:
            note = "; ".join(filter(None, [note, f"{100 * lp.flops / total_flops:.2g} % of the FLOPs"]))
        table.add_row(str(i), _t(lp.name), _t(kernel), lp.status,
                      _num(lp.time_s * 1e3 / b if lp.time_s is not None else None),
                      _num(lp.energy_j / b if lp.energy_j is not None else None), _t(note))
    if len(layers) < len(pred.layers):
        table.add_row("", f"({len(pred.layers) - len(layers)} smaller layers not shown)", "", "", "", "", "")
    table.add_section()
    cover = pred.flops_coverage
    note = "" if pred.complete else "covers the predicted layers only" + \
        (f" ({100 * cover:.3g} % of the FLOPs)" if cover is not None else "")
    table.add_row("", "total", "", "complete" if pred.complete else "incomplete", _num(pred.per_sample_time_ms),
                  _num(pred.per_sample_energy_j), note)
    return table


def comparison_table(pred: ModelPrediction, measured: dict, speed: float | None = None) -> Any:
    """Predicted next to measured per-sample runtime and energy, with the relative error.

    ``speed`` (probe time now / during the profile) adds a drift-corrected runtime row.
    """
    from rich.table import Table

    ms = measured["per_sample"]
    clock = pred.clock
    measured_ms = ms["cpu_time_ms"] if clock == "cpu" else ms["time_ms"]
    table = Table(title=f"{pred.model}: predicted vs measured (per sample, batch {pred.batch}, {clock} clock)")
    for col, justify in (("quantity", "left"), ("predicted", "right"), ("measured", "right"), ("error", "right"),
                         ("measured by", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]

    def err(p: float | None, m: float | None) -> str:
        return f"{100 * (p - m) / m:+.1f} %" if p is not None and m else "n/a"

    table.add_row("time ms", _num(pred.per_sample_time_ms), _num(measured_ms), err(pred.per_sample_time_ms,
                  measured_ms), f"{measured['repeats']['n']} repeats")
    table.add_row("energy J", _num(pred.per_sample_energy_j), _num(ms["energy_j"]),
                  err(pred.per_sample_energy_j, ms["energy_j"]), ms.get("energy_method") or "n/a")
    if speed is not None:
        corrected = pred.per_sample_time_ms * speed
        table.add_row("time ms, drift-corrected", _num(corrected), _num(measured_ms), err(corrected, measured_ms),
                      f"machine {speed:.2f}x the profile's time (speed probe)")
    return table


def evaluation_table(scores: list[Any], title: str) -> Any:
    """Held-out errors per kind and target beside the constant baseline (the training median)."""
    from rich.table import Table

    table = Table(title=title)
    cols = ["kind", "target", "points", "MAPE", "RMSPE", "baseline MAPE", "baseline RMSPE", "beats baseline", "note"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("kind", "target", "beats baseline", "note") else "right")
    for s in scores:
        beats = {True: "yes", False: "NO", None: "-"}[s.beats_baseline]
        table.add_row(s.kind, s.target, str(s.n), _pct(s.mape), _pct(s.rmspe), _pct(s.baseline_mape),
                      _pct(s.baseline_rmspe), beats, _t(s.note))
    return table


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


def fit_table(fit: dict) -> list[Any]:
    """Rich tables of a sweep fit: models, then cache levels (empty when nothing was fitted)."""
    from rich.table import Table

    if "models" not in fit:
        return []
    models = Table(title=f"Energy per training sample: fits over {fit['n_points']} networks")
    for col, justify in (("model", "left"), ("RMSPE", "right"), ("R²", "right"), ("coefficients", "left")):
        models.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, m in fit["models"].items():
        coefs = ", ".join(f"{k} {v:.3g}" for k, v in m["coefficients"].items())
        models.add_row(name, f"{100 * m['rmspe']:.1f} %", f"{m['r2']:.3f}" if m["r2"] is not None else "n/a", coefs)
    tables = [models]
    if fit.get("levels"):
        levels = Table(title="Energy per GFLOP by the cache level that holds the working set")
        for col in ("level", "capacity", "networks", "J/GFLOP", "FLOPs-model bias"):
            levels.add_column(col, justify="left" if col == "level" else "right")
        for lv in fit["levels"]:
            cap = lv["capacity_bytes"]
            levels.add_row(lv["level"], f"{cap / 2**20:.3g} MiB" if cap else "-", str(lv["n_points"]),
                           f"{lv['j_per_gflop']:.3g}", f"{100 * lv['flops_model_bias']:+.1f} %")
        tables.append(levels)
    return tables
