"""`mlee run -- CMD`: tee, exit codes, failed and interrupted runs, a killed run keeps its samples."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.powercap import Zone, make_powercap_tree
from mlee.cli import app
from mlee.results.tracefile import read_trace

ROOT = Path(__file__).resolve().parents[1]
ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 1000)])
    monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(root))
    return root


def run(tmp_path, *cmd: str, options=()):
    args = ["run", "--source", "rapl", "--output-dir", str(tmp_path / "out"), *options, "--", *cmd]
    return CliRunner().invoke(app, args, env=ENV)


def only_folder(tmp_path) -> Path:
    (folder,) = list((tmp_path / "out").iterdir())
    return folder


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_output_is_teed_and_the_exit_code_passed_on(tmp_path, tree):
    script = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(5)"
    result = run(tmp_path, sys.executable, "-c", script, options=["--name", "exit five"])
    assert result.exit_code == 5
    assert "to stdout" in result.stdout
    folder = only_folder(tmp_path)
    assert folder.name.startswith("run-exit-five-")
    log = (folder / "log.txt").read_text()
    assert "to stdout" in log and "to stderr" in log
    data = results(folder)
    assert data["status"] == "failed" and data["exit_code"] == 5 and "code 5" in data["error"]
    assert data["energy_method"]["cpu"] == "counter" and data["command"][0] == sys.executable
    assert json.loads((folder / "config.json").read_text())["command"][1:] == ["-c", script]


def test_success_is_completed(tmp_path, tree):
    result = run(tmp_path, sys.executable, "-c", "pass")
    assert result.exit_code == 0, result.output
    data = results(only_folder(tmp_path))
    assert data["status"] == "completed" and data["exit_code"] == 0
    assert [w["name"] for w in data["windows"]] == ["command"]
    assert "completed" in result.stderr and str(only_folder(tmp_path)) in " ".join(result.stderr.split())


def test_command_not_found_exits_127_with_a_failed_folder(tmp_path, tree):
    result = run(tmp_path, "no-such-command-mlee")
    assert result.exit_code == 127
    assert "command not found: no-such-command-mlee" in result.stderr
    data = results(only_folder(tmp_path))
    assert data["status"] == "failed" and data["exit_code"] == 127 and data["energy_j"]["cpu"] is not None


def test_usage_errors_exit_2_and_write_nothing(tmp_path, tree):
    assert run(tmp_path).exit_code == 2
    assert run(tmp_path, "true", options=["--interval", "0"]).exit_code == 2
    assert run(tmp_path, "true", options=["--baseline-s", "-1"]).exit_code == 2
    bad = CliRunner().invoke(app, ["run", "--source", "battery", "-o", str(tmp_path / "out"), "--", "true"], env=ENV)
    assert bad.exit_code == 2 and "unknown power source 'battery'" in bad.stderr
    assert not (tmp_path / "out").exists()


def test_requested_source_missing_exits_3(tmp_path, monkeypatch):
    monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(tmp_path / "absent"))
    result = run(tmp_path, "true")
    assert result.exit_code == 3 and "RAPL is not available" in result.stderr
    assert not (tmp_path / "out").exists()


def test_baseline_is_reported(tmp_path, tree):
    result = run(tmp_path, sys.executable, "-c", "pass", options=["--baseline-s", "0.3"])
    assert result.exit_code == 0, result.output
    baseline = results(only_folder(tmp_path))["baseline"]
    assert baseline["duration_s"] == pytest.approx(0.3, abs=0.1)
    assert set(baseline["power_w"]) == {"total", "cpu", "dram", "gpu"} and baseline["power_w"]["dram"] is None


def _spawn_mlee(tmp_path: Path, root: Path, *cmd: str) -> subprocess.Popen:
    env = {**os.environ, **ENV, "MLEE_POWERCAP_ROOT": str(root)}
    return subprocess.Popen([sys.executable, "-m", "mlee", "run", "--source", "rapl", "--interval", "0.05",
                             "-o", str(tmp_path / "out"), "--", *cmd], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_ctrl_c_is_forwarded_and_recorded_as_interrupted(tmp_path, tree):
    child = ("import signal, sys, time\n"
             "def stop(*_):\n    print('child got SIGINT', flush=True); sys.exit(0)\n"
             "signal.signal(signal.SIGINT, stop)\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = _spawn_mlee(tmp_path, tree, sys.executable, "-c", child)
    try:
        _wait_for(lambda: (tmp_path / "out").exists() and any(
            "ready" in (f / "log.txt").read_text() for f in (tmp_path / "out").iterdir() if (f / "log.txt").exists()))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    folder = only_folder(tmp_path)
    assert "child got SIGINT" in (folder / "log.txt").read_text()
    data = results(folder)
    assert data["status"] == "interrupted" and data["end_utc"]


def test_a_run_killed_with_sigkill_keeps_its_samples(tmp_path, tree):
    import psutil

    proc = _spawn_mlee(tmp_path, tree, "sleep", "30")
    try:
        _wait_for(lambda: (tmp_path / "out").exists() and any((tmp_path / "out").iterdir()))
        folder = only_folder(tmp_path)
        csv_path = folder / "power" / "rapl_package-0.csv"
        _wait_for(lambda: csv_path.exists())
        time.sleep(2.0)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        for child in locals().get("children", []):
            child.kill()
        if proc.poll() is None:
            proc.kill()
    trace = read_trace(csv_path)
    assert max(trace["t_s"]) >= 0.9  # at most about a second of samples lost
    assert len(trace["t_s"]) >= 10
    assert results(folder)["status"] == "running"  # honest: it never finished


def test_permission_denied_exits_4(tmp_path):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 5)])
    os.chmod(root / "intel-rapl:0" / "energy_uj", 0o000)
    cmd = [sys.executable, "-m", "mlee", "run", "--source", "rapl", "-o", str(tmp_path / "out"), "--", "true"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        caps = "-dac_override,-dac_read_search"
        cmd = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, **ENV, "MLEE_POWERCAP_ROOT": str(root)})
    assert proc.returncode == 4, proc.stderr
    assert "permission denied" in proc.stderr and "Linux 5.10" in " ".join(proc.stderr.split())


def test_a_background_grandchild_holding_the_pipe_does_not_hang_the_run(tmp_path, tree):
    start = time.monotonic()
    result = run(tmp_path, "sh", "-c", "echo started; sleep 8 &")
    assert result.exit_code == 0 and time.monotonic() - start < 7
    assert "started" in (only_folder(tmp_path) / "log.txt").read_text()
