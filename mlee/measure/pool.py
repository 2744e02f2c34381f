"""The measured process's side of the sampler process (:mod:`mlee.measure.worker`): start, reuse, end.

Starting an interpreter and loading what sampling needs costs 0.1-0.2 s of CPU and was most of a session's
start-up and stop, so a measured process keeps its sampler process between sessions: the first session starts it (or :func:`prestart` did, a little earlier),
later sessions only send "open" and "stop" messages to it. One idle process is kept per measured process; a
second session running at the same time gets its own. A process that misbehaved (no answer, a broken pipe) or
still owes the answer to a request whose caller a Ctrl-C interrupted is never reused. The pool belongs to the process that made it: a fork of the measured process starts its own, and
the idle process ends when the measured process ends (its end of the socket closes; nothing is left running).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee import errors
from mlee.measure.worker import SourceCopy, WorkerSpec
from mlee.monitors.base import Reading

#: How long the measured process waits for the sampler process to open the sources. Units: seconds.
OPEN_TIMEOUT_S = 120.0
#: Idle sampler processes kept per measured process.
KEEP_IDLE = 1


class SamplerProcess:
    """One sampler process and its end of the socket pair."""

    def __init__(self) -> None:
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
        # stdout is the measured process's data (``--json``): what libraries print in the sampler process (amdsmi
        # and codecarbon print on import) goes to its stderr.
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", boot], pass_fds=(theirs.fileno(),),
                                     stdin=subprocess.DEVNULL, stdout=_stderr_fd(), close_fds=True)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.owner_pid = os.getpid()
        self.healthy = True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def usable(self) -> bool:
        """Alive, answering so far, and this process's own (not inherited through a fork)."""
        return self.healthy and self.owner_pid == os.getpid() and self.proc.poll() is None

    def close(self) -> None:
        """Let it go: it ends when its socket closes (killed if it has not after 10 s)."""
        import subprocess

        self.healthy = False
        if self.owner_pid != os.getpid():
            return  # a fork's copy: the process is its parent's business
        self.conn.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class SamplerPool:
    """The sampler processes of one measured process (see the module docstring)."""

    def __init__(self) -> None:
        self._idle: list[SamplerProcess] = []
        self._lock = threading.Lock()

    def prestart(self) -> None:
        """Start a sampler process now unless one is idle, so that the next session need not wait for it."""
        with self._lock:
            self._idle = [p for p in self._idle if p.usable()]
            if not self._idle:
                self._idle.append(SamplerProcess())

    def acquire(self) -> SamplerProcess:
        """An idle sampler process, or a new one."""
        with self._lock:
            while self._idle:
                proc = self._idle.pop()
                if proc.usable():
                    return proc
        return SamplerProcess()

    def release(self, proc: SamplerProcess) -> None:
        """Take back a process whose session ended cleanly (kept idle, or let go)."""
        with self._lock:
            if proc.usable() and len(self._idle) < KEEP_IDLE:
                self._idle.append(proc)
                return
        discard(proc)

    def idle_pids(self) -> list[int]:
        """The process ids of the idle sampler processes (for ``mlee doctor`` and tests)."""
        with self._lock:
            return [p.pid for p in self._idle if p.usable()]

    def close(self) -> None:
        """Let every idle process go (at the measured process's exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for proc in idle:
            proc.close()


def discard(proc: SamplerProcess) -> None:
    """Let a process go in the background: its interpreter shutdown need not hold up the session."""
    proc.healthy = False
    threading.Thread(target=proc.close, name="mlee-sampler-reap", daemon=True).start()


# The sampler process belongs to the measured process, so the pool is per process (keyed by pid: a fork gets a
# fresh one). Made on first use, never at import.
_POOLS: dict[int, SamplerPool] = {}


def process_pool() -> SamplerPool:
    """This process's pool, made on first use (and closed at exit)."""
    pid = os.getpid()
    pool = _POOLS.get(pid)
    if pool is None:
        import atexit

        pool = _POOLS[pid] = SamplerPool()
        atexit.register(pool.close)
    return pool


def prestart() -> None:
    """Start this process's sampler process ahead of its first session (a no-op when one is idle)."""
    process_pool().prestart()


@dataclass
class RemoteOpened:
    """Like :class:`~mlee.monitors.detect.OpenedSources`, for sources opened in the sampler process."""

    sources: list[SourceCopy]
    first: list[Reading]
    skipped: list[dict]
    proxy: RemoteSampler

    def close_all(self) -> None:
        """Release everything (a start that failed): the sampler process closes its sources."""
        self.proxy.abort()


