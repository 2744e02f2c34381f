"""Choosing and opening power sources: auto-detection, named sources, and probes for ``mlee doctor``.

Named sources (``rapl``, ``nvml``, ``estimate`` or a qualified ``rapl:psys``, ``nvml:1``,
``estimate:dram``) must work, or the session fails before anything runs. Auto-detected ones may be
skipped; the reason and the fix go to ``skipped_sources`` in ``results.json``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlee.errors import MleeError, SourceUnavailable, UsageError
from mlee.monitors.base import Domain, Method, PowerSource, Probe, Reading, weakest_method

FAMILIES = ("rapl", "nvml", "estimate")


@dataclass
class OpenedSources:
    """Sources opened for one session, their first readings, and what was skipped and why."""

    sources: list[PowerSource] = field(default_factory=list)
    first: list[Reading] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def close_all(self) -> None:
        """Release everything opened (a later source failed to open)."""
        for source in self.sources:
            with contextlib.suppress(Exception):
                source.close()
        self.sources, self.first = [], []


def parse_requested(requested: list[str] | None) -> dict[str, list[str]] | None:
    """Group requested names by family: ``{"rapl": [], "nvml": ["nvml:1"]}`` ([] = the family's default set).

    Raises:
        UsageError: an unknown family.
    """
    if requested is None:
        return None
    wanted: dict[str, list[str]] = {}
    for raw in requested:
        for item in [p.strip() for p in str(raw).split(",") if p.strip()]:
            family = item.split(":", 1)[0].lower()
            if family not in FAMILIES:
                raise UsageError(f"unknown power source {item!r}",
                                 fix="use rapl, nvml or estimate (or a name shown by `mlee doctor`, e.g. rapl:psys)")
            names = wanted.setdefault(family, [])
            if ":" in item and item not in names:
                names.append(item if family != "estimate" else item.lower())
    if not wanted:
        raise UsageError("no power source given", fix="use --source rapl, nvml or estimate, or leave it out to auto-detect")
    return wanted


def open_sources(requested: list[str] | None = None, *, powercap_root: Any = None, nvml: Any = None,
                 clock: Callable[[], float] = time.monotonic, country: str | None = None,
                 estimator: Any = None, env: dict[str, str] | None = None) -> OpenedSources:
    """Open the sources of one session.

    Args:
        requested: Source names, or None to auto-detect.
        powercap_root: Powercap tree (default ``MLEE_POWERCAP_ROOT`` or sysfs).
        nvml: NVML module (default ``pynvml``).
        clock: Session clock, handed to every source.
        country: Country for codecarbon's estimate.
        estimator: A codecarbon stand-in (tests).
        env: Environment for ``CUDA_VISIBLE_DEVICES`` (default ``os.environ``).

    Raises:
        UsageError: a bad name or a combination that counts a component twice.
        SourceUnavailable / SourcePermissionError: a named source cannot be used, or nothing can.
    """
    from mlee.monitors import estimate as est
    from mlee.monitors import nvml as nv
    from mlee.monitors import rapl

    wanted = parse_requested(requested)
    opened = OpenedSources()

    def take(sources: list[Any]) -> None:
        for source in sources:
            opened.sources.append(source)
            opened.first.append(source.first_reading)  # the reading open() took

    try:
        if wanted is None:
            try:
                take(rapl.open_rapl(powercap_root, clock=clock))
                opened.skipped.extend(_left_out_zones(powercap_root))
            except SourceUnavailable as exc:
                opened.skipped.append({"name": "rapl", "reason": exc.message, "fix": exc.fix or ""})
                try:
                    take(est.open_estimate(country, estimator, clock=clock))
                except SourceUnavailable as exc2:
                    opened.skipped.append({"name": "estimate", "reason": exc2.message, "fix": exc2.fix or ""})
            try:
                take(nv.open_nvml(nvml, clock=clock, env=env))
            except SourceUnavailable as exc:
                opened.skipped.append({"name": "nvml", "reason": exc.message, "fix": exc.fix or ""})
            if not opened.sources:
                reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in opened.skipped)
                raise SourceUnavailable(f"no usable power source ({reasons})",
                                        fix="run `mlee doctor` for the fix of each source")
            return opened
        if "rapl" in wanted:
            take(rapl.open_rapl(powercap_root, names=wanted["rapl"] or None, clock=clock))
            if not wanted["rapl"]:
                opened.skipped.extend(_left_out_zones(powercap_root))
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
            sources = est.open_estimate(country, estimator, clock=clock)
            keep = [s for s in sources if s.domain.value in domains]
            for s in sources:
                if s not in keep:
                    s.close()
            take(keep)
        if "nvml" in wanted:
            indices = None
            if wanted["nvml"]:
                try:
                    indices = sorted({int(n.split(":", 1)[1]) for n in wanted["nvml"]})
                except ValueError as exc:
                    raise UsageError(f"bad GPU in {wanted['nvml']}", fix="use nvml or nvml:<index>, e.g. nvml:0") from exc
            take(nv.open_nvml(nvml, clock=clock, indices=indices, env=env))
        return opened
    except BaseException:
        opened.close_all()
        raise


def _left_out_zones(powercap_root: Any) -> list[dict]:
    """RAPL zones outside the default set, with the reason (recorded so the choice can be checked)."""
    from mlee.monitors.powercap import default_zones, discover_zones

    _, skipped = default_zones(discover_zones(powercap_root))
    return [{"name": zone.source_name, "reason": f"not in the default set: {why}",
             "fix": f"name it with --source {zone.source_name} if you want it instead"} for zone, why in skipped]


def probe_all(powercap_root: Any = None, nvml: Any = None, country: str | None = None,
              env: dict[str, str] | None = None) -> list[Probe]:
    """Probe every source family without measuring (for ``mlee doctor``). Never raises for hardware."""
    from mlee.monitors import estimate as est
    from mlee.monitors import nvml as nv
    from mlee.monitors import rapl

    probes: list[Probe] = []
    rapl_probes, usable = rapl.probe_rapl(powercap_root)
    probes.extend(rapl_probes)
    estimate_probes = est.probe_estimate(country)
    if usable:
        estimate_probes = [Probe(p.name, p.domain, p.method, p.available,
                                 p.reason or "not used: RAPL counters are readable", p.fix,
                                 {**p.detail, "used_by_default": False}) for p in estimate_probes]
    probes.extend(estimate_probes)
    try:
        probes.extend(nv.probe_nvml(nvml, env)[0])
    except MleeError as exc:
        probes.append(Probe("nvml", Domain.gpu, None, False, exc.message, getattr(exc, "fix", "") or ""))
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
    gpu = [p.method for p in probes if p.name.startswith("nvml:") and p.available and p.method]
    if gpu:
        out["gpu"] = weakest_method(gpu)
    return out


