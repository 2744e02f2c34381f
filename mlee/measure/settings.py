"""What a measurement session is asked for: one frozen, validated record (``SessionSettings``).

Commands build it from their options before anything is opened or written, so a bad value is a usage error
(exit 2) that leaves no folder behind. The session, the runners and ``config.json`` all read this one record.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlee.errors import UsageError
from mlee.results.layout import DEFAULT_OUTPUT_DIR, KINDS

#: Shortest sampling interval accepted: below it the sampler would cost more than it measures. Units: seconds.
MIN_INTERVAL_S = 0.005
#: Longest sampling interval accepted (a counter read less often than this could wrap unseen). Units: seconds.
MAX_INTERVAL_S = 3600.0
#: Longest idle baseline accepted. Units: seconds.
MAX_BASELINE_S = 24 * 3600.0
#: Highest facility PUE accepted (the worst data centres report about 3). Units: dimensionless.
MAX_PUE = 10.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def check_interval(interval_s: Any, option: str = "--interval") -> float:
    """``interval_s`` as a float, or UsageError.

    Units: seconds.
    """
    value = _number(interval_s)
    if value is None or not math.isfinite(value) or value <= 0:
        raise UsageError(f"sampling interval {interval_s!r} s is not positive and finite",
                         fix=f"use e.g. {option} 0.1")
    if not MIN_INTERVAL_S <= value <= MAX_INTERVAL_S:
        raise UsageError(f"sampling interval {value:g} s is out of range",
                         fix=f"use {option} from {MIN_INTERVAL_S:g} to {MAX_INTERVAL_S:g} s, e.g. 0.1")
    return value


def check_baseline(baseline_s: Any, option: str = "--baseline-s") -> float:
    """``baseline_s`` as a float, or UsageError.

    Units: seconds.
    """
    value = _number(baseline_s)
    if value is None or not math.isfinite(value) or value < 0:
        raise UsageError(f"baseline {baseline_s!r} s is negative or not finite",
                         fix=f"use {option} 0 (none) or more, e.g. 5")
    if value > MAX_BASELINE_S:
        raise UsageError(f"baseline {value:g} s is longer than a day", fix=f"use {option} of at most {MAX_BASELINE_S:g}")
    return value


def check_pue(pue: Any, option: str = "--pue") -> float:
    """``pue`` as a float, or UsageError.

    Units: dimensionless (facility energy / IT energy).
    """
    value = _number(pue)
    if value is None or not math.isfinite(value) or not 1.0 <= value <= MAX_PUE:
        raise UsageError(f"PUE {pue!r} is not a number from 1.0 to {MAX_PUE:g}",
                         fix=f"use {option} 1.0 (no facility overhead) or more, e.g. 1.4")
    return value


@dataclass(frozen=True)
class SessionSettings:
    """The settings of one measurement session, validated when made.

    Args:
        kind: ``run``, ``infer``, ``train``, ``measure``, ``profile`` or ``sweep``.
        output_dir: Where the experiment folder is made.
        interval_s: Background sampling interval (shortened when a counter could wrap faster).
        sources: Source names (``rapl``, ``nvml``, ``estimate``, ``rapl:psys``...), or None to auto-detect.
        baseline_s: Idle baseline measured before the workload (0: none).
        country: ISO alpha-3 country for the codecarbon estimate and the carbon figure (None: MLEE_COUNTRY or DEU).
        pue: Power usage effectiveness of the facility for the carbon figure.
        config: Extra run arguments for ``config.json``.

    Raises:
        UsageError: any value no measurement can use.

    Units: seconds.
    """

    kind: str = "measure"
    output_dir: Path = Path(DEFAULT_OUTPUT_DIR)
    interval_s: float = 0.1
    sources: tuple[str, ...] | None = None
    baseline_s: float = 0.0
    country: str | None = None
    pue: float = 1.0
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mlee.carbon import check_country, resolve_country
        from mlee.monitors.detect import parse_requested

        if self.kind not in KINDS:
            raise UsageError(f"unknown experiment kind {self.kind!r}", fix=f"use one of: {', '.join(KINDS)}")
        sources = self.sources
        if isinstance(sources, str):
            sources = (sources,)
        sources = tuple(str(s) for s in sources) if sources else None
        parse_requested(list(sources) if sources else None)
        country = resolve_country(self.country)
        check_country(country)
        for key, value in (("output_dir", Path(self.output_dir)), ("interval_s", check_interval(self.interval_s)),
                           ("sources", sources), ("baseline_s", check_baseline(self.baseline_s)),
                           ("country", country), ("pue", check_pue(self.pue)), ("config", dict(self.config or {}))):
            object.__setattr__(self, key, value)

    def replace(self, **changes: Any) -> SessionSettings:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)
