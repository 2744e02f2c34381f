"""RAPL energy counters read from the Linux powercap tree (Intel and AMD).

The tree lives at ``/sys/class/powercap`` unless ``MLEE_POWERCAP_ROOT`` (or the ``root`` argument)
says otherwise: containers often mount it elsewhere, and tests build one under ``tmp_path``.

Zones look like ``intel-rapl:0`` (a package), ``intel-rapl:0:0`` (``core``), ``intel-rapl:0:2``
(``dram``), ``intel-rapl:1`` (``psys`` on laptops) and ``intel-rapl-mmio:0`` (the same package
counter read through MMIO). AMD Zen CPUs use the same driver and names, with a ``core`` sub-zone
and no ``dram``. The default set is every package zone plus every dram zone: ``core``/``uncore`` are
parts of their package, ``psys`` contains the packages, and an MMIO zone duplicates its MSR twin.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from mlee.errors import SourcePermissionError, SourceReadError, SourceUnavailable
from mlee.monitors.base import Domain, Method, Probe, Reading
from mlee.monitors.integrate import counter_delta_uj, quarter_wrap_interval_s
from mlee.monitors.powercap import (  # noqa: F401 - re-exported: the zone helpers belong to RAPL's API
    DEFAULT_POWERCAP_ROOT,
    ENV_POWERCAP_ROOT,
    PLAUSIBLE_MAX_POWER_W,
    RaplZone,
    _read_uj,
    default_zones,
    discover_zones,
    plausible_max_power_w,
    powercap_root,
    select_zones,
)

PERMISSION_FIX = (
    "energy_uj is readable by root only since Linux 5.10; allow your user with a udev rule "
    '(ACTION=="add", SUBSYSTEM=="powercap", RUN+="/bin/chmod a+r /sys%p/energy_uj") or '
    "`sudo chmod a+r /sys/class/powercap/*/energy_uj` (until reboot), or run as root"
)


class RaplSource:
    """One RAPL zone's energy counter, wrap-corrected, cumulative since :meth:`open`.

    Args:
        zone: The zone to read.
        clock: Monotonic clock for reading times (tests inject a fake).

    Units: energies in joules; raw sysfs values in micro-joules.
    """

    method = Method.counter
    min_interval_s = 0.001  # RAPL updates about every millisecond

    def __init__(self, zone: RaplZone, clock: Callable[[], float] = time.monotonic) -> None:
        self.zone = zone
        self.name = zone.source_name
        self.domain = zone.domain
        self._clock = clock
        self._energy_path = zone.path / "energy_uj"
        self._max_path = zone.path / "max_energy_range_uj"
        self._max_range_uj: int | None = None
        self._previous_uj: int | None = None
        self._total_uj = 0
        self._wraps = 0
        self._max_power_w = plausible_max_power_w(zone)
        self.first_reading: Reading | None = None
        self._fd: int | None = None

    @property
    def detail(self) -> dict:
        return {
            "zone": self.zone.zone_id,
            "zone_name": self.zone.label,
            "path": str(self.zone.path),
            "max_energy_range_uj": self._max_range_uj,
            "plausible_max_power_w": self._max_power_w,
            "max_interval_s": self.max_interval_s,
            "wraps": self._wraps,
        }

    @property
    def max_interval_s(self) -> float | None:
        if not self._max_range_uj:
            return None
        return quarter_wrap_interval_s(self._max_range_uj, self._max_power_w)

    def _read_max(self) -> int | None:
        try:
            value = _read_uj(self._max_path)
        except (OSError, ValueError):
            return None
        return value if value > 0 else None

    def _read_counter(self) -> int:
        """The raw counter, through a file descriptor kept open: one pread per sample instead of the
        half-dozen system calls of open/read/close (the sampler's cost is mostly system calls)."""
        if self._fd is None:
            self._fd = os.open(self._energy_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            data = os.pread(self._fd, 32, 0)
            if os.fstat(self._fd).st_nlink == 0:  # the file was removed (a zone went away)
                raise FileNotFoundError(f"{self._energy_path} was removed")
            value = int(data.decode("ascii").strip())
            if value < 0:
                raise ValueError(f"negative counter value {value}")
            return value
        except BaseException:
            self._close_fd()
            raise

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def open(self) -> Reading:
        """Check the counter can be read and anchor the cumulative energy at zero."""
        try:
            raw = self._read_counter()
        except PermissionError as exc:
            raise SourcePermissionError(f"cannot read {self._energy_path}: permission denied",
                                        fix=PERMISSION_FIX) from exc
        except FileNotFoundError as exc:
            raise SourceUnavailable(f"RAPL zone {self.zone.zone_id} has no energy_uj at {self._energy_path}",
                                    fix="check MLEE_POWERCAP_ROOT points at the powercap tree") from exc
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"cannot read {self._energy_path}: {exc}",
                                    fix="check the powercap driver (modprobe intel_rapl_msr)") from exc
        self._max_range_uj = self._read_max()
        self._previous_uj = raw
        self._total_uj = 0
        self.first_reading = Reading(self._clock(), 0.0, None)
        return self.first_reading

    def read(self) -> Reading:
        """Read the counter; raise :class:`SourceReadError` for an interval that cannot be trusted."""
        t_s = self._clock()
        try:
            raw = self._read_counter()
        except (OSError, ValueError) as exc:
            self._previous_uj = None  # the next good read starts a fresh interval
            raise SourceReadError(f"{self.name}: cannot read {self._energy_path}: {exc}") from exc
        if self._previous_uj is None:
            # After a failed read: anchor again and add nothing; the sampler marks the gap invalid.
            self._previous_uj = raw
            return Reading(t_s, self._total_uj / 1e6, None)
        if raw < self._previous_uj:
            # A wrap: the range is needed now, so read it again if it was missing or changed.
            self._max_range_uj = self._read_max()
            if self._max_range_uj is None:
                self._previous_uj = raw
                raise SourceReadError(
                    f"{self.name}: counter wrapped but {self._max_path} is unreadable; interval dropped")
            self._wraps += 1
        delta = counter_delta_uj(self._previous_uj, raw, self._max_range_uj)
        self._previous_uj = raw
        if delta is None:
            raise SourceReadError(f"{self.name}: counter went backwards beyond its range; interval dropped")
        self._total_uj += delta
        return Reading(t_s, self._total_uj / 1e6, None)

    def close(self) -> Reading:
        """Take the final reading and release the file."""
        try:
            return self.read()
        finally:
            self._close_fd()


def probe_rapl(root: str | os.PathLike | None = None) -> tuple[list[Probe], list[RaplZone]]:
    """Probe every zone: what would be measured, what is left out and why.

    Returns:
        The probes (one per zone, plus one for the tree when it is absent) and the default zones
        that can be read.
    """
    base = powercap_root(root)
    zones = discover_zones(base)
    if not zones:
        reason = f"no RAPL zones under {base}" if base.exists() else f"{base} does not exist"
        fix = ("load the powercap driver (modprobe intel_rapl_msr), or set MLEE_POWERCAP_ROOT to where the "
               "powercap tree is mounted; in a container mount /sys/class/powercap")
        return [Probe("rapl", Domain.cpu, Method.counter, False, reason, fix, {"root": str(base)})], []
    chosen, skipped = default_zones(zones)
    probes: list[Probe] = []
    usable: list[RaplZone] = []
    for zone in chosen:
        source = RaplSource(zone)
        try:
            source.open()
        except SourceUnavailable as exc:
            probes.append(Probe(zone.source_name, zone.domain, Method.counter, False, exc.message, exc.fix or "",
                                {"zone": zone.zone_id, "path": str(zone.path)}))
            continue
        detail = source.detail
        source._close_fd()
        usable.append(zone)
        probes.append(Probe(zone.source_name, zone.domain, Method.counter, True, "", "", detail))
    for zone, why in skipped:
        probes.append(Probe(zone.source_name, zone.domain, Method.counter, False, f"not in the default set: {why}",
                            "", {"zone": zone.zone_id, "path": str(zone.path), "default": False}))
    return probes, usable


def open_rapl(root: str | os.PathLike | None = None, names: list[str] | None = None,
              clock: Callable[[], float] = time.monotonic) -> list[RaplSource]:
    """Open the default RAPL zones (or the named ones); every zone must open.

    Raises:
        SourceUnavailable: no zone, or a zone that cannot be read.
        SourcePermissionError: ``energy_uj`` readable by root only.
    """
    base = powercap_root(root)
    zones = discover_zones(base)
    if not zones:
        probes, _ = probe_rapl(base)
        raise SourceUnavailable(f"RAPL is not available: {probes[0].reason}", fix=probes[0].fix)
    chosen = select_zones(zones, names) if names else default_zones(zones)[0]
    if not chosen:
        raise SourceUnavailable(f"no RAPL package or dram zone under {base}",
                                fix="name a zone explicitly, e.g. --source rapl:psys (see `mlee doctor`)")
    sources = [RaplSource(zone, clock=clock) for zone in chosen]
    try:
        for source in sources:
            source.open()
    except BaseException:
        for source in sources:
            source._close_fd()
        raise
    return sources

