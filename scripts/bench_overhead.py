#!/usr/bin/env python3
"""Overhead of measuring: one CPU-bound workload, run unmonitored, under mlee, and under codecarbon.

    .venv/bin/python scripts/bench_overhead.py [--work-s 2] [--repeats 7]

Ways, interleaved per repeat so that a busy machine hurts all of them alike:

- ``unmonitored``: the workload alone, in this process;
- ``mlee 10 Hz`` / ``mlee 100 Hz``: measured in-process with ``mlee.measure`` (sampling in the sampler process,
  the default); ``mlee thread 10 Hz``: the same with ``MLEE_SAMPLER=thread`` (the former design, for comparison);
- ``codecarbon``: ``OfflineEmissionsTracker`` at its 1 s minimum;
- ``python work.py`` and ``mlee run -- python work.py``: the workload as its own program, timed inside it.

Prints per way the workload's wall time (median of the repeats) and its ratio to its baseline (also as the median
of the ratios to the baseline's run in the same repeat, ``paired %``), the CPU seconds of the monitor's sampling
(mlee: its sampler process during the session; as a share of one core), and start/stop latencies; then start +
stop of the first session in a fresh process, the sampler process's one-off start-up CPU and the machine's load
average. mlee reads RAPL when readable here, else a powercap tree in a temporary folder (the
same file reads as sysfs), plus the psutil host trace.

Targets (issue 13): at 10 Hz < 1 % wall and < 1 % of one core; at 100 Hz < 3 % wall; under ``mlee run`` < 1 %
wall; start + stop < 100 ms warm and < 300 ms for the first session in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def workload(n: int) -> int:
    """Pure-Python integer work: single-threaded, steady, no I/O."""
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total


def calibrate(target_s: float) -> int:
    n = 200_000
    while True:
        t = time.perf_counter()
        workload(n)
        elapsed = time.perf_counter() - t
        if elapsed > 0.2:
            return int(n * target_s / elapsed)
        n *= 2


def other_threads_cpu_s() -> float:
    """CPU seconds of every thread of this process except the main one (the monitors' threads)."""
    import psutil

    main_id = threading.main_thread().native_id
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id != main_id)


def run_plain(n: int) -> dict:
    cpu0 = other_threads_cpu_s()
    t = time.perf_counter()
    workload(n)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "monitor_cpu_s": other_threads_cpu_s() - cpu0, "start_s": 0.0, "stop_s": 0.0}


def powercap_for_bench(tmp: Path) -> tuple[str, str]:
    """Real RAPL when readable, else a tree in a temporary folder with the same files."""
    from mlee.errors import MleeError
    from mlee.monitors.rapl import open_rapl

    try:
        for source in open_rapl():
            source.close()
        return os.environ.get("MLEE_POWERCAP_ROOT", "/sys/class/powercap"), "real RAPL"
    except MleeError:
        root = tmp / "powercap"
        for zone, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0:2", "dram")):
            (root / zone).mkdir(parents=True)
            (root / zone / "name").write_text(name + "\n")
            (root / zone / "energy_uj").write_text("123456789\n")
            (root / zone / "max_energy_range_uj").write_text("262143328850\n")
        return str(root), "powercap tree in a temporary folder (no RAPL here)"


def run_mlee(n: int, root: str, out: Path, interval_s: float) -> dict:
    from mlee.measure.session import Measurement

    m = Measurement("bench", output_dir=out, interval_s=interval_s, sources=["rapl"], powercap_root=root,
                    write_log=False)
    t = time.perf_counter()
    m.start()
    started = time.perf_counter()
    workload(n)
    done = time.perf_counter()
    m.finish("completed")
    stopped = time.perf_counter()
    # thread_time() of the sampler as the record keeps it: exact, unlike psutil's 10 ms ticks
    sampler = m.result.results["sampler"]
    # The sampler process's CPU during this session when it ran in one (its start-up, paid once per measured
    # process, is reported apart); else the thread's.
    threads_cpu_s = sampler.get("process_cpu_s", sampler["thread_cpu_s"])
    return {"wall_s": done - started, "monitor_cpu_s": threads_cpu_s, "boot_cpu_s": sampler.get("process_boot_cpu_s"),
            "start_s": started - t, "stop_s": stopped - done, "samples": m.result.sources[0]["n_samples"]}


def run_codecarbon(n: int, out: Path) -> dict:
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    from codecarbon import OfflineEmissionsTracker

    out.mkdir(parents=True, exist_ok=True)  # codecarbon swallows errors: a missing folder means no tracking
    tracker = OfflineEmissionsTracker(country_iso_code="DEU", measure_power_secs=1, output_methods=[],
                                      log_level="error", allow_multiple_runs=True, output_dir=str(out))
    cpu0 = other_threads_cpu_s()
    t = time.perf_counter()
    tracker.start()
    started = time.perf_counter()
    if getattr(tracker, "_start_time", None) is None:
        raise SystemExit("codecarbon's tracker did not start; nothing to compare")
    workload(n)
    done = time.perf_counter()
    threads_cpu_s = other_threads_cpu_s() - cpu0
    tracker.stop()
    stopped = time.perf_counter()
    return {"wall_s": done - started, "monitor_cpu_s": threads_cpu_s, "start_s": started - t,
            "stop_s": stopped - done}


WORK_PY = """import sys, time
def workload(n):
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total
t = time.perf_counter(); workload(int(sys.argv[1])); print(time.perf_counter() - t)
"""

