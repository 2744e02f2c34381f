"""Build powercap trees under tmp_path and move their counters by writing ``energy_uj``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: A common Intel range (2^32 x 61 uJ). Units: micro-joules.
INTEL_RANGE_UJ = 262143328850


@dataclass
class Zone:
    """One zone to create.

    ``zone_id`` is the directory (``intel-rapl:0:2``); ``name`` the sysfs name (``dram``);
    ``energy_uj``/``max_energy_range_uj`` None leave that file out.
    """

    zone_id: str
    name: str
    energy_uj: int | None = 0
    max_energy_range_uj: int | None = INTEL_RANGE_UJ


def make_powercap_tree(root: Path, zones: list[Zone], control_types: tuple[str, ...] = ("intel-rapl",)) -> Path:
    """Create ``root/<zone_id>/{name,energy_uj,max_energy_range_uj}`` in the flat sysfs layout."""
    root.mkdir(parents=True, exist_ok=True)
    for control in control_types:
        (root / control).mkdir(exist_ok=True)
        (root / control / "enabled").write_text("1\n")
    for zone in zones:
        folder = root / zone.zone_id
        folder.mkdir()
        (folder / "name").write_text(zone.name + "\n")
        if zone.energy_uj is not None:
            (folder / "energy_uj").write_text(f"{zone.energy_uj}\n")
        if zone.max_energy_range_uj is not None:
            (folder / "max_energy_range_uj").write_text(f"{zone.max_energy_range_uj}\n")
    return root


def set_energy(root: Path, zone_id: str, energy_uj: int) -> None:
    """Move a counter: what the CPU does between two reads.

    As sysfs does, a reader sees the old value or the new one, never an empty or half-written file: the
    new text is written over the old in one ``pwrite`` (same inode, no truncation), zero-padded to the
    old length when it is shorter (a wrap), which ``int()`` reads as the same number. ``write_text``
    truncates first, and a sampler process reading at that instant saw an empty counter.
    """
    path = root / zone_id / "energy_uj"
    if not path.exists():  # a zone that comes back after it was removed: a new file
        path.write_text(f"{energy_uj}\n")
        return
    old = path.read_bytes()
    text = f"{energy_uj}\n".encode("ascii")
    if len(text) < len(old):
        text = f"{energy_uj:0{len(old) - 1}d}\n".encode("ascii")
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, text, 0)
    finally:
        os.close(fd)


def intel_server(root: Path, packages: int = 2) -> Path:
    """A two-socket server: package-N with core and dram sub-zones, plus MMIO twins of the packages."""
    zones = []
    for p in range(packages):
        zones += [Zone(f"intel-rapl:{p}", f"package-{p}"), Zone(f"intel-rapl:{p}:0", "core"),
                  Zone(f"intel-rapl:{p}:1", "dram"), Zone(f"intel-rapl-mmio:{p}", f"package-{p}")]
    return make_powercap_tree(root, zones, ("intel-rapl", "intel-rapl-mmio"))


def intel_laptop(root: Path) -> Path:
    """A laptop: package-0 with core/uncore, and psys (the whole platform) as a second top zone."""
    return make_powercap_tree(root, [Zone("intel-rapl:0", "package-0"), Zone("intel-rapl:0:0", "core"),
                                     Zone("intel-rapl:0:1", "uncore"), Zone("intel-rapl:1", "psys")])


def amd_epyc(root: Path) -> Path:
    """AMD Zen through the same driver: package-N with a ``core`` sub-zone, no dram."""
    return make_powercap_tree(root, [Zone("intel-rapl:0", "package-0", max_energy_range_uj=65532610987),
                                     Zone("intel-rapl:0:0", "core", max_energy_range_uj=65532610987)])
