"""CPU cache sizes, read from the machine: sysfs first, ``lscpu`` where sysfs says nothing.

Sizes are per instance as the core sees them (one core's L1d and L2, the L3 it shares), which is what
a single training process's working set competes for.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlee.errors import MleeError

LEVELS = ("l1d", "l2", "l3")


@dataclass(frozen=True)
class CacheSizes:
    """Cache sizes and where they were read.

    Units: bytes (None where the machine did not say).
    """

    l1d: int | None
    l2: int | None
    l3: int | None
    source: str

    def known(self) -> list[tuple[str, int]]:
        """``(level, bytes)`` of the levels with a size, smallest first."""
        return [(name, size) for name in LEVELS if (size := getattr(self, name)) is not None]

    def level_of(self, working_set_bytes: float) -> str:
        """The smallest cache level that holds ``working_set_bytes`` (``dram`` when none does)."""
        for name, size in self.known():
            if working_set_bytes <= size:
                return name
        return "dram"

    def to_json(self) -> dict:
        return {"l1d": self.l1d, "l2": self.l2, "l3": self.l3, "source": self.source}


def _lscpu_sizes(text: str) -> dict[str, int | None]:
    """Per-instance sizes from ``lscpu`` output (``L2 cache: 2 MiB (2 instances)`` -> 1 MiB)."""
    from mlee.measure.machine import parse_size

    sizes: dict[str, int | None] = {k: None for k in LEVELS}
    for key, name in (("L1d", "l1d"), ("L2", "l2"), ("L3", "l3")):
        m = re.search(rf"^\s*{key} cache:\s*([\d.]+\s*[KMG]?i?B?)(?:\s*\((\d+) instances?\))?", text, re.MULTILINE)
        if m:
            total = parse_size(m.group(1).replace(" ", ""))
            count = int(m.group(2)) if m.group(2) else 1
            sizes[name] = total // count if total else None
    return sizes


def read_cache_sizes(cpu_dir: Path | None = None, lscpu_text: str | None = None) -> CacheSizes:
    """The cache sizes of this machine.

    Args:
        cpu_dir: sysfs cache folder (default ``/sys/devices/system/cpu/cpu0/cache``); tests pass a tree.
        lscpu_text: ``lscpu`` output to use instead of running it (tests).

    Raises:
        MleeError: neither sysfs nor lscpu gives any size (the fix says what to check).
    """
    from mlee.measure.machine import cache_bytes

    sysfs = cache_bytes(cpu_dir) if cpu_dir is not None else cache_bytes()
    if any(v is not None for v in sysfs.values()):
        return CacheSizes(sysfs["l1d"], sysfs["l2"], sysfs["l3"], "sysfs")
    if lscpu_text is None and shutil.which("lscpu"):
        try:
            lscpu_text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                                        env={"LC_ALL": "C"}).stdout
        except (OSError, subprocess.SubprocessError):
            lscpu_text = None
    found = _lscpu_sizes(lscpu_text or "")
    if any(v is not None for v in found.values()):
        return CacheSizes(found["l1d"], found["l2"], found["l3"], "lscpu")
    raise MleeError("the CPU cache sizes cannot be read (no /sys/devices/system/cpu/cpu0/cache, no lscpu sizes)",
                    "run on Linux with sysfs mounted, or install util-linux for lscpu")
