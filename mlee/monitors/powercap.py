"""The Linux powercap tree: finding RAPL zones and choosing the default set (no reading of counters).

See :mod:`mlee.monitors.rapl` for the counters themselves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mlee.errors import UsageError
from mlee.vocabulary import Domain

DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
ENV_POWERCAP_ROOT = "MLEE_POWERCAP_ROOT"

_ZONE_RE = re.compile(r"^(?P<kind>[a-z]+-rapl(?:-(?P<iface>mmio|tpmi))?):(?P<index>\d+(?::\d+)*)$")

#: The interfaces one RAPL counter may be read through, preferred first: a zone whose twin (same
#: name, same parent) is readable through a preferred interface is a duplicate of it.
INTERFACES = ("msr", "tpmi", "mmio")

#: The highest power a zone can plausibly draw when its constraints say nothing higher; the wrap
#: guard uses it. Generous on purpose: a too-short interval costs a little CPU, a too-long one
#: loses a whole wrap. Units: watts.
PLAUSIBLE_MAX_POWER_W = {"package": 800.0, "dram": 300.0, "psys": 1500.0, "core": 800.0, "uncore": 300.0}


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone as found on disk.

    ``zone_id`` is the directory name (``intel-rapl:0:2``); ``label`` the sysfs ``name`` file
    (``dram``); ``source_name`` the mlee name (``rapl:package-0``, ``rapl:package-0-dram``);
    ``interface`` how the counter is read (``msr``, ``tpmi`` for ``intel-rapl-tpmi:N``, ``mmio``);
    ``stem`` the name without the interface prefix (twins through two interfaces share it).
    """

    zone_id: str
    path: Path
    label: str
    parent_id: str | None
    interface: str
    source_name: str
    stem: str = ""

    @property
    def mmio(self) -> bool:
        return self.interface == "mmio"

    @property
    def kind(self) -> str:
        """``package``, ``dram``, ``psys``, ``core``, ``uncore`` or ``other``."""
        low = self.label.lower()
        if low.startswith("package"):
            return "package"
        for kind in ("psys", "dram", "uncore", "core"):
            if low.startswith(kind):
                return kind
        return "other"

    @property
    def domain(self) -> Domain:
        return {"dram": Domain.dram, "psys": Domain.system}.get(self.kind, Domain.cpu)


