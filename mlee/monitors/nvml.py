"""NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py), imported only when a GPU is probed.

NVML is an object passed in (``nvml=``): the real module by default, a fake in tests. Every
``NVMLError`` is translated to an mlee error in :func:`mlee.monitors.nvml_lib.translate`, and nowhere else.

Volta and newer GPUs have a total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
method ``counter``); older ones only report power, which the sampler integrates with the trapezoid
rule (method ``power_integration``). Any counter failure at open (NotSupported, FunctionNotFound,
Unknown...) and a counter that does not move while the GPU draws power fall back to power
integration, with the reason in the source's detail, as long as power can be read.

A ``MIG-<uuid>`` entry of ``CUDA_VISIBLE_DEVICES`` maps to its parent GPU: NVML has no per-instance
energy, so the whole GPU is measured (other instances included) and marked ``shared: true``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from mlee.errors import MleeError, SourceReadError, SourceUnavailable
from mlee.monitors.base import Detected, Probe, Reading, open_gpus
from mlee.monitors.nvml_lib import (  # noqa: F401 - re-exported: part of this module's API
    INSTALL_FIX,
    Library,
    describe_gpu,
    error_class,
    initialised,
    load_nvml,
    nvml_errors,
    visible_gpus,
    visible_indices,
)
from mlee.vocabulary import Domain, Method

#: How long detection watches each energy counter: one that does not move while the GPU draws more
#: than :data:`STALE_POWER_W` is not trusted. Units: seconds, watts.
COUNTER_CHECK_S = 0.25
STALE_POWER_W = 1.0


class NvmlSource:
    """One GPU's energy: the NVML energy counter, else integrated power readings.

    Args:
        index: NVML device index.
        nvml: The NVML module (default: ``pynvml``, imported on :meth:`open`).
        clock: Monotonic clock.

    Units: joules, watts (NVML reports millijoules and milliwatts).
    """

    domain = Domain.gpu
    min_interval_s = 0.02  # NVML refreshes power about every 20-100 ms
    max_interval_s = None

    def __init__(self, index: int, nvml: Any = None, clock: Callable[[], float] = time.monotonic,
                 mig: list[str] | None = None) -> None:
        self.index = index
        self.mig = list(mig or [])
        self.fallback_reason = ""
        self.open_power_w: float | None = None
        self.name = f"nvml:{index}"
        self.method = Method.counter
        self._nvml_arg = nvml
        self._nvml: Any = None
        self._clock = clock
        self._handle: Any = None
        self._start_mj: int | None = None
        self._last: tuple[float, float] | None = None
        self._info: dict = {"index": index}
        self._open = False
        self.first_reading: Reading | None = None

    @property
    def detail(self) -> dict:
        mode = ("nvmlDeviceGetTotalEnergyConsumption" if self.method is Method.counter
                else "nvmlDeviceGetPowerUsage (trapezoid)")
        extra: dict = {}
        if self.fallback_reason:
            extra["counter_unusable"] = self.fallback_reason
        if self.mig:
            extra.update(shared=True, mig_instances=list(self.mig),
                         shared_note="MIG instance: the whole GPU is measured, other instances included")
        return {**self._info, "nvml_function": mode, **extra}

    def _power_w(self) -> float:
        return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0

    def open(self) -> Reading:
        """Initialise NVML, describe the GPU and pick the counter or the power reading."""
        self._nvml = nvml = load_nvml(self._nvml_arg)
        Library.acquire(nvml)
        try:
            self._info = describe_gpu(nvml, self.index)
            with nvml_errors(nvml, f"GPU {self.index}", reading=False):
                self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            try:
                self._start_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
                self.method = Method.counter
            except Exception as exc:  # noqa: BLE001 - narrowed just below
                if not isinstance(exc, error_class(nvml, "NVMLError")) or \
                        isinstance(exc, error_class(nvml, "NVMLError_NoPermission")):
                    with nvml_errors(nvml, f"energy counter of GPU {self.index}", reading=False):
                        raise
                self.method = Method.power_integration
                self.fallback_reason = f"nvmlDeviceGetTotalEnergyConsumption failed: {exc}"
                self._start_mj = None
            t_s = self._clock()
            if self.method is Method.power_integration:
                with nvml_errors(nvml, f"power of GPU {self.index} (no energy counter either: "
                                  f"{self.fallback_reason})",
                                  reading=False):
                    power_w = self._power_w()
                self.first_reading = Reading(t_s, None, power_w)
            else:
                with contextlib.suppress(Exception):  # only used to judge a counter that does not move
                    self.open_power_w = self._power_w()
                self._last = (t_s, 0.0)
                self.first_reading = Reading(t_s, 0.0, None)
            self._open = True
            return self.first_reading
        except BaseException:
            Library.release(nvml)
            raise

    def check_counter(self) -> None:
        """Read the counter again (after :data:`COUNTER_CHECK_S`); one that has not moved while the GPU
        draws power is not trusted: switch to power integration and re-anchor, recording why."""
        if self.method is not Method.counter or self.open_power_w is None or self.open_power_w <= STALE_POWER_W:
            return
        with nvml_errors(self._nvml, f"energy counter of GPU {self.index}", reading=False):
            now_mj = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        if now_mj != self._start_mj:
            return
        with nvml_errors(self._nvml, f"power of GPU {self.index}", reading=False):
            power_w = self._power_w()
        self.fallback_reason = (f"energy counter did not move in {COUNTER_CHECK_S:g} s while the GPU drew "
                                f"{self.open_power_w:g} W")
        self.method = Method.power_integration
        self._start_mj = None
        self.first_reading = Reading(self._clock(), None, power_w)

    def read(self) -> Reading:
        """Read the GPU; an NVML failure (GPU lost) raises :class:`SourceReadError`."""
        nvml = self._nvml
        t_s = self._clock()
        with nvml_errors(nvml, f"read GPU {self.index}", reading=True):
            if self.method is Method.power_integration:
                return Reading(t_s, None, self._power_w())
            now_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        assert self._start_mj is not None
        if now_mj < self._start_mj:  # driver reset: start a fresh segment rather than go negative
            self._start_mj = now_mj
            self._last = None
            raise SourceReadError(f"{self.name}: energy counter went backwards (driver reset?); interval dropped")
        energy_j = (now_mj - self._start_mj) / 1000.0
        power_w = None
        if self._last is not None and t_s > self._last[0]:
            power_w = (energy_j - self._last[1]) / (t_s - self._last[0])
        self._last = (t_s, energy_j)
        return Reading(t_s, energy_j, power_w)

    def close(self) -> Reading:
        """Take the final reading and release NVML (even when that reading fails)."""
        try:
            return self.read()
        finally:
            if self._open:
                self._open = False
                Library.release(self._nvml)


def detect_nvml(nvml: Any = None, *, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep, env: dict[str, str] | None = None,
                indices: list[int] | None = None, strict: bool = False) -> Detected:
    """Open the visible GPUs (or ``indices``): the one decision ``mlee doctor`` and a run share.

    Each GPU degrades alone: one that cannot be read is skipped with its reason (``strict``: raised).
    Counters are watched for :data:`COUNTER_CHECK_S` (one wait for all GPUs).

    Raises:
        SourceUnavailable: ``strict`` and a GPU cannot be used, or no GPU is visible.
    """
    try:
        nvml = load_nvml(nvml)
        Library.acquire(nvml)
    except SourceUnavailable as exc:
        if strict:
            raise
        return Detected([], [Probe("nvml", Domain.gpu, None, False, exc.message, exc.fix or "")])
    try:
        try:
            gpus, note = visible_gpus(nvml, env)
        except SourceUnavailable as exc:
            if strict:
                raise
            return Detected([], [Probe("nvml", Domain.gpu, None, False, exc.message, exc.fix or "")])
        if indices is not None:
            gpus = {i: gpus.get(i, []) for i in indices}
        if not gpus:
            reason = f"no NVIDIA GPU visible ({note})"
            fix = "unset or fix CUDA_VISIBLE_DEVICES" if "unset" not in note else "check `nvidia-smi`"
            if strict:
                raise SourceUnavailable(reason, fix=fix)
            return Detected([], [Probe("nvml", Domain.gpu, None, False, reason, fix)])
        return open_gpus(list(gpus), lambda i: NvmlSource(i, nvml=nvml, clock=clock, mig=gpus[i]), note=note,
                         strict=strict, sleep=sleep, wait_s=COUNTER_CHECK_S,
                         needs_check=lambda s: s.method is Method.counter and s.open_power_w)
    finally:
        Library.release(nvml)


def probe_nvml(nvml: Any = None, env: dict[str, str] | None = None,
               sleep: Callable[[float], None] = time.sleep) -> tuple[list[Probe], list[int]]:
    """One probe per visible GPU (or one saying why there is none) and the usable indices: the decision
    a run makes (:func:`detect_nvml`), with everything closed again."""
    found = detect_nvml(nvml, env=env, sleep=sleep)
    for source in found.sources:
        with contextlib.suppress(MleeError):
            source.close()
    return found.probes, [s.index for s in found.sources]


def open_nvml(nvml: Any = None, clock: Callable[[], float] = time.monotonic,
              indices: list[int] | None = None, env: dict[str, str] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> list[NvmlSource]:
    """Open every visible GPU (or the given indices); every one must open.

    Raises:
        SourceUnavailable: no GPU visible, or one that cannot be used.
    """
    return detect_nvml(nvml, clock=clock, sleep=sleep, env=env, indices=indices, strict=True).sources