FIRST_SESSION_PY = """import sys, time
sys.path.insert(0, sys.argv[1])
t = time.perf_counter()
import mlee
m = mlee.measure("first", output_dir=sys.argv[2], sources=["rapl"], powercap_root=sys.argv[3], write_log=False)
t0 = time.perf_counter(); m.start(); t1 = time.perf_counter(); m.finish(); t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def run_program(n: int, work_py: Path, root: str, out: Path, under_mlee: bool, interval_s: float) -> dict:
    """The workload as its own program; its wall time is measured inside it (interpreter start excluded)."""
    import subprocess

    cmd = [sys.executable, str(work_py), str(n)]
    if under_mlee:
        cmd = [sys.executable, "-m", "mlee", "run", "--source", "rapl", "--interval", str(interval_s), "-o", str(out),
               "--", *cmd]
    env = {**os.environ, "MLEE_POWERCAP_ROOT": root, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return {"wall_s": float(proc.stdout.strip().splitlines()[0]), "monitor_cpu_s": 0.0, "start_s": 0.0, "stop_s": 0.0}


def first_session_ms(root: str, out: Path, tries: int = 5) -> tuple[float, float]:
    """Median start and stop of the first session in a fresh process. Units: milliseconds."""
    import subprocess

    starts, stops = [], []
    for _ in range(tries):
        proc = subprocess.run([sys.executable, "-c", FIRST_SESSION_PY, str(Path(__file__).resolve().parents[1]),
                               str(out), root], capture_output=True, text=True, check=True)
        start_s, stop_s = map(float, proc.stdout.split())
        starts.append(1000 * start_s)
        stops.append(1000 * stop_s)
    return statistics.median(starts), statistics.median(stops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-s", type=float, default=2.0, help="workload length in seconds")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    n = calibrate(args.work_s)
    with tempfile.TemporaryDirectory(prefix="mlee-bench-") as tmp_name:
        tmp = Path(tmp_name)
        root, root_note = powercap_for_bench(tmp)
        work_py = tmp / "work.py"
        work_py.write_text(WORK_PY)
        ways = {
            "unmonitored": lambda: run_plain(n),
            "mlee 10 Hz": lambda: run_mlee(n, root, tmp / "mlee", 0.1),
            "mlee 100 Hz": lambda: run_mlee(n, root, tmp / "mlee", 0.01),
            "mlee thread 10 Hz": lambda: _with_env("MLEE_SAMPLER", "thread", run_mlee, n, root, tmp / "mlee", 0.1),
            "codecarbon": lambda: run_codecarbon(n, tmp / "cc"),
            "python work.py": lambda: run_program(n, work_py, root, tmp / "run", False, 0.1),
            "mlee run 10 Hz": lambda: run_program(n, work_py, root, tmp / "run", True, 0.1),
        }
        runs: dict[str, list[dict]] = {way: [] for way in ways}
        order = list(ways)
        for repeat in range(args.repeats):
            # each repeat starts at another way, so that a load that rises during a repeat hurts every way alike
            for way in order[repeat % len(order):] + order[:repeat % len(order)]:
                runs[way].append(ways[way]())
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
        first_start_ms, first_stop_ms = first_session_ms(root, tmp / "first")

    baseline_of = {way: ("python work.py" if way.startswith(("python", "mlee run")) else "unmonitored") for way in runs}
    print(f"workload: {n} iterations, about {args.work_s:g} s; mlee on {root_note}; codecarbon "
          f"{_version('codecarbon')} at 1 s; {os.cpu_count()} CPUs; {args.repeats} interleaved repeats, medians")
    header = (f"{'way':18} {'wall_s':>8} {'baseline':>15} {'+wall %':>8} {'paired %':>9} {'mon_cpu_s':>10} "
              f"{'% of core':>10} {'start_ms':>9} {'stop_ms':>8}")
    print(header)
    print("-" * len(header))
    for way, results in runs.items():
        wall = statistics.median(r["wall_s"] for r in results)
        base = statistics.median(r["wall_s"] for r in runs[baseline_of[way]])
        cpu = statistics.median(r["monitor_cpu_s"] for r in results)
        start = statistics.median(r["start_s"] for r in results)
        stop = statistics.median(r["stop_s"] for r in results)
        # the same repeat's run of the baseline: neighbours in time share the machine's load
        paired = statistics.median(r["wall_s"] / b["wall_s"] - 1 for r, b in zip(results, runs[baseline_of[way]]))
        print(f"{way:18} {wall:8.3f} {baseline_of[way]:>15} {100 * (wall / base - 1):+8.2f} {100 * paired:+9.2f} "
              f"{cpu:10.4f} "
              f"{100 * cpu / (wall + start + stop):10.3f} {1000 * start:9.1f} {1000 * stop:8.1f}")
    warm = runs["mlee 10 Hz"][1:] or runs["mlee 10 Hz"]
    warm_ms = 1000 * statistics.median(r["start_s"] + r["stop_s"] for r in warm)
    print(f"start+stop, mlee (sampler process): warm {warm_ms:.1f} ms (target < 100); first session in a fresh "
          f"process {first_start_ms + first_stop_ms:.1f} ms = start {first_start_ms:.1f} + stop {first_stop_ms:.1f} "
          "(target < 300)")
    boots = [r["boot_cpu_s"] for way in ("mlee 10 Hz", "mlee 100 Hz") for r in runs[way] if r.get("boot_cpu_s")]
    print(f"mlee samples per run at 10 Hz: {[r['samples'] for r in runs['mlee 10 Hz']]}; mon_cpu_s: mlee's "
          "sampler process during the session (or its thread); codecarbon's threads by psutil (10 ms ticks)")
    print(f"sampler process start-up, paid once per measured process (later sessions reuse it): "
          f"{', '.join(f'{1000 * b:.0f}' for b in boots) or 'none started'} ms CPU")
    print(f"load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _with_env(key: str, value: str, func, *args):  # noqa: ANN001, ANN202 - a bench helper
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        return func(*args)
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    raise SystemExit(main())
