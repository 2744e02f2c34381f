"""Benchmark of databases of any size: `mlee rate` and `mlee merge --update` against a `json.load` floor.

Builds databases of 2022-style records (the 232 logs of ../shared/legacy-mlee-2022 merged once, then cloned
with new ids until the wanted count; about 10 kB a record, as in the 2022 paper's database) in the layout
`mlee merge` writes, then prints, side by side, each in a fresh process (wall time, peak memory of the
process):

- floor: `json.load` of the same file, nothing else;
- `mlee rate DB` (the table, to /dev/null);
- `mlee merge NEW -o DB --update` of one new experiment folder into a copy of the database without its
  `--update` index (at the largest size only).

Targets (issue 15): rate <= 1.5x the floor's time and <= 0.5x its peak memory at both sizes; the update
<= 1x the floor's time and under 300 MB. The machine this runs on may be shared: every figure is the best of
--repeat runs, and floor and command alternate within each round.

Usage: python scripts/bench_database.py [--sizes 20000,100000] [--repeat 2] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

FLOOR = "import json, sys\nwith open(sys.argv[1], 'rb') as fh:\n    json.load(fh)\n"


def legacy_records() -> list[dict]:
    from mlee.results import merge
    from results_builders import find_legacy_dir

    found = find_legacy_dir()
    if found is None:
        sys.exit("the 2022 logs are not here: set MLEE_LEGACY_DIR or place them at ../shared/legacy-mlee-2022")
    folder = found / "results" if (found / "results").is_dir() else found
    return merge([folder])["records"]


def build(path: Path, n: int, base: list[dict]) -> None:
    """A database of ``n`` clones of ``base`` (ids made unique), written in the writer's layout, streaming."""
    from mlee import __version__
    from mlee.results.database import KIND, SCHEMA_VERSION, dumps_line
    from mlee.results.summary import facts, summarise

    base = sorted(base, key=lambda r: r["id"])
    per = -(-n // len(base))
    facts_all = []
    written = 0
    with open(path, "wb") as fh:
        fh.write(b'{\n"kind":' + dumps_line(KIND) + b',\n"mlee_version":' + dumps_line(__version__)
                 + b',\n"records":[')
        for rec in base:
            for k in range(per):
                if written == n:
                    break
                clone = dict(rec, id=f"{rec['id']}-{k:06d}")
                facts_all.append(facts(clone))
                fh.write((b"\n" if written == 0 else b",\n") + dumps_line(clone))
                written += 1
        fh.write(b"\n],\n" + b'"schema_version":' + dumps_line(SCHEMA_VERSION) + b',\n"skipped":[],\n')
        lines = [dumps_line(s) for s in summarise([f for f in facts_all if f is not None])]
        fh.write(b'"summaries":[' + (b"\n" + b",\n".join(lines) + b"\n" if lines else b"") + b"]\n}\n")


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-500:]}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.dir or Path(tempfile.mkdtemp(prefix="mlee-bench-db-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "NO_COLOR": "1", "COLUMNS": "200"}
    py = sys.executable
    base = legacy_records()
    rows = []
    try:
        for n in sizes:
            db = work / f"db-{n}.json"
            if not db.exists():
                build(db, n, base)
            size_mb = db.stat().st_size / 1e6
            floor, rate = [], []
            for _ in range(args.repeat):
                floor.append(measure([py, "-c", FLOOR, str(db)], env))
                rate.append(measure([py, "-m", "mlee", "rate", str(db)], env))
            f, r = best(floor), best(rate)
            rows.append((f"{n:,} records ({size_mb:.0f} MB): json.load", f, None))
            rows.append((f"{n:,} records: mlee rate", r, (r[0] / f[0], r[1] / f[1], 1.5, 0.5)))
            if n == max(sizes):
                rows.append(_update_row(work, db, n, f, py, env, args.repeat))
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'':44} {'time s':>8} {'peak MB':>8} {'time x':>8} {'mem x':>7}  target")
    for label, (t, m), ratio in rows:
        if ratio is None:
            print(f"{label:44} {t:8.2f} {m:8.0f}")
        else:
            tx, mx, tt, mt = ratio
            ok = "ok" if tx <= tt and (mx <= mt if mt < 1 else m < mt) else "MISSED"
            target = f"<= {tt:g}x time, " + (f"<= {mt:g}x memory" if mt < 1 else f"< {mt:.0f} MB")
            print(f"{label:44} {t:8.2f} {m:8.0f} {tx:8.2f} {mx:7.2f}  {target}: {ok}")
    return 0


def _update_row(work: Path, db: Path, n: int, floor: tuple[float, float], py: str, env: dict,
                repeat: int) -> tuple:
    """`mlee merge NEW -o COPY --update` of one new folder into a copy of the database, without its index."""
    from results_builders import make_experiment

    new = work / "new"
    shutil.rmtree(new, ignore_errors=True)
    make_experiment(new, "fresh-run")
    runs = []
    for _ in range(repeat):
        copy = work / "update.json"
        shutil.copyfile(db, copy)
        for stale in (work / "update.mlee-index", work / "update.json.lock"):
            stale.unlink(missing_ok=True)
        runs.append(measure([py, "-m", "mlee", "merge", str(new), "-o", str(copy), "--update"], env))
        from mlee.results.dbread import iter_database

        count = sum(1 for _ in iter_database(copy, False, lambda _: None))
        if count != n + 1:
            sys.exit(f"the update wrote {count} records, not {n + 1}")
    u = best(runs)
    return (f"{n:,} records: merge --update, no index", u, (u[0] / floor[0], u[1] / floor[1], 1.0, 300.0))


if __name__ == "__main__":
    raise SystemExit(main())
