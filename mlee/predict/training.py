"""From profiled points to a predictor: read them from a database or experiment folders, fit per kind.

Points come from records of kind ``profile`` (see :mod:`mlee.predict.profile`). A predictor holds for
one machine and software stack, so points are taken from one environment (``"AMD EPYC - PyTorch
2.14.1"``); when a database holds several, the caller must choose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import MleeError, UsageError
from mlee.fsutil import finite
from mlee.predict.background import backgrounds, point_background, reference
from mlee.predict.correction import field_matrix
from mlee.predict.kernels import CACHE_KINDS, KERNEL_KINDS, KIND_FIELDS, KernelConfig, kind_features
from mlee.predict.polyfit import PolyModel, extra_features_help
from mlee.predict.predictor import KindModel, Predictor, Target, profile_fingerprint
from mlee.vocabulary import weakest_method_name

#: Degrees tried for runtime and for power (power may well be a constant: degree 0).
TIME_DEGREES = (1, 2, 3)
POWER_DEGREES = (0, 1, 2)


@dataclass(frozen=True)
class Point:
    """One profiled configuration.

    ``clock`` is the clock the profile judged stability on (``wall`` or ``cpu``).

    Units: ``time_s`` (wall) and ``cpu_time_s`` per call on the whole batch; ``power_w`` watts (None
    without energy).
    """

    config: KernelConfig
    time_s: float
    cpu_time_s: float | None
    power_w: float | None
    energy_method: str | None
    stable: bool
    record_id: str
    environment: str
    fingerprint: dict
    clock: str = "wall"
    repeats: tuple[tuple[float, float | None, float | None], ...] = ()  # (wall, cpu, probe) per repeat
    #: Median background power of the point's windows and its median power beyond it (see
    #: :mod:`mlee.predict.background`); None for points without per-window energies (layer data).
    background_w: float | None = None
    power_excess_w: float | None = None
    #: One core's L2 and the L3 of the machine that measured it, in bytes (None where not recorded).
    cache_bytes: tuple[int, int] | None = None

    def runtime(self, clock: str, probe_ref_s: float | None = None) -> float | None:
        """The median runtime per call on ``clock``; with ``probe_ref_s``, each repeat is first scaled to
        the machine speed of the reference probe time (repeats without a probe are left out)."""
        if probe_ref_s is not None:
            scaled = sorted((cpu if clock == "cpu" else wall) * probe_ref_s / probe
                            for wall, cpu, probe in self.repeats
                            if probe and (cpu if clock == "cpu" else wall) is not None)
            if scaled:
                n = len(scaled)
                return scaled[n // 2] if n % 2 else (scaled[n // 2 - 1] + scaled[n // 2]) / 2
        return self.cpu_time_s if clock == "cpu" else self.time_s

    def power_at(self, ref_w: float | None) -> float | None:
        """Power at the reference background ``ref_w`` (None: the measured power). Units: watts."""
        from mlee.predict.background import at_reference

        return at_reference(self.power_w, self.power_excess_w, ref_w) if ref_w is not None else self.power_w

    @property
    def has_probes(self) -> bool:
        return any(probe for _, _, probe in self.repeats)


def load_records(path: str | Path) -> tuple[list[dict], list[str]]:
    """Records from a merged database file, or from the experiment folders under a folder.

    Returns:
        ``(records, notes)``: notes name folders that could not be read (they are skipped).

    Raises:
        UsageError: the path does not exist.
        ResultFormatError: the database file cannot be read.
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p} does not exist", "give a database from `mlee merge` or a results folder")
    if p.is_file():
        from mlee.results.database import load_database

        db = load_database(p)
        return list(db.get("records") or []), []
    from mlee.results.discover import discover
    from mlee.results.folder import read_experiment

    inputs, skips = discover([p])
    records, notes = [], [f"{s.display}: {s.reason}" for s in skips]
    for item in inputs:
        if item.kind != "folder":
            continue
        try:
            records.append(read_experiment(item.path))
        except MleeError as exc:
            notes.append(f"{item.display}: {exc}")
    return records, notes


