"""Builders of experiment folders in the format of docs/design.md §2, for the results and merge tests.

Figures are consistent the way a real session writes them: each source's energy is the last cumulative
value of its trace, components sum to the total, per-sample figures divide by ``n_samples``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

CPU_MODEL = "AMD EPYC 7B13 64-Core Processor"
GPU_NAME = "NVIDIA A100-SXM4-40GB"

#: (name, domain, method, power in watts) of the default sources.
DEFAULT_SOURCES = (("rapl:package-0", "cpu", "counter", 40.0), ("rapl:dram-0", "dram", "counter", 5.0))


def gpu_source(index: int, power_w: float = 200.0, method: str = "counter") -> tuple:
    return (f"nvml:{index}", "gpu", method, power_w)


def environment(host: str = "node1", gpus: int = 0, cpu_model: str = CPU_MODEL, uuid_prefix: str = "GPU-aaaa",
                packages: dict | None = None) -> dict:
    return {
        "hostname": host, "os": "Linux", "kernel": "6.1.0", "python": "3.11.9",
        "cpu": {"model": cpu_model, "vendor": "AuthenticAMD", "cores_physical": 2, "cores_logical": 4,
                "cache_bytes": {"l1d": 32768, "l2": 524288, "l3": 33554432}},
        "memory_bytes": 16 * 1024 ** 3,
        "gpus": [{"index": i, "name": GPU_NAME, "uuid": f"{uuid_prefix}-{i:04d}", "driver": "550.54",
                  "memory_bytes": 40 * 1024 ** 3} for i in range(gpus)],
        "packages": packages if packages is not None else {"torch": "2.14.1", "numpy": "2.4.6"},
        "mlee_version": "0.1.0",
    }


def _utc(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_trace(path: Path, rows: list[list[Any]], header: str = "t_s,energy_j,power_w,valid") -> None:
    lines = [header] + [",".join("" if v is None else (f"{v:.6f}" if isinstance(v, float) else str(v)) for v in r)
                        for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_experiment(
    root: str | Path,
    name: str = "resnet18",
    kind: str = "infer",
    *,
    start: dt.datetime | None = None,
    duration_s: float = 2.0,
    interval_s: float = 0.1,
    sources: tuple = DEFAULT_SOURCES,
    status: str = "completed",
    model_run: bool = True,
    model: str = "ResNet18",
    backend: tuple[str, str] = ("pytorch", "2.14.1"),
    device: str = "cpu",
    n_samples: int = 64,
    estimated: bool = False,
    env: dict | None = None,
    rank: dict | None = None,
    folder_name: str | None = None,
    overrides: dict | None = None,
    host_csv: bool = True,
) -> Path:
    """Write one experiment folder under ``root`` and return its path.

    Units: ``duration_s``/``interval_s`` seconds; source powers in watts.
    """
    start = start or dt.datetime(2026, 11, 22, 7, 1, 2, 123456)
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    salt = hashlib.sha256(f"{name}{kind}{start.isoformat()}{json.dumps(rank, sort_keys=True)}".encode()).hexdigest()
    ident = folder_name or f"{kind}-{name}-{stamp}-{salt[:6]}"
    folder = Path(root) / ident
    (folder / "power").mkdir(parents=True)
    n_rows = int(round(duration_s / interval_s)) + 1
    src_records = []
    energy: dict[str, float | None] = {"cpu": None, "dram": None, "gpu": None}
    methods: dict[str, str | None] = {"cpu": None, "dram": None, "gpu": None}
    strength = {"counter": 2, "power_integration": 1, "estimate": 0}
    env = env if env is not None else environment(gpus=sum(1 for s in sources if s[1] == "gpu"))
    for src_name, domain, method, power_w in sources:
        rows = [[i * interval_s, power_w * i * interval_s, power_w + (i % 3) * 0.5, 1] for i in range(n_rows)]
        write_trace(folder / "power" / (src_name.replace(":", "_") + ".csv"), rows)
        e_j = rows[-1][1]
        detail: dict[str, Any] = {}
        if domain == "gpu":
            idx = int(src_name.split(":")[1])
            g = next((g for g in env.get("gpus", []) if g.get("index") == idx), None)
            detail = {"index": idx, "name": g["name"] if g else GPU_NAME, "uuid": g["uuid"] if g else None}
        src_records.append({"name": src_name, "domain": domain, "method": method, "energy_j": e_j,
                            "n_samples": n_rows, "valid": True, "invalid_intervals": [], "detail": detail})
        energy[domain] = (energy[domain] or 0.0) + e_j
        prev = methods[domain]
        methods[domain] = method if prev is None or strength[method] < strength[prev] else prev
    parts = [v for v in energy.values() if v is not None]
    energy["total"] = sum(parts) if parts else None
    used = [m for m in methods.values() if m is not None]
    methods["total"] = min(used, key=lambda m: strength[m]) if used else None
    if host_csv:
        write_trace(folder / "power" / "host.csv",
                    [[i * interval_s, 95.0 + i % 5, 500_000_000 + i, 40.0, 8_000_000_000] for i in range(n_rows)],
                    header="t_s,proc_cpu_percent,proc_rss_bytes,sys_cpu_percent,sys_mem_used_bytes")
    end = start + dt.timedelta(seconds=duration_s)
    results: dict[str, Any] = {
        "schema_version": 1, "id": ident, "kind": kind, "name": name, "status": status,
        "error": None if status == "completed" else "RuntimeError: boom",
        "start_utc": _utc(start), "end_utc": _utc(end), "duration_s": duration_s,
        "energy_j": energy, "energy_method": methods, "estimated": estimated or methods["total"] == "estimate",
        "sources": src_records, "skipped_sources": [], "baseline": None,
        "windows": [{"name": "repeat-0", "measured": True, "start_s": 0.0, "end_s": duration_s,
                     "duration_s": duration_s, "n_samples": n_samples, "energy_j": dict(energy),
                     "energy_method": dict(methods)}],
        "rank": rank, "exit_code": 0 if status == "completed" else 1, "carbon": None,
    }
    if model_run:
        results.update({
            "task": "inference" if kind == "infer" else "training", "model": model,
            "backend": {"name": backend[0], "version": backend[1]}, "device": device, "dataset": "synthetic",
            "n_samples": n_samples, "batch_size": 32,
            "metrics": {"top1": None, "top5": None, "loss": None},
            "model_info": {"parameters": 11689512, "flops": 3.6e9, "macs": 1.8e9, "weights_bytes": 46827520},
            "per_sample": {"energy_j": {k: (v / n_samples if v is not None else None) for k, v in energy.items()},
                           "energy_method": dict(methods), "time_ms": duration_s / n_samples * 1000.0,
                           "throughput_per_s": n_samples / duration_s},
            "repeats": None, "training": None,
        })
    for key, value in (overrides or {}).items():
        results[key] = value
    config = {"kind": kind, "name": name, "interval_s": interval_s, "sources": None, "command": None,
              "model": model if model_run else None}
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "environment.json").write_text(json.dumps(env, indent=2), encoding="utf-8")
    (folder / "log.txt").write_text("ok\n", encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return folder


def edit_results(folder: Path, **changes: Any) -> None:
    """Rewrite results.json with top-level keys changed."""
    path = folder / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def find_legacy_dir() -> Path | None:
    """The 2022 logs: $MLEE_LEGACY_DIR, else ``<repo>/../shared/legacy-mlee-2022``; None when absent."""
    import os

    env = os.environ.get("MLEE_LEGACY_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "legacy-mlee-2022")
    for c in candidates:
        if (c / "results").is_dir() or any(c.glob("*_*.json")):
            return c
    return None


try:
    import pytest as _pytest

    @_pytest.fixture
    def legacy_dir() -> Path:
        """The 2022 log folder; the test is skipped cleanly when it is not there."""
        found = find_legacy_dir()
        if found is None:
            _pytest.skip("the 2022 mlee logs are not here (set MLEE_LEGACY_DIR)")
        return found

    @_pytest.fixture
    def legacy_dir_or_none() -> Path | None:
        return find_legacy_dir()
except ImportError:  # pragma: no cover - the builders are also used by scripts without pytest
    pass


class MergeSaid:
    """A `mlee merge` CLI result whose ``output`` has rich's line wrapping undone (tables wrap at COLUMNS)."""

    def __init__(self, result: Any) -> None:
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())


def run_merge(*args: Any) -> MergeSaid:
    """Run `mlee merge ARGS...` through typer's CliRunner with a fixed width and no colour."""
    from typer.testing import CliRunner

    from mlee.cli import app

    return MergeSaid(CliRunner().invoke(app, ["merge", *map(str, args)], env={"NO_COLOR": "1", "COLUMNS": "120"}))
