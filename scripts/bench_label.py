#!/usr/bin/env python3
"""Benchmark of the label path: rating a large database, rendering labels in a batch, one `mlee label`.

Targets (issue 5): rating 100,000 records under 2 s; rendering at 20 labels per second or more in a
batch; a single `mlee label` command under 1.5 s including start-up. Each figure is printed beside a
baseline measured in the same run on the same machine, and the ratio between them (wall clock; CPU
seconds beside it, which a busy shared machine distorts far less):

- rating: a plain pass over the same records that reads every figure the spec rates (the least any
  rating must do), against `mlee.rating.rate_database`;
- rendering: reportlab writing a one-page PDF with a single line of text, against a full label;
- command: `mlee --help` (interpreter and CLI start-up), against `mlee label DB --model M`.

Usage: .venv/bin/python scripts/bench_label.py [--records 100000] [--labels 40] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the experiment-folder builders the tests use

N_MODELS_PER_GROUP = 100


def synthetic_database(n_records: int) -> dict:
    """``n_records`` completed inference runs: groups of 100 models, each group with the reference ResNet50."""
    records = []
    for i in range(n_records):
        group, k = divmod(i, N_MODELS_PER_GROUP)
        model = "ResNet50" if k == 0 else f"Model{k:03d}"
        scale = 0.5 + (k % 17) / 10.0
        records.append({
            "id": f"infer-{group:05d}-{k:03d}", "kind": "infer", "status": "completed", "task": "inference",
            "model": model, "dataset": "imagenet", "environment": f"Host{group:04d} - PyTorch 2.14.1",
            "backend": {"name": "pytorch", "version": "2.14.1"}, "start_utc": "2026-11-22T07:01:02Z",
            "estimated": False, "energy_method": {"total": "counter"},
            "metrics": {"top1": 0.70 + (k % 9) / 100.0, "top5": 0.90 + (k % 7) / 100.0},
            "model_info": {"parameters": 25.6e6 * scale, "flops": 8.2e9 * scale, "weights_bytes": 102e6 * scale},
            "per_sample": {"energy_j": {"total": 0.55 * scale}, "energy_method": {"total": "counter"},
                           "time_ms": 11.0 * scale},
        })
    return {"schema_version": 1, "kind": "mlee-database", "records": records, "summaries": [], "skipped": []}


def _best_of(fn, runs: int) -> tuple[float, float]:
    """Best wall time and best CPU time of ``runs`` calls. Units: seconds."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def bench_rating(n_records: int, runs: int) -> tuple[tuple[float, float], tuple[float, float], int]:
    from mlee.rating import load_spec, rate_database

    db = synthetic_database(n_records)
    spec = load_spec("mlee")
    paths = [m.value.split(".") for t in spec.tasks for m in t.metrics if m.value]

    def baseline() -> None:
        for record in db["records"]:
            for path in paths:
                value = record
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None

    rated: list = []

    def rate() -> None:
        rated[:] = rate_database(db, spec)

    return _best_of(rate, runs), _best_of(baseline, runs), len(rated)


def bench_rendering(n_labels: int, runs: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Labels per second (wall, CPU) for mlee and for the baseline."""
    from reportlab.pdfgen.canvas import Canvas

    from mlee.label import font_chain, ordered, write_labels
    from mlee.rating import load_spec, rate_database

    db = synthetic_database(N_MODELS_PER_GROUP * ((n_labels + N_MODELS_PER_GROUP - 1) // N_MODELS_PER_GROUP))
    rated = ordered(rate_database(db, load_spec("mlee")))[:n_labels]
    font_chain()  # fonts load once per process, as in a real batch; not part of the per-label rate

    def baseline() -> None:
        for _ in range(n_labels):
            canvas = Canvas(io.BytesIO(), invariant=1)
            canvas.drawString(72, 720, "baseline")
            canvas.showPage()
            canvas.save()

    with tempfile.TemporaryDirectory() as tmp:
        labels_s = _best_of(lambda: write_labels(rated, tmp, fmt="pdf"), runs)
    base_s = _best_of(baseline, runs)
    return (n_labels / labels_s[0], n_labels / labels_s[1]), (n_labels / base_s[0], n_labels / base_s[1])


def bench_command(runs: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median wall and CPU (user + system of the child) seconds of `mlee label` and of `mlee --help`."""
    from results_builders import make_experiment

    from mlee.results import merge_into

    mlee = str(Path(sys.executable).with_name("mlee"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        root.mkdir()
        for model in ("ResNet50", "ResNet101", "MobileNetV2"):
            make_experiment(root, name=model.lower(), model=model)
        merge_into(root / "merged.json", [root])
        env = dict(os.environ, NO_COLOR="1")

        def run(args: list[str]) -> tuple[float, float]:
            wall, cpu = [], []
            for _ in range(runs):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run([mlee, *args], check=True, capture_output=True, env=env)
                wall.append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            return statistics.median(wall), statistics.median(cpu)

        label_s = run(["label", str(root / "merged.json"), "--model", "MobileNetV2", "-o", str(Path(tmp) / "l")])
        help_s = run(["--help"])
    return label_s, help_s


def _pair(wall: float, cpu: float, digits: int) -> str:
    return f"{wall:.{digits}f} ({cpu:.{digits}f})"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to rate")
    parser.add_argument("--labels", type=int, default=40, help="labels in the rendering batch")
    parser.add_argument("--runs", type=int, default=3, help="repeats (best for in-process, median for commands)")
    args = parser.parse_args()

    (rate_s, rate_cpu), (base_s, base_cpu), n_rated = bench_rating(args.records, args.runs)
    print("wall-clock figures decide the targets; CPU seconds (in brackets) show the work on a busy machine")
    print(f"{'figure':<36}{'mlee':>18}{'baseline':>18}{'ratio':>8}  target")
    print(f"{f'rate {args.records:,} records [s]':<36}{_pair(rate_s, rate_cpu, 3):>18}"
          f"{_pair(base_s, base_cpu, 3):>18}{rate_s / base_s:>8.1f}  < 2 s: {_verdict(rate_s < 2.0)} "
          f"({n_rated:,} rated)")
    (per_s, per_cpu), (base_per_s, base_per_cpu) = bench_rendering(args.labels, args.runs)
    print(f"{f'render {args.labels} PDF labels [labels/s]':<36}{_pair(per_s, per_cpu, 1):>18}"
          f"{_pair(base_per_s, base_per_cpu, 1):>18}{base_per_s / per_s:>8.1f}  >= 20/s: {_verdict(per_s >= 20)}")
    (label_s, label_cpu), (help_s, help_cpu) = bench_command(max(args.runs, 3))
    print(f"{'`mlee label` one model [s]':<36}{_pair(label_s, label_cpu, 3):>18}{_pair(help_s, help_cpu, 3):>18}"
          f"{label_s / help_s:>8.1f}  < 1.5 s: {_verdict(label_s < 1.5)} (baseline: `mlee --help`)")
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
