"""Tabular sweep records in (BUTTER-E style, one row per training run), so the energy model can be fit on
published sweeps too (``mlee sweep --import records.csv``).

Columns (a header row is required; order is free; unknown columns are ignored):

- ``size`` (target parameter count), ``shape`` (``rectangle``, ``trapezoid``, ``exponential``,
  ``wide_first``, ``residual``), ``depth`` (hidden layers), ``dataset`` (a name), ``epochs``;
- ``energy_j`` (energy of the whole run, joules), ``time_s`` (its duration, seconds), ``device``;
- ``train_samples`` (training samples per epoch), ``n_in`` and ``n_out`` (the data set's input features
  and classes): required, since energy per sample, widths and FLOPs depend on them;
- optional: ``batch_size`` (default 32), ``energy_method`` (default ``counter``; or ``power_integration``,
  ``estimate``), ``parameters`` and ``flops_per_sample`` (when given they override what the widths give).

Each row becomes a network entry of the same form as a measured sweep's (see :mod:`mlee.predict.sweep`),
with the working set placed in the cache levels given for the device that measured it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mlee.errors import UsageError
from mlee.predict.cache import CacheSizes
from mlee.predict.sweep import SHAPES, Network, widths_for

REQUIRED = ("size", "shape", "depth", "dataset", "epochs", "energy_j", "time_s", "device", "train_samples", "n_in",
            "n_out")
METHODS = ("counter", "power_integration", "estimate")


def parse_caches(text: str) -> CacheSizes:
    """``"l1d=32K,l2=1M,l3=32M"`` -> cache sizes (levels not named are unknown).

    Raises:
        UsageError: an unknown level or a size that is not a size.
    """
    from mlee.measure.machine import parse_size

    sizes: dict[str, int | None] = {"l1d": None, "l2": None, "l3": None}
    for part in filter(None, (p.strip() for p in text.split(","))):
        level, _, value = part.partition("=")
        level = level.strip().lower()
        size = parse_size(value) if value.strip() else None
        if level not in sizes or not size:
            raise UsageError(f"cache size {part!r} is not level=size", "use e.g. --caches l1d=32K,l2=1M,l3=32M")
        sizes[level] = int(size)
    if not any(sizes.values()):
        raise UsageError("no cache sizes given", "use e.g. --caches l1d=32K,l2=1M,l3=32M")
    return CacheSizes(sizes["l1d"], sizes["l2"], sizes["l3"], "given")


def _entry(row: dict[str, str], cache: CacheSizes) -> dict[str, Any]:
    shape = row["shape"].strip()
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r} is not one of {', '.join(SHAPES)}")
    size, depth, epochs = int(float(row["size"])), int(float(row["depth"])), int(float(row["epochs"]))
    n_in, n_out, samples = int(float(row["n_in"])), int(float(row["n_out"])), int(float(row["train_samples"]))
    batch = int(float(row.get("batch_size") or 32))
    energy, time_s = float(row["energy_j"]), float(row["time_s"])
    if min(size, depth, epochs, n_in, n_out, samples, batch) < 1 or not (energy > 0 and time_s > 0):
        raise ValueError("sizes, counts, energy and time must be positive")
    method = (row.get("energy_method") or "counter").strip()
    if method not in METHODS:
        raise ValueError(f"energy_method {method!r} is not one of {', '.join(METHODS)}")
    widths = widths_for(shape, size, depth, n_in, n_out)
    if widths is None:
        raise ValueError(f"{size} parameters are too few for {depth} hidden layers on {n_in} inputs")
    net = Network(shape, size, depth, tuple(widths), n_in, n_out, batch)
    params = int(float(row["parameters"])) if (row.get("parameters") or "").strip() else net.parameters
    flops = float(row["flops_per_sample"]) if (row.get("flops_per_sample") or "").strip() else net.flops_per_sample
    work = net.working_set_bytes + 4 * 4 * (params - net.parameters)  # 4 float32 copies per extra parameter
    n_samples = epochs * samples
    return {"name": f"{row['dataset'].strip()}-{net.name}", "shape": shape, "size": size, "depth": depth,
            "widths": list(widths), "parameters": params, "flops_per_sample": flops, "working_set_bytes": work,
            "cache_level": cache.level_of(work), "epochs": epochs, "n_samples": n_samples, "time_s": time_s,
            "energy_j": energy, "energy_method": method, "dataset": row["dataset"].strip(),
            "device": row["device"].strip(),
            "per_sample": {"energy_j": energy / n_samples, "time_ms": time_s * 1e3 / n_samples}}


def read_sweep_records(path: str | Path, cache: CacheSizes, device: str | None = None) -> list[dict[str, Any]]:
    """Network entries from a sweep-records CSV (see the module docstring), of one device.

    Raises:
        UsageError: missing file or columns, a bad row (named by its line), or several devices and none chosen.
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"{p}: no column {', '.join(missing)}",
                                 "a sweep-records CSV needs " + ", ".join(REQUIRED) + " (docs/prediction.md)")
            rows = list(enumerate(reader, start=2))
    except FileNotFoundError:
        raise UsageError(f"{p} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {p}: {exc}") from None
    devices = sorted({(r.get("device") or "").strip() for _, r in rows})
    if device is None and len(devices) > 1:
        raise UsageError(f"{p} holds runs of {len(devices)} devices: {'; '.join(devices)}",
                         "choose one with --device (an energy model holds for one machine)")
    entries = []
    for line, row in rows:
        if device is not None and (row.get("device") or "").strip() != device:
            continue
        try:
            entries.append(_entry(row, cache))
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{p} line {line}: {exc}", "fix the row or leave it out") from None
    if not entries:
        raise UsageError(f"{p} holds no runs" + (f" of device {device!r}" if device else ""),
                         f"devices in the file: {'; '.join(devices) or 'none'}")
    return entries
