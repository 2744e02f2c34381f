"""Helpers shared by the runner and `mlee infer` tests (no tests here).

A powercap tree whose counters move at a known power, so that a real model run is measured with
exact, checkable energies instead of codecarbon's slow estimate.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from fakes.powercap import Zone, make_powercap_tree

#: Power of the fake package and dram zones. Units: watts.
CPU_W = 20.0
DRAM_W = 5.0


class TickingRapl:
    """A package-0 and a dram zone whose ``energy_uj`` grow at CPU_W / DRAM_W in real time."""

    def __init__(self, root: Path, period_s: float = 0.002) -> None:
        self.root = make_powercap_tree(root, [Zone("intel-rapl:0", "package-0"), Zone("intel-rapl:0:2", "dram")])
        self.period_s = period_s
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._fds: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="ticking-rapl", daemon=True)

    def _write(self, zone: str, value_uj: int) -> None:
        # In place and fixed width: the RAPL source keeps the file open and preads it, so the file
        # must stay the same inode, and a same-length pwrite never leaves a shorter, torn number.
        fd = self._fds.get(zone)
        if fd is None:
            fd = self._fds[zone] = os.open(self.root / zone / "energy_uj", os.O_WRONLY)
        os.pwrite(fd, f"{value_uj:020d}\n".encode("ascii"), 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            elapsed = time.monotonic() - self._t0
            self._write("intel-rapl:0", int(CPU_W * elapsed * 1e6))
            self._write("intel-rapl:0:2", int(DRAM_W * elapsed * 1e6))
            self._stop.wait(self.period_s)

    def __enter__(self) -> TickingRapl:
        self._run_once()
        self._thread.start()
        return self

    def _run_once(self) -> None:
        self._write("intel-rapl:0", 0)
        self._write("intel-rapl:0:2", 0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for fd in self._fds.values():
            os.close(fd)
