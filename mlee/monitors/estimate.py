"""CPU and RAM energy estimated by codecarbon, for machines without readable RAPL counters.

Always method ``estimate``: codecarbon models power (TDP x CPU load, a rule for RAM size), it does
not measure it. Its own method name and the TDP it used are recorded with every figure.

codecarbon is imported only when an estimate is opened, after ``CODECARBON_LOG_LEVEL`` is set so
that its import stays quiet. Its tracker runs with an explicit country (offline, no network), no
output files, no lock file and no GPU tracking (GPUs are NVML's job), and with its own scheduler
effectively off: mlee decides when it is read, so that window edges are exact.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from mlee.carbon import check_country, resolve_country
from mlee.errors import MleeError, SourceReadError, SourceUnavailable, UsageError
from mlee.monitors.base import Probe, Reading
from mlee.vocabulary import Domain, Method

#: codecarbon's own scheduler would change the totals behind our back; this keeps it from ever firing.
_NEVER_S = 10**9
INSTALL_FIX = "install codecarbon (pip install codecarbon)"


class Estimator(Protocol):
    """What mlee needs from codecarbon; the real one wraps ``OfflineEmissionsTracker``."""

    def start(self) -> None: ...

    def measure(self) -> tuple[float, float]:
        """Update and return cumulative (cpu_j, ram_j) since start. Units: joules."""
        ...

    def stop(self) -> None: ...

    def describe(self) -> dict:
        """codecarbon's own method names, TDP, CPU model, version (JSON-serialisable)."""
        ...


def codecarbon_available() -> bool:
    """True when codecarbon can be imported (checked without importing it)."""
    return importlib.util.find_spec("codecarbon") is not None


