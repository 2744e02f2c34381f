"""RAPL energy counters read from the Linux powercap tree (Intel and AMD).

The tree lives at ``/sys/class/powercap`` unless ``MLEE_POWERCAP_ROOT`` (or the ``root`` argument)
says otherwise: containers often mount it elsewhere, and tests build one under ``tmp_path``.

Zones look like ``intel-rapl:0`` (a package), ``intel-rapl:0:0`` (``core``), ``intel-rapl:0:2``
(``dram``), ``intel-rapl:1`` (``psys`` on laptops) and ``intel-rapl-mmio:0`` (the same package
counter read through MMIO; ``intel-rapl-tpmi:0`` through TPMI on newer Intel servers). AMD Zen CPUs
use the same driver and names, with a ``core`` sub-zone and no ``dram``. The default set is every
package zone plus every dram zone: ``core``/``uncore`` are parts of their package, ``psys`` contains
the packages, a TPMI or MMIO zone duplicates its MSR twin, and a package zone whose counter moves
with another one's (AMD multi-die parts list one socket counter per die) mirrors it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from mlee.errors import SourcePermissionError, SourceReadError, SourceUnavailable
from mlee.monitors.base import Detected, Probe, Reading
from mlee.monitors.integrate import counter_delta_uj, quarter_wrap_interval_s
from mlee.vocabulary import Domain, Method
from mlee.monitors.powercap import (  # noqa: F401 - re-exported: the zone helpers belong to RAPL's API
    DEFAULT_POWERCAP_ROOT,
    ENV_POWERCAP_ROOT,
    PLAUSIBLE_MAX_POWER_W,
    RaplZone,
    _read_uj,
    check_double_counting,
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
#: How long two package counters are watched to see whether they are one counter. Units: seconds.
MIRROR_PROBE_S = 0.05
#: Readings of two zones this close (or within 2 % of what they moved) are one counter read twice:
#: reading two files one after the other lets a real counter move a little in between. Units: uJ.
MIRROR_SLACK_UJ = 5000
#: ``MLEE_RAPL_MIRRORS=keep`` sums every package zone (no comparison of readings).
ENV_MIRRORS = "MLEE_RAPL_MIRRORS"


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
        self._stalls = 0
        self._previous_t_s: float | None = None
        self._max_power_w = plausible_max_power_w(zone)
        self.extra_detail: dict = {}
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
            "wrap_period_s": self.wrap_period_s,
            "wraps": self._wraps,
            "stalls": self._stalls,
            "interface": self.zone.interface,
            **self.extra_detail,
        }

    @property
    def wrap_period_s(self) -> float | None:
        """The shortest time the counter takes to wrap (at the plausible maximum power); None if unknown.

        Units: seconds.
        """
        if not self._max_range_uj:
            return None
        return self._max_range_uj / 1e6 / self._max_power_w

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
        self._previous_t_s = self._clock()
        self.first_reading = Reading(self._previous_t_s, 0.0, None)
        return self.first_reading

    def raw_uj(self) -> int:
        """The raw counter now (for comparing zones); raises OSError or ValueError.

        Units: micro-joules.
        """
        return self._read_counter()

    def read(self) -> Reading:
        """Read the counter; raise :class:`SourceReadError` for an interval that cannot be trusted."""
        t_s = self._clock()
        try:
            raw = self._read_counter()
        except (OSError, ValueError) as exc:
            self._previous_uj = None  # the next good read starts a fresh interval
            raise SourceReadError(f"{self.name}: cannot read {self._energy_path}: {exc}") from exc
        previous_t_s, self._previous_t_s = self._previous_t_s, t_s
        period_s = self.wrap_period_s
        if (self._previous_uj is not None and previous_t_s is not None and period_s is not None
                and t_s - previous_t_s > period_s):
            # The counter may have wrapped more than once unseen: nothing about this interval is known.
            self._stalls += 1
            self._previous_uj = raw
            raise SourceReadError(f"{self.name}: {t_s - previous_t_s:.1f} s between two reads, longer than the "
                                  f"counter's wrap period at {self._max_power_w:g} W ({period_s:.1f} s); "
                                  "interval dropped (a stalled machine or sampler)")
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


def _mirror_of(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """True when two zones' raw readings (before, after) are one counter read twice."""
    moved_a, moved_b = a[1] - a[0], b[1] - b[0]
    if moved_a <= 0 or moved_b <= 0:
        return False  # a counter that did not move tells nothing; independent is the safe guess
    slack = max(MIRROR_SLACK_UJ, 0.02 * max(moved_a, moved_b))
    return abs(a[0] - b[0]) <= slack and abs(a[1] - b[1]) <= slack and abs(moved_a - moved_b) <= slack


