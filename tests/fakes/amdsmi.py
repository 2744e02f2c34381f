"""A fake AMD SMI module: the real function names, return shapes and exception classes of ``amdsmi``.

The real package cannot be imported without ROCm's ``libamd_smi.so`` (its ``__init__`` loads the
library and raises ``KeyError`` when it is missing), so its exception classes are used when the
package imports and re-created with the same names, constructor and ``get_error_code`` otherwise
(amdsmi 7.0.2, ``amdsmi_exception.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Status codes of amdsmi_wrapper (amdsmi 7.0.2).
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_INIT_ERROR = 18
AMDSMI_STATUS_NOT_FOUND = 31
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34

try:  # pragma: no cover - only where ROCm is installed
    from amdsmi import AmdSmiException, AmdSmiLibraryException
except Exception:  # noqa: BLE001 - ImportError, or KeyError without libamd_smi.so

    class AmdSmiException(Exception):  # type: ignore[no-redef]
        """Base smi exception class"""

    class AmdSmiLibraryException(AmdSmiException):  # type: ignore[no-redef]
        def __init__(self, err_code: int) -> None:
            err_code = abs(err_code)
            super().__init__(err_code)
            self.err_code = err_code

        def __str__(self) -> str:
            return f"Error code:\n\t{self.err_code} | AMDSMI status {self.err_code}"

        def get_error_code(self) -> int:
            return self.err_code


@dataclass
class FakeAmdGpu:
    """One scripted AMD GPU.

    ``energy_ticks``: accumulator values (last one repeats) or a callable giving the value now;
    None: the counter raises ``energy_error`` (default NOT_SUPPORTED). ``resolution_uj``: micro-joules
    per tick. ``power_w``: ``current_socket_power`` values or a callable; None: "N/A".
    ``old_api``: return the counter under the pre-6.2.1 key ``power``.
    """

    uuid: str = "GPU-aaaa-0000"
    market_name: str = "AMD Instinct MI250X"
    energy_ticks: Any = field(default_factory=lambda: [1_000_000])
    resolution_uj: float = 15.3
    power_w: Any = field(default_factory=lambda: [300])
    energy_error: int = AMDSMI_STATUS_NOT_SUPPORTED
    old_api: bool = False
    lost_after: int | None = None
    scripted: dict = field(default_factory=dict)
    reads: int = 0


class FakeAmdSmi:
    """Stands in for the ``amdsmi`` module; pass it as ``amdsmi=``."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException

    def __init__(self, gpus: list[FakeAmdGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.initialised = 0
        self.calls: list[str] = []

    def amdsmi_init(self, flag: Any = None) -> None:
        self.calls.append("amdsmi_init")
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self.initialised += 1

    def amdsmi_shut_down(self) -> None:
        self.calls.append("amdsmi_shut_down")
        self.initialised -= 1

    def amdsmi_get_processor_handles(self) -> list[FakeAmdGpu]:
        return list(self.gpus)

    def amdsmi_get_gpu_device_uuid(self, gpu: FakeAmdGpu) -> str:
        return gpu.uuid

    def amdsmi_get_gpu_asic_info(self, gpu: FakeAmdGpu) -> dict:
        return {"market_name": gpu.market_name, "vendor_id": "0x1002"}

    def _next(self, gpu: FakeAmdGpu, kind: str, values: Any) -> Any:
        if gpu.lost_after is not None and gpu.reads >= gpu.lost_after:
            raise AmdSmiLibraryException(AMDSMI_STATUS_DRIVER_NOT_LOADED)
        position = gpu.scripted.get(kind, 0)
        value = values() if callable(values) else values[min(position, len(values) - 1)]
        gpu.scripted[kind] = position + 1
        gpu.reads += 1
        return value

    def amdsmi_get_energy_count(self, gpu: FakeAmdGpu) -> dict:
        self.calls.append("amdsmi_get_energy_count")
        if gpu.energy_ticks is None:
            raise AmdSmiLibraryException(gpu.energy_error)
        ticks = int(self._next(gpu, "energy", gpu.energy_ticks))
        key = "power" if gpu.old_api else "energy_accumulator"
        return {key: ticks, "counter_resolution": gpu.resolution_uj, "timestamp": 0}

    def amdsmi_get_power_info(self, gpu: FakeAmdGpu) -> dict:
        self.calls.append("amdsmi_get_power_info")
        value = "N/A" if gpu.power_w is None else self._next(gpu, "power", gpu.power_w)
        return {"socket_power": value, "current_socket_power": value, "average_socket_power": value,
                "gfx_voltage": "N/A", "soc_voltage": "N/A", "mem_voltage": "N/A", "power_limit": 500}
