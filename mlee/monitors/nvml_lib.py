"""NVML as a library: loading it, translating its errors, init/shutdown, and which GPUs are visible.

NVML is an object passed in (``nvml=``): the real ``pynvml`` module by default, a fake in tests.
Every ``NVMLError`` is translated to an mlee error in :func:`translate`, and nowhere else.
The sources themselves live in :mod:`mlee.monitors.nvml`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from mlee.errors import MleeError, SourcePermissionError, SourceReadError, SourceUnavailable

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


def error_class(nvml: Any, name: str) -> type | tuple:
    return getattr(nvml, name, ())


def translate(nvml: Any, exc: BaseException, what: str, reading: bool) -> MleeError:
    """The one place where an ``NVMLError`` becomes an mlee error.

    Args:
        nvml: The NVML module (its error classes are used).
        exc: The NVML error.
        what: What was being done, for the message.
        reading: True during a read (a failure marks an interval invalid), False while opening.
    """
    text = f"NVML: {what}: {exc}"
    if isinstance(exc, error_class(nvml, "NVMLError_NoPermission")):
        return SourcePermissionError(text, fix="run as a user allowed to query the GPU (video group) or as root")
    if reading:
        if isinstance(exc, error_class(nvml, "NVMLError_GpuIsLost")):
            return SourceReadError(f"{text} (GPU lost; its interval is marked invalid)")
        return SourceReadError(text)
    if isinstance(exc, (error_class(nvml, "NVMLError_LibraryNotFound"), error_class(nvml, "NVMLError_DriverNotLoaded"))):
        return SourceUnavailable(f"no NVIDIA driver: {exc}", fix=INSTALL_FIX)
    return SourceUnavailable(text, fix="check `nvidia-smi` works on this machine")


@contextlib.contextmanager
def nvml_errors(nvml: Any, what: str, reading: bool) -> Iterator[None]:
    try:
        yield
    except MleeError:
        raise
    except Exception as exc:
        if isinstance(exc, error_class(nvml, "NVMLError")):
            raise translate(nvml, exc, what, reading) from exc
        raise


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Library:
    """Reference-counted ``nvmlInit``/``nvmlShutdown`` per NVML module: no init at import time."""

    _lock = threading.Lock()
    _counts: dict[int, int] = {}

    @classmethod
    def acquire(cls, nvml: Any) -> None:
        with cls._lock:
            if cls._counts.get(id(nvml), 0) == 0:
                with nvml_errors(nvml, "nvmlInit", reading=False):
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
    Library.acquire(module)
    try:
        yield module
    finally:
        Library.release(module)


def visible_gpus(nvml: Any, env: dict[str, str] | None = None) -> tuple[dict[int, list[str]], str]:
    """NVML indices of the GPUs this process may use, honouring ``CUDA_VISIBLE_DEVICES``.

    CUDA semantics: unset means all; entries are indices, UUID prefixes (``GPU-8f3a``) or MIG
    instance UUIDs (``MIG-...``, mapped to their parent GPU); the list stops at the first entry
    that names no device. Needs NVML initialised.

    Returns:
        Index -> the MIG instances seen on it (empty: the whole GPU is ours), in CUDA order, and a
        note on how they were chosen.
    """
    env = os.environ if env is None else env
    with nvml_errors(nvml, "nvmlDeviceGetCount", reading=False):
        count = int(nvml.nvmlDeviceGetCount())
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return {i: [] for i in range(count)}, f"all {count} GPUs (CUDA_VISIBLE_DEVICES unset)"
    uuids: dict[int, str] = {}
    chosen: dict[int, list[str]] = {}
    for entry in [e.strip() for e in raw.split(",")]:
        index: int | None = None
        mig: str | None = None
        if entry.isdigit():
            index = int(entry) if int(entry) < count else None
        elif entry.upper().startswith("GPU-"):
            if not uuids:
                for i in range(count):
                    with nvml_errors(nvml, "nvmlDeviceGetUUID", reading=False):
                        uuids[i] = text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)))
            hits = [i for i, u in uuids.items() if u.upper().startswith(entry.upper())]
            index = hits[0] if len(hits) == 1 else None
        elif entry.upper().startswith("MIG-"):
            index, mig = mig_parent(nvml, entry), entry
        if index is None or (index in chosen and mig is None):
            break
        chosen.setdefault(index, [])
        if mig is not None and mig not in chosen[index]:
            chosen[index].append(mig)
    return chosen, f"CUDA_VISIBLE_DEVICES={raw!r}"


def mig_parent(nvml: Any, uuid: str) -> int | None:
    """The index of the GPU holding MIG instance ``uuid``; None when NVML knows no such instance."""
    try:
        mig = nvml.nvmlDeviceGetHandleByUUID(uuid)
        parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
        return int(nvml.nvmlDeviceGetIndex(parent))
    except Exception as exc:  # noqa: BLE001 - an NVML error means "no such device", as CUDA reads it
        if isinstance(exc, error_class(nvml, "NVMLError")):
            return None
        raise


def visible_indices(nvml: Any, env: dict[str, str] | None = None) -> tuple[list[int], str]:
    """The indices of :func:`visible_gpus`, in CUDA order, and the note."""
    gpus, note = visible_gpus(nvml, env)
    return list(gpus), note


def describe_gpu(nvml: Any, index: int) -> dict:
    """Index, name, UUID, driver version and memory of one GPU (NVML initialised)."""
    with nvml_errors(nvml, f"describe GPU {index}", reading=False):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        info = {
            "index": index,
            "name": text(nvml.nvmlDeviceGetName(handle)),
            "uuid": text(nvml.nvmlDeviceGetUUID(handle)),
            "driver": text(nvml.nvmlSystemGetDriverVersion()),
        }
    try:
        info["memory_bytes"] = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
    except Exception:  # noqa: BLE001 - memory size is a nice-to-have fact, not a measurement
        info["memory_bytes"] = None
    return info