def _repeats(raw: dict) -> tuple[tuple[float, float | None, float | None], ...]:
    """Per-repeat (wall, cpu, probe) of a point, where the point lists them (else empty)."""
    walls, cpus, probes = raw.get("times_s"), raw.get("cpu_times_s"), raw.get("probe_s")
    if not isinstance(walls, list) or not isinstance(cpus, list) or not isinstance(probes, list):
        return ()
    if not (len(walls) == len(cpus) == len(probes)):
        return ()
    out = []
    for w, c, p in zip(walls, cpus, probes):
        if not (finite(w) and w > 0):
            return ()
        out.append((float(w), float(c) if finite(c) and c > 0 else None, float(p) if finite(p) and p > 0 else None))
    return tuple(out)


def probes_from_records(records: Iterable[dict], ids: set[str]) -> list[float]:
    """The speed-probe times of the profile records ``ids`` (see :mod:`mlee.predict.probe`)."""
    out = []
    for rec in records:
        prof = rec.get("profile")
        if str(rec.get("id")) in ids and isinstance(prof, dict):
            out += [float(v) for v in prof.get("probe_s") or [] if finite(v) and v > 0]
    return sorted(out)


def points_from_records(records: Iterable[dict]) -> tuple[list[Point], list[str]]:
    """Every usable profiled point of completed or interrupted ``profile`` records, with notes on what was left out."""
    points: list[Point] = []
    notes: list[str] = []
    for rec in records:
        prof = rec.get("profile")
        if rec.get("kind") != "profile" or not isinstance(prof, dict):
            continue
        if rec.get("status") not in ("completed", "interrupted"):
            notes.append(f"{rec.get('id')}: status {rec.get('status')}, left out")
            continue
        env_info = rec.get("environment_info") if isinstance(rec.get("environment_info"), dict) else {}
        cpu = env_info.get("cpu") if isinstance(env_info.get("cpu"), dict) else {}
        fp = profile_fingerprint(prof, env_info)
        clock = prof.get("clock") if prof.get("clock") in ("wall", "cpu") else "wall"
        caches = cpu.get("cache_bytes") if isinstance(cpu.get("cache_bytes"), dict) else {}
        l2, l3 = caches.get("l2"), caches.get("l3")
        cache_pair = (int(l2), int(l3)) if all(isinstance(v, int) and v > 0 for v in (l2, l3)) else None
        levels = backgrounds(rec)
        bad = 0
        for raw in prof.get("points") or []:
            try:
                cfg = KernelConfig.from_key(raw["config"])
                time_s = raw["time_s"].get("median", raw["time_s"]["mean"])
                cpu = (raw.get("cpu_time_s") or {}).get("median")
                cpu_time_s = float(cpu) if finite(cpu) and cpu > 0 else None
                power_w = raw.get("power_w")
                if not (finite(time_s) and time_s > 0):
                    raise ValueError("time")
                if power_w is not None and not (finite(power_w) and power_w > 0):
                    power_w = None
            except (KeyError, TypeError, ValueError, MleeError):
                bad += 1
                continue
            bg = point_background(levels, raw.get("windows") or []) if power_w else None
            points.append(Point(cfg, float(time_s), cpu_time_s, power_w,
                                raw.get("energy_method") if power_w else None, bool(raw.get("stable")),
                                str(rec.get("id")), str(rec.get("environment") or ""), fp, clock,
                                _repeats(raw), *(bg or (None, None)), cache_pair))
        if bad:
            notes.append(f"{rec.get('id')}: {bad} malformed point(s) left out")
    return points, notes


