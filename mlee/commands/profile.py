"""CLI: `mlee profile` - measure kernels over a grid of configurations, each repeated until stable."""

from __future__ import annotations

from pathlib import Path

import typer

from mlee.commands import _options as O


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
    allocator: str = typer.Option("steady", "--allocator",
                                  help="steady: glibc reuses freed memory, so kernels do not fault in fresh pages "
                                       "at random (docs/prediction.md); system: leave the allocator as it is."),
    export: Path = typer.Option(None, "--export", help="Also write the measured points as a layer-data CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> int:
    """Measure kernels over a grid of configurations, each repeated until stable.

    Writes one experiment folder (kind profile) per kernel kind; merge them with `mlee merge` and fit a
    predictor with `mlee fit`.
    """
    from dataclasses import replace

    from mlee.console import message, progress
    from mlee.errors import Interrupted, UsageError
    from mlee.predict import grids as G
    from mlee.predict import kernels as K
    from mlee.predict.profile import GRID_SETTINGS, profile_kernels

    kinds = K.parse_kinds(kernels)
    if grid not in G.GRIDS:
        raise UsageError(f"unknown grid {grid!r}", f"use --grid {' or --grid '.join(G.GRIDS)}")
    configs = {k: G.grid(k, grid)[:limit] for k in kinds}
    if list_only:
        _show_configs([c for k in kinds for c in configs[k]], grid, as_json)
        return 0
    base = GRID_SETTINGS[grid]
    given = {"cv_threshold": cv, "min_repeats": min_repeats, "max_repeats": max_repeats, "min_window_s": window_s}
    given = {k: v for k, v in given.items() if v is not None}
    settings = replace(base, clock=clock, allocator=allocator, **given).check()
    from mlee.predict.profile import check_clock_threads

    check_clock_threads(clock, threads)
    folders: list[Path] = []
    total = sum(len(c) for c in configs.values())
    message(f"profiling {total} configurations of {len(kinds)} kernel kind(s) ({grid} grid)")
    O.busy_warning()
    try:
        with progress() as bar:
            task = bar.add_task("profiling", total=total)
            results = profile_kernels(kinds, configs, grid, settings, str(output_dir), O.power_sources(sources),
                                      interval, on_point=lambda c, p: bar.advance(task),
                                      on_folder=folders.append, threads=threads)
    except KeyboardInterrupt:
        kept = ", ".join(str(f) for f in folders) or "nothing"
        raise Interrupted(f"profile interrupted; the points measured so far are kept in {kept}") from None
    _show_summaries(_profile_summaries(kinds, results, settings.clock), output_dir, as_json)
    if export is not None:
        _export_profiles(folders, export)
    message(f"next: mlee fit {output_dir} -o {O.DEFAULT_PREDICTOR} (or fit the database `mlee merge` makes)")
    return 0


def _show_configs(configs: list, grid: str, as_json: bool) -> None:
    """The configurations a profile would measure (``--list``), as JSON or a table."""
    from mlee.commands._predict_tables import grid_table
    from mlee.console import out, print_json

    if as_json:
        print_json([{"kind": c.kind, "config": c.key(), "flops": c.flops()} for c in configs])
    else:
        out().print(grid_table(configs, grid))


def _show_summaries(summaries: list[dict], output_dir: Path, as_json: bool) -> None:
    """One summary per profiled kind, as JSON or a table; how many points never settled, and where they went."""
    from mlee.commands._predict_tables import profile_table
    from mlee.console import message, out, print_json

    if as_json:
        print_json(summaries)
    else:
        out().print(profile_table(summaries))
    unstable = sum(s["points"] - s["stable"] for s in summaries)
    if unstable:
        message(f"{unstable} configuration(s) did not reach the CV threshold (kept, marked stable: false; "
                "the machine may be busy)")
    message(f"{len(summaries)} experiment folder(s) written under {output_dir} (profile-kernels-<kind>-...)")


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
