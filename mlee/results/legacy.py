"""Import of the 2022 mlee logs (``infer_*.json`` / ``train_*.json``) as records of the current schema.

Facts about the 2022 scripts this conversion relies on (from their published code):
- NVML energy ``total_power_draw`` is ``sum(interval x power_usage)`` over 0.2-1 s samples: power integration.
- RAPL energy is ``sum(interval x average power)`` where the average power is a counter difference over the
  interval, so the sum is the counter difference: a counter figure. It covers ``package-0`` only; DRAM was
  logged as power statistics but never summed, so DRAM energy stays null here.
- ``model.flops`` is a multiply-accumulate count: TensorFlow halved the profiler's float operations, PyTorch
  used ptflops (MACs). For the ONNX backends it is ``onnx_opcounter.calculate_params``, a parameter count, so
  MACs and FLOPs are null there and the figure is kept as ``onnx_parameters``.
- Per-sample figures divide by the 50,000 ImageNet validation images, as the paper did.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

from mlee.errors import ResultFormatError
from mlee.results.environment import environment_name
from mlee.results.jsonio import a_json_type, read_json_object

ORIGIN = "mlee-2022"
#: ImageNet validation images every 2022 inference run evaluated.
IMAGENET_VAL_IMAGES = 50_000
#: Largest legacy log accepted (the 232 published files are at most ~60 kB). Units: bytes.
MAX_LEGACY_BYTES = 16 * 1024 * 1024
#: Package whose version names the backend, as the 2022 ``get_environment_key`` chose it.
BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow",),
    "pytorch": ("torch",),
    "onnx_pytorch": ("onnxruntime", "onnxruntime-gpu"),
    "onnx_tensorflow": ("onnxruntime", "onnxruntime-gpu"),
}
#: Training epochs of each model's reference recipe, from the 2022 code's MODEL_INFO table (None: not stated).
NOMINAL_EPOCHS = {
    "ResNet50": 90, "ResNet101": 90, "ResNet152": 90, "VGG16": 90, "VGG19": 90,
    "EfficientNetB0": None, "EfficientNetB1": None, "EfficientNetB2": None, "EfficientNetB3": None,
    "EfficientNetB4": None, "EfficientNetB5": None, "EfficientNetB6": None, "EfficientNetB7": None,
    "RegNetX400MF": 100, "RegNetX32GF": 100, "RegNetX8GF": 100, "ResNext50": 100, "ResNext101": 100,
    "DenseNet121": 90, "DenseNet169": 90, "DenseNet201": 90, "Xception": None, "InceptionResNetV2": 200,
    "InceptionV3": 100, "NASNetMobile": 100, "MobileNetV2": 300, "MobileNetV3Small": 600,
    "MobileNetV3Large": 600, "QuickNetSmall": 600, "QuickNet": 600, "QuickNetLarge": 600,
}
_STAT_KEYS = ("min", "max", "mean", "std")


class _Reader:
    """Typed access to one parsed log that names the offending key path in every error."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, where: str, problem: str) -> ResultFormatError:
        return ResultFormatError(f"{self.name}: {where} {problem}", "is this an unmodified 2022 mlee log?")

    def obj(self, parent: dict, key: str, where: str, optional: bool = False) -> dict | None:
        value = parent.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{where}{key}", "is missing" if value is None else f"is {a_json_type(value)}, not an object")
        return value

    def num(self, parent: dict, key: str, where: str, optional: bool = False) -> float | None:
        value = parent.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{where}{key}", "is missing" if value is None else f"is {a_json_type(value)}, not a number")
        if not math.isfinite(value):
            raise self.fail(f"{where}{key}", "is not finite")
        return value

    def text(self, parent: dict, key: str, where: str) -> str:
        value = parent.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}{key}", "is missing" if value is None else "is not a non-empty string")
        return value


