"""Reading the inputs of a merge: one experiment folder or 2022 log -> a record line or a skip reason.

Workers never raise for bad input: every problem comes back as a reason, so one broken folder cannot stop
a merge of thousands. Many inputs are read in worker processes when idle CPUs exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mlee.errors import ResultFormatError
from mlee.results.database import dumps_line
from mlee.results.discover import Input
from mlee.results.folder import fingerprint_and_traces, read_experiment
from mlee.results.legacy import read_legacy_file
from mlee.results.ranks import is_rank_record
from mlee.results.summary import facts

#: Below this many inputs to read, reading happens in this process (starting workers costs more).
PARALLEL_MIN_INPUTS = 64


def file_fingerprint(path: Path) -> str:
    """Size and mtime of a single-file input (a 2022 log), for ``--update``."""
    try:
        st = os.stat(path)
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "missing"


def read_input(inp: Input, include_traces: bool = False) -> tuple:
    """Read one input. Returns ``("record", id, line, facts, fp)``, ``("rank", record, fp)`` or
    ``("skip", reason, fp)``; never raises for bad input (the reason is returned)."""
    names = None
    if inp.kind == "folder":
        fp, names = fingerprint_and_traces(inp.path, probe=inp.probe)
    else:
        fp = file_fingerprint(inp.path)
    try:
        if inp.kind == "legacy":
            rec = read_legacy_file(inp.path, origin_path=inp.display)
        else:
            rec = read_experiment(inp.path, include_traces=include_traces, trace_names=names)
        if is_rank_record(rec):
            return ("rank", rec, fp)
        try:
            line = dumps_line(rec)
        except ValueError:
            return ("skip", "holds figures too large to be finite", fp)
        return ("record", rec["id"], line, facts(rec), fp)
    except ResultFormatError as exc:
        return ("skip", str(exc), fp)
    except RecursionError:
        return ("skip", "nested too deeply to be an mlee file", fp)


def default_jobs() -> int:
    """Reader processes when not told: the CPUs not already busy, 1 to 4.

    Extra processes only pay off on idle cores; on a machine others keep busy they add forking and
    pickling to the same CPU time (measured: 2 readers 1.6x slower than 1 at load 3 on 2 cores).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(4, int(cpus - busy + 0.5)))


def _read_chunk(args: tuple[list[Input], bool]) -> list[tuple]:
    items, include_traces = args
    return [read_input(i, include_traces) for i in items]


def read_all(inputs: list[Input], include_traces: bool, jobs: int | None,
              on_progress: Callable[[int], None] | None) -> list[tuple]:
    """Read inputs, in worker processes when there are many; results in input order."""
    workers = jobs if jobs is not None else default_jobs()
    if workers <= 1 or len(inputs) < PARALLEL_MIN_INPUTS:
        out = []
        for inp in inputs:
            out.append(read_input(inp, include_traces))
            if on_progress:
                on_progress(1)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import numpy  # noqa: F401 - imported once here, so forked readers do not each pay for it

    size = max(8, min(256, len(inputs) // (workers * 8) or 1))
    chunks = [inputs[i:i + size] for i in range(0, len(inputs), size)]
    ctx = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
    out = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for part in pool.map(_read_chunk, [(c, include_traces) for c in chunks]):
            out.extend(part)
            if on_progress:
                on_progress(len(part))
    return out
