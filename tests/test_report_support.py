"""Builders shared by the report tests and scripts/bench_report.py: schema-valid databases of model runs.

No tests here. Records follow docs/design.md sections 2 and 3 (results.json of an ``infer`` run plus the merge
fields); the figures are arbitrary but fixed, chosen so that every rating letter occurs.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def legacy_dir() -> Path | None:
    """The 2022 logs: ``$MLEE_LEGACY_DIR`` or ``<repo>/../shared/legacy-mlee-2022/results``; None when absent."""
    env = os.environ.get("MLEE_LEGACY_DIR")
    base = Path(env) if env else REPO.parent / "shared" / "legacy-mlee-2022"
    for candidate in (base / "results", base):
        if candidate.is_dir() and any(candidate.glob("infer_*.json")):
            return candidate
    return None


def legacy_database() -> dict[str, Any]:
    """The 232 legacy logs as a merged database (skips the test when the folder is absent)."""
    folder = legacy_dir()
    if folder is None:
        pytest.skip("the 2022 logs are absent (set MLEE_LEGACY_DIR or place them at ../shared/legacy-mlee-2022)")
    from mlee.results.legacy import read_legacy_file

    records = sorted((read_legacy_file(p) for p in sorted(folder.glob("*_*.json"))), key=lambda r: r["id"])
    return database(records)


def chromium_or_skip() -> str:
    """The Chromium binary (with chromium-driver and Selenium beside it), or skip the test with the reason."""
    pytest.importorskip("selenium", reason="the browser tests drive Chromium with Selenium (pip install -e .[test])")
    from browser_driver import BrowserUnavailable, find_chromedriver, find_chromium

    try:
        find_chromedriver()
        return find_chromium()
    except BrowserUnavailable as exc:
        pytest.skip(f"headless Chromium needed: {exc}")


def record(model: str, *, env_hw: str = "Xeon(R) W-2155", backend: str = "pytorch", version: str = "2.14.1",
           dataset: str = "synthetic", energy_j: float | None = 1.0, time_ms: float | None = 10.0,
           top1: float | None = 0.75, top5: float | None = 0.92, parameters: int | None = 25_000_000,
           flops: float | None = 8e9, method: str = "counter", run: int = 0,
           trace_samples: dict[str, list] | None = None) -> dict[str, Any]:
    """One merged record of an inference run (per-sample energy ``energy_j`` in joules, ``time_ms`` in ms)."""
    ident = f"infer-{model}-{env_hw}-{backend}-{dataset}-{run}".replace(" ", "_")
    names = {"pytorch": "PyTorch", "tensorflow": "TensorFlow", "onnx": "ONNX Runtime"}
    estimated = method == "estimate"
    n = 128
    total = None if energy_j is None else energy_j * n
    rec: dict[str, Any] = {
        "schema_version": 1, "id": ident, "kind": "infer", "name": model, "status": "completed", "error": None,
        "start_utc": f"2026-11-22T07:{run % 60:02d}:00.000000Z", "end_utc": f"2026-11-22T07:{run % 60:02d}:30.000000Z",
        "duration_s": 30.0,
        "energy_j": {"total": total, "cpu": total, "dram": None, "gpu": None},
        "energy_method": {"total": method, "cpu": method, "dram": None, "gpu": None},
        "estimated": estimated,
        "sources": [{"name": "rapl:package-0" if not estimated else "estimate:cpu", "domain": "cpu",
                     "method": method, "energy_j": total, "n_samples": 300, "valid": True,
                     "invalid_intervals": [], "detail": {}}],
        "skipped_sources": [], "baseline": None, "windows": [], "rank": None, "exit_code": 0, "carbon": None,
        "task": "inference", "model": model, "backend": {"name": backend, "version": version}, "device": "cpu",
        "dataset": dataset, "n_samples": n, "batch_size": 32,
        "metrics": {"top1": top1, "top5": top5, "loss": None},
        "model_info": {"parameters": parameters, "flops": flops, "macs": None if flops is None else flops / 2,
                       "weights_bytes": None if parameters is None else parameters * 4},
        "per_sample": {"energy_j": {"total": energy_j, "cpu": energy_j, "dram": None, "gpu": None},
                       "energy_method": {"total": method, "cpu": method, "dram": None, "gpu": None},
                       "time_ms": time_ms, "throughput_per_s": None if not time_ms else 1000.0 / time_ms},
        "repeats": None, "training": None,
        "environment": f"{env_hw} - {names.get(backend, backend)} {version}",
        "origin": "mlee", "origin_path": None, "config": None, "environment_info": None, "traces": {},
    }
    if trace_samples is not None:
        rec["trace_samples"] = trace_samples
    return rec


def hf_record(model: str, hf_task: str = "text-generation", *, energy_j: float | None = 0.5,
              token_j: float | None = 0.05, latency_ms: float = 40.0, parameters: int = 124_000_000,
              method: str = "counter", env_hw: str = "Xeon(R) W-2155", run: int = 0) -> dict[str, Any]:
    """One merged record of a ``--backend transformers`` inference run of ``hf_task`` with its ``transformers``
    block: energy per query ``energy_j`` and per output (generation) or input (classification) token ``token_j``
    in joules, latency in milliseconds, and prefill and decode phases for text generation."""
    rec = record(model, env_hw=env_hw, backend="transformers", version="5.24.0", dataset=f"{hf_task}:synthetic",
                 energy_j=energy_j, time_ms=latency_ms / 4, top1=None, top5=None, parameters=parameters,
                 flops=None, method=method, run=run)
    rec["id"] = rec["id"].replace("infer-", f"infer-{hf_task}-")

    def block(value: float | None) -> dict[str, Any]:
        return {"energy_j": {"total": value, "cpu": value, "dram": None, "gpu": None},
                "energy_method": {"total": method if value is not None else None, "cpu": method, "dram": None,
                                  "gpu": None}}

    generating = hf_task == "text-generation"
    hf: dict[str, Any] = {
        "task": hf_task, "architecture": "X", "dtype": "float32", "batch_size": 4, "queries": 128,
        "max_new_tokens": 16 if generating else None,
        "per_query": block(energy_j), "per_input_token": block(None if generating else token_j),
        "per_output_token": block(token_j if generating else None),
        "tokens_per_s": 1000.0 / latency_ms * 16, "latency": {"p50_ms": latency_ms, "p95_ms": latency_ms * 1.5,
                                                              "n_batches": 32},
        "input_tokens": 128 * 32, "output_tokens": 128 * 16 if generating else 0,
    }
    if generating and energy_j is not None and token_j is not None:
        hf["phases"] = {
            "prefill": dict(block(energy_j * 128 * 0.2), duration_s=0.4, tokens=128 * 32,
                            per_token=block(energy_j * 0.2 / 32), tokens_per_s=10240.0, valid=True),
            "decode": dict(block(energy_j * 128 * 0.8), duration_s=1.6, tokens=128 * 15,
                           per_token=block(energy_j * 0.8 / 15), tokens_per_s=1200.0, valid=True)}
    rec["transformers"] = hf
    return rec


def database(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A merged database holding ``records`` (sorted by id, as `mlee merge` writes them)."""
    return {"schema_version": 1, "kind": "mlee-database", "mlee_version": "0.1.0",
            "records": sorted(records, key=lambda r: r["id"]), "summaries": [], "skipped": []}