def _iso(unix_s: float) -> str:
    return _dt.datetime.fromtimestamp(unix_s, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _requirements(reqs: Any) -> tuple[dict[str, str], str | None]:
    packages: dict[str, str] = {}
    python = None
    for line in reqs if isinstance(reqs, list) else []:
        if not isinstance(line, str):
            continue
        if line.startswith("#") and python is None:
            head = line.lstrip("# ").split(" ", 1)[0]
            if head[:1].isdigit():
                python = head
        elif "==" in line:
            name, _, version = line.partition("==")
            packages[name.strip()] = version.strip()
    return packages, python


def _backend_version(backend: str, packages: dict[str, str]) -> str | None:
    norm = {k.replace("-", "_").lower(): v for k, v in packages.items()}
    for pkg in BACKEND_PACKAGES.get(backend, (backend,)):
        if pkg.replace("-", "_") in norm:
            return norm[pkg.replace("-", "_")]
    return None


def _environment_info(r: _Reader, log: dict, packages: dict[str, str], python: str | None) -> dict:
    plat = r.obj(log, "execution_platform", "")
    gpus_raw = plat.get("GPU") or {}
    if not isinstance(gpus_raw, dict):
        raise r.fail("execution_platform.GPU", f"is {a_json_type(gpus_raw)}, not an object")
    gpus = []
    for idx in sorted(gpus_raw, key=lambda k: int(k) if str(k).isdigit() else 1 << 30):
        g = r.obj(gpus_raw, idx, "execution_platform.GPU.")
        mem_mib = g.get("Memory")
        gpus.append({
            "index": int(idx) if str(idx).isdigit() else idx,
            "name": r.text(g, "Name", f"execution_platform.GPU.{idx}."),
            "uuid": g.get("UUID"),
            "driver": None,
            "memory_bytes": int(mem_mib * 1024 * 1024) if isinstance(mem_mib, (int, float)) else None,
        })
    return {
        "hostname": plat.get("Node Name"),
        "os": plat.get("System"),
        "kernel": plat.get("Release"),
        "python": python,
        "cpu": {
            "model": r.text(plat, "Processor", "execution_platform."),
            "vendor": None,
            "cores_physical": plat.get("Physical cores"),
            "cores_logical": plat.get("Total cores"),
            "cache_bytes": None,
        },
        "memory_bytes": plat.get("Total"),
        "gpus": gpus,
        "packages": dict(sorted(packages.items())),
        "mlee_version": None,
    }


def _monitor_traces(r: _Reader, monitor: dict | None, prefix: str, traces: dict) -> None:
    """Per-device statistics the 2022 monitors kept, as ``traces`` entries (``n`` = samples taken)."""
    if monitor is None:
        return
    for dev, stats in monitor.items():
        if dev == "total" or not isinstance(stats, dict):
            continue
        n = stats.get("nr_measurements")
        for field, agg in stats.items():
            if isinstance(agg, dict) and all(isinstance(agg.get(k), (int, float)) for k in _STAT_KEYS):
                entry = {k: agg[k] for k in _STAT_KEYS}
                entry["n"] = n if isinstance(n, int) else None
                traces[f"{prefix}_{dev}.{field}"] = entry


def _energy(r: _Reader, block: dict, where: str, gpu_info: list[dict], cfg: dict) -> tuple[dict, list, list]:
    """Energy per component, the per-device sources and the skipped sources of one monitored phase."""
    nvml = r.obj(block, "monitoring_pynvml", where, optional=True)
    rapl = r.obj(block, "monitoring_pyrapl", where, optional=True)
    sources: list[dict] = []
    skipped: list[dict] = []
    gpu_j = cpu_j = None
    if nvml is not None:
        gpu_j = r.num(r.obj(nvml, "total", f"{where}monitoring_pynvml."), "total_power_draw",
                      f"{where}monitoring_pynvml.total.")
        if gpu_j < 0:
            raise r.fail(f"{where}monitoring_pynvml.total.total_power_draw", "is negative")
        by_index = {str(g["index"]): g for g in gpu_info}
        for dev in sorted((k for k in nvml if k != "total"), key=lambda k: int(k) if k.isdigit() else 1 << 30):
            stats = r.obj(nvml, dev, f"{where}monitoring_pynvml.")
            g = by_index.get(dev, {})
            sources.append({
                "name": f"nvml:{dev}", "domain": "gpu", "method": "power_integration",
                "energy_j": r.num(stats, "total_power_draw", f"{where}monitoring_pynvml.{dev}."),
                "n_samples": stats.get("nr_measurements"), "valid": True, "invalid_intervals": [],
                "detail": {"name": g.get("name"), "uuid": g.get("uuid"),
                           "interval_s": cfg.get("gpu_monitor_interval"),
                           "integration": "2022 scripts: sum of sample interval x power_usage"},
            })
    else:
        skipped.append({"name": "nvml", "reason": "the 2022 log holds no NVML monitoring (no GPU used)", "fix": ""})
    if rapl is not None:
        cpu_j = r.num(r.obj(rapl, "total", f"{where}monitoring_pyrapl."), "total_power_draw",
                      f"{where}monitoring_pyrapl.total.")
        if cpu_j < 0:
            raise r.fail(f"{where}monitoring_pyrapl.total.total_power_draw", "is negative")
        sources.append({
            "name": "rapl:package-0", "domain": "cpu", "method": "counter", "energy_j": cpu_j,
            "n_samples": (rapl.get("total") or {}).get("nr_measurements"), "valid": True, "invalid_intervals": [],
            "detail": {"interval_s": cfg.get("cpu_monitor_interval"),
                       "note": "2022 total covers package-0 only; DRAM power was logged but not summed"},
        })
    else:
        skipped.append({"name": "rapl", "reason": "the 2022 log holds no RAPL monitoring (not readable on that "
                        "machine)", "fix": ""})
    energy = {"cpu": cpu_j, "dram": None, "gpu": gpu_j}
    methods = {"cpu": "counter" if cpu_j is not None else None, "dram": None,
               "gpu": "power_integration" if gpu_j is not None else None}
    parts = [v for v in (cpu_j, gpu_j) if v is not None]
    if not parts:
        raise r.fail(where or "log", "holds neither NVML nor RAPL energy")
    energy["total"] = sum(parts)
    methods["total"] = "power_integration" if gpu_j is not None else "counter"
    return {"energy_j": energy, "energy_method": methods}, sources, skipped


def _model_info(r: _Reader, model: dict, backend: str, where: str) -> dict:
    params = r.num(model, "params", where)
    size = r.num(model, "fsize", where)
    count = r.num(model, "flops", where)
    info: dict[str, Any] = {"parameters": int(params), "weights_bytes": int(size)}
    if backend.startswith("onnx"):
        info.update(macs=None, flops=None, onnx_parameters=int(count))
    else:
        info.update(macs=int(count), flops=2 * int(count))
    return info


def _epoch_times(stamps_s: list[float], start: float, end: float, epochs: int) -> list[float] | None:
    """Duration of each epoch from the 2022 history timestamps, or None when they cannot be trusted.

    The PyTorch scripts stamped each epoch's start, the TensorFlow ones its end, and some TensorFlow stamps
    are off by whole hours (local time, daylight saving); epoch durations are differences of stamps, so only
    the first (TensorFlow) or last (PyTorch) epoch needs the run's start or end, with the hour offset removed.
    Units: seconds.
    """
    if len(stamps_s) != epochs or epochs == 0 or end <= start:
        return None
    span = end - start
    if abs(stamps_s[0] - start) < 0.01 * span:  # epoch starts
        bounds = stamps_s + [end]
    else:  # epoch ends, possibly shifted by a time-zone offset (a multiple of 15 minutes)
        offset = round((stamps_s[-1] - end) / 900.0) * 900.0
        bounds = [start] + [t - offset for t in stamps_s]
    times = [b - a for a, b in zip(bounds, bounds[1:])]
    if any(t <= 0 for t in times) or abs(sum(times) - span) > 0.02 * span:
        return None
    return times


def _training(r: _Reader, log: dict, results: dict, total_j: float, duration_s: float, model: str) -> dict:
    hist = r.obj(results, "history", "results.")
    loss = hist.get("loss")
    if not isinstance(loss, list) or not loss:
        raise r.fail("results.history.loss", "is not a non-empty list")
    epochs = len(loss)
    start = r.num(results, "start", "results.")
    stamps = hist.get("timestamp") if isinstance(hist.get("timestamp"), list) else []

    def col(key: str, i: int) -> float | None:
        values = hist.get(key)
        v = values[i] if isinstance(values, list) and i < len(values) else None
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    times = _epoch_times([t / 1000.0 for t in stamps if isinstance(t, (int, float))], start,
                         r.num(results, "end", "results."), epochs)
    history = []
    for i in range(epochs):
        history.append({
            "epoch": i + 1, "loss": col("loss", i), "top1": col("accuracy", i), "top5": col("top_5_accuracy", i),
            "val_loss": col("val_loss", i), "val_top1": col("val_accuracy", i),
            "val_top5": col("val_top_5_accuracy", i), "lr": col("lr", i),
            # The 2022 monitors logged one total per run, not per epoch: no per-epoch energy was measured.
            "energy_j": None,
            "time_s": times[i] if times is not None else None,
        })
    nonfinite = [i + 1 for i, v in enumerate(loss) if not (isinstance(v, (int, float)) and math.isfinite(v))]
    return {
        "epochs": epochs, "nominal_epochs": NOMINAL_EPOCHS.get(model),
        # Epochs whose logged training loss was NaN/infinite (the run diverged); their loss is null above.
        "nonfinite_loss_epochs": nonfinite,
        "history": history,
        "per_epoch": {"energy_j": total_j / epochs, "time_s": duration_s / epochs},
        "total": {"energy_j": total_j, "time_s": duration_s},
    }


def convert_legacy(log: dict, name: str = "log", origin_path: str | None = None) -> dict:
    """Convert one parsed 2022 log into a database record (see docs/design.md §2-3).

    Args:
        log: The parsed JSON object of an ``infer_*.json`` or ``train_*.json`` file.
        name: File name used in error messages and as the fallback id.
        origin_path: Where the log came from, recorded as ``origin_path``.

    Raises:
        ResultFormatError: the log lacks what the conversion needs or holds wrong types.
    """
    r = _Reader(name)
    cfg = r.obj(log, "config", "")
    backend = r.text(cfg, "backend", "config.")
    model = r.text(cfg, "model", "config.")
    ident = log.get("directory_name") if isinstance(log.get("directory_name"), str) else Path(name).stem
    training = "validation" not in log
    packages, python = _requirements(log.get("requirements"))
    env_info = _environment_info(r, log, packages, python)
    phase = log if training else r.obj(log, "validation", "")
    where = "" if training else "validation."
    results = r.obj(phase, "results", where)
    duration_s = r.num(phase, "duration", where)
    if duration_s <= 0:
        raise r.fail(f"{where}duration", "is not positive")
    energy, sources, skipped = _energy(r, phase, where, env_info["gpus"], cfg)
    traces: dict[str, dict] = {}
    for mon in ("pynvml", "pyrapl", "psutil"):
        _monitor_traces(r, phase.get(f"monitoring_{mon}") if isinstance(phase.get(f"monitoring_{mon}"), dict)
                        else None, mon, traces)
    start = r.num(results, "start", f"{where}results.")
    end = r.num(results, "end", f"{where}results.")
    version = _backend_version(backend, packages)
    record: dict[str, Any] = {
        "schema_version": 1, "id": ident, "kind": "train" if training else "infer", "name": model,
        "status": "completed", "error": None, "start_utc": _iso(start), "end_utc": _iso(end),
        "duration_s": duration_s, **energy, "estimated": False, "sources": sources, "skipped_sources": skipped,
        "baseline": None, "windows": [], "rank": None, "exit_code": 0, "carbon": None,
        "task": "training" if training else "inference", "model": model,
        "backend": {"name": backend, "version": version},
        "device": "cuda" if env_info["gpus"] else "cpu", "dataset": "imagenet",
        "batch_size": cfg.get("batch_size"),
        "model_info": _model_info(r, r.obj(results, "model", f"{where}results."), backend, f"{where}results.model."),
        "repeats": None, "origin": ORIGIN, "origin_path": origin_path or name,
        "config": cfg, "environment_info": env_info, "traces": traces,
    }
    total_j = energy["energy_j"]["total"]
    if training:
        record["training"] = _training(r, log, results, total_j, duration_s, model)
        last = record["training"]["history"][-1]
        record["metrics"] = {"top1": last["val_top1"], "top5": last["val_top5"], "loss": last["val_loss"]}
        record["n_samples"] = None
        record["per_sample"] = None
    else:
        metrics = r.obj(results, "metrics", f"{where}results.")
        record["metrics"] = {"top1": r.num(metrics, "accuracy", f"{where}results.metrics.", optional=True),
                             "top5": r.num(metrics, "top_5_accuracy", f"{where}results.metrics.", optional=True),
                             "loss": r.num(metrics, "loss", f"{where}results.metrics.", optional=True)}
        n = IMAGENET_VAL_IMAGES
        record["n_samples"] = n
        record["training"] = None
        record["per_sample"] = {
            "energy_j": {k: (v / n if v is not None else None) for k, v in energy["energy_j"].items()},
            "energy_method": dict(energy["energy_method"]),
            "time_ms": duration_s / n * 1000.0,
            "throughput_per_s": n / duration_s,
        }
    record["environment"] = environment_name(record)
    return record


def read_legacy_file(path: str | Path, origin_path: str | None = None) -> dict:
    """Read one 2022 log file and convert it into a database record.

    Raises:
        ResultFormatError: unreadable, truncated, not UTF-8, oversized or not a 2022 log.
    """
    path = Path(path)
    # allow_nan: two published trainings diverged and logged NaN losses; every figure used is checked finite.
    log = read_json_object(path, MAX_LEGACY_BYTES, allow_nan=True)
    return convert_legacy(log, path.name, origin_path)


def is_legacy_log(path: Path) -> bool:
    """Whether a file name looks like a merged 2022 log (``infer_*.json`` / ``train_*.json``)."""
    return path.suffix == ".json" and path.name.startswith(("infer_", "train_"))