def _drop_mirrors(sources: list[RaplSource], sleep: Callable[[float], None],
                  env: dict[str, str]) -> list[tuple[RaplSource, str]]:
    """Compare the package counters over :data:`MIRROR_PROBE_S`; close and return the mirrors with why.

    The decision and its evidence go to each package source's ``detail["mirror_check"]``.
    """
    packages = [s for s in sources if s.zone.kind == "package"]
    if len(packages) < 2:
        return []
    if env.get(ENV_MIRRORS, "").strip().lower() == "keep":
        for source in packages:
            source.extra_detail["mirror_check"] = {"decision": "independent", "why": f"{ENV_MIRRORS}=keep"}
        return []
    try:
        before = [s.raw_uj() for s in packages]
        sleep(MIRROR_PROBE_S)
        after = [s.raw_uj() for s in packages]
    except (OSError, ValueError) as exc:
        for source in packages:
            source.extra_detail["mirror_check"] = {"decision": "independent", "why": f"not compared: {exc}"}
        return []
    dropped: list[tuple[RaplSource, str]] = []
    kept: list[int] = []
    for i, source in enumerate(packages):
        evidence = {"before_uj": before[i], "after_uj": after[i], "probe_s": MIRROR_PROBE_S}
        twin = next((j for j in kept if _mirror_of((before[j], after[j]), (before[i], after[i]))), None)
        if twin is None:
            kept.append(i)
            source.extra_detail["mirror_check"] = {**evidence, "decision": "independent"}
            continue
        why = (f"mirrors the counter of {packages[twin].name}: both read {before[twin]}->{after[twin]} and "
               f"{before[i]}->{after[i]} uJ over {MIRROR_PROBE_S:g} s (set {ENV_MIRRORS}=keep to sum them)")
        packages[twin].extra_detail.setdefault("mirrored_by", []).append(source.name)
        source.extra_detail["mirror_check"] = {**evidence, "decision": "mirror", "of": packages[twin].name}
        dropped.append((source, why))
    for source, _ in dropped:
        source._close_fd()
    return dropped


