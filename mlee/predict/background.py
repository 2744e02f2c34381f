"""Background power: what the rest of the machine draws while a kernel is profiled, told apart from the kernel.

A profile window's power is the whole machine's. On a machine shared with other work it moves with
the other processes' load, not with the kernel: with codecarbon's estimate (no RAPL), the CPU part is
TDP x (0.1 + 0.9 x load³) of the *whole machine*, so on 2 cores one kernel thread alone reads about
1.8 W and the same thread beside another busy process about 8 W. In one profile of this project's
machine, 90 convolutions measured within three minutes split into 21.6 W and 28.0 W points by the
time they were measured; a power model cannot predict that, and it added about 13 % to the energy
error of held-out convolutions whose runtime was predicted to 13 %.

Windows are taken in rounds (one window of every configuration per round), so the windows measured
just before and after a window are other configurations measured under the same background. The
*background* of a window is the median power of the :data:`NEIGHBOURS` windows on either side of it
in time (itself included) within its experiment folder; its *excess* is its power less that
background: what this configuration draws beyond its neighbours (about 0 W under an estimate, where
one thread's power does not depend on the kernel; the kernel's own dependence on its shape with a
RAPL counter). A point's power at a reference background is then its median excess plus the
reference (:func:`at_reference`): the quietest background of the points fit (:func:`reference`,
``power_ref_w`` in a predictor's basis), as runtimes are scaled to a reference speed-probe time.

Pure Python; no numpy.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping

from mlee.fsutil import finite

#: Windows on either side of a window whose median power is its background.
NEIGHBOURS = 10
#: A folder needs this many measured windows for a background (fewer: points keep only their raw power).
MIN_WINDOWS = 2 * NEIGHBOURS + 1


def window_powers(record: Mapping) -> list[tuple[float, str, float]]:
    """``(start_s, name, power_w)`` of every valid window with a known energy, in time order.

    Units: seconds since the session started; watts.
    """
    out = []
    for w in record.get("windows") or []:
        if not isinstance(w, dict) or not w.get("valid", True):
            continue
        total = (w.get("energy_j") or {}).get("total") if isinstance(w.get("energy_j"), dict) else None
        duration, start = w.get("duration_s"), w.get("start_s")
        if finite(total) and finite(duration) and duration > 0 and finite(start):
            out.append((float(start), str(w.get("name")), float(total) / float(duration)))
    return sorted(out)


def backgrounds(record: Mapping) -> dict[str, tuple[float, float]]:
    """Per window name, ``(background_w, power_w)``: the median power of its neighbours in time, and its own.

    Empty when the folder has fewer than :data:`MIN_WINDOWS` measured windows.

    Units: watts.
    """
    rows = window_powers(record)
    if len(rows) < MIN_WINDOWS:
        return {}
    out = {}
    for i, (_, name, power) in enumerate(rows):
        lo = max(0, min(i - NEIGHBOURS, len(rows) - MIN_WINDOWS))
        near = [p for _, _, p in rows[lo:lo + MIN_WINDOWS]]
        out[name] = (statistics.median(near), power)
    return out


def point_background(levels: Mapping[str, tuple[float, float]], windows: Iterable[str]
                     ) -> tuple[float, float] | None:
    """A point's median background and median excess over its repeats' windows (None if any is unknown).

    Units: watts.
    """
    found = [levels.get(str(name)) for name in windows]
    if not found or any(f is None for f in found):
        return None
    return (statistics.median(b for b, _ in found),  # type: ignore[union-attr]
            statistics.median(p - b for b, p in found))  # type: ignore[union-attr]


#: The reference background is this quantile of the points' backgrounds: the quietest state of the machine
#: the profile saw, robust to a few odd windows.
REFERENCE_QUANTILE = 0.1


def reference(values: Iterable[float | None]) -> float | None:
    """The quietest background of the known ones (their :data:`REFERENCE_QUANTILE`; None without any).

    Other processes' load is not the kernel's: a workload's energy is wanted as on a machine doing
    nothing else, and the quietest background the profile saw is the nearest to that it knows.

    Units: watts.
    """
    known = sorted(float(v) for v in values if v is not None and finite(v) and v > 0)
    return known[int(REFERENCE_QUANTILE * (len(known) - 1))] if known else None


def at_reference(power_w: float | None, excess_w: float | None, ref_w: float | None) -> float | None:
    """A point's power at the reference background: ``ref_w + excess_w``; the raw ``power_w`` when either is
    unknown or the sum is not positive.

    Units: watts.
    """
    if excess_w is None or ref_w is None or power_w is None:
        return power_w
    value = ref_w + excess_w
    return value if value > 0 else power_w
