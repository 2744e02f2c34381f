"""Multi-rank jobs: one record per job, GPUs once by UUID, each host's CPU and DRAM once, time = job span."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from results_builders import DEFAULT_SOURCES, environment, gpu_source, make_experiment

ENV = {"NO_COLOR": "1", "COLUMNS": "200"}
T0 = dt.datetime(2026, 11, 22, 7, 0, 0)


def _rank(root, rank, world, host, *, job="4711", gpus=2, uuid="GPU-node1", start_s=0.0, duration_s=10.0,
          name="ddp", n_samples=64):
    sources = DEFAULT_SOURCES + tuple(gpu_source(i) for i in range(gpus))
    return make_experiment(
        root, name=name, kind="train", start=T0 + dt.timedelta(seconds=start_s), duration_s=duration_s,
        interval_s=0.5, sources=sources, device="cuda", n_samples=n_samples,
        env=environment(host=host, gpus=gpus, uuid_prefix=uuid),
        rank={"host": host, "rank": rank, "local_rank": rank % 2, "world_size": world, "job_id": job})


def _merge(tmp_path, *args):
    out = tmp_path / "db.json"
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "runs"), "-o", str(out), *args], env=ENV)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), " ".join(result.output.split())


def test_two_ranks_on_one_host_count_each_device_once(tmp_path):
    runs = tmp_path / "runs"
    r0 = _rank(runs, 0, 2, "node1", start_s=0.0, duration_s=10.0)
    _rank(runs, 1, 2, "node1", start_s=0.5, duration_s=10.0 - 0.5)
    db, _ = _merge(tmp_path)
    assert len(db["records"]) == 1 and db["skipped"] == []
    rec = db["records"][0]
    assert rec["id"] == r0.name
    # Each rank saw both GPUs and the one RAPL package: counted once, from the rank that measured longest.
    assert rec["energy_j"]["gpu"] == pytest.approx(2 * 200.0 * 10.0)
    assert rec["energy_j"]["cpu"] == pytest.approx(40.0 * 10.0)
    assert rec["energy_j"]["dram"] == pytest.approx(5.0 * 10.0)
    assert rec["energy_j"]["total"] == pytest.approx(4000.0 + 400.0 + 50.0)
    assert rec["energy_method"]["total"] == "counter"
    assert rec["duration_s"] == pytest.approx(10.0)  # job span: 0 .. max(10, 0.5 + 9.5)
    assert len([s for s in rec["sources"] if s["domain"] == "gpu"]) == 2
    assert rec["rank"]["world_size"] == 2 and rec["rank"]["ranks"] == [0, 1] and rec["rank"]["hosts"] == ["node1"]
    assert [r["rank"] for r in rec["rank_records"]] == [0, 1]
    assert rec["environment"] == "A100 x2 - PyTorch 2.14.1"
    assert rec["n_samples"] == 128
    assert rec["per_sample"]["energy_j"]["total"] == pytest.approx(4450.0 / 128)
    assert rec["per_sample"]["time_ms"] == pytest.approx(10.0 / 128 * 1000)
    assert "rank1/rapl_package-0.power_w" in rec["traces"]


def test_two_hosts_count_each_hosts_cpu_and_their_own_gpus(tmp_path):
    runs = tmp_path / "runs"
    _rank(runs, 0, 2, "node1", gpus=1, uuid="GPU-n1", duration_s=8.0)
    _rank(runs, 1, 2, "node2", gpus=1, uuid="GPU-n2", start_s=1.0, duration_s=8.0)
    db, _ = _merge(tmp_path)
    rec = db["records"][0]
    assert rec["energy_j"]["gpu"] == pytest.approx(2 * 200.0 * 8.0)  # two different GPUs
    assert rec["energy_j"]["cpu"] == pytest.approx(2 * 40.0 * 8.0)  # one package per host
    assert rec["duration_s"] == pytest.approx(9.0)  # from the first start to the last end
    assert rec["rank"]["hosts"] == ["node1", "node2"]
    assert rec["environment"] == "A100 x2 (2 nodes) - PyTorch 2.14.1"


def test_incomplete_job_is_skipped_until_update_brings_the_missing_rank(tmp_path):
    runs = tmp_path / "runs"
    _rank(runs, 0, 3, "node1")
    _rank(runs, 2, 3, "node1")
    db, said = _merge(tmp_path)
    assert db["records"] == []
    assert len(db["skipped"]) == 2
    assert all(s["reason"] == "job 4711: 2 of 3 ranks present (missing rank 1)" for s in db["skipped"])
    assert "missing rank 1" in said
    _rank(runs, 1, 3, "node1")
    db, said = _merge(tmp_path, "--update")
    assert len(db["records"]) == 1 and db["skipped"] == []
    assert db["records"][0]["rank"]["ranks"] == [0, 1, 2]
    assert "3 input(s) read" in said  # the job's earlier ranks are read again to combine them


def test_without_job_id_ranks_that_ran_together_are_one_job(tmp_path):
    runs = tmp_path / "runs"
    for start in (0.0, 3600.0):  # two torchrun jobs of the same script, an hour apart
        _rank(runs, 0, 2, "node1", job=None, start_s=start)
        _rank(runs, 1, 2, "node1", job=None, start_s=start + 0.2, duration_s=9.8)
    db, _ = _merge(tmp_path)
    assert len(db["records"]) == 2 and db["skipped"] == []
    assert all(r["rank"]["ranks"] == [0, 1] for r in db["records"])


def test_repeated_rank_is_reported(tmp_path):
    runs = tmp_path / "runs"
    _rank(runs, 0, 2, "node1")
    _rank(runs, 1, 2, "node1")
    _rank(runs, 1, 2, "node1", start_s=0.1)
    db, _ = _merge(tmp_path)
    assert db["records"] == []
    assert {s["reason"].split(" (")[0] for s in db["skipped"]} == {"rank 1 appears twice"}


def test_a_failed_rank_makes_the_job_failed(tmp_path):
    runs = tmp_path / "runs"
    _rank(runs, 0, 2, "node1")
    folder = _rank(runs, 1, 2, "node1")
    data = json.loads((folder / "results.json").read_text())
    data.update(status="failed", error="RuntimeError: NCCL timeout", exit_code=1)
    (folder / "results.json").write_text(json.dumps(data))
    db, _ = _merge(tmp_path)
    rec = db["records"][0]
    assert rec["status"] == "failed" and rec["error"] == "RuntimeError: NCCL timeout" and rec["exit_code"] == 1
    assert db["summaries"] == []  # failed runs are not summarised


def test_update_with_unrelated_folders_keeps_a_merged_job(tmp_path):
    runs = tmp_path / "runs"
    _rank(runs, 0, 2, "node1")
    _rank(runs, 1, 2, "node1")
    first, _ = _merge(tmp_path)
    make_experiment(runs, name="single", start=T0 + dt.timedelta(hours=2))
    db, said = _merge(tmp_path, "--update")
    assert "1 input(s) read, 2 unchanged" in said
    assert db["skipped"] == [] and len(db["records"]) == 2
    assert first["records"][0] in db["records"]
