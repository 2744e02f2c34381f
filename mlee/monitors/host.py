"""Host traces from psutil: CPU and memory of the measured process tree and of the whole system.

Not energy: these traces explain energy (was the CPU busy? did memory grow?) and feed the report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HOST_COLUMNS = ("t_s", "proc_cpu_percent", "proc_rss_bytes", "sys_cpu_percent", "sys_mem_used_bytes")


@dataclass(frozen=True)
class HostSample:
    """One host sample.

    Units: ``t_s`` seconds (source clock); CPU in percent of one core (process tree, may exceed 100)
    or of the whole machine (system); memory in bytes.
    """

    t_s: float
    proc_cpu_percent: float | None
    proc_rss_bytes: int | None
    sys_cpu_percent: float | None
    sys_mem_used_bytes: int | None


def _descendants(pid: int) -> list[int] | None:
    """Every descendant of ``pid`` from the kernel's ``children`` lists: a few small reads instead of
    psutil's scan of every process on the machine. None when the kernel does not offer them."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            if current == pid:
                return None
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children", encoding="ascii") as fh:
                    children = [int(c) for c in fh.read().split()]
            except OSError:
                if current == pid:
                    return None
                continue
            found.extend(children)
            todo.extend(children)
    return found


def _process(psutil: Any, pid: int) -> Any:
    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class HostMonitor:
    """Samples a process tree (the process and all its descendants) and the system.

    Args:
        pid: Root of the process tree (default: this process). ``mlee run`` passes the child.
        clock: Monotonic clock.
    """

    def __init__(self, pid: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        import psutil

        self._psutil = psutil
        self.pid = os.getpid() if pid is None else pid
        self._clock = clock
        self._procs: dict[int, Any] = {}
        self._cpu_times: Any = None

    def set_pid(self, pid: int) -> None:
        """Follow another process tree from now on (``mlee run`` learns the child's pid late)."""
        self.pid = pid
        self._procs = {}

    def _system_cpu_percent(self) -> float | None:
        # Computed from cpu_times deltas, not psutil.cpu_percent(): that keeps one global baseline,
        # which any other caller (codecarbon does) resets under our feet.
        now = self._psutil.cpu_times()
        before, self._cpu_times = self._cpu_times, now
        if before is None:
            return None
        total = sum(now) - sum(before)
        idle = (getattr(now, "idle", 0) + getattr(now, "iowait", 0)) - (
            getattr(before, "idle", 0) + getattr(before, "iowait", 0))
        if total <= 0:
            return None
        return max(0.0, min(100.0, 100.0 * (total - idle) / total))

    def sample(self) -> HostSample:
        psutil = self._psutil
        t_s = self._clock()
        cpu_percent: float | None = 0.0
        rss_bytes: int | None = 0
        try:
            root = self._procs.get(self.pid) or psutil.Process(self.pid)
            pids = _descendants(self.pid)
            if pids is None:  # no /proc/<pid>/task/*/children: let psutil scan every process
                tree = [root] + root.children(recursive=True)
            else:
                tree = [root] + [self._procs.get(p) or _process(psutil, p) for p in pids]
                tree = [p for p in tree if p is not None]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            tree = []
            cpu_percent = rss_bytes = None
        alive: dict[int, Any] = {}
        for proc in tree:
            proc = self._procs.get(proc.pid, proc)  # keep the object: cpu_percent() needs its history
            try:
                with proc.oneshot():
                    cpu = proc.cpu_percent(None)
                    rss = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            alive[proc.pid] = proc
            if cpu_percent is not None:
                cpu_percent += cpu
            if rss_bytes is not None:
                rss_bytes += rss
        self._procs = alive
        try:
            mem_used: int | None = int(psutil.virtual_memory().used)
        except Exception:  # noqa: BLE001 - a trace gap, not a failure
            mem_used = None
        return HostSample(t_s, cpu_percent, rss_bytes, self._system_cpu_percent(), mem_used)
