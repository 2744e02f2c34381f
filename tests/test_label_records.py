"""Database records and rated records for the label tests, and the contract the label reads (design §4).

The builders make in-memory database records (design §3) with just the figures the rating reads;
``rate`` passes them through the real rating API, so the label tests render what `mlee rate` computes.
Other label test modules import these builders.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlee.rating import load_spec, rate_database

CPU_ENV = "AMD EPYC 7B13 - PyTorch 2.14.1"
GPU_ENV = "A100 x8 - TensorFlow 2.8.0"
START = "2026-11-22T07:01:02.123456Z"

#: (parameters, flops, weights_bytes, energy per sample J, time per sample ms, top1, top5) of a few models.
MODELS: dict[str, tuple[float, ...]] = {
    "ResNet101": (44.5e6, 15.6e9, 178e6, 1.00, 20.0, 0.774, 0.936),
    "ResNet50": (25.6e6, 8.2e9, 102e6, 0.55, 11.0, 0.761, 0.929),
    "MobileNetV2": (3.5e6, 0.6e9, 14e6, 0.12, 3.0, 0.718, 0.904),
}


def db_record(model: str, *, env: str = CPU_ENV, task: str = "inference", dataset: str = "imagenet",
              method: str = "counter", start_utc: str = START, ident: str | None = None,
              figures: tuple[float, ...] | None = None, **overrides: Any) -> dict[str, Any]:
    """One completed run as the merged database holds it (only the keys the rating and label read)."""
    params, flops, size_b, energy_j, time_ms, top1, top5 = figures or MODELS[model]
    estimated = method == "estimate"
    if estimated:
        sources = [{"name": "estimate:cpu", "domain": "cpu", "method": "estimate",
                    "detail": {"codecarbon_version": "3.3", "codecarbon_method": "cpu_load", "estimate": True}},
                   {"name": "estimate:dram", "domain": "dram", "method": "estimate",
                    "detail": {"codecarbon_version": "3.3", "codecarbon_method": "ram_power_model"}}]
    else:
        sources = [{"name": "rapl:package-0", "domain": "cpu", "method": method, "detail": {}},
                   {"name": "rapl:dram-0", "domain": "dram", "method": method, "detail": {}}]
    record = {
        "id": ident or "infer-" + hashlib.sha256(f"{model}|{env}|{task}|{dataset}".encode()).hexdigest()[:12],
        "kind": "infer" if task == "inference" else "train", "status": "completed",
        "task": task, "model": model, "dataset": dataset, "environment": env,
        "backend": {"name": "pytorch", "version": "2.14.1"}, "device": "cpu",
        "start_utc": start_utc, "estimated": estimated,
        "energy_method": {"total": method, "cpu": method, "dram": method, "gpu": None},
        "sources": sources,
        "metrics": {"top1": top1, "top5": top5, "loss": None},
        "model_info": {"parameters": params, "flops": flops, "macs": flops / 2, "weights_bytes": size_b},
        "per_sample": {"energy_j": {"total": energy_j, "cpu": energy_j, "dram": None, "gpu": None},
                       "energy_method": {"total": method}, "time_ms": time_ms},
        "training": None,
    }
    record.update(overrides)
    return record


def database(*records: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "kind": "mlee-database", "mlee_version": "0.1.0",
            "records": sorted(records, key=lambda r: r["id"]), "summaries": [], "skipped": []}


def three_models(**kw: Any) -> dict[str, Any]:
    """The reference and two other models in one environment."""
    return database(*(db_record(m, ident=f"infer-{m.lower()}", **kw) for m in MODELS))


def rate(db: dict[str, Any], spec: str = "mlee-2022", **filters: Any) -> list[dict[str, Any]]:
    return rate_database(db, load_spec(spec), **filters)


def rated_one(model: str = "ResNet50", spec: str = "mlee-2022", **kw: Any) -> dict[str, Any]:
    """The rated record of ``model`` in :func:`three_models`."""
    (found,) = rate(three_models(**kw), spec, model=model)
    return found


def test_rated_records_carry_what_the_label_reads() -> None:
    rated = rated_one("ResNet50")
    for key in ("id", "model", "task", "dataset", "environment", "spec", "reference", "compound", "metrics",
                "estimated", "record"):
        assert key in rated, key
    assert set(rated["spec"]) >= {"name", "version", "sha256"}
    assert rated["compound"] in "ABCDE" and len(rated["compound"]) == 1
    assert rated["reference"] == "ResNet101"
    energy = rated["metrics"]["energy_per_sample"]
    assert set(energy) >= {"label", "value", "unit", "index", "rating", "weight", "method"}
    assert energy["unit"] == "Ws" and energy["method"] == "counter"
    # ResNet50 uses 0.55 J per sample against the reference's 1.00 J: index 1/0.55 (lower is better).
    assert abs(energy["index"] - 1.0 / 0.55) < 1e-9
    assert rated["record"]["start_utc"] == START


def test_estimated_runs_are_rated_as_estimates() -> None:
    rated = rated_one("ResNet50", method="estimate")
    assert rated["estimated"] is True
    assert rated["metrics"]["energy_per_sample"]["method"] == "estimate"
