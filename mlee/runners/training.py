"""A training run under measurement: one measured window per epoch, validation outside the windows.

``per_epoch`` figures are normalised to one full epoch (total / epochs run, counting a partial last
epoch cut by ``--max-seconds`` by its share of samples), so a budget-limited run still predicts the
cost of the nominal schedule.
"""

from __future__ import annotations

import math
import time
from typing import Any

from mlee.errors import UsageError
from mlee.runners import registry, stats
from mlee.runners.data import ImageSet, load
from mlee.runners.engine import WeightsChoice
from mlee.runners.steps import (
    Progress,
    on_batch_callback,
    accuracy,
    make_engine,
    to_batches,
    window_figures,
)
from mlee.runners.options import RunOptions
from mlee.runners.preprocess import for_entry


def _with_labels(data: ImageSet, n_classes: int, seed: int) -> tuple[ImageSet, bool]:
    """Synthetic data gets seeded random labels to train on; they are flagged as not real."""
    if data.labels is not None:
        return data, True
    import numpy as np

    labels = np.random.default_rng(seed + 1).integers(0, n_classes, size=data.n_samples, dtype=np.int64)
    return ImageSet(data.pixels, labels, n_classes, data.name, {**data.info, "labels": "random"}), False


def _sum_energy(records: list[dict]) -> tuple[dict, dict]:
    energy: dict[str, float | None] = {}
    method: dict[str, str | None] = {}
    for c in stats.COMPONENTS:
        values = [r["energy_j"].get(c) for r in records]
        energy[c] = None if not values or any(v is None for v in values) else math.fsum(values)
        kinds = [r["energy_method"].get(c) for r in records]
        method[c] = stats.weakest(kinds) if energy[c] is not None else None
    return energy, method


def _evaluate(m: Any, engine: Any, batches: list, labels: list, epoch: int) -> dict:
    if not batches:
        return {"top1": None, "top5": None, "loss": None}
    with m.window(f"eval-{epoch}", measured=False, n_samples=sum(len(x) for x in labels)):
        outputs = engine.infer(batches)
        logits = engine.to_numpy(outputs)
    return accuracy(logits, labels)


def train(m: Any, model: str, options: RunOptions, weights: WeightsChoice, progress: Progress | None) -> None:
    """The training run inside the started session ``m``."""
    spec, framework = registry.resolve(model, options.backend, options.onnx_source)
    if options.backend == "onnx":
        raise UsageError("the onnx backend runs inference only", fix="train with --backend pytorch or tensorflow")
    prep = for_entry(spec.entry(framework), options.input_size)
    dataset = options.dataset_name
    with m.window("data", measured=False):
        train_set = load(dataset, prep, split="train", n_samples=options.planned_samples(), seed=options.seed,
                         data_path=options.data_path, framework=framework,
                         max_corrupt_fraction=options.max_corrupt_fraction)
        val_set = None
        if dataset != "synthetic":
            val_set = load(dataset, prep, split="val", n_samples=options.planned_samples(), seed=options.seed,
                           data_path=options.data_path, framework=framework,
                           max_corrupt_fraction=options.max_corrupt_fraction)
    n_classes = train_set.n_classes or 1000
    train_set, real_labels = _with_labels(train_set, n_classes, options.seed)
    with m.window("build", measured=False):
        engine = make_engine(spec, framework, options, weights, n_classes, prep.input_size)
        engine.set_optimizer(options.optimizer, options.lr)
    m.add_results(backend=engine.backend, device=engine.device, preprocessing=prep.to_json(),
                  dataset_info={"train": train_set.info, "val": val_set.info if val_set else None})
    with m.window("model_info", measured=False):
        m.add_results(model_info=engine.model_info().to_json())
    with m.window("to_device", measured=False):
        xs, ys = to_batches(engine, train_set, prep, options.batch_size)
        pairs = [(x, engine.labels(y)) for x, y in zip(xs, ys)]
        val_batches, val_labels = to_batches(engine, val_set, prep, options.batch_size) if val_set else ([], [])
    n_train = train_set.n_samples
    _warm_up(m, engine, pairs, options.warmup_batches, progress)
    result = _epochs(m, engine, pairs, n_train, val_batches, val_labels, options, real_labels, progress)
    if options.save_weights is not None:
        with m.window("save_weights", measured=False):
            engine.save_weights(options.save_weights)
        m.add_results(saved_weights=str(options.save_weights))
    m.add_results(**result)


