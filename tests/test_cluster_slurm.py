"""scripts/slurm_array.sh on a real one-node SLURM (munge, slurmctld, slurmd) started by scripts/slurm_local.sh.

The array tasks run a stand-in for `mlee infer` that writes the folder a measured run writes (measuring is tested
elsewhere; here SLURM's array indices, job ids, environment, failure handling and the afterany dependency are what
is under test). The merge job runs the real `mlee merge`, and the labels are made from its database.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "scripts" / "slurm_local.sh"
ARRAY = REPO / "scripts" / "slurm_array.sh"
JOBS_TIMEOUT_S = 180

STAND_IN = r'''#!/usr/bin/env bash
# Stand-in for `mlee infer` inside a SLURM array task; `merge` is the real mlee. Every step is logged with its time.
if [[ $1 == merge ]]; then
    echo "merge-start $("$PYTHON" -c 'import time; print(time.time())') job=$SLURM_JOB_ID" >> "$ORDER_LOG"
    exec "$PYTHON" -m mlee "$@"
fi
exec "$PYTHON" - "$@" <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["TESTS_DIR"])
from results_builders import make_experiment
args = sys.argv[1:]
model, out = args[args.index("-m") + 1], args[args.index("-o") + 1]
rank = {"host": os.uname().nodename, "rank": 0, "local_rank": 0, "world_size": 1, "job_id": os.environ["SLURM_JOB_ID"]}
failed = model == "Broken"
make_experiment(out, name=model.lower(), model=model, rank=rank, status="failed" if failed else "completed",
                overrides={"error": "RuntimeError: CUDA out of memory"} if failed else None)
with open(os.environ["ORDER_LOG"], "a") as log:
    log.write(f"task-end {time.time()} index={os.environ['SLURM_ARRAY_TASK_ID']} "
              f"array={os.environ['SLURM_ARRAY_JOB_ID']} job={os.environ['SLURM_JOB_ID']}\n")
sys.exit(1 if failed else 0)
PY
'''


@pytest.fixture(scope="module")
def slurm_env():
    """Start the cluster in a short temporary folder (munge's socket path has a length limit); stop it after."""
    if sys.platform != "linux" or shutil.which("bash") is None:
        pytest.skip("the local SLURM needs Linux and bash")
    folder = Path(tempfile.mkdtemp(prefix="mlee-slurm-"))
    env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin", "SLURM_LOCAL_TIMEOUT_S": "30"}
    try:
        proc = subprocess.run(["bash", str(SETUP), "start", str(folder)], capture_output=True, text=True, env=env,
                              timeout=120)
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(SETUP), "stop", str(folder)], env=env, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip("the local SLURM did not start within 120 s")
    if proc.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        reason = next((line for line in proc.stderr.splitlines() if line.startswith("error:")), proc.stderr.strip())
        pytest.skip(f"no local SLURM here: {reason}")
    env["SLURM_CONF"] = str(folder / "slurm.conf")
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SETUP), "stop", str(folder)], env=env, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _job_states(env: dict, job_id: str) -> list[dict[str, str]]:
    """`scontrol show job` of a job (every task of an array) as dicts of its fields."""
    proc = subprocess.run(["scontrol", "show", "job", job_id, "-o"], capture_output=True, text=True, env=env,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in proc.stdout.splitlines() if line.strip()]


def _wait_done(env: dict, job_id: str) -> dict[str, str]:
    deadline = time.monotonic() + JOBS_TIMEOUT_S
    while time.monotonic() < deadline:
        state = _job_states(env, job_id)[0]
        if state["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return state
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not end within {JOBS_TIMEOUT_S} s: {_job_states(env, job_id)}")


def test_array_on_real_slurm_records_every_task_then_merges_and_labels(tmp_path, slurm_env):
    stand_in = tmp_path / "mlee-stand-in"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    order_log = tmp_path / "order.log"
    env = {**slurm_env, "MLEE": str(stand_in), "PYTHON": sys.executable, "TESTS_DIR": str(Path(__file__).parent),
           "ORDER_LOG": str(order_log), "NO_COLOR": "1", "MERGE_SBATCH_ARGS": "--time=00:05:00",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    models = tmp_path / "models.txt"
    models.write_text("ResNet50\nBroken\nMobileNetV2\n")
    results = tmp_path / "results"
    proc = subprocess.run(["bash", str(ARRAY), str(models), str(results), "--", "--backend", "pytorch"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"submitted array job (\d+) \(3 models\) and merge job (\d+)", proc.stdout)
    assert found, proc.stdout
    array_id, merge_id = found.groups()

    merge_state = _wait_done(env, merge_id)
    assert merge_state["JobState"] == "COMPLETED", merge_state
    assert merge_state["Dependency"] == "(null)"  # resolved, not left pending
    tasks = {int(t["ArrayTaskId"]): t for t in _job_states(env, array_id)}
    assert sorted(tasks) == [0, 1, 2]
    assert [tasks[i]["JobState"] for i in range(3)] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert tasks[1]["ExitCode"] == "1:0"

    log = order_log.read_text().splitlines()
    ends = [line for line in log if line.startswith("task-end")]
    starts = [line for line in log if line.startswith("merge-start")]
    assert len(ends) == 3 and len(starts) == 1, log
    assert all(f"array={array_id}" in line for line in ends)
    assert float(starts[0].split()[1]) >= max(float(line.split()[1]) for line in ends)  # afterany: after all tasks

    db = json.loads((results / "merged.json").read_text())
    by_model = {r["model"]: r for r in db["records"]}
    assert sorted(by_model) == ["Broken", "MobileNetV2", "ResNet50"]  # one record per task
    assert by_model["Broken"]["status"] == "failed" and "out of memory" in by_model["Broken"]["error"]
    assert {by_model[m]["status"] for m in ("MobileNetV2", "ResNet50")} == {"completed"}
    job_ids = {t["JobId"] for t in tasks.values()}
    assert {r["rank"]["job_id"] for r in db["records"]} == job_ids  # SLURM_JOB_ID of each task, as SLURM set it
    assert (results / "slurm-logs" / f"merge-{merge_id}.out").is_file()

    from typer.testing import CliRunner

    from mlee.cli import app

    labels = tmp_path / "labels"
    out = CliRunner().invoke(app, ["label", str(results / "merged.json"), "--all", "-o", str(labels)],
                             env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    pdfs = sorted(p.name for p in labels.glob("*.pdf"))
    assert len(pdfs) == 2 and pdfs[0].startswith("MobileNetV2--") and pdfs[1].startswith("ResNet50--")
    assert all((labels / p).read_bytes().startswith(b"%PDF") for p in pdfs)
