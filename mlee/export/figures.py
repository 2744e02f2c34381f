"""A database record's figures as flat, typed, unit-suffixed columns: what tables, MLflow and model cards share.

One definition of every column (name with its unit, type, where in the record it comes from), so a Parquet
column, a CSV header, an MLflow metric and a model card line say the same thing under the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlee.fsutil import finite

COMPONENTS = ("total", "cpu", "dram", "gpu")
#: Column types, as names shared by the Parquet schema and the CSV reader's hints.
TYPES = ("string", "float64", "int64", "bool")


@dataclass(frozen=True)
class Column:
    """One column: ``name`` carries the unit (``_j``, ``_ms``, ``_g``...); ``kind`` is one of :data:`TYPES`."""

    name: str
    kind: str
    get: Callable[[dict[str, Any]], Any]
    metric: bool = False  # an MLflow metric (a number measured), not a parameter or a tag


def _at(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(record: dict[str, Any]) -> Any:
        value: Any = record
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value
    return get


def _backend(field: str) -> Callable[[dict[str, Any]], Any]:
    def get(record: dict[str, Any]) -> Any:
        backend = record.get("backend")
        if isinstance(backend, dict):
            return backend.get(field)
        return backend if field == "name" else None
    return get


def _columns() -> tuple[Column, ...]:
    cols = [Column(name, "string", _at(name)) for name in (
        "id", "kind", "name", "status", "error", "origin", "model", "task", "dataset", "environment")]
    cols += [Column("backend", "string", _backend("name")), Column("backend_version", "string", _backend("version")),
             Column("device", "string", _at("device")), Column("start_utc", "string", _at("start_utc")),
             Column("end_utc", "string", _at("end_utc")),
             Column("host", "string", _at("environment_info", "hostname")),
             Column("job_id", "string", _at("rank", "job_id")),
             Column("n_samples", "int64", _at("n_samples")), Column("batch_size", "int64", _at("batch_size")),
             Column("duration_s", "float64", _at("duration_s"), metric=True),
             Column("estimated", "bool", _at("estimated"))]
    for c in COMPONENTS:
        cols.append(Column(f"energy_{c}_j", "float64", _at("energy_j", c), metric=True))
        cols.append(Column(f"energy_method_{c}", "string", _at("energy_method", c)))
    for c in COMPONENTS:
        cols.append(Column(f"per_sample_energy_{c}_j", "float64", _at("per_sample", "energy_j", c), metric=True))
        cols.append(Column(f"per_sample_energy_method_{c}", "string", _at("per_sample", "energy_method", c)))
    cols += [Column("per_sample_time_ms", "float64", _at("per_sample", "time_ms"), metric=True),
             Column("throughput_per_s", "float64", _at("per_sample", "throughput_per_s"), metric=True),
             Column("top1_fraction", "float64", _at("metrics", "top1"), metric=True),
             Column("top5_fraction", "float64", _at("metrics", "top5"), metric=True),
             Column("loss", "float64", _at("metrics", "loss"), metric=True),
             Column("parameters", "int64", _at("model_info", "parameters")),
             Column("flops_per_sample", "float64", _at("model_info", "flops")),
             Column("weights_bytes", "int64", _at("model_info", "weights_bytes")),
             Column("training_epochs", "int64", _at("training", "epochs")),
             Column("training_energy_per_epoch_j", "float64", _at("training", "per_epoch", "energy_j"), metric=True),
             Column("training_time_per_epoch_s", "float64", _at("training", "per_epoch", "time_s"), metric=True),
             Column("training_energy_j", "float64", _at("training", "total", "energy_j"), metric=True),
             Column("emissions_g", "float64", _at("carbon", "emissions_g"), metric=True),
             Column("carbon_intensity_g_per_kwh", "float64", _at("carbon", "intensity_g_per_kwh")),
             Column("carbon_country", "string", _at("carbon", "country")),
             Column("pue", "float64", _at("carbon", "pue"))]
    return tuple(cols)


COLUMNS: tuple[Column, ...] = _columns()


def typed(value: Any, kind: str) -> Any:
    """``value`` as a value of column type ``kind``, or None where the record has none or a wrong type.

    A missing figure stays None (a null in the table), never 0. A non-finite float is None too: neither
    Parquet readers nor CSV agree on NaN, and mlee never records one.
    """
    if value is None:
        return None
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if kind == "int64":
        return int(value) if float(value).is_integer() else None
    return float(value) if finite(value) else None


def flat_record(record: dict[str, Any]) -> dict[str, Any]:
    """Every column of :data:`COLUMNS` of one database record (or ``results.json``), typed, in column order."""
    return {col.name: typed(col.get(record), col.kind) for col in COLUMNS}
