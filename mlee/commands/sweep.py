"""CLI: `mlee sweep` - BUTTER-E style MLP sweeps, trained under measurement or imported from published records."""

from __future__ import annotations

from pathlib import Path

import typer

from mlee.commands import _options as O


def sweep(
    shapes: str = typer.Option("rectangle,trapezoid,exponential,wide_first", "--shapes",
                               help="Network shapes: rectangle, trapezoid, exponential, wide_first, residual."),
    sizes: str = typer.Option("1e3,1e4,1e5,1e6,4e6", "--sizes",
                              help="Target parameter counts (1e4, 100k, 1M; 2^5..2^24 for every power of two)."),
    depths: str = typer.Option("1,2,4,8", "--depths", help="Numbers of hidden layers (1,2,4 or 2..20)."),
    dataset: str = typer.Option("digits", "--dataset", help="digits (needs mlee[data]) or synthetic."),
    epochs: int = typer.Option(2, "--epochs", min=1, help="Fewest training epochs per network."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Training batch size."),
    window_s: float = typer.Option(0.5, "--window-s", min=0.0,
                                   help="Train each network at least this many seconds (measurable windows)."),
    list_only: bool = typer.Option(False, "--list", help="Print the networks and exit; train nothing."),
    output_dir: Path = typer.Option(Path("results"), "--output-dir", "-o", help="Where the experiment goes."),
    sources: str = typer.Option(None, "--sources", help="Power sources (rapl, nvml, estimate); default: detect."),
    interval: float = typer.Option(0.1, "--interval", help="Sampling interval in seconds."),
    threads: int = typer.Option(None, "--threads", min=1, help="torch intra-op threads (default: torch's)."),
    resume: Path = typer.Option(None, "--resume", help="Folder of an interrupted sweep: keep its networks and "
                                                        "train only the rest."),
    import_records: Path = typer.Option(None, "--import", help="Fit sweep records from a CSV (one row per run) "
                                                               "instead of training."),
    caches: str = typer.Option(None, "--caches", help="With --import: cache sizes of the measuring machine, "
                                                      "e.g. l1d=32K,l2=1M,l3=32M (default: this machine's)."),
    device: str = typer.Option(None, "--device", help="With --import: the device whose runs to fit."),
    as_json: bool = typer.Option(False, "--json", help="Print networks and fit as JSON."),
) -> int:
    """Train MLPs over shapes, sizes and depths under measurement; fit energy per sample against FLOPs,
    parameters and working set relative to the CPU caches, and report where the fit breaks."""
    from mlee.console import message, out, print_json, progress
    from mlee.errors import Interrupted
    from mlee.predict import sweep as S
    from mlee.predict.cache import read_cache_sizes

    if import_records is not None:
        return _sweep_import(import_records, caches, device, as_json)
    shape_list = S.parse_shapes(shapes)
    nets, notes = S.plan(shape_list, S.parse_sizes(sizes), S.parse_ints(depths, "depths"), 64, 10, batch_size)
    for note in notes:
        message(f"skipped {note}")
    if dataset not in S.DATASETS:
        S.load_dataset(dataset)  # raises with the closest name
    cache = read_cache_sizes()
    if not nets:
        from mlee.errors import UsageError

        raise UsageError("no network of the grid can be built", "use larger --sizes or smaller --depths")
    if list_only:
        rows = [{"name": n.name, "widths": list(n.widths), "parameters": n.parameters,
                 "flops_per_sample": n.flops_per_sample, "working_set_bytes": n.working_set_bytes,
                 "cache_level": cache.level_of(n.working_set_bytes)} for n in nets]
        if as_json:
            print_json(rows)
        else:
            out().print(_networks_table(rows, f"{len(rows)} networks (caches from {cache.source})"))
        return 0
    from mlee.predict.builders import torch_threads

    previous = _previous_sweep(resume, dataset, epochs, batch_size) if resume is not None else []
    folders: list[Path] = []
    O.busy_warning()
    try:
        with progress() as bar, torch_threads(threads):
            task = bar.add_task("training", total=len(nets))
            result, data = S.run_sweep(nets, dataset, epochs, window_s, cache, str(output_dir), O.power_sources(sources),
                                       interval, on_network=lambda e: bar.advance(task),
                                       on_folder=folders.append, previous=previous)
    except KeyboardInterrupt:
        kept = ", ".join(str(f) for f in folders) or "nothing"
        raise Interrupted(f"sweep interrupted; the networks trained so far are kept in {kept}") from None
    if as_json:
        print_json(data)
    else:
        _print_sweep(data["networks"], data["fit"], f"{len(data['networks'])} networks on {dataset}")
    message(f"wrote {result.folder}")
    return 0


def _previous_sweep(folder: Path, dataset: str, epochs: int, batch_size: int) -> list[dict]:
    from mlee.console import message
    from mlee.predict.sweep import resumable_entries
    from mlee.results.folder import read_experiment

    entries = resumable_entries(read_experiment(folder), dataset, epochs, batch_size)
    message(f"resuming: {len(entries)} network(s) already trained in {folder} are kept")
    return entries


def _sweep_import(path: Path, caches: str | None, device: str | None, as_json: bool) -> int:
    """Fit the sweep energy model on published records (no training, nothing written)."""
    from mlee.console import message, print_json
    from mlee.predict.cache import read_cache_sizes
    from mlee.predict.sweepfit import fit_sweep
    from mlee.predict.sweepimport import parse_caches, read_sweep_records

    cache = parse_caches(caches) if caches else read_cache_sizes()
    if not caches:
        message("warning: cache levels are this machine's; give --caches with the measuring machine's sizes")
    entries = read_sweep_records(path, cache, device)
    fit = fit_sweep(entries, cache)
    if as_json:
        print_json({"networks": entries, "fit": fit, "cache_bytes": cache.to_json()})
    else:
        _print_sweep(entries, fit, f"{len(entries)} runs from {path.name}")
    return 0


def _print_sweep(networks: list[dict], fit: dict, title: str) -> None:
    from mlee.console import out
    from mlee.commands._predict_tables import fit_table

    console = out()
    console.print(_networks_table(networks, title))
    for table in fit_table(fit):
        console.print(table)
    for brk in fit.get("breaks", []):
        console.print(f"break: {brk['text']}", markup=False, highlight=False, soft_wrap=True)
    if fit.get("models") and not fit.get("breaks"):
        console.print("no break: energy per FLOP does not rise by 25 % or more between cache levels",
                      markup=False, highlight=False, soft_wrap=True)
    if fit.get("note"):
        console.print(fit["note"], markup=False, highlight=False, soft_wrap=True)


def _networks_table(rows: list[dict], title: str) -> object:
    from rich.table import Table

    table = Table(title=title)
    cols = ["network", "widths", "params", "MFLOP/sample", "working set", "cache"]
    trained = rows and "per_sample" in rows[0]
    if trained:
        cols += ["ms/sample", "mJ/sample", "test top-1"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("network", "widths", "cache") else "right",
                         no_wrap=col == "network", overflow="fold")
    for r in rows:
        widths = r["widths"] if len(r["widths"]) <= 4 else r["widths"][:3] + ["..."]
        cells = [r["name"], ",".join(str(w) for w in widths), str(r["parameters"]),
                 f"{r['flops_per_sample'] / 1e6:.3g}", f"{r['working_set_bytes'] / 2**10:.0f} KiB", r["cache_level"]]
        if trained:
            e = r["per_sample"]["energy_j"]
            cells += [f"{r['per_sample']['time_ms']:.3g}", f"{e * 1e3:.3g}" if e is not None else "n/a",
                      f"{100 * r['test_top1']:.1f} %"]
        table.add_row(*cells)
    return table
