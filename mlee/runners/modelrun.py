"""One model run under measurement, and several in a row: build, data, warm-up, measured windows, results.

Every run is one :class:`mlee.measure.session.Measurement` session (one experiment folder). Only the timed
loops sit inside measured windows; build, data preparation, export and warm-up are unmeasured
windows of the same session, so their time and energy are recorded separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlee.errors import Interrupted, MleeError
from mlee.runners import registry, stats
from mlee.runners.data import ImageSet, load
from mlee.runners.engine import WeightsChoice
from mlee.runners.options import RunOptions
from mlee.runners.preprocess import Preprocessing, for_entry
from mlee.runners.steps import (
    ModelOutcome,
    Progress,
    accuracy,
    class_count,
    export_onnx,
    make_engine,
    on_batch_callback,
    to_batches,
    window_figures,
)


@dataclass
class Prepared:
    """A model ready to run: its engine, preprocessing and data."""

    spec: registry.ModelSpec
    framework: str
    prep: Preprocessing
    engine: Any
    data: ImageSet
    batches: list[Any]
    labels: list[Any]


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    text = str(exc).lower()
    return ("OutOfMemory" in name or "ResourceExhausted" in name or "out of memory" in text
            or "can't allocate memory" in text or "failed to allocate memory" in text)


def translate(exc: BaseException, model: str, options: RunOptions) -> MleeError:
    """A framework exception as a one-line MleeError (out-of-memory gets its own message and fix)."""
    if isinstance(exc, MleeError):
        return exc
    if _is_oom(exc):
        return MleeError(f"{model}: out of memory with --batch-size {options.batch_size} on {options.device}",
                         fix="lower --batch-size (or --n-samples), or free memory on the device")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return MleeError(f"{model} failed: {type(exc).__name__}: {first}",
                     fix="set MLEE_DEBUG=1 for a traceback and report it")


def prepare(m: Any, model: str, options: RunOptions, weights: WeightsChoice, training: bool) -> Prepared:
    """Resolve the model, load the data and build the engine, each in an unmeasured window."""
    spec, framework = registry.resolve(model, options.backend, options.onnx_source)
    prep = for_entry(spec.entry(framework), options.input_size)
    with m.window("data", measured=False):
        data = load(options.dataset_name, prep, split="train" if training else "val",
                    n_samples=options.planned_samples(), seed=options.seed, data_path=options.data_path,
                    framework=framework, max_corrupt_fraction=options.max_corrupt_fraction)
    with m.window("build", measured=False):
        engine = make_engine(spec, framework, options, weights, class_count(data), prep.input_size)
    if options.backend == "onnx":
        with m.window("export", measured=False):
            engine = export_onnx(engine, framework, options, prep.input_size)
    m.add_results(backend=engine.backend, device=engine.device, preprocessing=prep.to_json())
    with m.window("model_info", measured=False):
        info = engine.model_info()
    m.add_results(model_info=info.to_json())
    with m.window("to_device", measured=False):
        batches, labels = to_batches(engine, data, prep, options.batch_size)
    return Prepared(spec, framework, prep, engine, data, batches, labels)


def warm_up(m: Any, p: Prepared, n_batches: int, progress: Progress | None) -> None:
    """Run ``n_batches`` forward passes outside the measured windows (tracing, caches, clocks)."""
    if n_batches <= 0 or not p.batches:
        return
    chosen = [p.batches[i % len(p.batches)] for i in range(n_batches)]
    if progress is not None:
        progress.phase("warm-up", len(chosen))
    n = sum(_rows(b) for b in chosen)
    with m.window("warmup", measured=False, n_samples=n):
        p.engine.infer(chosen, on_batch_callback(progress))
        p.engine.synchronize()


def _rows(batch: Any) -> int:
    shape = batch.shape() if callable(getattr(batch, "shape", None)) else batch.shape
    return int(shape[0])


def infer(m: Any, model: str, options: RunOptions, weights: WeightsChoice, progress: Progress | None) -> None:
    """The inference run inside the started session ``m``."""
    p = prepare(m, model, options, weights, training=False)
    n = p.data.n_samples
    m.add_results(n_samples=n, dataset_info=p.data.info)
    warm_up(m, p, options.warmup_batches, progress)
    callback = on_batch_callback(progress)
    windows = []
    outputs: list[Any] = []
    for r in range(options.repeat):
        if progress is not None:
            progress.phase(f"repeat {r + 1}/{options.repeat}", len(p.batches))
        p.engine.synchronize()
        with m.window(f"repeat-{r}", measured=True, n_samples=n) as w:
            outputs = p.engine.infer(p.batches, callback)
            p.engine.synchronize()
        windows.append(window_figures(w.record, n))
        if not w.record.get("valid", True):
            m.log(f"repeat-{r}: a power source failed to read inside the window")
    per_sample, repeats = stats.combine_repeats(windows)
    per_sample["valid"] = all(rec.get("valid", True) for rec in m.windows if rec["measured"])
    metrics = {"top1": None, "top5": None, "loss": None}
    if p.labels:
        metrics = accuracy(p.engine.to_numpy(outputs), p.labels)
    m.add_results(per_sample=per_sample, repeats=repeats, metrics=metrics)
    if options.per_layer:
        # After the measured repeats, in a window of its own: the hooks cost time, so it is never a repeat.
        m.add_results(per_layer=per_layer_breakdown(m, p))


def per_layer_breakdown(m: Any, p: Prepared) -> dict:
    """The ``per_layer`` block: ``p``'s batches timed layer by layer in an unmeasured window of ``m``."""
    if p.framework == "tensorflow":
        from mlee.runners.tf_layers import profile_tf_layers

        return profile_tf_layers(p.engine.model, p.batches, m, "per-layer", device=p.engine.device)
    from mlee.runners.layers import profile_layers

    return profile_layers(p.engine.module, p.batches, m, "per-layer", device=p.engine.device)


