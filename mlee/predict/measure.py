"""Measuring a whole model to check a prediction: ``mlee predict --measure`` and the benchmark.

The model runs on synthetic inputs of its own input size in an ordinary ``infer`` session, with the
memory allocator set up as for kernel profiles (:mod:`mlee.predict.allocator`): a warm-up
window that does not count, then repeated windows of whole batches until the per-sample runtime is
stable (the same rule as kernel profiling, on the same clock); per-sample figures are the medians over
the repeats, as for kernels, and both wall and CPU time are recorded. The experiment folder carries the
usual model-run fields
(docs/design.md section 2), so it merges and rates like any ``mlee infer`` record.
"""

from __future__ import annotations

import math
import time
from typing import Any

from mlee.predict.builders import torch_threads
from mlee.predict.models import ModelRef, build_model
from mlee.predict.profile import ProfileSettings, stats
from mlee.runners.torch_backend import import_torch

#: Model runs take longer than kernels; a window of at least this long, 3 to 6 repeats.
MODEL_SETTINGS = ProfileSettings(cv_threshold=0.05, min_repeats=3, max_repeats=6, min_window_s=0.3)


def settings_for(predictor: Any, base: ProfileSettings = MODEL_SETTINGS) -> ProfileSettings:
    """``base`` on the clock ``predictor`` was fit on and under the allocator its profiles were measured
    under, so that a model run checks a prediction as its kernels were measured. A predictor that does not
    name an allocator (fit before mlee recorded it, or on imported layer data) gets ``system``: glibc as it
    is, as such profiles were measured.
    """
    from dataclasses import replace

    return replace(base, clock=predictor.basis.get("clock") or "wall",
                   allocator=predictor.fingerprint.get("allocator") or "system")


def measure_model(ref: ModelRef, batch_size: int = 1, settings: ProfileSettings = MODEL_SETTINGS,
                  output_dir: str = "results", sources: Any = None, interval_s: float = 0.1,
                  per_layer: bool = False, prediction: dict | None = None, threads: int | None = None,
                  session_kwargs: dict | None = None) -> dict:
    """Run ``ref`` under measurement and return its per-sample figures.

    Args:
        ref: The model (random weights: runtime and energy do not depend on their values).
        batch_size: Samples per forward pass.
        settings: Repeat rule (CV threshold, repeats, minimum window length).
        per_layer: Also time every layer in one extra (unmeasured) window and store the breakdown.
        prediction: The prediction being checked, stored with the record for later comparison.
        threads: torch intra-op threads (None: torch's default); use the predictor's for a fair check.

    Returns:
        ``{"folder", "per_sample": {"time_ms", "energy_j", "energy_method"}, "repeats", "per_layer"}``.
    """
    with torch_threads(threads) as n_threads:
        return _measure(ref, batch_size, settings, output_dir, sources, interval_s, per_layer, prediction, n_threads,
                        session_kwargs)


def _measure(ref: ModelRef, batch_size: int, settings: ProfileSettings, output_dir: str, sources: Any,
             interval_s: float, per_layer: bool, prediction: dict | None, threads: int,
             session_kwargs: dict | None) -> dict:
    from mlee.measure.session import Measurement
    from mlee.predict.allocator import steady_allocator
    from mlee.predict.probe import speed_probe
    from mlee.predict.profile import check_clock_threads

    torch = import_torch()
    settings.check()
    check_clock_threads(settings.clock, threads)
    allocator = steady_allocator(settings.allocator)
    model = build_model(ref)
    x = torch.randn(batch_size, 3, ref.input_size, ref.input_size, generator=torch.Generator().manual_seed(0))
    config = {"command": "predict --measure", "model": ref.name, "batch_size": batch_size,
              "input_size": ref.input_size, "backend": "pytorch", "device": "cpu", "threads": threads,
              "allocator": allocator}
    clock = time.perf_counter
    probes = [speed_probe(settings.clock)] if settings.probe else []
    with Measurement(f"{ref.name}-measured", kind="infer", output_dir=output_dir, interval_s=interval_s,
                     sources=sources, config=config, **(session_kwargs or {})) as m:
        with torch.inference_mode():
            with m.window("warmup", measured=False, n_samples=batch_size):
                t0 = clock()
                model(x)
                first_s = clock() - t0
            n_batches = max(1, math.ceil(settings.min_window_s / max(first_s, 1e-6)))
            times: list[float] = []
            cpu_times: list[float] = []
            windows: list[dict] = []
            while True:
                with m.window(f"repeat-{len(times)}", measured=True, n_samples=n_batches * batch_size) as h:
                    cpu0 = time.thread_time()
                    for _ in range(n_batches):
                        model(x)
                    cpu_s = time.thread_time() - cpu0
                windows.append(h.record)
                times.append(h.record["duration_s"] * 1e3 / (n_batches * batch_size))
                cpu_times.append(cpu_s * 1e3 / (n_batches * batch_size))
                series = cpu_times if settings.clock == "cpu" else times
                rcv = stats(series)["robust_cv"] if len(series) > 1 else None
                if (len(series) >= settings.min_repeats and rcv is not None and rcv <= settings.cv_threshold) \
                        or len(series) >= settings.max_repeats:
                    break
        breakdown = None
        if per_layer:
            from mlee.runners.layers import profile_layers

            breakdown = profile_layers(model, [x] * n_batches, m)
        n = n_batches * batch_size
        per_component = {c: _per_sample(windows, c, n) for c in ("total", "cpu", "dram", "gpu")}
        energy = per_component["total"]
        time_st = stats(times)
        cpu_st = stats(cpu_times)
        per_sample = {"time_ms": time_st["median"], "cpu_time_ms": cpu_st["median"],
                      "throughput_per_s": 1e3 / time_st["median"],
                      "energy_j": {c: (v["median"] if v else None) for c, v in per_component.items()},
                      "energy_method": {c: (windows[-1]["energy_method"].get(c) if v else None)
                                        for c, v in per_component.items()}}
        extra: dict[str, Any] = {
            "task": "inference", "model": ref.name, "backend": {"name": "pytorch", "version": torch.__version__},
            "device": "cpu", "dataset": "synthetic", "n_samples": n_batches * batch_size * len(times),
            "batch_size": batch_size, "metrics": {"top1": None, "top5": None, "loss": None},
            "per_sample": per_sample,
            "repeats": {"n": len(times), "per_sample_time_ms": time_st, "per_sample_cpu_time_ms": cpu_st,
                        "per_sample_energy_j": energy or {"mean": None, "std": None, "cv": None}},
        }
        if settings.probe:
            probes.append(speed_probe(settings.clock))
            extra["probe_s"] = probes
        if prediction is not None:
            extra["prediction"] = prediction
        if breakdown is not None:
            extra["per_layer"] = breakdown
        m.add_results(**extra)
    return {"folder": str(m.result.folder), "per_sample": {"time_ms": time_st["median"],
            "cpu_time_ms": cpu_st["median"],
            "energy_j": energy["median"] if energy else None, "energy_method": per_sample["energy_method"]["total"]},
            "repeats": extra["repeats"], "per_layer": breakdown, "threads": threads,
            "probe_s": sum(probes) / len(probes) if probes else None}


def _per_sample(windows: list[dict], component: str, n: int) -> dict | None:
    """Mean/std/cv of one component's energy per sample over the windows; None unless every window has it."""
    values = [(w.get("energy_j") or {}).get(component) for w in windows]
    if any(v is None for v in values) or not all(w.get("valid", True) for w in windows):
        return None
    return stats([v / n for v in values])
