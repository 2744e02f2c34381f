"""Choosing and opening power sources: auto-detection, named sources, and probes for ``mlee doctor``.

Named sources (``rapl``, ``nvml``, ``amdsmi``, ``estimate`` or a qualified ``rapl:psys``,
``nvml:1``, ``amdsmi:0``, ``estimate:dram``) must work, or the session fails before anything runs.
Auto-detected devices degrade one by one: a zone or GPU that cannot be read is skipped, the reason
and the fix go to ``skipped_sources`` in ``results.json``, and every other one is kept. ``mlee
doctor`` shows the decision of the same functions (:func:`detect_all`), so the two always agree.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlee.errors import SourceUnavailable, UsageError
from mlee.monitors.base import Detected, PowerSource, Probe, Reading
from mlee.vocabulary import Method, weakest_method

FAMILIES = ("rapl", "nvml", "amdsmi", "estimate")
GPU_FAMILIES = ("nvml", "amdsmi")


@dataclass
class OpenedSources:
    """Sources opened for one session, their first readings, and what was skipped and why."""

    sources: list[PowerSource] = field(default_factory=list)
    first: list[Reading] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def take(self, sources: list[Any]) -> None:
        for source in sources:
            self.sources.append(source)
            self.first.append(source.first_reading)  # the reading open() took

    def close_all(self) -> None:
        """Release everything opened (a later source failed to open)."""
        for source in self.sources:
            with contextlib.suppress(Exception):
                source.close()
        self.sources, self.first = [], []


def parse_requested(requested: list[str] | None) -> dict[str, list[str]] | None:
    """Group requested names by family: ``{"rapl": [], "nvml": ["nvml:1"]}`` ([] = the family's default set).

    A bare family beside qualified names of it means the union: ``rapl`` keeps a ``"rapl"`` entry
    (the default set plus the named zones, checked for double counting); for the other families the
    bare name already means every device.

    Raises:
        UsageError: an unknown family.
    """
    if requested is None:
        return None
    wanted: dict[str, list[str]] = {}
    bare: set[str] = set()
    for raw in requested:
        for item in [p.strip() for p in str(raw).split(",") if p.strip()]:
            family = item.split(":", 1)[0].lower()
            if family not in FAMILIES:
                raise UsageError(f"unknown power source {item!r}",
                                 fix="use rapl, nvml, amdsmi or estimate (or a name shown by `mlee doctor`, "
                                     "e.g. rapl:psys)")
            names = wanted.setdefault(family, [])
            if ":" not in item:
                bare.add(family)
            elif item not in names:
                names.append(item if family != "estimate" else item.lower())
    if not wanted:
        raise UsageError("no power source given",
                         fix="use --source rapl, nvml, amdsmi or estimate, or leave it out to auto-detect")
    for family in bare & set(wanted):
        if wanted[family]:
            wanted[family] = ["rapl", *wanted[family]] if family == "rapl" else []
    return wanted


@dataclass
class Edges:
    """The hardware and time edges of one detection (injectable for tests)."""

    powercap_root: Any = None
    nvml: Any = None
    amdsmi: Any = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    env: dict[str, str] | None = None


def detect_all(edges: Edges) -> dict[str, Detected]:
    """Auto-detection of every measuring family, device by device: what a run uses and ``mlee doctor`` shows."""
    from mlee.monitors.amdsmi import detect_amdsmi
    from mlee.monitors.nvml import detect_nvml
    from mlee.monitors.rapl import detect_rapl

    found: dict[str, Detected] = {}
    try:
        found["rapl"] = detect_rapl(edges.powercap_root, clock=edges.clock, sleep=edges.sleep, env=edges.env)
        found["nvml"] = detect_nvml(edges.nvml, clock=edges.clock, sleep=edges.sleep, env=edges.env)
        found["amdsmi"] = detect_amdsmi(edges.amdsmi, clock=edges.clock, sleep=edges.sleep, env=edges.env)
    except BaseException:
        for detected in found.values():
            for source in detected.sources:
                with contextlib.suppress(Exception):
                    source.close()
        raise
    return found


def open_sources(requested: list[str] | None = None, *, powercap_root: Any = None, nvml: Any = None,
                 clock: Callable[[], float] = time.monotonic, country: str | None = None,
                 estimator: Any = None, env: dict[str, str] | None = None, amdsmi: Any = None,
                 sleep: Callable[[float], None] = time.sleep) -> OpenedSources:
    """Open the sources of one session.

    Args:
        requested: Source names, or None to auto-detect.
        powercap_root: Powercap tree (default ``MLEE_POWERCAP_ROOT`` or sysfs).
        nvml: NVML module (default ``pynvml``).
        clock: Session clock, handed to every source.
        country: Country for codecarbon's estimate.
        estimator: A codecarbon stand-in (tests).
        env: Environment for ``CUDA_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES``, ``MLEE_RAPL_MIRRORS``
            (default ``os.environ``).
        amdsmi: AMD SMI module (default ``amdsmi``).
        sleep: Waits of the detection checks (mirrored counters, stale GPU counters).

    Raises:
        UsageError: a bad name or a combination that counts a component twice.
        SourceUnavailable / SourcePermissionError: a named source cannot be used, or nothing can.
    """
    edges = Edges(powercap_root, nvml, amdsmi, clock, sleep, env)
    wanted = parse_requested(requested)
    opened = OpenedSources()
    try:
        if wanted is None:
            _open_auto(opened, edges, country, estimator)
        else:
            _open_named(opened, wanted, edges, country, estimator)
        return opened
    except BaseException:
        opened.close_all()
        raise


def _open_auto(opened: OpenedSources, edges: Edges, country: str | None, estimator: Any) -> None:
    from mlee.monitors import estimate as est

    found = detect_all(edges)
    opened.take(found["rapl"].sources)
    opened.skipped.extend(found["rapl"].skipped())
    if not found["rapl"].sources:
        try:
            opened.take(est.open_estimate(country, estimator, clock=edges.clock))
        except SourceUnavailable as exc:
            opened.skipped.append({"name": "estimate", "reason": exc.message, "fix": exc.fix or ""})
    for family in GPU_FAMILIES:
        opened.take(found[family].sources)
        opened.skipped.extend(found[family].skipped())
    if not opened.sources:
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in opened.skipped
                            if not s["reason"].startswith("not in the default set"))
        raise SourceUnavailable(f"no usable power source ({reasons})", fix="run `mlee doctor` for the fix of each source")


def _gpu_indices(family: str, names: list[str]) -> list[int] | None:
    if not names:
        return None
    try:
        return sorted({int(n.split(":", 1)[1]) for n in names})
    except ValueError as exc:
        raise UsageError(f"bad GPU in {names}", fix=f"use {family} or {family}:<index>, e.g. {family}:0") from exc


def _open_named(opened: OpenedSources, wanted: dict[str, list[str]], edges: Edges, country: str | None,
                estimator: Any) -> None:
    from mlee.monitors import estimate as est
    from mlee.monitors.amdsmi import open_amdsmi
    from mlee.monitors.nvml import open_nvml
    from mlee.monitors.rapl import detect_rapl, open_rapl

    if "rapl" in wanted and not wanted["rapl"]:
        found = detect_rapl(edges.powercap_root, clock=edges.clock, sleep=edges.sleep, strict=True, env=edges.env)
        opened.take(found.sources)
        opened.skipped.extend(found.skipped())
    elif "rapl" in wanted:
        opened.take(open_rapl(edges.powercap_root, names=wanted["rapl"], clock=edges.clock, sleep=edges.sleep,
                              env=edges.env))
    if "estimate" in wanted:
        domains = [n.split(":", 1)[1] for n in wanted["estimate"]] or ["cpu", "dram"]
        bad = [d for d in domains if d not in ("cpu", "dram")]
        if bad:
            raise UsageError(f"unknown estimate {bad[0]!r}", fix="use estimate, estimate:cpu or estimate:dram")
        taken = {s.domain.value for s in opened.sources}
        clash = [d for d in domains if d in taken]
        if clash:
            raise UsageError(f"both RAPL and the estimate would report {clash[0]}; that counts it twice",
                             fix="estimate only what RAPL lacks, e.g. --source rapl --source estimate:dram")
        sources = est.open_estimate(country, estimator, clock=edges.clock)
        keep = [s for s in sources if s.domain.value in domains]
        for s in sources:
            if s not in keep:
                s.close()
        opened.take(keep)
    if "nvml" in wanted:
        opened.take(open_nvml(edges.nvml, clock=edges.clock, indices=_gpu_indices("nvml", wanted["nvml"]),
                              env=edges.env, sleep=edges.sleep))
    if "amdsmi" in wanted:
        opened.take(open_amdsmi(edges.amdsmi, clock=edges.clock, indices=_gpu_indices("amdsmi", wanted["amdsmi"]),
                                env=edges.env, sleep=edges.sleep))


def probe_all(powercap_root: Any = None, nvml: Any = None, country: str | None = None,
              env: dict[str, str] | None = None, amdsmi: Any = None,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> list[Probe]:
    """Probe every source family without measuring (for ``mlee doctor``): the decisions of
    :func:`detect_all`, with every source closed again. Never raises for hardware."""
    from mlee.monitors import estimate as est

    found = detect_all(Edges(powercap_root, nvml, amdsmi, clock=clock, sleep=sleep, env=env))
    for detected in found.values():
        for source in detected.sources:
            with contextlib.suppress(Exception):
                source.close()
    probes: list[Probe] = list(found["rapl"].probes)
    estimate_probes = est.probe_estimate(country)
    if found["rapl"].sources:
        estimate_probes = [Probe(p.name, p.domain, p.method, p.available,
                                 p.reason or "not used: RAPL counters are readable", p.fix,
                                 {**p.detail, "used_by_default": False}) for p in estimate_probes]
    probes.extend(estimate_probes)
    for family in GPU_FAMILIES:
        probes.extend(found[family].probes)
    return probes


def default_method(probes: list[Probe]) -> dict[str, Method | None]:
    """Per component, how auto-detection would obtain its figure (None: not measured)."""
    out: dict[str, Method | None] = {"cpu": None, "dram": None, "gpu": None}
    rapl_ok = [p for p in probes if p.name.startswith("rapl:") and p.available]
    if rapl_ok:
        for p in rapl_ok:
            if p.domain.value in out:  # psys (system) counts in the total only
                out[p.domain.value] = Method.counter
    elif any(p.name == "estimate" and p.available for p in probes):
        out["cpu"] = out["dram"] = Method.estimate
    gpu = [p.method for p in probes if p.name.startswith(("nvml:", "amdsmi:")) and p.available and p.method]
    if gpu:
        out["gpu"] = weakest_method(gpu)
    return out
