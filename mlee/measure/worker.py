"""Periodic sampling outside the measured interpreter: a small sampler process and its proxy.

A background thread in the measured process costs the workload more than its own CPU: every wake-up takes the
interpreter lock from the workload. So, where it can, the session samples in a child process: a fresh interpreter
(``python -c``, never a fork: safe after torch or CUDA initialised, and it never re-runs the user's script) that
talks to the session over a socket pair with multiprocessing's framing. The child opens the sources, runs the :class:`~mlee.monitors.sampler.Sampler` with its
thread, streams the traces and rewrites the running ``results.json``; the measured process holds a
:class:`RemoteSampler` whose calls are answered over a pipe. Window edges are exact: the session blocks while the
child reads every source (a pipe round trip, well under a millisecond). The child stops when the session stops,
or when the measured process dies (its end of the pipe closes).

What the child needs of a source: that opening the session's requested names again (``open_sources`` with the
same ``requested`` list, powercap root, country and environment) opens the same sources; each source's
``name``, ``domain``, ``method``, ``detail``, ``min_interval_s`` and ``max_interval_s`` are sent back by value.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlee import errors
from mlee.monitors.base import Domain, Method, Reading

#: How long the measured process waits for the sampler process to open the sources. Units: seconds.
OPEN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class WorkerSpec:
    """What the sampler process is started with (all by value)."""

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


@dataclass
class RemoteOpened:
    """Like :class:`~mlee.monitors.detect.OpenedSources`, for sources opened in the sampler process."""

    sources: list[SourceCopy]
    first: list[Reading]
    skipped: list[dict]
    proxy: RemoteSampler

    def close_all(self) -> None:
        """Release everything (a start that failed): the sampler process closes its sources and exits."""
        self.proxy.abort()


def _error(exc: BaseException) -> tuple:
    if isinstance(exc, errors.MleeError):
        return ("error", type(exc).__name__, exc.message, exc.fix)
    return ("error", "MleeError", f"sampler process: {type(exc).__name__}: {exc}", "set MLEE_DEBUG=1 and report it")


def main(fd: int) -> None:
    """Entry of the sampler process: ``fd`` is its end of the socket pair; the spec comes first."""
    import signal
    from multiprocessing.connection import Connection

    # Signals are the measured process's business: the session stops this process when it stops.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    conn = Connection(fd)
    try:
        serve(conn, conn.recv())
    except (EOFError, OSError):
        pass


def serve(conn: Any, spec: WorkerSpec) -> None:
    """The sampler process: open, then answer the measured process until it stops or goes away."""
    from mlee.monitors.detect import open_sources

    os.environ.clear()
    os.environ.update(spec.env)
    try:
        opened = open_sources(spec.requested, powercap_root=spec.powercap_root, country=spec.country)
    except BaseException as exc:  # noqa: BLE001 - sent back to be raised in the measured process
        conn.send(_error(exc))
        return
    conn.send(("opened", [SourceCopy(s.name, s.domain, s.method, s.detail, getattr(s, "min_interval_s", 0.0) or 0.0,
                                     getattr(s, "max_interval_s", None)) for s in opened.sources],
               list(opened.first), list(opened.skipped)))
    # While the measured process makes the folder, load what sampling into it needs (psutil, the trace writers).
    import mlee.monitors.host
    import mlee.monitors.sampler
    import mlee.results.layout
    import mlee.results.tracefile  # noqa: F401
    try:
        message = conn.recv()
    except (EOFError, OSError):
        message = ("abort",)
    if message[0] != "folder":
        opened.close_all()
        return
    _run(conn, opened, *message[1:])


def _run(conn: Any, opened: Any, folder: str, channels: dict, t0_s: float, interval_s: float, host_pid: int,
         checkpoint_s: float) -> None:
    from mlee.monitors.host import HostMonitor
    from mlee.monitors.sampler import Sampler
    from mlee.results.layout import write_json
    from mlee.results.tracefile import TraceSink

    state: list[Any] = [None]

    def checkpoint(snap: Any) -> None:
        from mlee.measure.record import running_results  # first needed seconds after the start

        if state[0] is not None:
            write_json(Path(folder), "results.json", running_results(replace(state[0], now=snap)))

    try:
        sink = TraceSink(Path(folder) / "power", channels)
        sampler = Sampler(opened.sources, opened.first, t0_s, interval_s, sink, host=HostMonitor(host_pid),
                          checkpoint=checkpoint, checkpoint_s=checkpoint_s)
    except BaseException as exc:  # noqa: BLE001 - e.g. a full disk: the measured process says so
        opened.close_all()
        conn.send(_error(OSError(str(exc))) if not isinstance(exc, errors.MleeError) else _error(exc))
        return
    sampler.start()
    conn.send(("ready",))
    _answer(conn, sampler, sink, state)


def _answer(conn: Any, sampler: Any, sink: Any, state: list) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the measured process is gone: keep what is on disk, stop
            sampler.stop()
            return
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
                end = sampler.stop()
                import time

                # The sampler process's whole CPU (its start-up included), beside its thread's.
                stats = {**sampler.stats(), "process_cpu_s": time.process_time()}
                conn.send(("ok", (end, sampler.summary(), stats, sink.truncated())))
                return
        except Exception as exc:  # noqa: BLE001 - answered, never a hang of the measured process
            conn.send(("error", "MleeError", f"sampler process: {type(exc).__name__}: {exc}",
                       "".join(traceback.format_exception_only(type(exc), exc)).strip()))


class RemoteSampler:
    """The measured process's handle on the sampler process: the :class:`Sampler` calls a session makes.

    Args:
        spec: What the sampler process opens.
    """

    def __init__(self, spec: WorkerSpec) -> None:
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        import mlee

        ours, theirs = socket.socketpair()
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(mlee.__file__)))
        # -S: no site import (a fifth of the start-up); the measured process's own search path instead.
        path = [package_root] + [p for p in sys.path if p and p != package_root]
        boot = f"import sys; sys.path[:] = {path!r}; from mlee.measure.worker import main; main({theirs.fileno()})"
        self._proc = subprocess.Popen([sys.executable, "-S", "-c", boot], pass_fds=(theirs.fileno(),),
                                      stdin=subprocess.DEVNULL, close_fds=True)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send(spec)
        self.interval_s = 0.0
        self._truncated: dict = {}
        self._summary: dict = {}
        self._stats: dict = {}

    def _call(self, message: tuple, timeout_s: float | None = None) -> Any:
        if timeout_s is not None and not self._conn.poll(timeout_s):
            raise errors.MleeError("the sampler process did not answer", fix="set MLEE_DEBUG=1 and report it")
        if message:
            self._conn.send(message)
        try:
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise errors.MleeError("the sampler process ended unexpectedly",
                                   fix="set MLEE_DEBUG=1 and report it") from exc
        if reply[0] == "error":
            cls = getattr(errors, reply[1], errors.MleeError)
            raise cls(reply[2], fix=reply[3])
        return reply

    def open(self) -> RemoteOpened:
        """Wait for the sources the sampler process opened (their errors are raised here)."""
        reply = self._call((), timeout_s=OPEN_TIMEOUT_S)
        _, sources, first, skipped = reply
        return RemoteOpened(sources, first, skipped, self)

    def attach(self, folder: Path, channels: dict, t0_s: float, interval_s: float, host_pid: int,
               checkpoint_s: float) -> None:
        """Start sampling into ``folder``; returns once the first rows are written."""
        self.interval_s = interval_s
        self._conn.send(("folder", str(folder), channels, t0_s, interval_s, host_pid, checkpoint_s))
        self._call(())

    def start(self) -> None:
        """The sampler process samples from :meth:`attach` on (a no-op, for the Sampler interface)."""

    def sample(self, force: bool = True) -> Any:
        """Every source read now, in the sampler process: the cumulative energies."""
        return self._call(("sample",))[1]

    def follow(self, pid: int) -> None:
        self._call(("follow", pid))

    def flush(self) -> None:
        self._call(("flush",))

    def publish(self, state: Any) -> None:
        """The session's state, for the running results.json the sampler process rewrites."""
        self._conn.send(("state", state))

    def stop(self) -> Any:
        """Final readings, then the process ends; returns the final snapshot."""
        end, self._summary, self._stats, self._truncated = self._call(("stop",))[1]
        import threading

        # The process has sent everything; its interpreter shutdown need not hold up the session's end.
        threading.Thread(target=self._reap, name="mlee-sampler-reap", daemon=True).start()
        return end

    def _reap(self) -> None:
        import subprocess

        self._conn.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def abort(self) -> None:
        try:
            self._conn.send(("abort",))
        except (OSError, ValueError):
            pass
        self._reap()

    def summary(self, now_s: float | None = None) -> dict:
        return self._summary

    def stats(self) -> dict:
        return self._stats

    def truncated(self) -> dict:
        """The traces the sampler process had to cut short, as ``TraceSink.truncated``."""
        return self._truncated