def detect_rapl(root: str | os.PathLike | None = None, *, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep, strict: bool = False,
                env: dict[str, str] | None = None) -> Detected:
    """Open the default RAPL zones: the one decision both ``mlee doctor`` and a run use.

    Each zone degrades alone: one that cannot be read is skipped with its reason (``strict``: the
    error is raised instead, for ``--source rapl``). Mirrored package counters are counted once.

    Returns:
        The opened sources and one probe per zone (or one for the tree when it is absent).
    """
    base = powercap_root(root)
    env = os.environ if env is None else env
    zones = discover_zones(base)
    if not zones:
        reason = f"no RAPL zones under {base}" if base.exists() else f"{base} does not exist"
        fix = ("load the powercap driver (modprobe intel_rapl_msr), or set MLEE_POWERCAP_ROOT to where the "
               "powercap tree is mounted; in a container mount /sys/class/powercap")
        if strict:
            raise SourceUnavailable(f"RAPL is not available: {reason}", fix=fix)
        return Detected([], [Probe("rapl", Domain.cpu, Method.counter, False, reason, fix, {"root": str(base)})])
    chosen, skipped = default_zones(zones)
    sources: list[RaplSource] = []
    failed: dict[str, Probe] = {}
    try:
        for zone in chosen:
            source = RaplSource(zone, clock=clock)
            try:
                source.open()
            except SourceUnavailable as exc:
                if strict:
                    raise
                failed[zone.source_name] = Probe(zone.source_name, zone.domain, Method.counter, False, exc.message,
                                                 exc.fix or "", {"zone": zone.zone_id, "path": str(zone.path)})
                continue
            sources.append(source)
        mirrors = _drop_mirrors(sources, sleep, env)
    except BaseException:
        for source in sources:
            source._close_fd()
        raise
    mirror_why = {s.name: why for s, why in mirrors}
    sources = [s for s in sources if s.name not in mirror_why]
    if strict and not sources:
        raise SourceUnavailable(f"no RAPL package or dram zone under {base}",
                                fix="name a zone explicitly, e.g. --source rapl:psys (see `mlee doctor`)")
    by_name = {s.name: s for s in sources}
    probes: list[Probe] = []
    for zone in chosen:
        if zone.source_name in by_name:
            detail = by_name[zone.source_name].detail
            probes.append(Probe(zone.source_name, zone.domain, Method.counter, True, "", "", detail))
        elif zone.source_name in mirror_why:
            probes.append(Probe(zone.source_name, zone.domain, Method.counter, False,
                                f"not in the default set: {mirror_why[zone.source_name]}", "",
                                {"zone": zone.zone_id, "path": str(zone.path), "default": False}))
        else:
            probes.append(failed[zone.source_name])
    for zone, why in skipped:
        probes.append(Probe(zone.source_name, zone.domain, Method.counter, False, f"not in the default set: {why}",
                            f"name it with --source {zone.source_name} if you want it instead",
                            {"zone": zone.zone_id, "path": str(zone.path), "default": False}))
    return Detected(list(sources), probes)


def probe_rapl(root: str | os.PathLike | None = None,
               sleep: Callable[[float], None] = time.sleep) -> tuple[list[Probe], list[RaplZone]]:
    """Probe every zone (for ``mlee doctor``): the decision a run makes, with nothing left open.

    Returns:
        The probes and the default zones that can be read.
    """
    found = detect_rapl(root, sleep=sleep)
    for source in found.sources:
        source._close_fd()
    return found.probes, [s.zone for s in found.sources]


def open_rapl(root: str | os.PathLike | None = None, names: list[str] | None = None,
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
              env: dict[str, str] | None = None) -> list[RaplSource]:
    """Open the default RAPL zones (or the named ones); every zone must open.

    ``names`` may hold ``"rapl"`` (the default set) beside qualified names: the union is opened,
    and refused when it counts one energy twice.

    Raises:
        SourceUnavailable: no zone, or a zone that cannot be read.
        SourcePermissionError: ``energy_uj`` readable by root only.
        UsageError: an unknown zone, or a selection that counts one energy twice.
    """
    base = powercap_root(root)
    named = [n for n in (names or []) if n != "rapl"]
    if not named:
        return detect_rapl(base, clock=clock, sleep=sleep, strict=True, env=env).sources
    zones = discover_zones(base)
    if not zones:
        detect_rapl(base, strict=True)  # raises with the reason and the fix
    chosen = select_zones(zones, named)
    if "rapl" in (names or []):
        chosen = default_zones(zones)[0] + [z for z in chosen if z not in default_zones(zones)[0]]
        check_double_counting(chosen)
    sources = [RaplSource(zone, clock=clock) for zone in chosen]
    try:
        for source in sources:
            source.open()
            source.extra_detail["mirror_check"] = {"decision": "not checked", "why": "zones named explicitly"}
    except BaseException:
        for source in sources:
            source._close_fd()
        raise
    return sources

