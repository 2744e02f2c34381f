"""scripts/slurm_array.sh against a stand-in `sbatch` that runs the jobs on this machine, in order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_array.sh"

FAKE_SBATCH = r'''#!/usr/bin/env bash
# Stand-in for sbatch: logs its arguments, runs the job script at once (array tasks one after another).
echo "sbatch $*" >> "$SBATCH_LOG"
array=""
cmd=()
for arg in "$@"; do
    if [[ ${#cmd[@]} -eq 0 && $arg == --* ]]; then
        [[ $arg == --array=* ]] && array=${arg#--array=}
        continue
    fi
    cmd+=("$arg")
done
if [[ -n $array ]]; then
    for i in $(seq "${array%-*}" "${array#*-}"); do
        SLURM_ARRAY_TASK_ID=$i SLURM_JOB_ID=$((700 + i)) "${cmd[@]}" >> "$SBATCH_LOG" 2>&1 || echo "task $i failed" >> "$SBATCH_LOG"
    done
    echo "700"
else
    "${cmd[@]}" >> "$SBATCH_LOG" 2>&1
    echo "800;cluster"
fi
'''

FAKE_MLEE = r'''#!/usr/bin/env bash
# Stand-in for `mlee infer`: writes the folder a measured run would; `merge` is the real mlee.
if [[ $1 == merge ]]; then exec "$REAL_MLEE" "$@"; fi
exec "$PYTHON" - "$@" <<'PY'
import os, sys
sys.path.insert(0, os.environ["TESTS_DIR"])
from results_builders import make_experiment
args = sys.argv[1:]
model, out = args[args.index("-m") + 1], args[args.index("-o") + 1]
if model == "Broken":
    sys.exit(1)
make_experiment(out, name=model.lower(), model=model,
                rank={"host": "n1", "rank": 0, "local_rank": 0, "world_size": 1, "job_id": os.environ["SLURM_JOB_ID"]})
PY
'''


@pytest.fixture
def fake_slurm(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("fake-mlee", FAKE_MLEE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_LOG": str(tmp_path / "sbatch.log"),
           "MLEE": str(bin_dir / "fake-mlee"), "REAL_MLEE": str(Path(sys.executable).parent / "mlee"),
           "PYTHON": sys.executable, "TESTS_DIR": str(Path(__file__).parent), "NO_COLOR": "1",
           "SBATCH_ARGS": "--gres=gpu:1 --time=01:00:00"}
    return env


def test_array_runs_every_model_into_one_folder_then_merges(tmp_path, fake_slurm):
    models = tmp_path / "models.txt"
    models.write_text("ResNet18\n# not this one\n\n  MobileNetV2  \nBroken\n")
    results = tmp_path / "results"
    proc = subprocess.run(["bash", str(SCRIPT), str(models), str(results), "--", "--backend", "pytorch"],
                          capture_output=True, text=True, env=fake_slurm, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "submitted array job 700 (3 models) and merge job 800" in proc.stdout
    log = (tmp_path / "sbatch.log").read_text()
    assert "--array=0-2" in log and "--dependency=afterany:700" in log and "--gres=gpu:1" in log
    assert "task 2 failed" in log  # a failing model does not stop the others or the merge
    db = json.loads((results / "merged.json").read_text())
    assert sorted(r["model"] for r in db["records"]) == ["MobileNetV2", "ResNet18"]
    assert sorted(r["rank"]["job_id"] for r in db["records"]) == ["700", "701"]
    assert len(db["summaries"]) == 2


def test_usage_errors(tmp_path, fake_slurm):
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "missing.txt")], capture_output=True, text=True,
                          env=fake_slurm)
    assert proc.returncode == 2 and "cannot read the model list" in proc.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    proc = subprocess.run(["bash", str(SCRIPT), str(empty)], capture_output=True, text=True, env=fake_slurm)
    assert proc.returncode == 2 and "lists no models" in proc.stderr
    proc = subprocess.run(["bash", str(SCRIPT), "--task", str(empty), str(tmp_path)], capture_output=True,
                          text=True, env={**fake_slurm, "SLURM_ARRAY_TASK_ID": "5"})
    assert proc.returncode == 2 and "no model number 5" in proc.stderr
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=fake_slurm)
    assert proc.returncode == 2 and "Usage:" in proc.stderr
