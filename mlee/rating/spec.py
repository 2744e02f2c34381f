"""Rating specs: versioned data files (JSON or TOML) with per-task metrics, a reference model and a compound mode.

A spec is identified by the sha256 of its canonical form (:meth:`Spec.to_dict` as compact, key-sorted JSON), so
the same spec written as JSON or TOML, with keys in any order or weights written as ``1`` or ``1.0``, has one hash,
and every change that can change a rating changes it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import UsageError
from mlee.rating.core import COMPOUND_MODES
from mlee.rating.specfile import read_spec_file
from mlee.rating.taskmatch import Conditions, parse_match, task_router

PRESETS = ("mlee", "mlee-2022", "relative", "ai-energy-score")
PRESET_DIR = Path(__file__).with_name("presets")
DIRECTIONS = ("higher", "lower")
#: ``range``: the index is where a figure lies between the group's worst (0) and best (1) figure (issue 19).
INDEX_BASES = ("reference", "best", "range")
#: How ratings are shown: letters A-E, or 1-5 stars (5 = A) as the AI Energy Score shows them.
DISPLAYS = ("letters", "stars")

_TOP_KEYS = {"name", "version", "description", "compound", "index_base", "reference", "tasks", "calibration",
             "allow_partial", "zero_division_index", "display"}
_TASK_KEYS = {"reference", "metrics", "match"}
_METRIC_KEYS = {"key", "label", "unit", "direction", "weight", "boundaries", "quantiles", "value", "scale", "times",
                "method", "from_task", "fallback", "per", "divisor"}


@dataclass(frozen=True)
class MetricSpec:
    """One rated metric of a task.

    Attributes:
        key: Stable identifier (``energy_per_sample``), shared across presets so labels find their figures.
        label: Human name ("Energy per sample").
        unit: Unit of ``value`` after scaling ("Ws", "ms", "M", "%").
        direction: ``higher`` or ``lower`` (is better).
        weight: Non-negative weight in the compound rating (0 = shown, not counted).
        boundaries: Four index boundaries A/B, B/C, C/D, D/E, strictly descending; None when ``quantiles`` is set.
        quantiles: Four quantiles, strictly descending in (0, 1): boundaries from the database's own index
            distribution at rating time; None when ``boundaries`` is set.
        value: Dotted path of the figure in a database record (``per_sample.energy_j.total``).
        scale: Factor applied to the figure (``1e-6`` for parameters in millions).
        times: Dotted path of a second figure the value is multiplied by (``training.nominal_epochs``), or None.
        fallback, per: Dotted paths of the figure read where ``value`` is missing, and of one it is divided by.
        divisor: A number the figure is divided by (``3600000``: Ws to kWh as the 2022 code divided), or None.
            The figure is ``((value / per) * scale / divisor) * times``, each step only where it is set.
        method: Dotted path of the figure's measurement method (``per_sample.energy_method.total``), or None.
        from_task: Take the figure from the same model's record of this task in the same dataset and environment
            (the 2022 paper rated training with the inference run's accuracy), or None.

    Units: ``weight``, ``boundaries``, ``quantiles`` and ``scale`` dimensionless.
    """

    key: str
    label: str
    unit: str
    direction: str
    weight: float
    boundaries: tuple[float, ...] | None
    quantiles: tuple[float, ...] | None
    value: str
    scale: float = 1.0
    times: str | None = None
    method: str | None = None
    from_task: str | None = None
    fallback: str | None = None
    per: str | None = None
    divisor: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    def to_dict(self) -> dict[str, Any]:
        """Canonical form (every field, floats as floats, tuples as lists)."""
        return {
            "key": self.key, "label": self.label, "unit": self.unit, "direction": self.direction,
            "weight": self.weight, "value": self.value, "scale": self.scale, "times": self.times,
            "method": self.method, "from_task": self.from_task,
            **{k: v for k, v in (("fallback", self.fallback), ("per", self.per), ("divisor", self.divisor))
               if v is not None},
            "boundaries": list(self.boundaries) if self.boundaries is not None else None,
            "quantiles": list(self.quantiles) if self.quantiles is not None else None,
        }


@dataclass(frozen=True)
class TaskSpec:
    """The metrics of one task (``inference``, ``training``) and its reference model (None: best of each group).

    ``match``: the record paths and texts that select the task's records (:mod:`mlee.rating.taskmatch`); None:
    the records whose ``task`` is the task's name.
    """

    name: str
    reference: str | None
    metrics: tuple[MetricSpec, ...]
    match: Conditions | None = None

    def metric(self, key: str) -> MetricSpec:
        for metric in self.metrics:
            if metric.key == key:
                return metric
        raise UsageError(f"task {self.name} has no metric {key!r}",
                         f"metrics: {', '.join(m.key for m in self.metrics)}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"reference": self.reference, "metrics": [m.to_dict() for m in self.metrics]}
        if self.match is not None:  # only when set, so that the hashes of existing specs stay the same
            data["match"] = dict(self.match)
        return data


@dataclass(frozen=True)
class Spec:
    """A validated rating spec.

    Attributes:
        name: Spec name (``mlee-2022``).
        version: Positive integer version of the named spec.
        description: Free text (part of the hash: a spec is what its file says).
        compound: Compound mode, one of :data:`mlee.rating.core.COMPOUND_MODES`.
        index_base: ``reference`` (index against the task's reference model) or ``best`` (against the best model of
            each group, per metric).
        tasks: Task specs in file order.
        calibration: Provenance written by :func:`mlee.rating.calibrate`, or None.
        zero_division_index: Index of a division by zero: None (default, "n/a") or 0.0 (as the 2022 code gave).
        source: Where it was loaded from (``preset:mlee`` or a path); not part of the hash.
        allow_partial: Rate runs whose energy covers only part of the run (``partial`` in results.json);
            false by default, and then such runs are left out of the rating.
        display: ``letters`` (A-E) or ``stars`` (rated records then carry ``stars``: 5 for A ... 1 for E).
    """

    name: str
    version: int
    description: str
    compound: str
    index_base: str
    tasks: tuple[TaskSpec, ...]
    calibration: dict[str, Any] | None = None
    zero_division_index: float | None = None
    source: str = ""
    allow_partial: bool = False
    display: str = "letters"

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @functools.cached_property
    def task_of(self) -> Any:
        """A function from a database record to the name of the task that rates it, or None."""
        return task_router([(t.name, t.match) for t in self.tasks])

    def task(self, name: str) -> TaskSpec:
        """The spec of task ``name``; UsageError listing the spec's tasks when it has none."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise UsageError(f"spec {self.name} has no task {name!r}", f"its tasks: {', '.join(self.task_names)}")

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: what :attr:`sha256` is computed over and what ``load_spec`` reads back."""
        data: dict[str, Any] = {
            "name": self.name, "version": self.version, "description": self.description,
            "compound": self.compound, "index_base": self.index_base,
            "tasks": {t.name: t.to_dict() for t in self.tasks},
        }
        if self.calibration is not None:
            data["calibration"] = copy.deepcopy(self.calibration)  # the spec stays frozen whatever callers do
        if self.allow_partial:  # only when set, so that the hashes of existing specs stay the same
            data["allow_partial"] = True
        if self.zero_division_index is not None:
            data["zero_division_index"] = self.zero_division_index
        if self.display != "letters":
            data["display"] = self.display
        return data

    @functools.cached_property
    def sha256(self) -> str:
        return spec_hash(self.to_dict())

    def ident(self) -> dict[str, Any]:
        """``{"name", "version", "sha256"}``: recorded with every rating."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def spec_hash(canonical: dict[str, Any]) -> str:
    """sha256 hex digest of compact, key-sorted UTF-8 JSON of ``canonical`` (a :meth:`Spec.to_dict`)."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_spec(name_or_path: str | Path | Spec | dict[str, Any] | None = None) -> Spec:
    """Load a preset by name (:data:`PRESETS`; default ``mlee``), a JSON/TOML file, or a dict.

    Raises:
        UsageError: an unknown preset name, a missing file, or a spec whose content is invalid (the message names
            the field, e.g. ``tasks.inference.metrics.top1.boundaries``).
        UsageError: a file that is not valid JSON/TOML (every spec problem is a usage error).
    """
    if isinstance(name_or_path, Spec):
        return name_or_path
    if isinstance(name_or_path, dict):
        return spec_from_dict(name_or_path, source="<dict>")
    text = str(name_or_path) if name_or_path is not None else "mlee"
    if text in PRESETS:
        return spec_from_dict(read_spec_file(PRESET_DIR / f"{text}.json"), source=f"preset:{text}")
    path = Path(text)
    if not path.is_file():
        hint = f"presets: {', '.join(PRESETS)}; or the path of a .json or .toml spec file"
        raise UsageError(f"no rating spec {text!r}: not a preset and no such file", hint)
    return spec_from_dict(read_spec_file(path), source=str(path))


def spec_from_dict(data: dict[str, Any], source: str = "") -> Spec:
    """Validate spec data and build a :class:`Spec`; every error names the offending field."""
    where = f"spec {source}: " if source else "spec: "
    _no_unknown(data, _TOP_KEYS, "", where)
    name = _string(data, "name", "", where)
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UsageError(f"{where}version must be a positive integer, got {version!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise UsageError(f"{where}description must be text")
    compound_mode = data.get("compound")
    if compound_mode not in COMPOUND_MODES:
        raise UsageError(f"{where}compound: unknown compound mode {compound_mode!r}",
                         f"use one of: {', '.join(COMPOUND_MODES)}")
    index_base = data.get("index_base", "reference")
    if index_base not in INDEX_BASES:
        raise UsageError(f"{where}index_base must be one of {', '.join(INDEX_BASES)}, got {index_base!r}")
    tasks_data = data.get("tasks")
    if not isinstance(tasks_data, dict) or not tasks_data:
        raise UsageError(f"{where}tasks is missing or empty", "a spec rates at least one task (inference, training)")
    default_ref = data.get("reference")
    tasks = tuple(_task(tname, tdata, default_ref, index_base, where) for tname, tdata in tasks_data.items())
    for task in tasks:
        for metric in task.metrics:
            if metric.from_task is not None and metric.from_task not in tasks_data:
                raise UsageError(f"{where}tasks.{task.name}.metrics.{metric.key}.from_task: the spec has no task "
                                 f"{metric.from_task!r}")
    calibration = data.get("calibration")
    if calibration is not None and not isinstance(calibration, dict):
        raise UsageError(f"{where}calibration must be an object")
    allow_partial = data.get("allow_partial", False)
    if not isinstance(allow_partial, bool):
        raise UsageError(f"{where}allow_partial must be true or false, got {allow_partial!r}")
    display = data.get("display", "letters")
    if display not in DISPLAYS:
        raise UsageError(f"{where}display must be one of {', '.join(DISPLAYS)}, got {display!r}")
    zero_index = data.get("zero_division_index")
    if zero_index is not None and (isinstance(zero_index, bool) or zero_index != 0):
        raise UsageError(f"{where}zero_division_index must be null or 0, got {zero_index!r}", "0: as the 2022 code")
    return Spec(name=name, version=version, description=description, compound=compound_mode, index_base=index_base,
                tasks=tasks, calibration=calibration, source=source, allow_partial=allow_partial,
                zero_division_index=None if zero_index is None else 0.0, display=display)


def _task(name: str, data: Any, default_ref: Any, index_base: str, where: str) -> TaskSpec:
    field = f"tasks.{name}"
    if not isinstance(data, dict):
        raise UsageError(f"{where}{field} must be an object with metrics")
    _no_unknown(data, _TASK_KEYS, field + ".", where)
    reference = data.get("reference", default_ref)
    if index_base == "reference":
        if not isinstance(reference, str) or not reference.strip():
            raise UsageError(f"{where}{field}.reference is missing: name the reference model (e.g. ResNet101)",
                             "or set index_base to \"best\" to rate against the best model of each group")
    elif reference is not None:
        raise UsageError(f"{where}{field}.reference must be absent when index_base is \"{index_base}\"")
    metrics_data = data.get("metrics")
    if isinstance(metrics_data, dict):
        items = list(metrics_data.items())
    elif isinstance(metrics_data, list):
        items = []
        for position, entry in enumerate(metrics_data):
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise UsageError(f"{where}{field}.metrics[{position}] must be an object with a \"key\"")
            items.append((entry["key"], entry))
    else:
        items = []
    if not items:
        raise UsageError(f"{where}{field}.metrics is missing or empty", "a task needs at least one metric")
    keys = [k for k, _ in items]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise UsageError(f"{where}{field}.metrics: metric {duplicated[0]!r} appears twice")
    metrics = tuple(_metric(key, mdata, f"{field}.metrics.{key}", where) for key, mdata in items)
    if not any(m.weight > 0 for m in metrics):
        raise UsageError(f"{where}{field}.metrics: every weight is 0", "give at least one metric a positive weight")
    match = parse_match(data.get("match"), field, where)
    return TaskSpec(name=name, reference=reference, metrics=metrics, match=match)


def _metric(key: str, data: Any, field: str, where: str) -> MetricSpec:
    if not isinstance(data, dict):
        raise UsageError(f"{where}{field} must be an object")
    _no_unknown(data, _METRIC_KEYS, field + ".", where)
    if not key.strip():
        raise UsageError(f"{where}{field}: a metric key must not be empty")
    direction = data.get("direction")
    if direction not in DIRECTIONS:
        raise UsageError(f"{where}{field}.direction must be \"higher\" or \"lower\" (is better), got {direction!r}")
    weight = _number(data, "weight", field, where)
    if weight < 0:
        raise UsageError(f"{where}{field}.weight must not be negative, got {weight!r}")
    boundaries = _four(data, "boundaries", field, where)
    quantiles = _four(data, "quantiles", field, where)
    if (boundaries is None) == (quantiles is None):
        raise UsageError(f"{where}{field}.boundaries is missing",
                         "give four index boundaries (A/B, B/C, C/D, D/E) or four quantiles, not both")
    if boundaries is not None and boundaries[-1] < 0:
        raise UsageError(f"{where}{field}.boundaries must not be negative (indices are ratios), got {list(boundaries)}")
    if quantiles is not None and not (quantiles[0] < 1 and quantiles[-1] > 0):
        raise UsageError(f"{where}{field}.quantiles must lie strictly between 0 and 1, got {list(quantiles)}")
    scale = _number(data, "scale", field, where, default=1.0)
    if scale <= 0:
        raise UsageError(f"{where}{field}.scale must be positive, got {scale!r}")
    divisor = None if data.get("divisor") is None else _number(data, "divisor", field, where)
    if divisor is not None and divisor <= 0:
        raise UsageError(f"{where}{field}.divisor must be positive, got {divisor!r}")
    return MetricSpec(
        key=key, label=_string(data, "label", field + ".", where, default=key),
        unit=_string(data, "unit", field + ".", where, allow_empty=True),
        direction=direction, weight=weight, boundaries=boundaries, quantiles=quantiles,
        value=_path(data, "value", field, where, required=True),
        scale=scale, times=_path(data, "times", field, where), method=_path(data, "method", field, where),
        from_task=_optional_string(data, "from_task", field, where),
        fallback=_path(data, "fallback", field, where), per=_path(data, "per", field, where), divisor=divisor,
    )


def _no_unknown(data: dict[str, Any], allowed: set[str], prefix: str, where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(f"{where}{prefix}{unknown[0]}: unknown field", f"allowed here: {', '.join(sorted(allowed))}")


def _string(data: dict[str, Any], key: str, prefix: str, where: str, default: str | None = None,
            allow_empty: bool = False) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise UsageError(f"{where}{prefix}{key} is missing or not text, got {value!r}")
    return value


def _optional_string(data: dict[str, Any], key: str, field: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise UsageError(f"{where}{field}.{key} must be text, got {value!r}")
    return value


def _path(data: dict[str, Any], key: str, field: str, where: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or any(not part for part in value.split(".")):
        raise UsageError(f"{where}{field}.{key} must be a dotted record path like \"per_sample.time_ms\", "
                         f"got {value!r}")
    return value


def _number(data: dict[str, Any], key: str, field: str, where: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if value is None:
        raise UsageError(f"{where}{field}.{key} is missing")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise UsageError(f"{where}{field}.{key} must be a finite number, got {value!r}")
    return float(value)


def _four(data: dict[str, Any], key: str, field: str, where: str) -> tuple[float, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 4
            or any(not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) for v in value)):
        raise UsageError(f"{where}{field}.{key} must be a list of four finite numbers (A/B, B/C, C/D, D/E), "
                         f"got {value!r}")
    numbers = tuple(float(v) for v in value)
    if any(a <= b for a, b in zip(numbers, numbers[1:])):
        raise UsageError(f"{where}{field}.{key} must be strictly descending (A/B > B/C > C/D > D/E), "
                         f"got {list(value)}")
    return numbers
