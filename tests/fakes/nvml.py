"""A fake NVML module: the real function names and the real ``pynvml.NVMLError`` classes.

Each GPU is scripted: energy counter values (mJ) or power values (mW) handed out one per read, an
error to raise from some read on, no energy counter at all (pre-Volta), a counter that raises
another NVML error (FunctionNotFound, Unknown), no power reading, or MIG instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pynvml


@dataclass
class FakeGpu:
    """One scripted GPU.

    ``energy_mj``: counter values returned by successive reads (last one repeats), or a callable
    giving the value now (e.g. from a fake clock); None = not supported (pre-Volta).
    ``power_mw``: power values returned by successive reads (last one repeats), or a callable.
    ``lost_after``: reads (of energy or power) that succeed before every further read raises GpuIsLost.
    ``energy_error``/``power_error``: an NVML error code every energy/power read raises
    (``power_mw=None`` is the same as ``power_error=NVML_ERROR_NOT_SUPPORTED``).
    ``mig_uuids``: MIG instances on this GPU (``MIG-...``), found by ``nvmlDeviceGetHandleByUUID``.
    """

    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    energy_mj: Any = field(default_factory=lambda: [1_000_000])
    power_mw: Any = field(default_factory=lambda: [100_000])
    lost_after: int | None = None
    memory_bytes: int = 40 * 1024**3
    energy_error: int | None = None
    power_error: int | None = None
    mig_uuids: list = field(default_factory=list)
    reads: int = 0
    scripted: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FakeMigHandle:
    """The handle NVML gives for a MIG instance."""

    uuid: str
    parent: FakeGpu


class _Memory:
    def __init__(self, total: int) -> None:
        self.total, self.free, self.used = total, total, 0


class FakeNvml:
    """Stands in for the ``pynvml`` module; pass it as ``nvml=``."""

    NVMLError = pynvml.NVMLError
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost
    NVMLError_NoPermission = pynvml.NVMLError_NoPermission
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLError_FunctionNotFound = pynvml.NVMLError_FunctionNotFound
    NVMLError_Unknown = pynvml.NVMLError_Unknown
    NVMLError_NotFound = pynvml.NVMLError_NotFound

    def __init__(self, gpus: list[FakeGpu], driver: str = "550.54.15", init_error: int | None = None) -> None:
        self.gpus = gpus
        self.driver = driver
        self.init_error = init_error
        self.initialised = 0
        self.calls: list[str] = []

    # -- library -------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.calls.append("nvmlShutdown")
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    # -- device --------------------------------------------------------------------------------
    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> _Memory:
        return _Memory(gpu.memory_bytes)

    def nvmlDeviceGetIndex(self, gpu: FakeGpu) -> int:
        return self.gpus.index(gpu)

    def nvmlDeviceGetHandleByUUID(self, uuid: Any) -> FakeGpu | FakeMigHandle:
        text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        for gpu in self.gpus:
            if gpu.uuid == text:
                return gpu
            if text in gpu.mig_uuids:
                return FakeMigHandle(text, gpu)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: FakeMigHandle) -> FakeGpu:
        if not isinstance(handle, FakeMigHandle):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return handle.parent

    def _next(self, gpu: FakeGpu, kind: str, values: Any) -> int:
        """The next scripted value of one function (each function keeps its own place in its list)."""
        if gpu.lost_after is not None and gpu.reads >= gpu.lost_after:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        position = gpu.scripted.get(kind, 0)
        value = int(values()) if callable(values) else values[min(position, len(values) - 1)]
        gpu.scripted[kind] = position + 1
        gpu.reads += 1
        return value

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        self.calls.append("nvmlDeviceGetTotalEnergyConsumption")
        if gpu.energy_mj is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if gpu.energy_error is not None:
            raise pynvml.NVMLError(gpu.energy_error)
        return self._next(gpu, "energy", gpu.energy_mj)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        self.calls.append("nvmlDeviceGetPowerUsage")
        if gpu.power_mw is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if gpu.power_error is not None:
            raise pynvml.NVMLError(gpu.power_error)
        return self._next(gpu, "power", gpu.power_mw)
