"""Benchmark of `mlee merge`: 10,000 realistic experiment folders, cold merge, `--update`, against a floor.

Each folder is what a session writes: results.json (three repeat windows, two sources), config.json,
environment.json, power/rapl_package-0.csv and power/nvml_0.csv (60 s at 10 Hz each), power/host.csv and
power/stats.json (the traces' statistics with each file's size and CRC-32, which a merge checks and uses
instead of parsing the trace).

Figures printed side by side:
- floor: a plain loop in one process that reads every file and parses it (json.loads, numpy.loadtxt for
  the CSVs) - what any merge has to do at least; with --plain-floor also the csv-module variant;
- cold merge: `mlee merge DIR -o OUT` in a fresh process (wall time, peak memory of its process tree),
  with the default reader processes and with -j 1; once more with every stats.json renamed away, as
  folders of older mlee versions or of killed runs are (every trace parsed);
- update: 10 new folders, `mlee merge DIR -o OUT --update` (wall time of the command, and of the merge alone).

mlee's own modules are byte-compiled before the first figure, as pip does when it installs a package:
where PYTHONDONTWRITEBYTECODE is set (this project's machines set it) and mlee is installed in editable
mode, every command would otherwise compile mlee's sources again (about 0.08 s of each `--update`).

Targets (issue 4): cold merge under 10 s and within 2x of the floor; peak memory under 500 MB; update under 1 s.
Every file is read once, untimed, before the first figure. That warms the page cache only for a while on
a machine that reclaims unused pages within seconds (this project's virtual machines do), so with
--repeat N the figures come in N rounds of floor, cold merge and -j 1 merge, one after the other, and each
round's merge is compared with its own floor (the ratios' median is printed beside best/best). With
--dir DIR --keep, a later run can --reuse the generated folders.

Usage: python scripts/bench_merge.py [--folders 10000] [--seconds 60] [--hz 10] [--dir DIR] [--keep] [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

VARIANTS = 64  # distinct trace contents, reused round-robin: parsing cost is the same, generation is fast


def _trace_variants(seconds: float, hz: float, seed: int) -> dict[str, list[bytes]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(seconds * hz) + 1
    t = np.arange(n) / hz
    out: dict[str, list[bytes]] = {"rapl": [], "nvml": [], "host": []}
    for _ in range(VARIANTS):
        p_cpu = 35 + 10 * rng.random(n)
        e_cpu = np.concatenate([[0.0], np.cumsum(p_cpu[1:] / hz)])
        p_gpu = 150 + 100 * rng.random(n)
        e_gpu = np.concatenate([[0.0], np.cumsum(p_gpu[1:] / hz)])
        out["rapl"].append(_csv("t_s,energy_j,power_w,valid", t, e_cpu, p_cpu, np.ones(n, dtype=int)))
        out["nvml"].append(_csv("t_s,energy_j,power_w,valid", t, e_gpu, p_gpu, np.ones(n, dtype=int)))
        out["host"].append(_csv("t_s,proc_cpu_percent,proc_rss_bytes,sys_cpu_percent,sys_mem_used_bytes", t,
                                90 + 20 * rng.random(n), (2e9 + rng.integers(0, 1e8, n)).astype(int),
                                50 + 50 * rng.random(n), (3e10 + rng.integers(0, 1e9, n)).astype(int)))
    return out


def _fmt(v) -> str:
    if isinstance(v, (int,)) or (hasattr(v, "dtype") and v.dtype.kind in "iu"):
        return str(int(v))
    return f"{float(v):.6f}".rstrip("0").rstrip(".") if v != 0 else "0"


def _csv(header: str, *cols) -> bytes:
    lines = [header] + [",".join(_fmt(c[i]) for c in cols) for i in range(len(cols[0]))]
    return ("\n".join(lines) + "\n").encode()


def _results(rid: str, i: int, seconds: float, e_cpu: float, e_gpu: float) -> dict:
    total = e_cpu + e_gpu
    methods = {"total": "counter", "cpu": "counter", "dram": None, "gpu": "counter"}
    energy = {"total": total, "cpu": e_cpu, "dram": None, "gpu": e_gpu}
    n = 256
    windows = []
    for r in range(3):
        frac = 0.3
        windows.append({"name": f"repeat-{r}", "measured": True, "start_s": 1.0 + r * 18, "end_s": 1.0 + r * 18 + 17,
                        "duration_s": 17.0, "n_samples": n, "valid": True, "invalid_sources": [], "complete": True,
                        "energy_j": {k: (v * frac if v is not None else None) for k, v in energy.items()},
                        "energy_method": methods})
    return {
        "schema_version": 1, "id": rid, "kind": "infer", "name": f"model{i % 20}", "status": "completed",
        "error": None, "start_utc": f"2026-11-{1 + i % 28:02d}T07:01:02.123456Z",
        "end_utc": f"2026-11-{1 + i % 28:02d}T07:02:02.123456Z", "duration_s": seconds, "interval_s": 0.1,
        "energy_j": energy, "energy_method": methods, "estimated": False,
        "sources": [{"name": "rapl:package-0", "domain": "cpu", "method": "counter", "energy_j": e_cpu,
                     "n_samples": int(seconds * 10) + 1, "valid": True, "invalid_intervals": [],
                     "detail": {"zone": "/sys/class/powercap/intel-rapl:0", "max_energy_range_uj": 262143328850}},
                    {"name": "nvml:0", "domain": "gpu", "method": "counter", "energy_j": e_gpu,
                     "n_samples": int(seconds * 10) + 1, "valid": True, "invalid_intervals": [],
                     "detail": {"index": 0, "name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1b0307de-06ad-fcfe",
                                "driver": "550.54.15"}}],
        "skipped_sources": [{"name": "rapl:dram", "reason": "no DRAM zone on this CPU", "fix": ""}],
        "baseline": None, "windows": windows, "rank": None, "exit_code": 0, "valid": True,
        "carbon": {"country": "DEU", "intensity_g_per_kwh": 381.0, "source": "codecarbon global_energy_mix (2022)",
                   "pue": 1.0, "emissions_g": total / 3.6e6 * 381.0, "energy_method": "counter", "estimated": True},
        "sampler": {"interval_s": 0.1, "thread_cpu_s": 0.05, "overruns": 0},
        "task": "inference", "model": f"Model{i % 20}", "backend": {"name": "pytorch", "version": "2.14.1"},
        "device": "cuda", "dataset": "synthetic", "n_samples": 3 * n, "batch_size": 32,
        "metrics": {"top1": None, "top5": None, "loss": None},
        "model_info": {"parameters": 25557032, "flops": 8.2e9, "macs": 4.1e9, "weights_bytes": 102500000},
        "per_sample": {"energy_j": {k: (v / (3 * n) if v is not None else None) for k, v in energy.items()},
                       "energy_method": methods, "time_ms": 51.0 / (3 * n) * 1000, "throughput_per_s": 3 * n / 51.0},
        "repeats": {"n": 3, "per_sample_energy_j": {"mean": total / (3 * n), "std": 0.01, "cv": 0.01},
                    "per_sample_time_ms": {"mean": 66.4, "std": 0.5, "cv": 0.008}},
        "training": None,
    }


ENVIRONMENT = {
    "hostname": "bench-node", "os": "Linux", "kernel": "6.1.0-18-amd64", "python": "3.11.7",
    "cpu": {"model": "AMD EPYC 7B13 64-Core Processor", "vendor": "AuthenticAMD", "cores_physical": 64,
            "cores_logical": 128, "cache_bytes": {"l1d": 2097152, "l2": 33554432, "l3": 268435456}},
    "memory_bytes": 1082004701184,
    "gpus": [{"index": 0, "name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1b0307de-06ad-fcfe", "driver": "550.54.15",
              "memory_bytes": 42505273344}],
    "packages": {"torch": "2.14.1", "torchvision": "0.29.1", "numpy": "2.4.6", "mlee": "0.1.0", "psutil": "7.0.0",
                 "nvidia-ml-py": "12.560.30", "codecarbon": "3.3.0", "rich": "14.0.0", "typer": "0.29.0"},
    "mlee_version": "0.1.0",
}


def ident(i: int) -> str:
    """The experiment id (and folder name) of generated folder number ``i``."""
    return f"infer-model{i % 20}-20261122T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{i:06x}"


def generate(root: Path, count: int, seconds: float, hz: float, start: int = 0) -> None:
    """Write ``count`` folders numbered from ``start``, each with the ``power/stats.json`` a session writes
    when it ends (computed by mlee's own function for the first folder of each trace variant and copied to
    the folders with the same trace bytes, which is what that function would write there)."""
    from mlee.results.statsfile import STATS_FILE, write_trace_stats

    variants = _trace_variants(seconds, hz, seed=start)
    stats_text: dict[int, bytes] = {}
    env_text = json.dumps(ENVIRONMENT, indent=2, sort_keys=True)
    for i in range(start, start + count):
        folder = root / ident(i)
        (folder / "power").mkdir(parents=True)
        v = i % VARIANTS
        rapl, nvml = variants["rapl"][v], variants["nvml"][v]
        e_cpu = float(rapl.rsplit(b"\n", 2)[-2].split(b",")[1])
        e_gpu = float(nvml.rsplit(b"\n", 2)[-2].split(b",")[1])
        (folder / "power" / "rapl_package-0.csv").write_bytes(rapl)
        (folder / "power" / "nvml_0.csv").write_bytes(nvml)
        (folder / "power" / "host.csv").write_bytes(variants["host"][v])
        if v in stats_text:
            (folder / "power" / STATS_FILE).write_bytes(stats_text[v])
        else:
            written, problems = write_trace_stats(folder)
            assert written is not None and not problems, problems
            stats_text[v] = written.read_bytes()
        (folder / "config.json").write_text(json.dumps(
            {"kind": "infer", "name": f"model{i % 20}", "interval_s": 0.1, "sources": None, "command": None,
             "model": f"Model{i % 20}", "batch_size": 32, "n_samples": 256, "repeats": 3, "device": "cuda"},
            indent=2, sort_keys=True))
        (folder / "environment.json").write_text(env_text)
        (folder / "log.txt").write_text("done\n")
        (folder / "results.json").write_text(json.dumps(_results(ident(i), i, seconds, e_cpu, e_gpu), indent=2,
                                                        sort_keys=True))


def _warm(root: Path) -> None:
    """Read every file once, untimed: the floor (timed first) must not pay for a page cache the merges find warm."""
    for f in root.rglob("*"):
        if f.is_file():
            f.read_bytes()


def floor(root: Path, plain: bool) -> float:
    """Read and parse every file once, in one process; the time any merge needs at least."""
    import numpy as np

    started = time.perf_counter()
    for folder in sorted(root.iterdir()):
        for name in ("results.json", "config.json", "environment.json"):
            json.loads((folder / name).read_bytes())
        for trace in sorted((folder / "power").iterdir()):
            data = trace.read_bytes()
            if trace.suffix == ".json":  # power/stats.json
                json.loads(data)
            elif plain:
                rows = list(csv.reader(io.StringIO(data.decode())))
                [[float(x) if x else None for x in r] for r in rows[1:]]
            else:
                np.loadtxt(io.BytesIO(data), delimiter=",", skiprows=1, ndmin=2)
    return time.perf_counter() - started


def _hide_stats(root: Path, hide: bool) -> None:
    """Rename every ``power/stats.json`` away (``hide``) or back."""
    names = ("stats.json", "stats.json.hidden")
    src, dst = names if hide else names[::-1]
    for folder in root.iterdir():
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder / "power" / src, folder / "power" / dst)


def _peak_rss_of_tree(proc: subprocess.Popen, peak: list[float]) -> None:
    import psutil

    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        return
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak[0] = max(peak[0], total)
        time.sleep(0.02)


def run_merge(args: list[str]) -> tuple[float, float, str]:
    """Run `python -m mlee merge ...`; returns (wall seconds, peak MB of its process tree, stderr)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mlee", "merge", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]
    watcher = threading.Thread(target=_peak_rss_of_tree, args=(proc, peak), daemon=True)
    watcher.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"mlee merge failed ({proc.returncode}): {err}")
    return wall, peak[0] / 1e6, err.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folders", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--dir", type=Path, default=None, help="where to generate (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated folders")
    ap.add_argument("--reuse", action="store_true",
                    help="with --dir: reuse the folders a previous --keep run generated there (generating 10,000 "
                         "takes minutes); the --update folders it added are removed first")
    ap.add_argument("--plain-floor", action="store_true", help="also time the csv-module floor (slow)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of floor and merges, interleaved; best and median are printed (for machines "
                         "shared with others)")
    args = ap.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="mlee-bench-"))
    runs, out, parsed_out = base / "runs", base / "merged.json", base / "merged-parsed.json"
    try:
        t = time.perf_counter()
        if args.reuse and args.dir is not None and runs.is_dir():
            for folder in list(runs.iterdir()):  # what earlier --update figures added
                number = folder.name.rsplit("-", 1)[-1]
                if all(c in "0123456789abcdef" for c in number) and int(number, 16) >= args.folders:
                    shutil.rmtree(folder)
            have = sum(1 for _ in runs.iterdir())
            if have != args.folders:
                raise SystemExit(f"{runs} holds {have} folders, not {args.folders}: generate again without --reuse")
            if not (runs / ident(0) / "power" / "stats.json").is_file():
                raise SystemExit(f"{runs} was generated without power/stats.json: generate again without --reuse")
            how = "reused"
        else:
            generate(runs, args.folders, args.seconds, args.hz)
            how = "generated"
        os.sync()  # the generator's dirty pages must not be flushed inside the merge's fsync
        size_mb = sum(f.stat().st_size for f in runs.rglob("*") if f.is_file()) / 1e6
        print(f"{how} {args.folders} folders ({size_mb:.0f} MB) in {time.perf_counter() - t:.1f} s "
              f"on {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
        _warm(runs)
        import compileall

        import mlee

        compileall.compile_dir(str(Path(mlee.__file__).parent), quiet=1)
        # The rounds interleave floor and merges: on a shared virtual machine the CPU speed and the page
        # cache (reclaimed within seconds here) drift, and a ratio is only fair between neighbours in time.
        floors, colds, serials, ratios = [], [], [], []
        cold_mb = serial_mb = 0.0
        msg = ""
        for _ in range(args.repeat):
            floors.append(floor(runs, plain=False))
            wall, mb, msg = run_merge([str(runs), "-o", str(out), "--overwrite"])
            colds.append(wall)
            cold_mb = max(cold_mb, mb)
            ratios.append(wall / floors[-1])
            wall, mb, _ = run_merge([str(runs), "-o", str(out), "--overwrite", "-j", "1"])
            serials.append(wall)
            serial_mb = max(serial_mb, mb)
        plain_s = floor(runs, plain=True) if args.plain_floor else None
        db_mb = out.stat().st_size / 1e6
        from mlee.results import merge_into

        upds, upd_inprocs = [], []
        upd_mb, upd_msg = 0.0, ""
        added = args.folders
        for _ in range(args.repeat):
            generate(runs, 10, args.seconds, args.hz, start=added)
            added += 10
            os.sync()
            wall, mb, upd_msg = run_merge([str(runs), "-o", str(out), "--update"])
            upds.append(wall)
            upd_mb = max(upd_mb, mb)
            generate(runs, 10, args.seconds, args.hz, start=added)
            added += 10
            os.sync()
            t = time.perf_counter()
            merge_into(out, [runs], update=True)
            upd_inprocs.append(time.perf_counter() - t)
        # Folders of older mlee versions and killed runs have no power/stats.json: every trace is parsed.
        # Last, since renaming changes the power/ folders' mtimes, which --update would notice.
        _hide_stats(runs, True)
        try:
            parsed_s, parsed_mb, _ = run_merge([str(runs), "-o", str(parsed_out), "--overwrite"])
        finally:
            _hide_stats(runs, False)
        floor_s = min(floors)

        def fig(values: list[float]) -> str:
            return f"{min(values):.2f} s" if len(values) == 1 else f"{min(values):.2f} s (median {median(values):.2f})"

        rows = [
            ("floor: read + parse all files (1 process, numpy)", fig(floors), "", "1.00x"),
        ]
        if plain_s is not None:
            rows.append(("floor: read + parse all files (csv module)", f"{plain_s:.2f} s", "", f"{plain_s / floor_s:.2f}x"))
        rows += [
            ("cold merge (default readers)", fig(colds), "< 10 s, < 2x floor",
             f"{min(colds) / floor_s:.2f}x best/best; {median(ratios):.2f}x median of rounds"),
            ("cold merge (-j 1)", fig(serials), "", f"{min(serials) / floor_s:.2f}x"),
            ("cold merge, every trace parsed (no stats.json)", f"{parsed_s:.2f} s", "",
             f"{parsed_s / floor_s:.2f}x; {parsed_mb:.0f} MB peak"),
            ("cold merge peak memory (process tree)", f"{cold_mb:.0f} MB", "< 500 MB", ""),
            ("cold merge -j 1 peak memory", f"{serial_mb:.0f} MB", "< 500 MB", ""),
            ("database size", f"{db_mb:.1f} MB", "", ""),
            ("--update with 10 new folders (command)", fig(upds), "< 1 s", f"{min(upds) / min(colds):.3f}x cold"),
            ("--update with 10 new folders (merge only)", fig(upd_inprocs), "< 1 s", ""),
            ("--update peak memory", f"{upd_mb:.0f} MB", "", ""),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'figure':<{width}}  {'value':>24}  {'target':<20}  ratio")
        for name, value, target, ratio in rows:
            print(f"{name:<{width}}  {value:>24}  {target:<20}  {ratio}")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (other users of this machine share its CPUs)")
        print(f"merge said: {msg}")
        print(f"update said: {upd_msg}")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
