"""Who is writing a running experiment folder, and whether that process is still alive.

A running ``results.json`` carries ``process``: the host name, the kernel's boot id, the pid and the process's
start time. On the same host and boot, the run is alive while that pid exists and started at that time (a pid
reused by another process started later). On another host (or when the identity cannot be checked here), the
run counts as gone once ``results.json`` has not been rewritten for ``stale_after_s``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

#: How long a running folder of another host may go without an update before merge calls it interrupted.
#: Units: seconds.
DEFAULT_STALE_AFTER_S = 600.0
#: Start times are compared to this precision (psutil derives them from clock ticks). Units: seconds.
START_TOLERANCE_S = 0.05
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def boot_id(path: str = BOOT_ID_PATH) -> str | None:
    """The kernel's boot id (changes at every boot), or None where there is none."""
    try:
        return Path(path).read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def process_start_s(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when it does not exist.

    Units: seconds.
    """
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.Error:
        return None


def process_identity(pid: int | None = None) -> dict:
    """``{"host", "boot_id", "pid", "start_s"}`` of this process (or ``pid``), for a running ``results.json``."""
    pid = os.getpid() if pid is None else pid
    return {"host": socket.gethostname(), "boot_id": boot_id(), "pid": pid, "start_s": process_start_s(pid)}


def is_gone(identity: dict | None, age_s: float, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> tuple[bool, str]:
    """Whether the process that wrote a running folder is gone, and why (one phrase).

    Args:
        identity: The folder's ``process`` block (None: an older folder without one).
        age_s: Time since ``results.json`` was last written.
        stale_after_s: Limit for runs that cannot be checked on this host.

    Units: seconds.
    """
    if isinstance(identity, dict) and identity.get("host") == socket.gethostname():
        here = boot_id()
        if identity.get("boot_id") and here and identity["boot_id"] != here:
            return True, "the machine has rebooted since the run started"
        pid = identity.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool) and identity.get("boot_id") == here:
            started = process_start_s(pid)
            if started is None:
                return True, f"its process {pid} no longer exists"
            recorded = identity.get("start_s")
            if isinstance(recorded, (int, float)) and abs(started - recorded) > START_TOLERANCE_S:
                return True, f"its process {pid} no longer exists (the pid now belongs to a later process)"
            return False, f"its process {pid} is still running"
    if age_s > stale_after_s:
        return True, f"results.json has not been updated for {age_s:.0f} s (over --stale-after {stale_after_s:g} s)"
    return False, f"results.json was updated {age_s:.0f} s ago, within --stale-after {stale_after_s:g} s"
