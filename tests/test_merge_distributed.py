"""A real 2-process torch.distributed (gloo, CPU) run, each rank under `mlee.measure`, merged into one record.

The machine's RAPL package is a fake powercap tree whose counter a thread in this test advances while the
job runs; both ranks read the same package (one host), so the merged job must count it once, not twice.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.powercap import Zone, make_powercap_tree
from mlee.cli import app

pytestmark = pytest.mark.slow

RANK_SCRIPT = '''
import os, sys


def rank_main(rank, world, port, out, tree):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch
    import torch.distributed as dist
    import mlee

    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    n = 0
    with mlee.measure("ddp-linear", kind="train", output_dir=out, sources=["rapl"], interval_s=0.05,
                      powercap_root=tree) as m:
        dist.barrier()
        with m.window("epoch-1", measured=True):
            for _ in range(40):
                loss = model(torch.randn(32, 16)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                n += 32
        dist.barrier()
        m.add_results(task="training", model="Linear16x4", device="cpu", dataset="synthetic", n_samples=n,
                      batch_size=32, backend={"name": "pytorch", "version": torch.__version__})
    dist.destroy_process_group()


if __name__ == "__main__":
    import torch.multiprocessing as mp

    mp.spawn(rank_main, args=(2, int(sys.argv[1]), sys.argv[2], sys.argv[3]), nprocs=2, join=True)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_rank_gloo_job_under_mlee_merges_into_one_record(tmp_path):
    pytest.importorskip("torch.distributed")
    tree = make_powercap_tree(tmp_path / "powercap", [Zone("intel-rapl:0", "package-0"),
                                                      Zone("intel-rapl:0:0", "dram")])
    stop = threading.Event()

    def heat() -> None:
        # The package draws 10 W: 0.1 J every 10 ms, written in place (RAPL keeps its file open).
        fd = os.open(tree / "intel-rapl:0" / "energy_uj", os.O_WRONLY)
        energy_uj = 0
        while not stop.is_set():
            energy_uj += 100_000
            os.pwrite(fd, b"%020d\n" % energy_uj, 0)
            time.sleep(0.01)
        os.close(fd)

    script = tmp_path / "ddp.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "results"
    heater = threading.Thread(target=heat)
    heater.start()
    try:
        proc = subprocess.run([sys.executable, str(script), str(_free_port()), str(out), str(tree)],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(
                                  Path(__file__).resolve().parents[1])})
    finally:
        stop.set()
        heater.join()
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted(out.iterdir())
    assert len(folders) == 2
    ranks = [json.loads((f / "results.json").read_text()) for f in folders]
    assert sorted(r["rank"]["rank"] for r in ranks) == [0, 1]
    assert all(r["rank"]["world_size"] == 2 and r["status"] == "completed" for r in ranks)

    db_path = tmp_path / "db.json"
    result = CliRunner().invoke(app, ["merge", str(out), "-o", str(db_path), "--strict"],
                                env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    db = json.loads(db_path.read_text())
    assert len(db["records"]) == 1 and db["skipped"] == []
    rec = db["records"][0]
    assert rec["rank"]["ranks"] == [0, 1] and len(rec["rank"]["hosts"]) == 1
    assert sorted(r["id"] for r in rec["rank_records"]) == sorted(f.name for f in folders)
    # One host, one package: counted once (from the rank that measured longest), not once per rank.
    per_rank = [r["energy_j"]["cpu"] for r in ranks]
    assert min(per_rank) > 0
    longest = max(ranks, key=lambda r: r["duration_s"])
    assert rec["energy_j"]["cpu"] == pytest.approx(longest["energy_j"]["cpu"])
    assert rec["energy_j"]["cpu"] < 0.75 * sum(per_rank)
    assert rec["energy_method"]["cpu"] == "counter"
    # Time is the job's span, from the first rank's start to the last rank's end.
    assert rec["duration_s"] >= max(r["duration_s"] for r in ranks)
    assert rec["start_utc"] == min(r["start_utc"] for r in ranks)
    assert rec["n_samples"] == sum(r["n_samples"] for r in ranks) == 2 * 40 * 32
    assert rec["per_sample"]["energy_j"]["total"] == pytest.approx(rec["energy_j"]["total"] / 2560)
    assert rec["environment"].endswith(f"PyTorch {ranks[0]['backend']['version']}")
    assert db["summaries"][0]["n"] == 1 and db["summaries"][0]["ids"] == [rec["id"]]