def _initial_results(model: str, options: RunOptions) -> dict:
    return {
        "task": options.task, "model": model,
        "backend": {"name": options.backend, "version": None}, "device": options.device,
        "dataset": options.dataset_name, "n_samples": None, "batch_size": options.batch_size,
        "metrics": {"top1": None, "top5": None, "loss": None}, "model_info": None,
        "per_sample": None, "repeats": None, "training": None,
    }


def canonical_name(model: str) -> str:
    """The registry's name for ``model`` when it knows it, else a model folder's name, else ``model`` as given."""
    from pathlib import Path

    try:
        return registry.lookup(model).name
    except MleeError:
        path = Path(model).expanduser()
        return path.resolve().name if path.is_dir() else model


def session_parts(session: Any, kind: str, config: dict) -> tuple[Any, dict]:
    """The :class:`~mlee.measure.settings.SessionSettings` of one model's session and the hardware edges.

    ``session`` is a SessionSettings, or a mapping of its fields plus hardware stand-ins for tests
    (``powercap_root``, ``nvml``, ``clock``, ``estimator``...), or None (defaults).

    Raises:
        UsageError: a setting no measurement can use.
    """
    import dataclasses

    from mlee.measure.settings import SessionSettings

    if isinstance(session, SessionSettings):
        return session.replace(kind=kind, config=config), {}
    given = dict(session or {})
    fields = {f.name for f in dataclasses.fields(SessionSettings)} - {"kind", "config"}
    settings = SessionSettings(kind=kind, config=config, **{k: v for k, v in given.items() if k in fields})
    return settings, {k: v for k, v in given.items() if k not in fields}


def check_models(models: Sequence[str], backend: str | None = None) -> list[str]:
    """The registry names of ``models``, or UsageError for the first unknown one (with the closest names).

    With ``backend`` ``transformers`` a model is a save_pretrained folder or a hub id instead.
    """
    if backend == "transformers":
        from mlee.runners.transformers_backend import check_model

        return [check_model(model) for model in models]
    return [registry.lookup(model).name for model in models]


def run_model(model: str, options: RunOptions, session: Any = None,
              progress: Progress | None = None) -> ModelOutcome:
    """Run one model under its own measurement session; failures are recorded, not raised.

    Args:
        session: The session's settings (see :func:`session_parts`).

    Raises:
        SourceUnavailable, SourcePermissionError, UsageError: the session could not start, or an option is
            unusable (no folder is made).
        Interrupted: Ctrl-C; the folder is recorded as ``interrupted``.
    """
    from mlee.measure.session import Measurement

    name = canonical_name(model)
    kind = "infer" if options.task == "inference" else "train"
    settings, edges = session_parts(session, kind, options.to_config(name))
    weights = options.validate()  # every option is checked before anything is opened or written
    m = Measurement(name, settings=settings, **edges)
    m.start()  # a requested source that cannot be used stops here, before any folder is written
    try:
        m.add_results(**_initial_results(name, options))
        if options.backend == "transformers":
            from mlee.runners import transformers_backend

            if options.task == "training":
                from mlee.runners.hf_training import train as train_hf

                train_hf(m, model, options, progress)
            else:
                transformers_backend.infer(m, model, options, progress)
        elif options.task == "inference":
            infer(m, model, options, weights, progress)
        else:
            from mlee.runners.training import train

            train(m, model, options, weights, progress)
    except (KeyboardInterrupt, Interrupted) as exc:
        m.finish("interrupted", str(exc) or "interrupted")
        raise Interrupted(f"interrupted while running {name}; what was measured is in {m.folder}",
                          signum=getattr(exc, "signum", None)) from exc
    except Exception as exc:  # noqa: BLE001 - every failure becomes one recorded line
        error = translate(exc, name, options)
        if error is not exc:
            error.__cause__ = exc
        result = m.finish("failed", str(error))
        return ModelOutcome(name, "failed", m.folder, error, result.results)
    except BaseException as exc:
        m.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    result = m.finish("completed")
    return ModelOutcome(name, result.status, m.folder, None, result.results)


def run_models(models: Sequence[str], options: RunOptions, session: Any = None,
               progress: Progress | None = None) -> list[ModelOutcome]:
    """Run each model in turn; one failing model is recorded and the others still run.

    Raises:
        UsageError: an unknown model or an unusable option, before any model runs (no folder is made).
    """
    check_models(models, options.backend)
    options.validate()
    session_parts(session, "infer", {})
    outcomes = []
    for i, model in enumerate(models):
        if progress is not None:
            progress.start_model(canonical_name(model), i, len(models))
        outcome = run_model(model, options, session, progress)
        outcomes.append(outcome)
        if progress is not None:
            progress.end_model(outcome)
    return outcomes
