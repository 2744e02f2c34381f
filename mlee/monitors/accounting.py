"""From per-source energies to the per-component figures of ``results.json``: pure functions.

Components are ``cpu``, ``dram`` and ``gpu``; ``total`` sums every measured source (a ``system``
source such as RAPL psys counts in the total only). A component nobody measured is ``None``, never
0; a sum carries the weakest method of its parts.

Never a silent zero, never a silent part: a source without one valid interval has no figure
(``energy_j`` None, ``valid`` false, with the reason), and so have its component and the total; a
source whose valid intervals cover only part of the run keeps its figure with the covered fraction,
and its component and the total are marked partial (:func:`source_figure`, :func:`coverage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlee.vocabulary import Domain, Method, weakest_method

COMPONENTS = ("cpu", "dram", "gpu")


def by_component(energy_j: Mapping[str, float], domains: Mapping[str, Domain],
                 methods: Mapping[str, Method]) -> tuple[dict[str, float | None], dict[str, str | None]]:
    """Sum source energies per component.

    Args:
        energy_j: Energy per source name.
        domains: Domain per source name.
        methods: Method per source name.

    Returns:
        ``energy_j`` and ``energy_method`` dicts with keys total, cpu, dram, gpu.

    Units: joules.
    """
    energies: dict[str, float | None] = {c: None for c in ("total", *COMPONENTS)}
    kinds: dict[str, list[Method]] = {c: [] for c in ("total", *COMPONENTS)}
    missing: set[str] = set()
    for name, value in energy_j.items():
        component = Domain(domains[name]).value
        for key in ("total", component) if component in COMPONENTS else ("total",):
            if value is None:  # a source without a figure: its component and the total have none either
                missing.add(key)
                continue
            energies[key] = (energies[key] or 0.0) + value
            kinds[key].append(Method(methods[name]))
    for key in missing:
        energies[key] = None
        kinds[key] = []
    method_names = {k: (m.value if (m := weakest_method(v)) is not None else None) for k, v in kinds.items()}
    return energies, method_names


@dataclass(frozen=True)
class SourceFigure:
    """One source's figure over a span of the run, with how much of the span its valid intervals cover.

    Units: ``energy_j`` joules (None: no valid interval, so no figure); ``covered_fraction`` 0..1.
    """

    energy_j: float | None
    valid: bool
    covered_fraction: float
    reason: str = ""

    @property
    def partial(self) -> bool:
        return self.energy_j is not None and self.covered_fraction < 1.0


def covered_fraction(invalid: Iterable[tuple[float, float]], start_s: float, end_s: float) -> float:
    """The share of ``[start_s, end_s]`` outside every invalid interval (overlaps counted once).

    Units: seconds in; a fraction 0..1 out.
    """
    span_s = end_s - start_s
    clipped = sorted((max(a, start_s), min(b, end_s)) for a, b in invalid if min(b, end_s) > max(a, start_s))
    lost_s, reach_s = 0.0, start_s
    for a, b in clipped:
        if b > reach_s:
            lost_s += b - max(a, reach_s)
            reach_s = b
    if span_s <= 0:
        return 0.0 if clipped or any(a <= start_s <= b for a, b in invalid) else 1.0
    return max(0.0, 1.0 - lost_s / span_s)


def source_figure(energy_j: float, invalid: Iterable[tuple[float, float]], start_s: float, end_s: float,
                  last_error: str = "") -> SourceFigure:
    """The figure of one source between two instants of the run.

    Args:
        energy_j: Energy summed over the valid intervals.
        invalid: The source's invalid intervals (same clock as ``start_s``/``end_s``).
        start_s, end_s: The span (the workload).
        last_error: The last read error, for the reason.

    Units: joules, seconds.
    """
    intervals = list(invalid)
    fraction = covered_fraction(intervals, start_s, end_s)
    valid = not intervals
    if fraction <= 0.0:
        reason = last_error or "no valid interval between two readings"
        return SourceFigure(None, False, 0.0, reason)
    reason = "" if valid else (f"valid intervals cover {fraction:.1%} of the run"
                               + (f"; last error: {last_error}" if last_error else ""))
    return SourceFigure(energy_j, valid, fraction, reason)


def coverage(figures: Mapping[str, SourceFigure], domains: Mapping[str, Domain]) -> dict[str, float | None]:
    """Per component (and total), the smallest covered fraction of its sources; None when nobody measured it."""
    out: dict[str, float | None] = {c: None for c in ("total", *COMPONENTS)}
    for name, figure in figures.items():
        component = Domain(domains[name]).value
        for key in ("total", component) if component in COMPONENTS else ("total",):
            current = out[key]
            out[key] = figure.covered_fraction if current is None else min(current, figure.covered_fraction)
    return out


def missing_energy_text(sources: Iterable[Mapping]) -> str | None:
    """``no valid energy reading from nvml:0: reason`` for the sources of ``results.json`` without a figure."""
    missing = [s for s in sources if s.get("energy_j") is None and s.get("valid") is False]
    if not missing:
        return None
    return "no valid energy reading from " + "; ".join(f"{s['name']}: {s.get('reason') or 'no valid interval'}"
                                                     for s in missing)


def partial_text(energy_coverage: Mapping[str, float | None]) -> str | None:
    """``PARTIAL: covers 33.3 % of the run`` when the total's figure covers only part of it."""
    fraction = energy_coverage.get("total")
    if fraction is None or fraction >= 1.0 or fraction <= 0.0:
        return None
    return f"PARTIAL: valid readings cover {fraction:.1%} of the run"


def is_estimated(energy_method: Mapping[str, str | None]) -> bool:
    """True when any figure is an estimate."""
    return any(m == Method.estimate.value for m in energy_method.values())


def baseline_figures(baseline_j: Mapping[str, float | None], baseline_s: float,
                     gross_j: Mapping[str, float | None], workload_s: float) -> dict:
    """Idle baseline: power per component and the net energy of the workload.

    ``net = gross - baseline power x workload duration``, which may be negative when the workload
    drew less than the idle machine did (noise, a machine that was not idle): it is reported as is.

    Units: joules, seconds, watts.
    """
    power_w = {k: (v / baseline_s if v is not None and baseline_s > 0 else None) for k, v in baseline_j.items()}
    net_j = {k: (g - power_w[k] * workload_s if g is not None and power_w.get(k) is not None else None)
             for k, g in gross_j.items()}
    return {"duration_s": baseline_s, "energy_j": dict(baseline_j), "power_w": power_w, "net_energy_j": net_j}
