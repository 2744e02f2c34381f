"""CLI: `mlee profile`, `mlee predict` - energy prediction from measured kernels."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_PREDICTOR = Path("results/predictor.json")
DEFAULT_DATABASE = Path("results/merged.json")


def power_sources(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def busy_warning() -> None:
    """Warn when other processes already use more CPUs than there are: timings will not be clean."""
    import os

    from mlee.console import message

    try:
        load = os.getloadavg()[0]
    except OSError:
        return
    cores = os.cpu_count() or 1
    if load > cores:
        message(f"warning: the machine is busy (load {load:.1f} on {cores} CPUs): timings will be noisy; "
                "--threads 1 keeps parallel kernels from waiting on descheduled threads")


def _print_json(data: object) -> None:
    from mlee.console import out
    from mlee.fsutil import canonical_json

    out().out(canonical_json(data), end="", highlight=False)


def register(app: typer.Typer) -> None:
    """Register `profile` and `predict` (`fit` and `sweep` have their own modules)."""

    @app.command("profile")
    def profile(
        kernels: str = typer.Option(None, "--kernels", "-k", metavar="KINDS",
                                    help="Comma-separated kernel kinds (default all): conv-bn-relu, dwconv-bn-relu, "
                                         "bn-relu, relu, avgpool, maxpool, fc, concat, add."),
        grid: str = typer.Option("quick", "--grid", "-g", help="quick (about 10 minutes on 2 cores) or full."),
        limit: int = typer.Option(None, "--limit", min=1, help="Measure at most this many configurations per kind."),
        list_only: bool = typer.Option(False, "--list", help="Print the configurations and exit; measure nothing."),
        output_dir: Path = typer.Option(Path("results"), "--output-dir", "-o", help="Where experiment folders go."),
        sources: str = typer.Option(None, "--sources", help="Power sources (rapl, nvml, estimate); default: detect."),
        interval: float = typer.Option(0.1, "--interval", help="Sampling interval in seconds."),
        cv: float = typer.Option(None, "--cv", help="Repeat until the runtime's coefficient of variation is below "
                                                    "this fraction (quick 0.05, full 0.03)."),
        min_repeats: int = typer.Option(None, "--min-repeats", help="Fewest windows per configuration (3)."),
        max_repeats: int = typer.Option(None, "--max-repeats",
                                        help="Most windows per configuration (quick 6, full 10)."),
        window_s: float = typer.Option(None, "--window-s", help="Shortest window in seconds (quick 0.1, full 0.3)."),
        threads: int = typer.Option(None, "--threads", min=1, help="torch intra-op threads (default: torch's)."),
        clock: str = typer.Option("wall", "--clock", help="Judge stability on wall time, or on the kernels' CPU "
                                                          "time (cpu: needs --threads 1; for shared machines)."),
        export: Path = typer.Option(None, "--export", help="Also write the measured points as a layer-data CSV."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> int:
        """Measure kernels over a grid of configurations, each repeated until stable.

        Writes one experiment folder (kind profile) per kernel kind; merge them with `mlee merge` and fit a
        predictor with `mlee fit`.
        """
        from dataclasses import replace

        from mlee.console import message, out, progress
        from mlee.errors import Interrupted, UsageError
        from mlee.predict import grids as G
        from mlee.predict import kernels as K
        from mlee.predict.profile import GRID_SETTINGS, profile_kernels

        kinds = K.parse_kinds(kernels)
        if grid not in G.GRIDS:
            raise UsageError(f"unknown grid {grid!r}", f"use --grid {' or --grid '.join(G.GRIDS)}")
        configs = {k: G.grid(k, grid)[:limit] for k in kinds}
        if list_only:
            flat = [c for k in kinds for c in configs[k]]
            if as_json:
                _print_json([{"kind": c.kind, "config": c.key(), "flops": c.flops()} for c in flat])
            else:
                from mlee.predict.render import grid_table

                out().print(grid_table(flat, grid))
            return 0
        base = GRID_SETTINGS[grid]
        given = {"cv_threshold": cv, "min_repeats": min_repeats, "max_repeats": max_repeats, "min_window_s": window_s}
        settings = replace(base, clock=clock, **{k: v for k, v in given.items() if v is not None}).check()
        from mlee.predict.profile import check_clock_threads

        check_clock_threads(clock, threads)
        folders: list[Path] = []
        total = sum(len(c) for c in configs.values())
        message(f"profiling {total} configurations of {len(kinds)} kernel kind(s) ({grid} grid)")
        busy_warning()
        try:
            with progress() as bar:
                task = bar.add_task("profiling", total=total)
                results = profile_kernels(kinds, configs, grid, settings, str(output_dir), power_sources(sources),
                                          interval, on_point=lambda c, p: bar.advance(task),
                                          on_folder=folders.append, threads=threads)
        except KeyboardInterrupt:
            kept = ", ".join(str(f) for f in folders) or "nothing"
            raise Interrupted(f"profile interrupted; the points measured so far are kept in {kept}") from None
        summaries = _profile_summaries(kinds, results, settings.clock)
        if as_json:
            _print_json(summaries)
        else:
            from mlee.predict.render import profile_table

            out().print(profile_table(summaries))
        unstable = sum(s["points"] - s["stable"] for s in summaries)
        if unstable:
            message(f"{unstable} configuration(s) did not reach the CV threshold (kept, marked stable: false; "
                    "the machine may be busy)")
        message(f"{len(summaries)} experiment folder(s) written under {output_dir} (profile-kernels-<kind>-...)")
        if export is not None:
            _export_profiles(folders, export)
        message(f"next: mlee fit {output_dir} -o {DEFAULT_PREDICTOR} (or fit the database `mlee merge` makes)")
        return 0

    @app.command("predict")
    def predict(
        model: str = typer.Option(..., "--model", "-m", help="Model name (mlee models, or any torchvision model), "
                                                             "or an architecture file (.onnx, .pt/.pth, .keras/.h5)."),
        input_size: int = typer.Option(None, "--input-size", min=1,
                                       help="Input side in pixels (default: the model's; 224 for .pt and Keras files)."),
        backend: str = typer.Option("pytorch", "--backend", "-b", help="Backend (prediction decomposes PyTorch)."),
        predictor_path: Path = typer.Option(DEFAULT_PREDICTOR, "--predictor", "-p", help="Predictor file."),
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
        from mlee.console import message, out
        from mlee.errors import UsageError
        from mlee.predict import predictor as P
        from mlee.predict.architecture import decompose_model, is_file_model
        from mlee.predict.forecast import predict_model
        from mlee.predict.render import comparison_table, prediction_table

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
            from dataclasses import replace

            from mlee.predict.measure import MODEL_SETTINGS, measure_model

            if threads is None:
                threads = pred_obj.fingerprint.get("torch_threads")
            message(f"measuring {name} (batch {batch_size}, {threads or 'default'} thread(s)) ...")
            busy_warning()
            measured = measure_model(ref, batch_size, replace(MODEL_SETTINGS, clock=pred.clock),
                                     output_dir=str(output_dir), sources=power_sources(sources), per_layer=per_layer,
                                     prediction=pred.to_json(), threads=threads)
            message(f"measurement written to {measured['folder']}")
        if as_json:
            _print_json({"prediction": pred.to_json(), "measured": measured, "warnings": warnings,
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
                from mlee.predict.layers import render_breakdown

                console.print(render_breakdown(measured["per_layer"], top))
        return 0


def _export_profiles(folders: list[Path], export: Path) -> None:
    """Write the points of freshly profiled experiment folders as a layer-data CSV."""
    from mlee.console import message
    from mlee.predict.layerdata import write_layer_csv
    from mlee.predict.training import points_from_records
    from mlee.results.folder import read_experiment

    points, notes = points_from_records([read_experiment(f) for f in folders])
    for note in notes:
        message(f"skipped {note}")
    write_layer_csv(points, export)
    message(f"wrote {len(points)} point(s) to {export} (layer-data CSV)")


def _profile_summaries(kinds: tuple[str, ...], results: list, clock: str) -> list[dict]:
    """One summary per profiled kind: points, how many settled, the worst robust CV, energy method, folder."""
    summaries = []
    for kind, res in zip(kinds, results):
        points = res.results.get("profile", {}).get("points", [])
        series = "cpu_time_s" if clock == "cpu" else "time_s"
        cvs = [p[series]["robust_cv"] for p in points if p[series].get("robust_cv") is not None]
        summaries.append({"kind": kind, "points": len(points), "stable": sum(1 for p in points if p["stable"]),
                          "max_cv": max(cvs) if cvs else None,
                          "energy_method": next((p["energy_method"] for p in points if p["energy_method"]), None),
                          "folder": res.folder.name})
    return summaries
