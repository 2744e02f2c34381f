"""Environment names: the hardware plus the backend and its version, as the 2022 paper named them.

``"A100 x8 - TensorFlow 2.8.0"``, ``"Xeon(R) W-2155 - PyTorch 1.10.2+cu113"``, ``"AMD EPYC 7B13 - PyTorch 2.14.1"``.
The hardware is the short GPU name with `` xN`` for N GPUs when GPUs were used, else the CPU model; records
are grouped by this name, so it must be stable: the same machine and backend always give the same string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Display names of backends; the 2022 ONNX exports keep the paper's distinction (ONNX PT / ONNX TF).
BACKEND_NAMES = {
    "pytorch": "PyTorch",
    "torch": "PyTorch",
    "tensorflow": "TensorFlow",
    "keras": "TensorFlow",
    "onnx": "ONNX Runtime",
    "onnxruntime": "ONNX Runtime",
    "onnx_pytorch": "ONNX PT",
    "onnx_tensorflow": "ONNX TF",
    "sklearn": "scikit-learn",
    "scikit-learn": "scikit-learn",
    "jax": "JAX",
}

#: Names the 2022 paper gave its hardware; other names go through the rules of :func:`short_gpu_name`
#: and :func:`short_cpu_name`.
KNOWN_HARDWARE = {
    "NVIDIA A100-SXM4-40GB": "A100",
    "Quadro RTX 5000": "RTX 5000",
    "Intel(R) Xeon(R) W-2155 CPU @ 3.30GHz": "Xeon(R) W-2155",
}

_GPU_PREFIX = re.compile(r"^(?:NVIDIA\s+|Tesla\s+|Quadro\s+|GeForce\s+|AMD\s+|Radeon\s+)+", re.IGNORECASE)
# Form factor and memory suffixes: "-SXM4-40GB", "-PCIE-16GB", " 80GB HBM3", " PCIe", " NVL".
_GPU_SUFFIX = re.compile(r"(?:[-\s](?:SXM\d?|PCIE|PCIe|NVL|MIG)\b.*|[-\s]\d+\s?GB\b.*)$", re.IGNORECASE)
_CPU_FREQ = re.compile(r"\s+(?:CPU\s+)?@\s*[\d.]+\s*[GM]Hz.*$", re.IGNORECASE)
_CPU_CORES = re.compile(r"\s+\d+-Core\s+Processor.*$", re.IGNORECASE)


def short_gpu_name(name: str) -> str:
    """The GPU name without vendor brand and form factor: ``"NVIDIA A100-SXM4-40GB"`` -> ``"A100"``."""
    name = " ".join(str(name).split())
    if name in KNOWN_HARDWARE:
        return KNOWN_HARDWARE[name]
    short = _GPU_SUFFIX.sub("", _GPU_PREFIX.sub("", name)).strip(" -")
    return short or name or "unknown GPU"


def short_cpu_name(model: str) -> str:
    """The CPU model without brand noise: ``"Intel(R) Xeon(R) W-2155 CPU @ 3.30GHz"`` -> ``"Xeon(R) W-2155"``.

    AMD names keep their vendor (``"AMD EPYC 7B13 64-Core Processor"`` -> ``"AMD EPYC 7B13"``), as the
    design examples do; Intel names drop the leading ``Intel(R)`` as the 2022 paper did.
    """
    model = " ".join(str(model).split())
    if model in KNOWN_HARDWARE:
        return KNOWN_HARDWARE[model]
    short = _CPU_CORES.sub("", _CPU_FREQ.sub("", model))
    short = re.sub(r"^Intel\(R\)\s+", "", short)
    short = re.sub(r"\s+CPU$", "", short)
    return short.strip() or model or "unknown CPU"


def hardware_name(gpu_names: Iterable[str] = (), cpu_model: str | None = None, n_hosts: int = 1) -> str:
    """Hardware part of an environment name.

    Args:
        gpu_names: One entry per GPU used (repeat the name for several GPUs of one kind).
        cpu_model: CPU model string, used when no GPU was used.
        n_hosts: Number of machines of a multi-node job; more than one adds `` x<n> nodes``.
    """
    gpus = [short_gpu_name(g) for g in gpu_names]
    if gpus:
        counts: dict[str, int] = {}
        for g in gpus:
            counts[g] = counts.get(g, 0) + 1
        parts = [f"{g} x{n}" if n > 1 else g for g, n in sorted(counts.items())]
        hw = " + ".join(parts)
    else:
        hw = short_cpu_name(cpu_model) if cpu_model else "unknown CPU"
    if n_hosts > 1:
        hw = f"{hw} ({n_hosts} nodes)"
    return hw


def backend_label(name: str | None, version: str | None) -> str | None:
    """``"TensorFlow 2.8.0"``; None when there is no backend (a plain ``mlee run`` of a command)."""
    if not name:
        return None
    label = BACKEND_NAMES.get(str(name).lower(), str(name))
    return f"{label} {version}" if version else label


def _used_gpu_names(record: Mapping[str, Any], env: Mapping[str, Any]) -> list[str]:
    """Names of the GPUs a record used: its measured GPU sources, else the machine's GPUs on a cuda device."""
    device = str(record.get("device") or "").lower()
    on_cpu = device.startswith("cpu")
    env_gpus = [g for g in (env.get("gpus") or []) if isinstance(g, Mapping)]
    by_uuid = {g.get("uuid"): g.get("name") for g in env_gpus if g.get("uuid")}
    by_index = {g.get("index"): g.get("name") for g in env_gpus}
    names: dict[str, str] = {}
    for src in record.get("sources") or []:
        if not isinstance(src, Mapping) or src.get("domain") != "gpu":
            continue
        detail = src.get("detail") if isinstance(src.get("detail"), Mapping) else {}
        uuid = detail.get("uuid")
        key = f"{detail.get('host', '')}/{uuid or src.get('name')}"
        name = detail.get("name") or by_uuid.get(uuid) or by_index.get(detail.get("index")) or "GPU"
        names[key] = str(name)
    if on_cpu:
        return []
    if names:
        return [names[k] for k in sorted(names)]
    if device.startswith(("cuda", "gpu")):
        return [str(g.get("name") or "GPU") for g in env_gpus]
    return []


