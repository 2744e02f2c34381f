"""The sampler process: periodic sampling outside the measured interpreter (the child side).

A background thread in the measured process costs the workload more than its own CPU: every wake-up takes the
interpreter lock from the workload. So, where it can, a session samples in a child process: a fresh interpreter
(``python -S -c``, never a fork: safe after torch or CUDA initialised, and it never re-runs the user's script)
that talks to the measured process over a socket pair with multiprocessing's framing. The parent side, which
starts, reuses and ends these processes, is :mod:`mlee.measure.pool`.

One sampler process serves the sessions of its measured process one after another. For each it opens the
sources, runs a :class:`~mlee.monitors.sampler.Sampler` with its thread, streams the traces, rewrites the
running ``results.json``, writes ``environment.json`` and, at the end, ``power/stats.json``; then it closes the
sources and waits for the next session. Window edges stay exact: the session blocks while this process reads
every source (a pipe round trip, well under a millisecond), so edges are read in the measured process's time
order. This process ends when its end of the socket closes: the measured process ended, died or let it go.

Messages (tuples, first item the kind): ``("open", WorkerSpec)`` -> ``("opened", sources, first, skipped)`` or
an error; then ``("folder", ...)`` -> ``("ready",)``, or ``("abort",)``; then ``sample``, ``state``,
``follow``, ``flush`` and finally ``("stop",)`` -> ``("ok", (end, summary, stats, truncated, log_lines))``.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlee import errors
from mlee.vocabulary import Domain, Method


@dataclass(frozen=True)
class WorkerSpec:
    """What the sampler process opens for one session (all by value)."""

    requested: list[str] | None
    powercap_root: str | None
    country: str
    env: dict = field(default_factory=dict)


@dataclass
class SourceCopy:
    """A source as the measured process sees it: its description, by value (reads happen in the child)."""

    name: str
    domain: Domain
    method: Method
    detail: Any = None
    min_interval_s: float = 0.0
    max_interval_s: float | None = None


def _error(exc: BaseException) -> tuple:
    if isinstance(exc, errors.MleeError):
        return ("error", type(exc).__name__, exc.message, exc.fix)
    return ("error", "MleeError", f"sampler process: {type(exc).__name__}: {exc}", "set MLEE_DEBUG=1 and report it")


class WarmUp:
    """Loads what sessions need next, once, in a thread: trace writers and psutil first, then package versions
    for ``environment.json`` and numpy for ``power/stats.json``. It starts when the first session's sources are
    open, so that it runs while the measured process prepares the folder and runs its workload."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="mlee-warm-up", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            import mlee.monitors.host
            import mlee.monitors.sampler
            import mlee.results.layout
            import mlee.results.tracefile  # noqa: F401
            from mlee.measure import machine
            import mlee.measure.record

            machine.package_versions()
            machine.cpu_facts()
            import mlee.results.statsfile
            import numpy  # noqa: F401 - the trace statistics use it
        finally:  # a failure here shows where the module is used, with its own message
            self.done.set()


def main(fd: int) -> None:
    """Entry of the sampler process: ``fd`` is its end of the socket pair. Serves sessions until it closes."""
    import signal
    from multiprocessing.connection import Connection

    # Signals are the measured process's business: the session stops this process when it stops.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    conn = Connection(fd)
    threading.Thread(target=_watch_parent, args=(fd, os.getppid()), name="mlee-parent-watch", daemon=True).start()
    boot_cpu_s = time.process_time()
    reused = False
    warm = WarmUp()
    try:
        while True:
            message = conn.recv()
            if message[0] == "open":
                if not serve(conn, message[1], warm, boot_cpu_s=None if reused else boot_cpu_s):
                    return
                reused = True
            # anything else ("abort" of a session that already ended) is stale: ignored
    except (EOFError, OSError):
        return


