"""CLI: `mlee fit` - per-kernel models of runtime and power from profiles or anyone's layer data."""

from __future__ import annotations

from pathlib import Path

import typer

from mlee.commands import _options as O


def fit(
    database: Path = typer.Argument(O.DEFAULT_DATABASE, help="Merged database (mlee merge), a results folder, "
                                                           "a layer-data CSV or an imported layer file."),
    kind: str = typer.Option("polynomial", "--kind",
                             help="polynomial (NeuralPower), gbm, or auto: per kind the family with the lowest "
                                  "CV error (polynomial, lasso, huber, random-forest, gbm); gbm and auto need "
                                  "mlee[data]."),
    output: Path = typer.Option(O.DEFAULT_PREDICTOR, "--output", "-o", help="Predictor file to write."),
    environment: str = typer.Option(None, "--environment", "-e",
                                    help="Fit on the profiles of this environment (when there are several)."),
    stable_only: bool = typer.Option(False, "--stable-only", help="Leave out points that never settled."),
    clock: str = typer.Option(None, "--clock", help="Fit wall or cpu runtimes (default: the profiles' clock)."),
    data_format: str = typer.Option("auto", "--format", help="auto, mlee (profiles or layer-data CSV), "
                                                             "neuralpower or nn-meter."),
    device: str = typer.Option(None, "--device", help="Device of imported measurements (e.g. 'Jetson TX2')."),
    kernel: str = typer.Option(None, "--kernel", help="Kernel kind of an imported file (default: its name)."),
    test_fraction: float = typer.Option(None, "--test-fraction", help="Hold out this fraction of every "
                                                                      "kind's points and report errors on them."),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split."),
    export: Path = typer.Option(None, "--export", help="Also write the points read as a layer-data CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the fit quality as JSON."),
) -> int:
    """Fit per-kernel runtime and power models on profiled kernels or layer data and write them as JSON data."""
    from mlee.console import message, out, print_json
    from mlee.errors import UsageError
    from mlee.predict.importers import load_points
    from mlee.commands._predict_tables import evaluation_table, quality_table
    from mlee.predict.training import fit_predictor, probes_from_records, quality_rows, replacement_warnings
    from mlee.predict.training import select_environment

    if kind not in ("polynomial", "gbm", "auto"):
        raise UsageError(f"unknown predictor kind {kind!r}", "use --kind polynomial, gbm or auto")
    points, notes, records = load_points(database, data_format, device, kind=kernel)
    for note in notes:
        message(f"skipped {note}")
    points = select_environment(points, environment)
    if export is not None:
        from mlee.predict.layerdata import write_layer_csv

        write_layer_csv(points, export)
        message(f"wrote {len(points)} point(s) to {export} (layer-data CSV)")
    test: list = []
    if test_fraction is not None:
        from mlee.predict.evaluate import split_points

        points, test = split_points(points, test_fraction, seed)
    probes = probes_from_records(records, {p.record_id for p in points})
    predictor = fit_predictor(points, kind, stable_only, clock, probes)
    output.parent.mkdir(parents=True, exist_ok=True)
    predictor.save(output)
    rows = quality_rows(predictor)
    scores = None
    if test:
        from mlee.predict.evaluate import evaluate

        scores = evaluate(predictor, test)
    if as_json:
        body = ({"quality": rows, "held_out": [s.to_json() for s in scores] if scores is not None else None}
                if test_fraction is not None else rows)
        print_json(body)
    else:
        out().print(quality_table(rows, kind))
        if scores is not None:
            out().print(evaluation_table(scores, f"Held out: {len(test)} point(s) ({test_fraction:g} of each "
                                                 f"kind, seed {seed}); baseline = the training median"))
    for warning in replacement_warnings(predictor):
        message(f"warning: {warning}")
    basis = predictor.basis
    message(f"wrote {output}: {len(predictor.kinds)} kernel kind(s) from {basis['n_points']} points "
            f"({basis['environment']}; {basis['clock']} clock; energy basis: {basis['energy_method'] or 'none'})")
    return 0