#: Models of the small database: (name, energy J/sample, time ms, top1, parameters) on the first environment.
MODELS = (
    ("ResNet50", 1.00, 10.0, 0.76, 25_557_032),
    ("ResNet101", 1.90, 18.0, 0.77, 44_549_160),
    ("MobileNetV2", 0.30, 4.0, 0.71, 3_504_872),
    ("VGG16", 4.20, 35.0, 0.71, 138_357_544),
    ("EfficientNetB0", 0.45, 6.5, 0.77, 5_330_571),
)


def small_database(hostile: bool = False, traces: bool = False) -> dict[str, Any]:
    """Five models in each of two environments (the mlee preset's reference ResNet50 in both).

    With ``hostile``, one more model whose name is markup that would run script if inserted as HTML.
    With ``traces``, ResNet50's runs carry power samples of one RAPL zone (a counter source).
    """
    records = []
    for env_hw, factor, backend in (("Xeon(R) W-2155", 1.0, "pytorch"), ("AMD EPYC 7B13", 0.6, "tensorflow")):
        models = list(MODELS)
        if hostile:
            models.append(('<img src=x onerror="window.__pwned=1">&<script>window.__pwned=2</script>',
                           0.7, 9.0, 0.74, 11_000_000))
        for name, e, t, top1, params in models:
            samples = None
            if traces and name == "ResNet50":
                ts = [i * 0.1 for i in range(200)]
                power = [20.0 + (5.0 if 50 <= i < 150 else 0.0) for i in range(200)]
                energy = [0.0]
                for i in range(1, 200):
                    energy.append(energy[-1] + power[i] * 0.1)
                samples = {"rapl_package-0.t_s": ts, "rapl_package-0.energy_j": energy,
                           "rapl_package-0.power_w": [None] * 200, "rapl_package-0.valid": [1] * 200,
                           "host.t_s": ts, "host.proc_cpu_percent": [50.0] * 200}
            records.append(record(name, env_hw=env_hw, backend=backend, version="2.14.1" if backend == "pytorch"
                                  else "2.21.0", energy_j=e * factor, time_ms=t * factor, top1=top1,
                                  top5=min(1.0, top1 + 0.17), parameters=params, flops=params * 300.0,
                                  method="estimate" if name == "VGG16" else "counter", trace_samples=samples))
    return database(records)


def large_database(n_records: int, n_envs: int = 8, seed: int = 7) -> dict[str, Any]:
    """``n_records`` runs over ``n_envs`` environments (each with the reference ResNet50), for the benchmark."""
    rng = random.Random(seed)
    per_env = max(2, n_records // n_envs)
    records = []
    for e in range(n_envs):
        hw = f"Synthetic CPU {e}"
        for i in range(per_env):
            if len(records) >= n_records:
                break
            name = "ResNet50" if i == 0 else f"Model-{i:04d}"
            records.append(record(name, env_hw=hw, energy_j=rng.uniform(0.1, 5.0), time_ms=rng.uniform(2, 60),
                                  top1=rng.uniform(0.55, 0.85), top5=rng.uniform(0.85, 0.97),
                                  parameters=rng.randrange(1_000_000, 150_000_000), flops=rng.uniform(1e8, 2e10),
                                  method="estimate" if i % 7 == 3 else "counter", run=i))
    return database(records)


def copy_database(db: dict[str, Any], path: Path) -> Path:
    """Write ``db`` as a database file (the way `mlee merge` leaves it on disk)."""
    import json

    path.write_text(json.dumps(db, sort_keys=True), encoding="utf-8")
    return path


def have_pdftoppm() -> bool:
    return shutil.which("pdftoppm") is not None
