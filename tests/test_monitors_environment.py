"""environment.json facts and rank tags."""

from __future__ import annotations

from fakes.nvml import FakeGpu, FakeNvml
from mlee.measure.machine import cache_bytes, collect, parse_size, visible_gpus
from mlee.measure.record import rank_info


def test_parse_size():
    assert parse_size("32K\n") == 32 * 1024
    assert parse_size("1024 KB") == 1024 * 1024
    assert parse_size("8M") == 8 * 1024**2
    assert parse_size("junk") is None


def test_cache_sizes_from_a_sysfs_like_folder(tmp_path):
    for index, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                                 ("2", "Unified", "1024K"), ("3", "Unified", "32768K")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(level)
        (folder / "type").write_text(kind)
        (folder / "size").write_text(size)
    assert cache_bytes(tmp_path) == {"l1d": 48 * 1024, "l2": 1024**2, "l3": 32 * 1024**2}


def test_collect_has_the_design_keys():
    env = collect(gpus=[])
    assert {"hostname", "os", "kernel", "python", "cpu", "memory_bytes", "gpus", "packages",
            "mlee_version"} <= set(env)
    assert env["memory_bytes"] > 0 and env["cpu"]["cores_logical"] >= 1


def test_visible_gpus_from_nvml_and_none_without_driver(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    nvml = FakeNvml([FakeGpu(uuid="GPU-a"), FakeGpu(uuid="GPU-b", name="H100")])
    (gpu,) = visible_gpus(nvml)
    assert gpu["index"] == 1 and gpu["name"] == "H100" and gpu["uuid"] == "GPU-b"
    assert visible_gpus(FakeNvml([], init_error=12)) == []


def test_rank_info():
    assert rank_info({}) is None
    slurm = rank_info({"SLURM_JOB_ID": "77", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8"})
    assert (slurm["rank"], slurm["local_rank"], slurm["world_size"], slurm["job_id"]) == (5, 1, 8, "77")