def select_environment(points: Sequence[Point], environment: str | None) -> list[Point]:
    """The points of one environment.

    Raises:
        UsageError: no points, an unknown environment, or several environments and none chosen.
    """
    envs = sorted({p.environment for p in points})
    if not points:
        raise UsageError("no profiled kernels found", "profile first: mlee profile --grid quick, then mlee merge")
    if environment is not None:
        chosen = [p for p in points if p.environment == environment]
        if not chosen:
            raise UsageError(f"no profiled kernels in environment {environment!r}",
                             f"environments with profiles: {'; '.join(envs)}")
        return chosen
    if len(envs) > 1:
        raise UsageError(f"profiles from {len(envs)} environments: {'; '.join(envs)}",
                         "choose one with --environment (a predictor holds for one machine and stack)")
    return list(points)


def _constant_oof(y: Any, k: int = 5, seed: int = 0) -> Any:
    """Out-of-fold predictions of the constant baseline (the training folds' median), on the models' folds."""
    import numpy as np

    from mlee.predict import polyfit

    preds = np.empty_like(y)
    for train, test in polyfit.kfold_indices(len(y), max(2, min(k, len(y))), seed):
        preds[test] = float(np.median(y[train]))
    return preds


def constant_model(value: float, n_features: int) -> PolyModel:
    """A constant as a degree-0 polynomial (the predictor file needs no new model type for it)."""
    return PolyModel(0, (1.0,) * n_features, ((0,) * n_features,), (float(value),), "linear")


def _fit_target(X: Any, y: Any, model_type: str, degrees: Sequence[int],
                shape: tuple[tuple[str, ...], Any] | None = None) -> tuple[Target, Any]:
    """Fit one target, then replace the model by the constant baseline (the median) when it does not beat
    the baseline in cross-validation; ``quality["replaced"]`` then names the model it replaced. ``shape``
    (the kernels' fields, for runtimes) lets ``auto`` try the shape correction.

    Returns:
        The target and, for ``auto``, the out-of-fold predictions of the model kept (else None).
    """
    import numpy as np

    from mlee.predict import polyfit

    oof = None
    if model_type == "auto" and len(y) >= 8:
        from mlee.predict.families import fit_auto

        model, correction, quality, oof = fit_auto(X, y, tuple(degrees), shape)
        target = Target(model, quality, correction)
    elif model_type == "gbm":
        from mlee.predict.gbm import cross_validate_gbm, fit_gbm

        model = fit_gbm(X, y)
        pred = model.predict(X)
        quality = {"model": "gbm", "cv_rmspe": cross_validate_gbm(X, y), "rmspe": polyfit.rmspe(y, pred),
                   "r2": polyfit.r2(y, pred)}
        target = Target(model, quality)
    else:
        report = polyfit.fit_with_cv(X, y, degrees)
        quality = {"model": report.name, "degree": report.model.degree, "transform": report.model.transform,
                   "cv_rmspe": report.cv_rmspe.get(report.name),
                   "cv_rmspe_by_model": {n: (s if s != float("inf") else None) for n, s in report.cv_rmspe.items()},
                   "rmspe": report.rmspe, "r2": report.r2}
        target = Target(report.model, quality)
    median = float(np.median(y))
    if len(y) < 3:
        return Target(target.model, {**target.quality, "median": median}, target.correction), None
    base_oof = _constant_oof(y)
    base_cv = polyfit.rmspe(y, base_oof)
    quality = {**target.quality, "median": median, "baseline_cv_rmspe": base_cv}
    cv = quality.get("cv_rmspe")
    if cv is not None and cv < base_cv:
        return Target(target.model, quality, target.correction), oof
    pred = np.full_like(y, median)
    quality.update({"replaced": quality["model"], "replaced_cv_rmspe": cv, "model": "constant", "degree": 0,
                    "transform": "linear", "cv_rmspe": base_cv, "rmspe": polyfit.rmspe(y, pred),
                    "r2": polyfit.r2(y, pred)})
    return Target(constant_model(median, X.shape[1]), quality), (base_oof if oof is not None else None)


