"""``environment.json``: the machine and software a measurement ran on (docs/design.md section 2).

Facts only, read from the system; a fact that cannot be read is ``null``, never guessed.
"""

from __future__ import annotations

import copy
import functools
import os
import platform
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions explain a result; recorded when installed.
PACKAGES = (
    "mlee", "torch", "torchvision", "tensorflow", "tensorflow-cpu", "keras", "onnx", "onnxruntime", "numpy",
    "scikit-learn", "codecarbon", "nvidia-ml-py", "psutil", "typer", "rich",
)

_CPU_SYSFS = Path("/sys/devices/system/cpu")


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        if not line.strip():
            if info:
                break  # the first processor block says all we need
            continue
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def parse_size(text: str) -> int | None:
    """``32K`` / ``1024 KB`` / ``8M`` -> bytes (sysfs cache sizes). Units: bytes."""
    text = text.strip().upper().replace("IB", "").replace("B", "")
    factor = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "KMG" else text
    try:
        return int(float(number.strip()) * factor)
    except ValueError:
        return None


def cache_bytes(cpu_dir: Path = _CPU_SYSFS / "cpu0" / "cache") -> dict[str, int | None]:
    """L1 data, L2 and L3 cache sizes of the first CPU (per core or per cluster, as sysfs reports them)."""
    sizes: dict[str, int | None] = {"l1d": None, "l2": None, "l3": None}
    try:
        entries = sorted(cpu_dir.glob("index*"))
    except OSError:
        return sizes
    for entry in entries:
        try:
            level = (entry / "level").read_text().strip()
            kind = (entry / "type").read_text().strip()
            size = parse_size((entry / "size").read_text())
        except OSError:
            continue
        key = {"1": "l1d" if kind == "Data" else None, "2": "l2", "3": "l3"}.get(level)
        if key and kind in ("Data", "Unified"):
            sizes[key] = size
    return sizes


@functools.lru_cache(maxsize=1)
def cpu_facts() -> dict[str, Any]:
    """CPU model, vendor, core counts and cache sizes."""
    import psutil

    info = _cpuinfo()
    model = info.get("model name") or info.get("Model") or platform.processor() or None
    return {
        "model": model,
        "vendor": info.get("vendor_id") or info.get("CPU implementer") or None,
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(logical=True),
        "cache_bytes": cache_bytes(),
    }


@functools.lru_cache(maxsize=4)
def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that matter (absent ones are left out)."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def collect(gpus: list[dict] | None = None, nvml: Any = None) -> dict[str, Any]:
    """The content of ``environment.json``.

    Args:
        gpus: GPU descriptions (index, name, uuid, driver, memory_bytes) from NVML; None: ask NVML now.
        nvml: The NVML module to ask (default ``pynvml``).
    """
    import psutil

    from mlee import __version__

    if gpus is None:
        gpus = visible_gpus(nvml)
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpu": copy.deepcopy(cpu_facts()),  # cached per process: the CPU does not change under us
        "memory_bytes": int(psutil.virtual_memory().total),
        "gpus": [{k: g.get(k) for k in ("index", "name", "uuid", "driver", "memory_bytes")} for g in gpus],
        "packages": dict(package_versions()),
        "mlee_version": __version__,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def visible_gpus(nvml: Any = None) -> list[dict]:
    """Descriptions of the GPUs this process may use, or [] when NVML is absent (no GPU is a fact too)."""
    from mlee.errors import MleeError
    from mlee.monitors import nvml as nv

    try:
        with nv.initialised(nvml) as module:
            indices, _ = nv.visible_indices(module)
            return [nv.describe_gpu(module, i) for i in indices]
    except MleeError:
        return []
