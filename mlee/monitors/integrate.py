"""Counter deltas and trapezoid integration: pure functions, no I/O, no clock.

Every energy figure mlee reports is made from these few functions, so they are the place to
check when a figure looks wrong.
"""

from __future__ import annotations

from collections.abc import Iterable


def counter_delta_uj(previous_uj: int, current_uj: int, max_range_uj: int | None) -> int | None:
    """The energy between two reads of a wrapping energy counter.

    The counter runs from 0 up to ``max_range_uj`` and then starts again at 0. Between two reads
    it may wrap at most once; the sampler keeps its interval short enough for that (see
    :func:`quarter_wrap_interval_s`).

    Args:
        previous_uj: The earlier raw counter value.
        current_uj: The later raw counter value.
        max_range_uj: The counter's range (sysfs ``max_energy_range_uj``), or None when unknown.

    Returns:
        The energy, never negative; None when the counter went backwards and the range is unknown
        (or the values are impossible), so that the caller marks the interval invalid instead of
        inventing a figure.

    Units: micro-joules in and out.
    """
    if current_uj >= previous_uj:
        return current_uj - previous_uj
    if not max_range_uj or max_range_uj <= 0 or previous_uj > max_range_uj:
        return None
    return max_range_uj - previous_uj + current_uj


def quarter_wrap_interval_s(max_range_uj: int, max_power_w: float) -> float:
    """The longest sampling interval that reads a counter at least four times per wrap period.

    Four reads per wrap leave a wide margin: a single wrap between reads is resolved exactly, and a
    late read (a busy machine, a slow sysfs read) still stays within one wrap.

    Args:
        max_range_uj: The counter's range.
        max_power_w: The highest power the zone can plausibly draw.

    Units: micro-joules, watts; returns seconds.
    """
    return max_range_uj / 1e6 / max_power_w / 4.0


def trapezoid_j(t0_s: float, power0_w: float, t1_s: float, power1_w: float) -> float:
    """The energy of one interval between two power readings, by the trapezoid rule.

    Units: seconds and watts in; joules out.
    """
    return (t1_s - t0_s) * (power0_w + power1_w) / 2.0


def integrate_power_j(samples: Iterable[tuple[float, float]]) -> float:
    """The trapezoid integral of a power trace.

    Args:
        samples: ``(t_s, power_w)`` pairs in time order.

    Units: seconds and watts in; joules out.
    """
    total_j = 0.0
    previous: tuple[float, float] | None = None
    for t_s, power_w in samples:
        if previous is not None:
            total_j += trapezoid_j(previous[0], previous[1], t_s, power_w)
        previous = (t_s, power_w)
    return total_j
