"""CLI: `mlee predict` - a model's per-layer and total runtime and energy per sample, from measured kernels."""

from __future__ import annotations

from pathlib import Path

import typer

from mlee.commands import _options as O


def predict(
    model: str = typer.Option(..., "--model", "-m", help="Model name (mlee models, or any torchvision model), "
                                                         "or an architecture file (.onnx, .pt/.pth, .keras/.h5)."),
    input_size: int = typer.Option(None, "--input-size", min=1,
                                   help="Input side in pixels (default: the model's; 224 for .pt and Keras files)."),
    backend: str = typer.Option("pytorch", "--backend", "-b", help="Backend (prediction decomposes PyTorch)."),
    predictor_path: Path = typer.Option(O.DEFAULT_PREDICTOR, "--predictor", "-p", help="Predictor file."),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Samples per forward pass."),
    measure: bool = typer.Option(False, "--measure", help="Also run the model under measurement and compare."),
    per_layer: bool = typer.Option(False, "--per-layer", help="With --measure: also show the measured "
                                                               "per-layer breakdown."),
    top: int = typer.Option(None, "--top", min=1, help="Show only the N slowest layers."),
    output_dir: Path = typer.Option(Path("results"), "--output-dir", "-o", help="Where --measure writes."),
    sources: str = typer.Option(None, "--sources", help="Power sources for --measure; default: detect."),
    threads: int = typer.Option(None, "--threads", min=1,
                                help="torch threads for --measure (default: the predictor's profile's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the prediction (and measurement) as JSON."),
) -> int:
    """Predict a model's per-layer and total runtime and energy per sample, without running it."""
    from mlee.console import message, out, print_json
    from mlee.errors import UsageError
    from mlee.predict import predictor as P
    from mlee.predict.architecture import decompose_model, is_file_model
    from mlee.predict.forecast import predict_model
    from mlee.commands._predict_tables import comparison_table, prediction_table

    if per_layer and not measure:
        raise UsageError("--per-layer needs --measure (a breakdown is measured)", "add --measure")
    if measure and is_file_model(model):
        raise UsageError("--measure runs models by name; an architecture file is predicted only",
                         "leave out --measure, or give a model name (mlee models)")
    pred_obj, warnings = P.load(predictor_path)
    for w in warnings:
        message(f"warning: {w}")
    name, dec, ref = decompose_model(model, backend, batch_size, input_size)
    pred = predict_model(pred_obj, dec)
    odd = {k: v for k, v in pred.counts().items() if k != "ok"}
    if odd:
        cover = pred.flops_coverage
        message(f"{name}: " + ", ".join(f"{v} layer(s) {k}" for k, v in odd.items())
                + (" - the total covers predicted layers only" if not pred.complete else "")
                + (f" ({100 * cover:.3g} % of the FLOPs)" if not pred.complete and cover is not None else ""))
    measured = None
    if measure:
        from mlee.predict.measure import measure_model, settings_for

        if threads is None:
            threads = pred_obj.fingerprint.get("torch_threads")
        message(f"measuring {name} (batch {batch_size}, {threads or 'default'} thread(s)) ...")
        O.busy_warning()
        measured = measure_model(ref, batch_size, settings_for(pred_obj),
                                 output_dir=str(output_dir), sources=O.power_sources(sources), per_layer=per_layer,
                                 prediction=pred.to_json(), threads=threads)
        message(f"measurement written to {measured['folder']}")
    if as_json:
        print_json({"prediction": pred.to_json(), "measured": measured, "warnings": warnings,
                     "predictor": str(predictor_path)})
        return 0
    console = out()
    console.print(prediction_table(pred, top))
    basis = pred.energy_basis or "no energy"
    n_threads = pred_obj.fingerprint.get("torch_threads")
    console.print(f"{name}: predicted {pred.per_sample_time_ms:.4g} ms and "
                  f"{'n/a' if pred.per_sample_energy_j is None else format(pred.per_sample_energy_j, '.4g')} J "
                  f"per sample with {n_threads or 'default'} torch thread(s), {pred.clock} clock (a prediction "
                  f"from {basis} measurements)", markup=False, highlight=False, soft_wrap=True)
    if measured is not None:
        from mlee.predict.probe import drift

        console.print(comparison_table(pred, measured, drift(measured["probe_s"], pred_obj.basis.get("probe_ref_s"))))
        if measured["per_layer"] is not None:
            from mlee.commands._predict_tables import render_breakdown

            console.print(render_breakdown(measured["per_layer"], top))
    return 0