def environment_name(
    record: Mapping[str, Any] | None = None,
    *,
    environment_info: Mapping[str, Any] | None = None,
    cpu: str | None = None,
    gpus: Iterable[str] | None = None,
    backend: str | None = None,
    version: str | None = None,
    n_hosts: int | None = None,
) -> str:
    """The environment (group) name of a record, or of explicit hardware and backend facts.

    Either pass a record (results.json content, or a database record carrying ``environment_info``), or the
    facts as keywords; keywords override what the record says.

    Examples:
        >>> environment_name(gpus=["NVIDIA A100-SXM4-40GB"] * 8, backend="tensorflow", version="2.8.0")
        'A100 x8 - TensorFlow 2.8.0'
        >>> environment_name(cpu="Intel(R) Xeon(R) W-2155 CPU @ 3.30GHz", backend="pytorch", version="1.10.2+cu113")
        'Xeon(R) W-2155 - PyTorch 1.10.2+cu113'
    """
    rec: Mapping[str, Any] = record or {}
    env = environment_info if environment_info is not None else (rec.get("environment_info") or {})
    if not isinstance(env, Mapping):
        env = {}
    gpu_names = list(gpus) if gpus is not None else _used_gpu_names(rec, env)
    cpu_model = cpu
    if cpu_model is None:
        cpu_info = env.get("cpu")
        cpu_model = cpu_info.get("model") if isinstance(cpu_info, Mapping) else None
    be = rec.get("backend") if isinstance(rec.get("backend"), Mapping) else {}
    be_name = backend if backend is not None else be.get("name")
    be_version = version if version is not None else be.get("version")
    if n_hosts is None:
        rank = rec.get("rank") if isinstance(rec.get("rank"), Mapping) else {}
        hosts = rank.get("hosts") if isinstance(rank.get("hosts"), list) else None
        n_hosts = len(hosts) if hosts else 1
    hw = hardware_name(gpu_names, cpu_model, n_hosts)
    label = backend_label(be_name, be_version)
    return f"{hw} - {label}" if label else hw