def _warm_up(m: Any, engine: Any, pairs: list, n_batches: int, progress: Progress | None) -> None:
    """Training steps before the first epoch, outside the windows (graph tracing, allocator, caches)."""
    if n_batches <= 0 or not pairs:
        return
    chosen = [pairs[i % len(pairs)] for i in range(n_batches)]
    if progress is not None:
        progress.phase("warm-up", len(chosen))
    with m.window("warmup", measured=False, n_samples=sum(int(x.shape[0]) for x, _ in chosen)):
        engine.train_epoch(chosen, None, on_batch_callback(progress))
        engine.synchronize()


def _epochs(m: Any, engine: Any, pairs: list, n_train: int, val_batches: list, val_labels: list,
            options: RunOptions, real_labels: bool, progress: Progress | None) -> dict:
    import numpy as np

    rng = np.random.default_rng(options.seed)
    deadline = time.monotonic() + options.max_seconds if options.max_seconds is not None else None
    history: list[dict] = []
    records: list[dict] = []
    windows: list[stats.WindowFigures] = []
    seen = 0
    stopped_by = None
    metrics = {"top1": None, "top5": None, "loss": None}
    for epoch in range(1, options.epochs + 1):
        if deadline is not None and time.monotonic() >= deadline:
            stopped_by = "max_seconds"
            break
        order = rng.permutation(len(pairs))  # a new batch order each epoch
        if progress is not None:
            progress.phase(f"epoch {epoch}/{options.epochs}", len(pairs))
        engine.synchronize()
        with m.window(f"epoch-{epoch}", measured=True, n_samples=n_train) as w:
            st = engine.train_epoch([pairs[i] for i in order], deadline, on_batch_callback(progress))
            engine.synchronize()
        if st.n_samples != n_train:
            # The session fixes n_samples at window entry; a budget-cut epoch did fewer.
            w.record["n_samples"] = st.n_samples
            stopped_by = "max_seconds"
        if st.n_samples == 0:
            break
        seen += st.n_samples
        records.append(w.record)
        windows.append(window_figures(w.record, st.n_samples))
        metrics = _evaluate(m, engine, val_batches, val_labels, epoch)
        history.append({
            "epoch": epoch, "samples": st.n_samples, "loss": st.loss, "top1": st.top1 if real_labels else None,
            "val_loss": metrics["loss"], "val_top1": metrics["top1"], "val_top5": metrics["top5"],
            "energy_j": w.record["energy_j"].get("total"), "energy_method": w.record["energy_method"].get("total"),
            "time_s": w.record["duration_s"],
        })
        if stopped_by:
            break
    if not windows:
        raise UsageError(f"--max-seconds {options.max_seconds} ended training before one batch ran",
                         fix="raise --max-seconds")
    energy, method = _sum_energy(records)
    time_s = math.fsum(r["duration_s"] for r in records)
    epochs_run = seen / n_train
    total_window = stats.WindowFigures(energy, method, time_s, seen)
    per_sample = stats.per_sample(total_window)
    per_sample["valid"] = all(r.get("valid", True) for r in records)
    _, repeats = stats.combine_repeats(windows)
    training = {
        "epochs": len(history), "nominal_epochs": options.epochs, "epochs_run": epochs_run,
        "stopped_by": stopped_by, "optimizer": options.optimizer, "lr": options.lr,
        "train_samples_per_epoch": n_train, "history": history,
        "per_epoch": {"energy_j": energy["total"] / epochs_run if energy["total"] is not None else None,
                      "energy_method": method["total"], "time_s": time_s / epochs_run},
        "total": {"energy_j": energy["total"], "energy_method": method["total"], "time_s": time_s,
                  "samples": seen},
    }
    return {"n_samples": seen, "per_sample": per_sample, "repeats": repeats, "metrics": metrics,
            "training": training}
