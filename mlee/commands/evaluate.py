"""CLI: `mlee evaluate` - a predictor's errors on measured kernels it was not fit on, beside a constant baseline."""

from __future__ import annotations

from pathlib import Path

import typer


def evaluate(
    predictor_path: Path = typer.Argument(..., help="Predictor file (mlee fit)."),
    data: Path = typer.Argument(..., help="Measured kernels: a database, results folder, layer-data CSV or an "
                                          "imported layer file."),
    data_format: str = typer.Option("auto", "--format", help="auto, mlee (profiles or layer-data CSV), "
                                                             "neuralpower or nn-meter."),
    device: str = typer.Option(None, "--device", help="Device of imported measurements."),
    kernel: str = typer.Option(None, "--kernel", help="Kernel kind of an imported file (default: its name)."),
    clock: str = typer.Option(None, "--clock", help="wall or cpu runtimes (default: the predictor's clock)."),
    as_json: bool = typer.Option(False, "--json", help="Print the errors as JSON."),
) -> int:
    """Print per kernel kind and target (runtime, power, energy) MAPE and RMSPE beside the constant baseline."""
    from mlee.console import message, out, print_json
    from mlee.errors import UsageError
    from mlee.predict import predictor as P
    from mlee.predict.evaluate import evaluate as run_evaluation
    from mlee.predict.importers import load_points
    from mlee.commands._predict_tables import evaluation_table

    if clock not in (None, "wall", "cpu"):
        raise UsageError(f"unknown clock {clock!r}", "use --clock wall or --clock cpu")
    pred, warnings = P.load(predictor_path)
    points, notes, _ = load_points(data, data_format, device, kind=kernel)
    for note in notes:
        message(f"skipped {note}")
    scores = run_evaluation(pred, points, clock)
    if as_json:
        print_json([s.to_json() for s in scores])
    else:
        out().print(evaluation_table(scores, f"{predictor_path} on {data} ({len(points)} point(s)); "
                                             "baseline = the predictor's training median"))
    losers = sorted({f"{s.kind} {s.target}" for s in scores if s.beats_baseline is False})
    if losers:
        message(f"warning: no better than the constant baseline: {', '.join(losers)}")
    if any(s.note == "no model in the predictor" for s in scores):
        message("warning: kinds without a model in the predictor are listed but not scored")
    return 0
