"""The predictor file: per kernel kind, models of runtime and power, with the machine they hold for.

Stored as JSON data, never a pickle::

    {"schema_version": 1, "kind": "mlee-predictor", "model_type": "polynomial" | "gbm",
     "fingerprint": {"cpu_model", "torch_version", "mlee_version", "device", "torch_threads", "allocator"},
     "basis": {"energy_method": "estimate", "records": [ids], "environment": "...", "power_ref_w": 24.9},
     "kernels": {"conv-bn-relu": {"features": [...], "n_points": 60, "ranges": {feature: [min, max]},
                                  "cache_bytes": {"l2": 1048576, "l3": 33554432} (with the cache features),
                                  "time_s": {"model": {...}, "quality": {...},
                                             "correction": {"fields": [...], "model": {...}} (optional)},
                                  "power_w": {"model": {...}, "quality": {...}} | null}}}

``time_s`` is the runtime of one call of the kernel on its whole batch; ``power_w`` the mean machine
power while it runs; predicted energy is their product. A runtime with a ``correction`` is its model's
value times the shape correction's factor (:mod:`mlee.predict.correction`); read runtimes with
:meth:`KindModel.predict_time`, never the model alone.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import ResultFormatError
from mlee.fsutil import atomic_write_json, finite
from mlee.predict.allocator import ALLOCATORS
from mlee.predict.correction import ShapeCorrection
from mlee.predict.gbm import GbmModel
from mlee.predict.kernels import KERNEL_KINDS, KernelConfig, kind_features
from mlee.predict.polyfit import PolyModel

SCHEMA_VERSION = 1
FILE_KIND = "mlee-predictor"
MODEL_TYPES = ("polynomial", "gbm", "auto")
#: Fingerprint fields compared on load, with the words used to name them.
FINGERPRINT_FIELDS = {"cpu_model": "CPU", "torch_version": "torch", "mlee_version": "mlee", "device": "device"}

Model = PolyModel | GbmModel


def machine_fingerprint(device: str = "cpu") -> dict[str, Any]:
    """What a predictor's figures depend on: this machine's CPU, torch and mlee versions, device, threads."""
    from mlee import __version__
    from mlee.measure.machine import cpu_facts

    try:
        import torch

        torch_version: str | None = torch.__version__
        threads: int | None = int(torch.get_num_threads())
    except ImportError:
        torch_version, threads = None, None
    model = cpu_facts().get("model") or platform.processor() or None
    return {"cpu_model": model, "torch_version": torch_version, "mlee_version": __version__,
            "device": device, "torch_threads": threads}


def profile_fingerprint(prof: dict, env_info: dict) -> dict[str, Any]:
    """What a profile record's figures depend on, as :func:`machine_fingerprint` says it for this machine,
    plus the allocator mode it was measured under (``steady`` or ``system``; see
    :mod:`mlee.predict.allocator`). A profile made before mlee set up the allocator records none: it ran
    under glibc's own settings, ``system``.

    Args:
        prof: The record's ``profile`` header; ``env_info`` its ``environment_info``.
    """
    cpu = env_info.get("cpu") if isinstance(env_info.get("cpu"), dict) else {}
    allocator = prof.get("allocator")
    mode = allocator.get("mode") if isinstance(allocator, dict) else None
    return {"cpu_model": cpu.get("model") or prof.get("cpu_model"), "torch_version": prof.get("torch_version"),
            "mlee_version": env_info.get("mlee_version"), "device": prof.get("device"),
            "torch_threads": prof.get("torch_threads"), "allocator": mode if mode in ALLOCATORS else "system"}


def describe(fp: dict[str, Any]) -> str:
    return ", ".join(f"{word} {fp.get(key) or 'unknown'}" for key, word in FINGERPRINT_FIELDS.items())


def fingerprint_warning(theirs: dict[str, Any], ours: dict[str, Any], path: str) -> str | None:
    """A one-line warning naming both sides when a predictor comes from another machine or version."""
    diff = [f"{word} {theirs.get(key) or 'unknown'!s} (here {ours.get(key) or 'unknown'!s})"
            for key, word in FINGERPRINT_FIELDS.items() if theirs.get(key) != ours.get(key)]
    if not diff:
        return None
    return (f"{path} was fit on another machine or version: {'; '.join(diff)}; its predictions may not hold "
            f"here (profile this machine with `mlee profile` and refit)")


@dataclass(frozen=True)
class Target:
    """One fitted quantity of one kind (runtime or power) and its fit quality.

    Units: ``quality`` holds fractions (``rmspe``, ``cv_rmspe``) and R² (dimensionless).
    """

    model: Model
    quality: dict[str, Any]
    #: A runtime's shape correction (``--kind auto``'s ``polynomial+shape``), else None.
    correction: ShapeCorrection | None = None

    def to_json(self) -> dict:
        return {"model": self.model.to_json(), "quality": self.quality,
                **({"correction": self.correction.to_json()} if self.correction is not None else {})}


@dataclass(frozen=True)
class KindModel:
    """The models of one kernel kind.

    Units: ``ranges`` in the features' own units (see :data:`mlee.predict.kernels.KIND_FEATURES`).
    """

    kind: str
    n_points: int
    ranges: dict[str, tuple[float, float]]
    time_s: Target
    power_w: Target | None
    #: Medians of the training targets (``time_s``, ``power_w``, ``energy_j``): the constant baseline.
    baseline: dict[str, float] | None = None
    #: A direct model of the energy per call, and whether it (``direct``) or runtime x power (``product``)
    #: predicted better in cross-validation (``--kind auto`` only).
    energy_j: Target | None = None
    energy_choice: str | None = None
    #: One core's L2 and the L3 in bytes when the models use the cache features (see
    #: :data:`mlee.predict.kernels.CACHE_FEATURES`), else None.
    cache_bytes: tuple[int, int] | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return kind_features(self.kind, self.cache_bytes)

    def vector(self, cfg: KernelConfig) -> list[float]:
        """The feature vector the models of this kind take for ``cfg``."""
        return cfg.feature_vector(self.cache_bytes)

    def predict_time(self, cfg: KernelConfig, clip: bool = False) -> float:
        """Runtime of one call of ``cfg`` (features clipped to the profiled range with ``clip``), shape
        correction included; may be non-finite or non-positive where the model extrapolates badly.

        Units: seconds per call on the whole batch.
        """
        value = float(self.time_s.model.predict([self.clipped(cfg) if clip else self.vector(cfg)])[0])
        if self.time_s.correction is not None:
            value *= self.time_s.correction.factor(cfg)
        return value

    def power_for(self, cfg: KernelConfig) -> float | None:
        """Power while ``cfg`` runs, at the nearest profiled point (power saturates outside the range): the
        power model's, or with ``energy_choice`` ``direct`` the direct energy over the runtime there.

        Units: watts.
        """
        x = [self.clipped(cfg)]
        if self.energy_choice == "direct" and self.energy_j is not None:
            energy, time_s = float(self.energy_j.model.predict(x)[0]), self.predict_time(cfg, clip=True)
            return energy / time_s if positive(energy) and positive(time_s) else None
        if self.power_w is None:
            return None
        value = float(self.power_w.model.predict(x)[0])
        return value if positive(value) else None

    def in_range(self, cfg: KernelConfig) -> bool:
        f = cfg.feature_values(self.cache_bytes)
        return all(lo <= f[name] <= hi for name, (lo, hi) in self.ranges.items())

    def clipped(self, cfg: KernelConfig) -> list[float]:
        f = cfg.feature_values(self.cache_bytes)
        return [min(max(f[n], self.ranges[n][0]), self.ranges[n][1]) for n in self.features]

    def to_json(self) -> dict:
        return {"features": list(self.features), "n_points": self.n_points,
                **({"cache_bytes": {"l2": self.cache_bytes[0], "l3": self.cache_bytes[1]}}
                   if self.cache_bytes is not None else {}),
                "ranges": {k: list(v) for k, v in sorted(self.ranges.items())},
                "time_s": self.time_s.to_json(), "power_w": self.power_w.to_json() if self.power_w else None,
                **({"baseline": dict(sorted(self.baseline.items()))} if self.baseline else {}),
                **({"energy_j": self.energy_j.to_json(), "energy_choice": self.energy_choice}
                   if self.energy_j is not None else {})}


@dataclass(frozen=True)
class Predictor:
    """Per-kind models plus where they come from.

    Attributes:
        model_type: ``polynomial`` or ``gbm``.
        fingerprint: Machine and versions the training measurements were taken with.
        basis: ``energy_method`` (weakest method of the training energies), ``records``, ``environment``.
        kinds: Kernel kind -> its models.
    """

    model_type: str
    fingerprint: dict[str, Any]
    basis: dict[str, Any]
    kinds: dict[str, KindModel]

    def to_json(self) -> dict:
        from mlee import __version__

        return {"schema_version": SCHEMA_VERSION, "kind": FILE_KIND, "model_type": self.model_type,
                "mlee_version": __version__, "fingerprint": self.fingerprint, "basis": self.basis,
                "kernels": {k: m.to_json() for k, m in sorted(self.kinds.items())}}

    def save(self, path: str | Path) -> Path:
        """Write the predictor atomically."""
        return atomic_write_json(path, self.to_json())


def _model_from_json(data: Any, n_features: int) -> Model:
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "polynomial":
        return PolyModel.from_json(data, n_features)
    if kind == "gbm":
        return GbmModel.from_json(data, n_features)
    raise ValueError(f"unknown model type {kind!r}")


def _target(data: Any, n_features: int, kind: str | None = None) -> Target:
    """A target from JSON; ``kind`` given: it may hold a shape correction (runtimes only)."""
    if not isinstance(data, dict) or not isinstance(data.get("quality"), dict):
        raise ValueError("a target needs 'model' and 'quality'")
    correction = None
    if data.get("correction") is not None:
        if kind is None:
            raise ValueError("only a runtime may carry a shape correction")
        correction = ShapeCorrection.from_json(data["correction"], kind)
    return Target(_model_from_json(data.get("model"), n_features), data["quality"], correction)


def from_json(data: Any, path: str = "predictor") -> Predictor:
    """Validate and rebuild a predictor.

    Raises:
        ResultFormatError: not a predictor, a newer schema, or a malformed part (named in the message).
    """
    fix = "re-create it with `mlee fit DB -o predictor.json`"
    if not isinstance(data, dict) or data.get("kind") != FILE_KIND:
        raise ResultFormatError(f"{path} is not an mlee predictor (no \"kind\": \"{FILE_KIND}\")", fix)
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise ResultFormatError(f"{path} has predictor schema version {version!r}; this mlee reads version "
                                f"{SCHEMA_VERSION}", "upgrade mlee or refit the predictor with this version")
    model_type = data.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ResultFormatError(f"{path}: model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}", fix)
    fp, basis, kernels = data.get("fingerprint"), data.get("basis"), data.get("kernels")
    if not isinstance(fp, dict) or not isinstance(basis, dict) or not isinstance(kernels, dict) or not kernels:
        raise ResultFormatError(f"{path}: 'fingerprint', 'basis' and a non-empty 'kernels' are required", fix)
    kinds: dict[str, KindModel] = {}
    for kind, raw in kernels.items():
        where = f"{path}: kernel {kind!r}"
        if kind not in KERNEL_KINDS:
            raise ResultFormatError(f"{where} is not a known kernel kind", fix)
        try:
            caches = _cache_bytes(raw.get("cache_bytes"))
            names = kind_features(kind, caches)
            if list(raw["features"]) != list(names):
                raise ValueError(f"features {raw['features']} differ from {list(names)}")
            ranges = {n: (float(raw["ranges"][n][0]), float(raw["ranges"][n][1])) for n in names}
            if any(not (finite(lo) and finite(hi) and lo <= hi) for lo, hi in ranges.values()):
                raise ValueError("ranges must be [min, max] pairs of numbers")
            n_points = int(raw["n_points"])
            time_t = _target(raw["time_s"], len(names), kind)
            power_t = _target(raw["power_w"], len(names)) if raw.get("power_w") is not None else None
            energy_t = _target(raw["energy_j"], len(names)) if raw.get("energy_j") is not None else None
            choice = raw.get("energy_choice") if energy_t is not None else None
            if choice not in (None, "direct", "product"):
                raise ValueError(f"energy_choice {choice!r} is not direct or product")
            baseline = {str(k): float(v) for k, v in (raw.get("baseline") or {}).items()}
            if any(not (finite(v) and v > 0) for v in baseline.values()):
                raise ValueError("baseline values must be positive numbers")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            detail = exc.args[0] if isinstance(exc, ValueError) and exc.args else f"missing or bad {exc}"
            raise ResultFormatError(f"{where} is malformed: {detail}", fix) from exc
        kinds[kind] = KindModel(kind, n_points, ranges, time_t, power_t, baseline or None, energy_t, choice, caches)
    return Predictor(model_type, fp, basis, kinds)


def _cache_bytes(raw: Any) -> tuple[int, int] | None:
    """``{"l2": bytes, "l3": bytes}`` of a kind as a pair (None when absent).

    Raises:
        ValueError: present but not two positive integers.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), int) and raw[k] > 0 for k in ("l2", "l3")):
        raise ValueError("cache_bytes must hold positive integers l2 and l3")
    return int(raw["l2"]), int(raw["l3"])


def load(path: str | Path, device: str = "cpu") -> tuple[Predictor, list[str]]:
    """Read a predictor file; returns it with warnings (another machine or version).

    Raises:
        ResultFormatError: missing file, not JSON, or not a valid predictor.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ResultFormatError(f"no predictor at {p}", "create one: mlee profile, mlee merge, then "
                                "mlee fit DB -o predictor.json (see docs/prediction.md)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFormatError(f"cannot read predictor {p}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFormatError(f"{p} is not valid JSON (line {exc.lineno}: {exc.msg})",
                                "re-create it with `mlee fit DB -o predictor.json`") from exc
    predictor = from_json(data, str(p))
    warnings = []
    warning = fingerprint_warning(predictor.fingerprint, machine_fingerprint(device), str(p))
    if warning:
        warnings.append(warning)
    return predictor, warnings


def positive(value: float) -> bool:
    return math.isfinite(value) and value > 0
