"""NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py), imported only when a GPU is probed.

NVML is an object passed in (``nvml=``): the real module by default, a fake in tests. Every
``NVMLError`` is translated to an mlee error in :func:`_translate`, and nowhere else.

Volta and newer GPUs have a total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
method ``counter``); older ones only report power, which the sampler integrates with the trapezoid
rule (method ``power_integration``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from mlee.errors import MleeError, SourcePermissionError, SourceReadError, SourceUnavailable
from mlee.monitors.base import Domain, Method, Probe, Reading

INSTALL_FIX = "install the NVIDIA driver and nvidia-ml-py (pip install nvidia-ml-py)"


def load_nvml(nvml: Any = None) -> Any:
    """The NVML module to use: ``nvml`` when given, else ``pynvml`` imported now.

    Raises:
        SourceUnavailable: pynvml is not installed.
    """
    if nvml is not None:
        return nvml
    try:
        import pynvml
    except ImportError as exc:
        raise SourceUnavailable("pynvml is not installed", fix=INSTALL_FIX) from exc
    return pynvml


def _error_class(nvml: Any, name: str) -> type | tuple:
    return getattr(nvml, name, ())


def _translate(nvml: Any, exc: BaseException, what: str, reading: bool) -> MleeError:
    """The one place where an ``NVMLError`` becomes an mlee error.

    Args:
        nvml: The NVML module (its error classes are used).
        exc: The NVML error.
        what: What was being done, for the message.
        reading: True during a read (a failure marks an interval invalid), False while opening.
    """
    text = f"NVML: {what}: {exc}"
    if isinstance(exc, _error_class(nvml, "NVMLError_NoPermission")):
        return SourcePermissionError(text, fix="run as a user allowed to query the GPU (video group) or as root")
    if reading:
        if isinstance(exc, _error_class(nvml, "NVMLError_GpuIsLost")):
            return SourceReadError(f"{text} (GPU lost; its interval is marked invalid)")
        return SourceReadError(text)
    if isinstance(exc, (_error_class(nvml, "NVMLError_LibraryNotFound"), _error_class(nvml, "NVMLError_DriverNotLoaded"))):
        return SourceUnavailable(f"no NVIDIA driver: {exc}", fix=INSTALL_FIX)
    return SourceUnavailable(text, fix="check `nvidia-smi` works on this machine")


@contextlib.contextmanager
def _nvml_errors(nvml: Any, what: str, reading: bool) -> Iterator[None]:
    try:
        yield
    except MleeError:
        raise
    except Exception as exc:
        if isinstance(exc, _error_class(nvml, "NVMLError")):
            raise _translate(nvml, exc, what, reading) from exc
        raise


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Library:
    """Reference-counted ``nvmlInit``/``nvmlShutdown`` per NVML module: no init at import time."""

    _lock = threading.Lock()
    _counts: dict[int, int] = {}

    @classmethod
    def acquire(cls, nvml: Any) -> None:
        with cls._lock:
            if cls._counts.get(id(nvml), 0) == 0:
                with _nvml_errors(nvml, "nvmlInit", reading=False):
                    nvml.nvmlInit()
            cls._counts[id(nvml)] = cls._counts.get(id(nvml), 0) + 1

    @classmethod
    def release(cls, nvml: Any) -> None:
        with cls._lock:
            count = cls._counts.get(id(nvml), 0) - 1
            if count <= 0:
                cls._counts.pop(id(nvml), None)
                with contextlib.suppress(Exception):  # shutting down; nothing left to measure
                    nvml.nvmlShutdown()
            else:
                cls._counts[id(nvml)] = count


@contextlib.contextmanager
def initialised(nvml: Any = None) -> Iterator[Any]:
    """NVML loaded and initialised for the block (shared with any open source); yields the module.

    Raises:
        SourceUnavailable: no pynvml or no driver.
    """
    module = load_nvml(nvml)
    _Library.acquire(module)
    try:
        yield module
    finally:
        _Library.release(module)


def visible_indices(nvml: Any, env: dict[str, str] | None = None) -> tuple[list[int], str]:
    """NVML indices of the GPUs this process may use, honouring ``CUDA_VISIBLE_DEVICES``.

    CUDA semantics: unset means all; entries are indices or UUID prefixes (``GPU-8f3a``); the list
    stops at the first entry that names no device. Needs NVML initialised.

    Returns:
        The indices, and a note on how they were chosen.
    """
    env = os.environ if env is None else env
    with _nvml_errors(nvml, "nvmlDeviceGetCount", reading=False):
        count = int(nvml.nvmlDeviceGetCount())
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count)), f"all {count} GPUs (CUDA_VISIBLE_DEVICES unset)"
    uuids: dict[int, str] = {}
    chosen: list[int] = []
    for entry in [e.strip() for e in raw.split(",")]:
        index: int | None = None
        if entry.isdigit():
            index = int(entry) if int(entry) < count else None
        elif entry.upper().startswith("GPU-"):
            if not uuids:
                for i in range(count):
                    with _nvml_errors(nvml, "nvmlDeviceGetUUID", reading=False):
                        uuids[i] = _text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)))
            hits = [i for i, u in uuids.items() if u.upper().startswith(entry.upper())]
            index = hits[0] if len(hits) == 1 else None
        if index is None or index in chosen:
            break
        chosen.append(index)
    return chosen, f"CUDA_VISIBLE_DEVICES={raw!r}"


def describe_gpu(nvml: Any, index: int) -> dict:
    """Index, name, UUID, driver version and memory of one GPU (NVML initialised)."""
    with _nvml_errors(nvml, f"describe GPU {index}", reading=False):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        info = {
            "index": index,
            "name": _text(nvml.nvmlDeviceGetName(handle)),
            "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
            "driver": _text(nvml.nvmlSystemGetDriverVersion()),
        }
    try:
        info["memory_bytes"] = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
    except Exception:  # noqa: BLE001 - memory size is a nice-to-have fact, not a measurement
        info["memory_bytes"] = None
    return info


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

    def __init__(self, index: int, nvml: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.index = index
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
        return {**self._info, "nvml_function": mode}

    def open(self) -> Reading:
        """Initialise NVML, describe the GPU and pick the counter or the power reading."""
        self._nvml = nvml = load_nvml(self._nvml_arg)
        _Library.acquire(nvml)
        try:
            self._info = describe_gpu(nvml, self.index)
            with _nvml_errors(nvml, f"GPU {self.index}", reading=False):
                self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            try:
                self._start_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
                self.method = Method.counter
            except Exception as exc:  # noqa: BLE001 - narrowed just below
                if not isinstance(exc, _error_class(nvml, "NVMLError_NotSupported")):
                    with _nvml_errors(nvml, f"energy counter of GPU {self.index}", reading=False):
                        raise
                self.method = Method.power_integration
                self._start_mj = None
            t_s = self._clock()
            if self.method is Method.power_integration:
                with _nvml_errors(nvml, f"power of GPU {self.index} (no energy counter either)", reading=False):
                    power_w = nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
                self.first_reading = Reading(t_s, None, power_w)
            else:
                self._last = (t_s, 0.0)
                self.first_reading = Reading(t_s, 0.0, None)
            self._open = True
            return self.first_reading
        except BaseException:
            _Library.release(nvml)
            raise

    def read(self) -> Reading:
        """Read the GPU; an NVML failure (GPU lost) raises :class:`SourceReadError`."""
        nvml = self._nvml
        t_s = self._clock()
        with _nvml_errors(nvml, f"read GPU {self.index}", reading=True):
            if self.method is Method.power_integration:
                return Reading(t_s, None, nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0)
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
                _Library.release(self._nvml)


def probe_nvml(nvml: Any = None, env: dict[str, str] | None = None) -> tuple[list[Probe], list[int]]:
    """One probe per visible GPU (or one saying why there is none) and the usable indices."""
    try:
        nvml = load_nvml(nvml)
        _Library.acquire(nvml)
    except SourceUnavailable as exc:
        return [Probe("nvml", Domain.gpu, None, False, exc.message, exc.fix or "")], []
    try:
        try:
            indices, note = visible_indices(nvml, env)
        except SourceUnavailable as exc:
            return [Probe("nvml", Domain.gpu, None, False, exc.message, exc.fix or "")], []
        if not indices:
            return [Probe("nvml", Domain.gpu, None, False, f"no GPU visible ({note})",
                          "unset or fix CUDA_VISIBLE_DEVICES" if "CUDA" in note and "unset" not in note else "")], []
        probes, usable = [], []
        for index in indices:
            source = NvmlSource(index, nvml=nvml)
            try:
                source.open()
                source.close()
            except MleeError as exc:
                probes.append(Probe(f"nvml:{index}", Domain.gpu, None, False, exc.message,
                                    getattr(exc, "fix", "") or "", {"index": index}))
                continue
            usable.append(index)
            probes.append(Probe(source.name, Domain.gpu, source.method, True, "", "", {**source.detail, "visible": note}))
        return probes, usable
    finally:
        _Library.release(nvml)


def open_nvml(nvml: Any = None, clock: Callable[[], float] = time.monotonic,
              indices: list[int] | None = None, env: dict[str, str] | None = None) -> list[NvmlSource]:
    """Open every visible GPU (or the given indices). Raises SourceUnavailable when there is none."""
    nvml = load_nvml(nvml)
    _Library.acquire(nvml)
    try:
        if indices is None:
            indices, note = visible_indices(nvml, env)
            if not indices:
                raise SourceUnavailable(f"no NVIDIA GPU visible ({note})",
                                        fix="check `nvidia-smi` and CUDA_VISIBLE_DEVICES")
        sources: list[NvmlSource] = []
        try:
            for index in indices:
                source = NvmlSource(index, nvml=nvml, clock=clock)
                source.open()
                sources.append(source)
        except BaseException:
            for source in sources:
                with contextlib.suppress(MleeError):
                    source.close()
            raise
        return sources
    finally:
        _Library.release(nvml)
