"""Benchmark of `mlee report`: build time, HTML size and render time in headless Chromium.

Targets (issue 6): a report of 1,000 records renders in Chromium in under 3 s, and its HTML stays under 10 MB
without traces. Figures are printed side by side with a baseline (a 10-record report on the same machine), so
the ratio shows what the records cost apart from Chromium's own start-up.

Render time is measured twice: ``load+draw`` from navigation start to the page's ready flag (what a user waits
for: parsing the HTML and data, rating every record in JavaScript, drawing all charts and the table), as the page
itself reports it (``performance.now()``), and ``wall`` around navigate + wait seen from Python.

Usage: .venv/bin/python scripts/bench_report.py [--records 1000] [--repeat 3] [--traces]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the schema-valid database builders and the browser the tests use
sys.path.insert(0, str(REPO))

from browser_driver import Browser  # noqa: E402
from test_report_support import large_database  # noqa: E402

from mlee.report.build import build_report, write_report  # noqa: E402

TARGET_RENDER_S = 3.0
TARGET_SIZE_MB = 10.0


def add_traces(db: dict, points: int) -> None:
    """Give every record a RAPL trace of ``points`` samples (counter source)."""
    for rec in db["records"]:
        ts = [i * 0.1 for i in range(points)]
        energy = [i * 2.0 for i in range(points)]
        rec["trace_samples"] = {"rapl_package-0.t_s": ts, "rapl_package-0.energy_j": energy,
                                "rapl_package-0.power_w": [None] * points, "rapl_package-0.valid": [1] * points}


def measure(n_records: int, repeat: int, browser: Browser, folder: Path, traces: int) -> dict:
    db = large_database(n_records)
    if traces:
        add_traces(db, traces)
    path = folder / f"report-{n_records}.html"
    t0 = time.perf_counter()
    report = build_report(db, "mlee", report_path=path, database_name=f"synthetic-{n_records}.json")
    build_s = time.perf_counter() - t0
    write_report(report, path)
    loads, walls, draws, paints = [], [], [], []
    for _ in range(repeat):
        browser.console.clear()
        t1 = time.perf_counter()
        browser.open(path, timeout_s=60)
        browser.wait_for("window.mleeReport && window.mleeReport.painted_ms", timeout_s=60, interval_s=0.005)
        walls.append(time.perf_counter() - t1)
        loads.append(browser.evaluate("mleeReport.load_ms") / 1000.0)
        paints.append(browser.evaluate("mleeReport.painted_ms") / 1000.0)
        draws.append(browser.evaluate("mleeReport.stats().render_ms") / 1000.0)
        if browser.errors():
            raise SystemExit(f"page errors: {browser.errors()}")
    st = browser.evaluate("mleeReport.stats()")
    return {"records": report.n_records, "markers": st["markers"], "rows": st["rows"], "size_mb": report.size_bytes / 1e6,
            "build_s": build_s, "load_s": statistics.median(loads), "wall_s": statistics.median(walls),
            "draw_s": statistics.median(draws), "paint_s": statistics.median(paints)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--traces", type=int, default=0, metavar="POINTS",
                        help="add a power trace of POINTS samples to every record (size with traces)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlee-bench-report-") as tmp, Browser(record_requests=False) as browser:
        base = measure(10, args.repeat, browser, Path(tmp), args.traces)
        big = measure(args.records, args.repeat, browser, Path(tmp), args.traces)
    print(f"{'':26}{'baseline':>12}{'measured':>12}{'ratio':>9}")
    for key, label in (("records", "rated records"), ("markers", "scatter markers"), ("rows", "table rows"),
                       ("size_mb", "HTML size [MB]"), ("build_s", "build in Python [s]"),
                       ("load_s", "scripts done [s]"), ("paint_s", "first full paint [s]"),
                       ("draw_s", "one redraw [s]"),
                       ("wall_s", "navigate..painted [s]")):
        b, m = base[key], big[key]
        ratio = f"{m / b:8.1f}x" if b else "       -"
        print(f"{label:26}{b:12.3f}{m:12.3f}{ratio}" if isinstance(m, float) else f"{label:26}{b:12d}{m:12d}{ratio}")
    ok_render = big["wall_s"] < TARGET_RENDER_S
    ok_size = args.traces or big["size_mb"] < TARGET_SIZE_MB
    print(f"target: {args.records} records render in < {TARGET_RENDER_S:g} s: "
          f"{'met' if ok_render else 'MISSED'} ({big['wall_s']:.2f} s from navigation to painted page)")
    if not args.traces:
        print(f"target: HTML < {TARGET_SIZE_MB:g} MB without traces: {'met' if ok_size else 'MISSED'} "
              f"({big['size_mb']:.2f} MB)")
    return 0 if ok_render and ok_size else 1


if __name__ == "__main__":
    raise SystemExit(main())