def _energy_choice(X: Any, y_energy: Any, product_oof: Any) -> tuple[Target | None, str | None]:
    """A direct energy model, and whether it beats runtime x power in cross-validation on the same folds
    (by CV MAPE, as families are chosen; both routes' CV RMSPE is kept beside it)."""
    from mlee.predict.families import mape, score

    direct, direct_oof = _fit_target(X, y_energy, "auto", TIME_DEGREES)
    if direct_oof is None:
        return None, None
    product_cv, direct_cv = score(y_energy, product_oof), score(y_energy, direct_oof)
    product_mape, direct_mape = mape(y_energy, product_oof), mape(y_energy, direct_oof)
    choice = "direct" if direct_mape < product_mape else "product"
    errors = {"cv_rmspe_product": product_cv, "cv_rmspe_direct": direct_cv,
              "cv_mape_product": product_mape, "cv_mape_direct": direct_mape}
    quality = {**direct.quality, **{k: (v if v != float("inf") else None) for k, v in errors.items()}}
    return Target(direct.model, quality), choice


def replacement_warnings(predictor: Predictor) -> list[str]:
    """One line per target whose fitted model lost to the constant baseline in cross-validation."""
    out = []
    for kind, km in sorted(predictor.kinds.items()):
        for name, target in (("runtime", km.time_s), ("power", km.power_w)):
            q = target.quality if target else {}
            if q.get("replaced") not in (None, "linear-0"):  # a constant replaced by the median: nothing lost
                cv = q.get("replaced_cv_rmspe")
                cv_text = "no CV error" if cv is None else f"CV RMSPE {100 * cv:.3g} %"
                out.append(f"{kind} {name}: {q['replaced']} ({cv_text}) does not beat the constant median "
                           f"(CV RMSPE {100 * q['cv_rmspe']:.3g} %); the constant is used")
    return out


def choose_clock(points: Sequence[Point], clock: str | None) -> str:
    """The runtime clock to fit: ``clock`` if given, else the one the profiles were judged on.

    Raises:
        UsageError: profiles on different clocks and none chosen, or ``cpu`` without CPU times.
    """
    if clock is None:
        clocks = sorted({p.clock for p in points})
        if len(clocks) > 1:
            raise UsageError("the profiles were measured on different clocks (wall and cpu)",
                             "choose one with --clock wall or --clock cpu")
        clock = clocks[0] if clocks else "wall"
    if clock not in ("wall", "cpu"):
        raise UsageError(f"unknown clock {clock!r}", "use --clock wall or --clock cpu")
    if clock == "cpu" and any(p.cpu_time_s is None for p in points):
        raise UsageError("some profiled points have no CPU time (profiled by an older mlee)",
                         "use --clock wall, or profile again")
    return clock