def powercap_root(root: str | os.PathLike | None = None) -> Path:
    """The powercap root to read: the argument, else ``MLEE_POWERCAP_ROOT``, else the sysfs default."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ENV_POWERCAP_ROOT) or DEFAULT_POWERCAP_ROOT)


def _read_text(path: Path) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


def _read_uj(path: Path) -> int:
    """One integer from a sysfs file; raises OSError or ValueError (never returns a made-up 0)."""
    value = int(_read_text(path))
    if value < 0:
        raise ValueError(f"negative counter value {value}")
    return value


def discover_zones(root: str | os.PathLike | None = None) -> list[RaplZone]:
    """Every RAPL zone under the powercap root, sorted by zone id.

    Works on the flat sysfs layout (``intel-rapl:0``, ``intel-rapl:0:0`` side by side) and on a
    nested one (sub-zones inside their package's folder).
    """
    base = powercap_root(root)
    found: dict[str, Path] = {}

    def scan(folder: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            match = _ZONE_RE.match(entry.name)
            if match and entry.is_dir():
                found.setdefault(entry.name, Path(entry.path))
                if depth < 3:
                    scan(Path(entry.path), depth + 1)
            elif entry.name in ("intel-rapl", "intel-rapl-mmio", "intel-rapl-tpmi", "amd-rapl") and depth == 0 \
                    and entry.is_dir():
                scan(Path(entry.path), depth + 1)

    scan(base, 0)
    labels: dict[str, str] = {}
    for zone_id, path in found.items():
        try:
            labels[zone_id] = _read_text(path / "name") or zone_id
        except (OSError, UnicodeDecodeError):
            labels[zone_id] = zone_id
    zones: list[RaplZone] = []
    used: set[str] = set()
    for zone_id in sorted(found, key=_zone_sort_key):
        match = _ZONE_RE.match(zone_id)
        assert match is not None
        parts = zone_id.rsplit(":", 1)
        parent_id = parts[0] if match.group("index").count(":") >= 1 else None
        interface = match.group("iface") or "msr"
        label = labels[zone_id]
        stem = label if parent_id is None else f"{labels.get(parent_id, parent_id)}-{label}"
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)
        prefixed = (f"{interface}-" if interface != "msr" else "") + stem
        name = f"rapl:{prefixed}"
        if name in used:  # two zones with one label (mirrored dies): keep names unique
            name = f"rapl:{prefixed}-{zone_id.replace(':', '-')}"
        used.add(name)
        zones.append(RaplZone(zone_id, found[zone_id], label, parent_id, interface, name, stem))
    return zones


def _zone_sort_key(zone_id: str) -> tuple:
    prefix, _, rest = zone_id.partition(":")
    return (prefix, tuple(int(p) for p in rest.split(":")))


def default_zones(zones: list[RaplZone]) -> tuple[list[RaplZone], list[tuple[RaplZone, str]]]:
    """The zones measured by default, and every other zone with the reason it is left out.

    Package zones plus dram zones; psys only when there is no package zone; a TPMI or MMIO zone only
    when no zone with its name is readable through a preferred interface (MSR, then TPMI, then
    MMIO); ``core``/``uncore`` never (they are part of their package); a second package zone with
    the same label as the first mirrors one counter and is left out. Mirrors with different labels
    are found by comparing readings (:func:`mlee.monitors.rapl.detect_rapl`).
    """
    best_interface: dict[str, str] = {}
    for zone in zones:
        current = best_interface.get(zone.stem)
        if current is None or INTERFACES.index(zone.interface) < INTERFACES.index(current):
            best_interface[zone.stem] = zone.interface
    has_package = any(z.kind == "package" for z in zones)
    chosen: list[RaplZone] = []
    skipped: list[tuple[RaplZone, str]] = []
    package_labels: set[str] = set()
    for zone in zones:
        if zone.interface != best_interface[zone.stem]:
            skipped.append((zone, f"{zone.interface.upper()} duplicate of the {best_interface[zone.stem].upper()} "
                                  f"zone {zone.label!r}"))
        elif zone.kind in ("core", "uncore"):
            skipped.append((zone, f"{zone.kind} is part of its package zone (counted there)"))
        elif zone.kind == "psys" and has_package:
            skipped.append((zone, "psys includes the package zones; measuring both would count the CPU twice"))
        elif zone.kind == "other":
            skipped.append((zone, f"unknown zone kind {zone.label!r}"))
        elif zone.kind == "package" and zone.label in package_labels and not zone.parent_id:
            skipped.append((zone, f"mirrors the counter of another zone named {zone.label!r}"))
        else:
            if zone.kind == "package":
                package_labels.add(zone.label)
            chosen.append(zone)
    return chosen, skipped


def select_zones(zones: list[RaplZone], names: list[str]) -> list[RaplZone]:
    """Zones named explicitly (``rapl:psys``); refuses sets that would count energy twice.

    Raises:
        UsageError: an unknown name, or a pair of zones that count one energy twice.
    """
    by_name = {z.source_name: z for z in zones}
    chosen: list[RaplZone] = []
    for name in names:
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise UsageError(f"no RAPL zone named {name!r}", fix=f"choose one of: {known} (see `mlee doctor`)")
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    check_double_counting(chosen)
    return chosen


def double_counted_pair(chosen: list[RaplZone]) -> tuple[RaplZone, RaplZone, str] | None:
    """The first pair of ``chosen`` that counts one energy twice, with why; None when there is none.

    A zone and its twin read through another interface (MSR/TPMI/MMIO); psys and any package, core,
    uncore or dram zone (psys contains them all); a package and its own core/uncore sub-zones (dram
    is reported apart from its package, as every RAPL reader does).
    """
    by_id = {z.zone_id: z for z in chosen}
    for i, a in enumerate(chosen):
        for b in chosen[i + 1:]:
            if a.stem == b.stem and a.interface != b.interface:
                return a, b, f"the same counter read through {a.interface.upper()} and {b.interface.upper()}"
            kinds = {a.kind, b.kind}
            if "psys" in kinds and kinds & {"package", "core", "uncore", "dram"}:
                return a, b, "psys includes the package zones and their sub-zones"
    for zone in chosen:
        parent = by_id.get(zone.parent_id or "")
        if parent is not None and zone.kind != "dram":
            return parent, zone, f"{zone.kind} is part of its package zone"
    return None


def check_double_counting(chosen: list[RaplZone]) -> None:
    """Raise :class:`UsageError` naming the pair when ``chosen`` counts one energy twice."""
    pair = double_counted_pair(chosen)
    if pair is not None:
        a, b, why = pair
        raise UsageError(f"{a.source_name} and {b.source_name} count one energy twice: {why}",
                         fix=f"select only one of {a.source_name} and {b.source_name} (see `mlee doctor`)")


def plausible_max_power_w(zone: RaplZone) -> float:
    """The highest power the zone may draw: its own constraints when they say more than our table.

    Units: watts.
    """
    best_w = PLAUSIBLE_MAX_POWER_W.get(zone.kind, PLAUSIBLE_MAX_POWER_W["package"])
    try:
        entries = os.listdir(zone.path)
    except OSError:
        return best_w
    for entry in entries:
        if entry.startswith("constraint_") and entry.endswith(("_max_power_uw", "_power_limit_uw")):
            try:
                best_w = max(best_w, 1.5 * _read_uj(zone.path / entry) / 1e6)
            except (OSError, ValueError):
                continue
    return best_w
