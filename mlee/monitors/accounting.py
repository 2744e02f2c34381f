"""From per-source energies to the per-component figures of ``results.json``: pure functions.

Components are ``cpu``, ``dram`` and ``gpu``; ``total`` sums every measured source (a ``system``
source such as RAPL psys counts in the total only). A component nobody measured is ``None``, never
0; a sum carries the weakest method of its parts.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlee.monitors.base import Domain, Method, weakest_method

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
    for name, value in energy_j.items():
        component = Domain(domains[name]).value
        for key in ("total", component) if component in COMPONENTS else ("total",):
            energies[key] = (energies[key] or 0.0) + value
            kinds[key].append(Method(methods[name]))
    method_names = {k: (m.value if (m := weakest_method(v)) is not None else None) for k, v in kinds.items()}
    return energies, method_names


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