def fit_predictor(points: Sequence[Point], model_type: str = "polynomial", stable_only: bool = False,
                  clock: str | None = None, probe_s: Sequence[float] = (), background: bool = True) -> Predictor:
    """Fit runtime and power models for every kind with points.

    Args:
        clock: ``wall`` or ``cpu`` runtimes (None: the clock the profiles were judged on).
        probe_s: Speed-probe times taken during the profiles. When given, runtimes are normalised to
            their median (``probe_ref_s`` in the basis): each repeat is scaled by the reference probe time
            over the probe time of its round, so a machine that slowed down during the profile does not
            bend the fit. Checks of a prediction compare against the probe's time then.
        background: Fit powers at the reference background (the points' quietest, ``power_ref_w`` in the
            basis) where points know theirs (:mod:`mlee.predict.background`); False fits the measured powers.

    Raises:
        UsageError: unknown model type or clock, or no usable points.
        BackendMissing: ``gbm`` without scikit-learn (names the extra).
    """
    import numpy as np

    if model_type not in ("polynomial", "gbm", "auto"):
        raise UsageError(f"unknown predictor kind {model_type!r}", "use --kind polynomial, gbm or auto")
    use = [p for p in points if p.stable or not stable_only]
    if not use:
        raise UsageError("no stable profiled points to fit", "profile again, or fit without --stable-only")
    clock = choose_clock(use, clock)
    probes = sorted(float(v) for v in probe_s if v and v > 0)
    probe_ref = (probes[len(probes) // 2] if len(probes) % 2 else (probes[len(probes) // 2 - 1] +
                 probes[len(probes) // 2]) / 2) if probes else None
    if probe_ref is not None and not any(p.has_probes for p in use):
        probe_ref = None  # probes but no per-repeat probe times: nothing to normalise
    power_ref = reference(p.background_w for p in use) if background else None
    kinds: dict[str, KindModel] = {}
    for kind in KERNEL_KINDS:
        mine = [p for p in use if p.config.kind == kind]
        if not mine:
            continue
        found = {p.cache_bytes for p in mine}
        caches = found.pop() if len(found) == 1 and kind in CACHE_KINDS else None  # one machine's caches
        X = np.asarray([p.config.feature_vector() for p in mine], dtype=float)
        y_time = np.asarray([p.runtime(clock, probe_ref) for p in mine])
        X_cache = np.asarray([p.config.feature_vector(caches) for p in mine]) if caches else X
        X, caches = (X_cache, caches) if caches and extra_features_help(X, X_cache, y_time, TIME_DEGREES) else (X, None)
        ranges = {n: (float(X[:, i].min()), float(X[:, i].max())) for i, n in enumerate(kind_features(kind, caches))}
        shape = (KIND_FIELDS[kind], field_matrix([p.config for p in mine], kind)) if model_type == "auto" else None
        time_t, time_oof = _fit_target(X, y_time, model_type, TIME_DEGREES, shape)
        with_power = [i for i, p in enumerate(mine) if p.power_w is not None]
        power_t = energy_t = choice = None
        baseline = {"time_s": float(np.median(y_time))}
        if len(with_power) == len(mine):
            y_power = np.asarray([p.power_at(power_ref) for p in mine])
            power_t, power_oof = _fit_target(X, y_power, model_type, POWER_DEGREES)
            baseline.update(power_w=float(np.median(y_power)), energy_j=float(np.median(y_time * y_power)))
            if time_oof is not None and power_oof is not None:
                energy_t, choice = _energy_choice(X, y_time * y_power, time_oof * power_oof)
        kinds[kind] = KindModel(kind, len(mine), ranges, time_t, power_t, baseline, energy_t, choice, caches)
    first = use[0]
    basis = {"energy_method": weakest_method_name(p.energy_method for p in use), "environment": first.environment,
             "records": sorted({p.record_id for p in use}), "n_points": len(use), "clock": clock,
             "probe_s": probes, "probe_ref_s": probe_ref, "power_ref_w": power_ref,
             "n_unstable": sum(1 for p in use if not p.stable)}
    return Predictor(model_type, dict(first.fingerprint), basis, kinds)


def quality_rows(predictor: Predictor) -> list[dict]:
    """One row per kind: points, chosen degree, RMSPE (in-sample and cross-validated) and R² of runtime and power."""
    rows = []
    for kind, km in sorted(predictor.kinds.items(), key=lambda kv: KERNEL_KINDS.index(kv[0])):
        row = {"kind": kind, "n_points": km.n_points}
        for name, target in (("time", km.time_s), ("power", km.power_w)):
            q = target.quality if target else {}
            model = q.get("model") or (f"{q['transform']}-{q['degree']}" if q.get("transform") else None)
            row.update({f"{name}_model": model, f"{name}_rmspe": q.get("rmspe"),
                        f"{name}_cv_rmspe": q.get("cv_rmspe"), f"{name}_r2": q.get("r2")})
        eq = km.energy_j.quality if km.energy_j else {}
        row.update(energy_choice=km.energy_choice, energy_cv_rmspe=eq.get(f"cv_rmspe_{km.energy_choice}"))
        rows.append(row)
    return rows