def _watch_parent(fd: int, parent_pid: int) -> None:
    """End the conversation when the measured process is gone even though the socket stays open (a fork of it
    still holds a copy): the blocked ``recv`` then sees end-of-file and this process stops as it would."""
    import socket

    while os.getppid() == parent_pid:
        time.sleep(1.0)
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def serve(conn: Any, spec: WorkerSpec, warm: WarmUp, boot_cpu_s: float | None = None) -> bool:
    """One session: open, then answer the measured process until it stops. False when the connection is gone.

    ``warm`` loads the rest of what sessions need; ``boot_cpu_s``: the CPU this process spent starting, for its
    first session (None for later ones).
    """
    from mlee.monitors.detect import open_sources

    cpu0_s = time.process_time()
    os.environ.clear()
    os.environ.update(spec.env)
    try:
        opened = open_sources(spec.requested, powercap_root=spec.powercap_root, country=spec.country)
    except BaseException as exc:  # noqa: BLE001 - sent back to be raised in the measured process
        conn.send(_error(exc))
        return True
    conn.send(("opened", [SourceCopy(s.name, s.domain, s.method, s.detail, getattr(s, "min_interval_s", 0.0) or 0.0,
                                     getattr(s, "max_interval_s", None)) for s in opened.sources],
               list(opened.first), list(opened.skipped)))
    warm.start()  # (once) load the rest while the measured process makes the folder
    try:
        message = conn.recv()
    except (EOFError, OSError):
        opened.close_all()
        return False
    if message[0] != "folder":
        opened.close_all()
        return True
    cpu = {"boot_cpu_s": boot_cpu_s, "cpu0_s": cpu0_s, "warm": warm}
    return _run(conn, opened, cpu, *message[1:])


def _run(conn: Any, opened: Any, cpu: dict, folder: str, channels: dict, t0_s: float, interval_s: float,
         host_pid: int, checkpoint_s: float) -> bool:
    from mlee.measure.record import EnvironmentWriter, running_results
    from mlee.monitors.host import HostMonitor
    from mlee.monitors.sampler import Sampler
    from mlee.results.layout import write_json
    from mlee.results.tracefile import TraceSink

    state: list[Any] = [None]

    def checkpoint(snap: Any) -> None:
        if state[0] is not None:
            write_json(Path(folder), "results.json", running_results(replace(state[0], now=snap)))

    try:
        sink = TraceSink(Path(folder) / "power", channels)
        sampler = Sampler(opened.sources, opened.first, t0_s, interval_s, sink, host=HostMonitor(host_pid),
                          checkpoint=checkpoint, checkpoint_s=checkpoint_s)
    except BaseException as exc:  # noqa: BLE001 - e.g. a full disk: the measured process says so
        opened.close_all()
        conn.send(_error(OSError(str(exc))) if not isinstance(exc, errors.MleeError) else _error(exc))
        return True
    sampler.start()
    conn.send(("ready",))
    env = EnvironmentWriter(Path(folder), opened.sources, opened.skipped, None)
    return _answer(conn, sampler, sink, state, env, Path(folder), cpu)


def _stop(sampler: Any, sink: Any, env: Any, folder: Path, cpu: dict) -> tuple:
    """The session's end in this process: final readings, environment.json and power/stats.json written."""
    from mlee.results.layout import store_trace_stats

    end = sampler.stop()
    lines = []
    error = env.join()
    if error:
        lines.append(f"environment.json not written: {error}")
    if cpu["warm"].done.is_set():
        lines += store_trace_stats(folder)
    else:
        # A first session shorter than this process's loading (a few tenths of a second): waiting ~0.1 s for
        # numpy to cache the statistics of traces that short would cost more than parsing them at merge.
        lines.append("power/stats.json not written (the session ended while the sampler process was still "
                     "loading); mlee merge will parse the traces")
    # This session's CPU in this process (the interpreter's start-up is reported once, by its first session).
    stats = {**sampler.stats(), "process_cpu_s": time.process_time() - cpu["cpu0_s"],
             "process_boot_cpu_s": cpu["boot_cpu_s"] or 0.0, "process_reused": cpu["boot_cpu_s"] is None}
    return end, sampler.summary(), stats, sink.truncated(), lines


def _answer(conn: Any, sampler: Any, sink: Any, state: list, env: Any, folder: Path, cpu: dict) -> bool:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the measured process is gone: keep what is on disk, stop
            sampler.stop()
            env.join()
            return False
        kind = message[0]
        try:
            if kind == "sample":
                conn.send(("ok", sampler.sample()))
            elif kind == "state":
                state[0] = message[1]
            elif kind == "follow":
                sampler.follow(message[1])
                conn.send(("ok", None))
            elif kind == "flush":
                sampler.flush()
                conn.send(("ok", None))
            elif kind == "stop":
                conn.send(("ok", _stop(sampler, sink, env, folder, cpu)))
                return True
        except Exception as exc:  # noqa: BLE001 - answered, never a hang of the measured process
            conn.send(("error", "MleeError", f"sampler process: {type(exc).__name__}: {exc}",
                       "".join(traceback.format_exception_only(type(exc), exc)).strip()))