class RemoteSampler:
    """A session's handle on a sampler process: the :class:`~mlee.monitors.sampler.Sampler` calls it makes.

    Args:
        spec: What the sampler process opens.
        pool: Where the process comes from and goes back to (default: this process's pool).
    """

    def __init__(self, spec: WorkerSpec, pool: SamplerPool | None = None) -> None:
        self._pool = pool or process_pool()
        self._proc: SamplerProcess | None = self._pool.acquire()
        self.pid = self._proc.pid
        self._conn = self._proc.conn
        self._conn.send(("open", spec))
        self.interval_s = 0.0
        self._truncated: dict = {}
        self._summary: dict = {}
        self._stats: dict = {}
        self.log_lines: list[str] = []
        self._lock = threading.Lock()  # one request and its answer at a time, whichever thread asks
        self._owed = 0  # replies still to come for requests whose caller was interrupted (Ctrl-C)

    def _call(self, message: tuple, timeout_s: float | None = None) -> Any:
        with self._lock:
            return self._call_locked(message, timeout_s)

    def _call_locked(self, message: tuple, timeout_s: float | None) -> Any:
        try:
            for _ in range(self._owed):  # answers to requests a signal cut short: read, so that replies match
                self._conn.recv()
                self._owed -= 1
            if message:
                self._conn.send(message)
            try:
                if timeout_s is not None and not self._conn.poll(timeout_s):
                    self._give_up()
                    raise errors.MleeError("the sampler process did not answer",
                                           fix="set MLEE_DEBUG=1 and report it")
                reply = self._conn.recv()
            except KeyboardInterrupt:
                self._owed += 1
                raise
        except (EOFError, OSError) as exc:
            self._give_up()
            raise errors.MleeError("the sampler process ended unexpectedly",
                                   fix="set MLEE_DEBUG=1 and report it") from exc
        if reply[0] == "error":
            cls = getattr(errors, reply[1], errors.MleeError)
            raise cls(reply[2], fix=reply[3])
        return reply

    def _give_up(self) -> None:
        if self._proc is not None:
            discard(self._proc)
            self._proc = None

    def _release(self) -> None:
        if self._proc is not None and self._owed:  # a late reply is still on its way: never hand it to a session
            self._give_up()
        if self._proc is not None:
            self._pool.release(self._proc)
            self._proc = None

    def open(self) -> RemoteOpened:
        """Wait for the sources the sampler process opened (their errors are raised here; the process is kept)."""
        try:
            reply = self._call((), timeout_s=OPEN_TIMEOUT_S)
        except errors.MleeError:
            self._release()
            raise
        _, sources, first, skipped = reply
        return RemoteOpened(sources, first, skipped, self)

    def attach(self, folder: Path, channels: dict, t0_s: float, interval_s: float, host_pid: int,
               checkpoint_s: float) -> None:
        """Start sampling into ``folder``; returns once the first rows are written."""
        self.interval_s = interval_s
        try:
            self._call(("folder", str(folder), channels, t0_s, interval_s, host_pid, checkpoint_s))
        except errors.MleeError:
            self._release()  # the sampler process closed the sources and waits for the next session
            raise

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
        with self._lock:
            if self._proc is not None:
                self._conn.send(("state", state))

    def stop(self) -> Any:
        """Final readings; the process goes back to the pool. Returns the final snapshot."""
        end, self._summary, self._stats, self._truncated, self.log_lines = self._call(("stop",))[1]
        self._release()
        return end

    def abort(self) -> None:
        """A start given up before sampling began: the sampler process closes the sources."""
        if self._proc is None:
            return
        try:
            self._conn.send(("abort",))
        except (OSError, ValueError):
            self._give_up()
            return
        self._release()

    def summary(self, now_s: float | None = None) -> dict:
        return self._summary

    def stats(self) -> dict:
        return self._stats

    def truncated(self) -> dict:
        """The traces the sampler process had to cut short, as ``TraceSink.truncated``."""
        return self._truncated


def _stderr_fd() -> int:
    """The measured process's standard error descriptor, or /dev/null where it is closed."""
    import subprocess

    try:
        os.fstat(2)
    except OSError:
        return subprocess.DEVNULL
    return 2
