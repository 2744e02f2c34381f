"""The words every room shares: what a figure measures (:class:`Domain`), how it was obtained (:class:`Method`),
and the rating letters A-E.

Part of the ground floor: it imports nothing of mlee, so monitors, results, rating and predict all read it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Domain(str, enum.Enum):
    """What part of the machine a source measures."""

    cpu = "cpu"
    dram = "dram"
    gpu = "gpu"
    system = "system"


class Method(str, enum.Enum):
    """How an energy figure was obtained, from strongest to weakest.

    ``counter``: difference of a hardware energy counter (RAPL ``energy_uj``, NVML total energy).
    ``power_integration``: trapezoid integral of sampled power readings.
    ``estimate``: a model of power (codecarbon's TDP x load, RAM size rules), not a measurement.
    """

    counter = "counter"
    power_integration = "power_integration"
    estimate = "estimate"


#: Order used to state the method of a sum: a sum is only as strong as its weakest part.
METHOD_STRENGTH = {Method.counter: 2, Method.power_integration: 1, Method.estimate: 0}

#: Rating letters, best first.
LETTERS = ("A", "B", "C", "D", "E")


def weakest_method(methods: list[Method]) -> Method | None:
    """The weakest of ``methods`` (the method a sum of their figures must be reported with)."""
    if not methods:
        return None
    return min(methods, key=lambda m: METHOD_STRENGTH[Method(m)])


def weakest_method_name(names: Iterable[str | None]) -> str | None:
    """The weakest method among method names as written in JSON; unknown names and None are left out."""
    known = [Method(n) for n in names if n in Method._value2member_map_]
    return min(known, key=lambda m: METHOD_STRENGTH[m]).value if known else None
