"""Reading the inputs of a merge: one experiment folder or 2022 log -> a record line or a skip reason.

Workers never raise for bad input: every problem comes back as a reason, so one broken folder cannot stop
a merge of thousands. Many inputs are read in worker processes when idle CPUs exist.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from mlee.errors import ResultFormatError
from mlee.results.database import dumps_line
from mlee.results.discover import Input
from mlee.results.folder import compose_fingerprint, power_listing, read_experiment
from mlee.results.legacy import read_legacy_file
from mlee.results.liveness import DEFAULT_STALE_AFTER_S
from mlee.results.ranks import is_rank_record
from mlee.results.summary import facts

#: Below this many inputs to read, reading happens in this process (starting workers costs more).
PARALLEL_MIN_INPUTS = 64
#: Below this many unchanged-or-not checks, :func:`flags_in_two` forks no helper (a fork costs about 5 ms).
PARALLEL_MIN_CHECKS = 2000


def file_fingerprint(path: Path) -> str:
    """Size, mtime, ctime and inode of a single-file input (a 2022 log), for ``--update``."""
    try:
        st = os.stat(path)
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    except OSError:
        return "missing"


def read_input(inp: Input, include_traces: bool = False, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> tuple:
    """Read one input. Returns ``("record", id, line, facts, parsed, invalid, fp)``, ``("rank", record, parsed,
    invalid, fp)`` or ``("skip", reason, parsed, 0, fp)``, where ``parsed`` counts the traces that had to be
    parsed (no matching ``power/stats.json`` entry) and ``invalid`` the trace rows left out as malformed or not
    finite; never raises for bad input (the reason is returned).

    A folder's fingerprint is made from the stats of its files as they were opened for reading (what was
    read is what is fingerprinted, and no file is stat-ed twice). A folder still ``running`` whose process is
    gone (see :mod:`mlee.results.liveness`; ``stale_after_s`` for other hosts) is read as ``interrupted``."""
    if inp.kind != "folder":
        return (*_outcome(inp, include_traces, None, None, None), 0, 0, file_fingerprint(inp.path))
    seen: dict[str, os.stat_result] = {}
    parsed: list[str] = []
    power, names = power_listing(inp.location)
    outcome = _outcome(inp, include_traces, names, seen, parsed, stale_after_s)
    rec = outcome[1] if outcome[0] == "rank" else None
    invalid = invalid_rows(rec) if rec is not None else outcome[-1] if outcome[0] == "record" else 0
    outcome = outcome[:-1] if outcome[0] == "record" else outcome
    return (*outcome, len(parsed), invalid, compose_fingerprint(inp.location, seen, power, names))


def invalid_rows(record: dict) -> int:
    """Trace rows of a record left out as malformed or not finite (every channel of a trace file carries its
    file's count as ``invalid_rows``)."""
    files: dict[str, int] = {}
    for key, stats in (record.get("traces") or {}).items():
        if isinstance(stats, dict) and isinstance(stats.get("invalid_rows"), int):
            files[key.rsplit(".", 1)[0]] = stats["invalid_rows"]
    return sum(files.values())


def _outcome(inp: Input, include_traces: bool, names: list[str] | None,
             seen: dict[str, os.stat_result] | None, parsed: list[str] | None,
             stale_after_s: float = DEFAULT_STALE_AFTER_S) -> tuple:
    try:
        if inp.kind == "legacy":
            rec = read_legacy_file(inp.path, origin_path=inp.display)
        else:
            rec = read_experiment(inp.location, include_traces=include_traces, trace_names=names, seen=seen,
                                  parsed=parsed, stale_after_s=stale_after_s)
        if is_rank_record(rec):
            return ("rank", rec)
        try:
            line = dumps_line(rec)
        except ValueError:
            return ("skip", "holds figures too large to be finite")
        return ("record", rec["id"], line, facts(rec), invalid_rows(rec))
    except ResultFormatError as exc:
        return ("skip", str(exc))
    except RecursionError:
        return ("skip", "nested too deeply to be an mlee file")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as under SLURM or taskset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_jobs(sample_s: float = 0.1, proc_stat: str = "/proc/stat") -> int:
    """Reader processes when not told: the CPUs idle right now, 1 to 4.

    Idle time is sampled from ``proc_stat`` over ``sample_s``; the load average is no guide here: it lags
    by a minute and counts tasks waiting on the disk, so an idle 2-CPU virtual machine often shows a load
    of 1 and a merge would have used one of its two CPUs. Where ``/proc/stat`` is missing (macOS), the
    CPUs not covered by the load average are used.

    Units: ``sample_s`` in seconds.
    """
    cpus = usable_cpus()
    if cpus <= 1:
        return 1
    fraction = _idle_fraction(sample_s, proc_stat)
    idle = fraction * cpus if fraction is not None else None
    if idle is None:
        try:
            idle = cpus - os.getloadavg()[0]
        except (AttributeError, OSError):
            idle = float(cpus)
    return max(1, min(4, cpus, int(idle + 0.5)))


def cpu_times(line: bytes) -> tuple[int, int] | None:
    """(idle + iowait, total) clock ticks of all CPUs from the first line of ``/proc/stat``; None when the
    line is not one."""
    fields = line.split()
    if len(fields) < 6 or fields[0] != b"cpu":
        return None
    try:
        ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    except ValueError:
        return None
    return ticks[3] + ticks[4], sum(ticks)


def idle_share(first: tuple[int, int] | None, second: tuple[int, int] | None) -> float | None:
    """The share of CPU time that was idle between two :func:`cpu_times` readings; None when they cannot tell."""
    if first is None or second is None or second[1] <= first[1]:
        return None
    return min(1.0, max(0.0, (second[0] - first[0]) / (second[1] - first[1])))


def _idle_fraction(sample_s: float, proc_stat: str) -> float | None:
    """:func:`idle_share` over the next ``sample_s`` seconds (all CPUs of the machine, which stand for the
    ones this process may use); None when ``proc_stat`` cannot be read."""
    import time

    def reading() -> tuple[int, int] | None:
        try:
            with open(proc_stat, "rb") as fh:
                return cpu_times(fh.readline())
        except OSError:
            return None

    first = reading()
    if first is None:
        return None
    time.sleep(sample_s)
    return idle_share(first, reading())


def flags_in_two(n: int, test: Callable[[int], bool]) -> list[bool]:
    """``[test(i) for i in range(n)]``, the second half computed side by side in a forked child process when
    there are many and the machine has a second CPU.

    ``--update`` of a large results folder spends most of its time in the stat calls that tell whether a
    folder changed; the two halves of them run at once. Only the answers (one byte each) come back through
    a pipe. Where fork is missing or fails, everything runs here; a child that dies leaves its half to this
    process, so the answers never depend on how they were computed.
    """
    if n < PARALLEL_MIN_CHECKS or not hasattr(os, "fork") or usable_cpus() < 2:
        return [test(i) for i in range(n)]
    mid = n // 2
    try:
        r, w = os.pipe()
    except OSError:
        return [test(i) for i in range(n)]
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return [test(i) for i in range(n)]
    if pid == 0:  # the child: its half, as bytes 0/1, then out without running any exit handler of the parent
        code = 1
        try:
            os.close(r)
            view = memoryview(bytes(bool(test(i)) for i in range(mid, n)))
            while view:
                view = view[os.write(w, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    chunks: list[bytes] = []
    try:
        first = [test(i) for i in range(mid)]
        got = 0
        while got < n - mid:
            chunk = os.read(r, n - mid - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        os.close(r)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
    rest = b"".join(chunks)
    if len(rest) != n - mid:
        return first + [test(i) for i in range(mid, n)]
    return first + [b == 1 for b in rest]


def _read_chunk(args: tuple[list[Input], bool, float]) -> list[tuple]:
    items, include_traces, stale_after_s = args
    return [read_input(i, include_traces, stale_after_s) for i in items]


def read_all(inputs: list[Input], include_traces: bool, jobs: int | None,
              on_progress: Callable[[int], None] | None, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> list[tuple]:
    """Read inputs, in worker processes when there are many; results in input order."""
    workers = 1
    if len(inputs) >= PARALLEL_MIN_INPUTS:
        workers = jobs if jobs is not None else default_jobs()
    if workers <= 1:
        out = []
        for inp in inputs:
            out.append(read_input(inp, include_traces, stale_after_s))
            if on_progress:
                on_progress(1)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Chunks small enough that no reader is left finishing a long last chunk alone at the end.
    size = max(8, min(64, len(inputs) // (workers * 8) or 1))
    chunks = [inputs[i:i + size] for i in range(0, len(inputs), size)]
    ctx = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
    out = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for part in pool.map(_read_chunk, [(c, include_traces, stale_after_s) for c in chunks]):
            out.extend(part)
            if on_progress:
                on_progress(len(part))
    return out