class CodecarbonEstimator:
    """codecarbon's ``OfflineEmissionsTracker`` behind the :class:`Estimator` interface.

    Args:
        country: ISO alpha-3 country code (codecarbon needs one to stay offline).
    """

    def __init__(self, country: str) -> None:
        self.country = country
        self._tracker: Any = None

    def start(self) -> None:
        if not codecarbon_available():
            raise SourceUnavailable("codecarbon is not installed, so CPU and RAM energy cannot be estimated",
                                    fix=INSTALL_FIX)
        os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")  # before the import: it logs at import time
        import contextlib
        import io
        import logging

        # codecarbon imports amdsmi, which print()s its loader errors ("Unable to find libamd_smi.so ...") on
        # every machine without ROCm: stdout carries mlee's data (--json), and mlee's own amdsmi probe already
        # says why AMD GPUs are not measured (`mlee doctor`), so the text is dropped.
        with contextlib.redirect_stdout(io.StringIO()):
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            self._tracker = OfflineEmissionsTracker(
                country_iso_code=self.country, output_methods=[], log_level="error",
                measure_power_secs=_NEVER_S, allow_multiple_runs=True, gpu_ids=[], force_mode_cpu_load=True,
                tracking_mode="machine",
            )
        if not hasattr(self._tracker, "_start_time"):  # codecarbon swallows its own constructor errors
            raise SourceUnavailable(f"codecarbon could not set up a tracker for country {self.country}",
                                    fix="check the country code (ISO alpha-3) and the codecarbon install")
        self._tracker.start()
        if getattr(self._tracker, "_start_time", None) is None:
            raise SourceUnavailable("codecarbon's tracker did not start", fix="set MLEE_DEBUG=1 and retry")

    def measure(self) -> tuple[float, float]:
        tracker = self._tracker
        try:
            tracker._measure_power_and_energy()
            return tracker._total_cpu_energy.kWh * 3.6e6, tracker._total_ram_energy.kWh * 3.6e6
        except Exception as exc:  # noqa: BLE001 - codecarbon internals; one failed estimate is one invalid interval
            raise SourceReadError(f"codecarbon estimate failed: {type(exc).__name__}: {exc}") from exc

    def stop(self) -> None:
        tracker, self._tracker = self._tracker, None
        if tracker is not None:
            # Stop its helper threads; its own final figures are not used (ours come from measure()).
            for attr in ("_scheduler", "_scheduler_monitor_power"):
                scheduler = getattr(tracker, attr, None)
                if scheduler is not None:
                    scheduler.stop()
                    setattr(tracker, attr, None)

    def describe(self) -> dict:
        tracker = self._tracker
        detail: dict = {"country": self.country, "codecarbon_version": None}
        if tracker is None:
            return detail
        conf = getattr(tracker, "_conf", {})
        detail["codecarbon_version"] = conf.get("codecarbon_version")
        for hw in getattr(tracker, "_hardware", []):
            kind = type(hw).__name__
            if kind == "CPU":
                detail["cpu"] = {
                    "codecarbon_method": getattr(hw, "_mode", None),
                    "tdp_w": _number(getattr(hw, "_tdp", None)),
                    "generic_tdp": bool(getattr(hw, "_is_generic_tdp", False)),
                    "cpu_model": getattr(hw, "_model", None),
                    "tracking_mode": getattr(hw, "_tracking_mode", None),
                }
            elif kind == "RAM":
                try:
                    ram_w = float(hw.total_power().W)
                except Exception:  # noqa: BLE001 - describing, not measuring
                    ram_w = None
                detail["ram"] = {"codecarbon_method": "ram_power_model", "power_w": ram_w,
                                 "ram_total_gb": _number(conf.get("ram_total_size"))}
        return detail


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class SharedEstimate:
    """One estimator read by two sources (cpu and dram) so that both see the same update."""

    def __init__(self, estimator: Estimator, clock: Callable[[], float] = time.monotonic) -> None:
        self.estimator = estimator
        self._clock = clock
        self._lock = threading.Lock()
        self._users = 0
        self._last: tuple[float, float, float] | None = None  # (t_s, cpu_j, ram_j)
        self._start = (0.0, 0.0)

    def open(self) -> tuple[float, float, float]:
        with self._lock:
            if self._users == 0:
                self.estimator.start()
                cpu_j, ram_j = self.estimator.measure()
                self._start = (cpu_j, ram_j)
                self._last = (self._clock(), 0.0, 0.0)
            self._users += 1
            assert self._last is not None
            return self._last

    def read(self, max_age_s: float = 0.0) -> tuple[float, float, float]:
        """Cumulative (t_s, cpu_j, ram_j) since open, re-measured unless fresher than ``max_age_s``."""
        with self._lock:
            now_s = self._clock()
            if self._last is not None and now_s - self._last[0] <= max_age_s:
                return self._last
            cpu_j, ram_j = self.estimator.measure()
            self._last = (now_s, cpu_j - self._start[0], ram_j - self._start[1])
            return self._last

    def close(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self.estimator.stop()


class EstimateSource:
    """The codecarbon estimate of one component (``estimate:cpu`` or ``estimate:dram``).

    Units: joules.
    """

    method = Method.estimate
    min_interval_s = 1.0  # codecarbon's own shortest interval; edges are still read exactly
    max_interval_s = None

    def __init__(self, shared: SharedEstimate, domain: Domain) -> None:
        if domain not in (Domain.cpu, Domain.dram):
            raise ValueError(f"codecarbon estimates cpu and dram, not {domain}")
        self.shared = shared
        self.domain = domain
        self.name = f"estimate:{domain.value}"
        self._detail: dict = {}
        self.first_reading: Reading | None = None

    @property
    def detail(self) -> dict:
        described = self._detail or self.shared.estimator.describe()
        part = described.get("cpu" if self.domain is Domain.cpu else "ram", {})
        return {"country": described.get("country"), "codecarbon_version": described.get("codecarbon_version"),
                **part, "estimate": True}

    def _reading(self, values: tuple[float, float, float]) -> Reading:
        t_s, cpu_j, ram_j = values
        return Reading(t_s, cpu_j if self.domain is Domain.cpu else ram_j, None)

    def open(self) -> Reading:
        values = self.shared.open()
        self._detail = self.shared.estimator.describe()
        self.first_reading = self._reading(values)
        return self.first_reading

    def read(self) -> Reading:
        # The dram source is read right after the cpu source in one sweep: share that update.
        return self._reading(self.shared.read(max_age_s=0.05 if self.domain is Domain.dram else 0.0))

    def close(self) -> Reading:
        try:
            return self.read()
        finally:
            self.shared.close()


def open_estimate(country: str | None = None, estimator: Estimator | None = None,
                  clock: Callable[[], float] = time.monotonic) -> list[EstimateSource]:
    """Open the cpu and dram estimate sources on one codecarbon tracker."""
    shared = SharedEstimate(estimator or CodecarbonEstimator(resolve_country(country)), clock=clock)
    cpu = EstimateSource(shared, Domain.cpu)
    dram = EstimateSource(shared, Domain.dram)
    cpu.open()
    dram.open()
    return [cpu, dram]


def probe_estimate(country: str | None = None) -> list[Probe]:
    """Whether the estimate can be used, without importing codecarbon (``mlee doctor`` stays fast)."""
    try:
        code = resolve_country(country)
    except UsageError as exc:
        return [Probe("estimate", Domain.cpu, Method.estimate, False, exc.message, exc.fix or "")]
    if not codecarbon_available():
        return [Probe("estimate", Domain.cpu, Method.estimate, False, "codecarbon is not installed", INSTALL_FIX)]
    detail = {"country": code, "domains": ["cpu", "dram"]}
    try:
        check_country(code)
    except MleeError as exc:
        return [Probe("estimate", Domain.cpu, Method.estimate, False, exc.message, exc.fix or "", detail)]
    return [Probe("estimate", Domain.cpu, Method.estimate, True, "", "", detail)]
