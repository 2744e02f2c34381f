"""stdout is data (`--json`, tables): what libraries print while mlee loads them must not land there.

The real amdsmi package print()s its loader error to stdout and raises KeyError when ROCm's libamd_smi.so is
missing (a fresh `pip install 'mlee[all]'` on any machine without ROCm); codecarbon imports it. A stand-in with
the same behaviour is put first on the path of a real `mlee` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOISE = "libamd_smi.so: cannot open shared object file (printed by the stand-in)"


@pytest.fixture()
def noisy_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "amdsmi.py").write_text(f"print({NOISE!r})\nraise KeyError('libamd_smi.so')\n")
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "NO_COLOR": "1", "COLUMNS": "120",
            "MLEE_POWERCAP_ROOT": str(tmp_path / "no-powercap")}


def _mlee(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlee", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_doctor_json_stays_json(noisy_env):
    done = _mlee(noisy_env, "doctor", "--json")
    report = json.loads(done.stdout)  # the whole of stdout is the report
    amd = next(s for s in report["sources"] if s["name"] == "amdsmi")
    assert not amd["available"] and NOISE in amd["reason"]  # what the package said goes into the reason


@pytest.mark.parametrize("sampler", ["process", "thread"])
def test_a_measured_run_with_the_codecarbon_estimate_keeps_stdout_clean(noisy_env, tmp_path, sampler):
    env = {**noisy_env, "MLEE_SAMPLER": sampler}
    done = _mlee(env, "run", "--source", "estimate", "-o", str(tmp_path / "runs"), "--", sys.executable, "-c",
                 "import time; time.sleep(0.3)")
    assert done.returncode == 0, done.stderr
    assert NOISE not in done.stdout
    assert NOISE not in done.stderr  # codecarbon's import of it: mlee's own probe says why, in `mlee doctor`
    (folder,) = (tmp_path / "runs").iterdir()
    assert json.loads((folder / "results.json").read_text())["status"] == "completed"
