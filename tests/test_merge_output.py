"""Writing the database: lock against concurrent merges, read-only locations, a full disk - old data intact."""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.results import load_database
from mlee.results.database import locked
from results_builders import make_experiment

ENV = {"NO_COLOR": "1", "COLUMNS": "200"}
T0 = dt.datetime(2026, 11, 22, 7, 0, 0)
MLEE = [sys.executable, "-m", "mlee"]


def _make(root, n, offset=0):
    return [make_experiment(root, name=f"m{i}", start=T0 + dt.timedelta(minutes=i)) for i in range(offset, offset + n)]


def _cli(*args, **kw):
    env = {**os.environ, **ENV}
    return subprocess.run([*MLEE, "merge", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120, **kw)


def test_concurrent_updates_both_land(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _make(a, 3)
    _make(b, 3, offset=10)
    out = tmp_path / "db.json"
    env = {**os.environ, **ENV}
    procs = [subprocess.Popen([*MLEE, "merge", str(d), "-o", str(out), "--update"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in (a, b)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    db = load_database(out)  # validated: never torn
    assert len(db["records"]) == 6  # neither update lost the other's records


def test_a_held_lock_makes_a_merge_wait_then_time_out(tmp_path):
    _make(tmp_path / "runs", 1)
    out = tmp_path / "db.json"
    with locked(out):
        started = time.monotonic()
        result = CliRunner().invoke(app, ["merge", str(tmp_path / "runs"), "-o", str(out), "--lock-timeout", "0.3"],
                                    env=ENV)
        assert time.monotonic() - started >= 0.3
    assert result.exit_code == 1
    assert "being written by another mlee merge" in result.output and "--lock-timeout" in result.output
    assert not out.exists()


def test_a_waiting_merge_proceeds_when_the_lock_is_released(tmp_path):
    _make(tmp_path / "runs", 1)
    out = tmp_path / "db.json"
    release = threading.Event()
    ready = threading.Event()

    def hold():
        with locked(out):
            ready.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    ready.wait(5)
    proc = subprocess.Popen([*MLEE, "merge", str(tmp_path / "runs"), "-o", str(out)], env={**os.environ, **ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert proc.poll() is None and not out.exists()  # still waiting for the lock
    release.set()
    t.join()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(load_database(out)["records"]) == 1


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root ignores them unless capabilities drop)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a location read-only")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def test_read_only_output_location_fails_cleanly_and_keeps_the_old_database(tmp_path):
    runs = tmp_path / "runs"
    _make(runs, 1)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "db.json"
    assert _cli(runs, "-o", out).returncode == 0
    before = out.read_bytes()
    _make(runs, 1, offset=1)
    os.chmod(outdir, 0o555)
    try:
        env = {**os.environ, **ENV}
        proc = subprocess.run([*_unprivileged(), *MLEE, "merge", str(runs), "-o", str(out), "--update"],
                              capture_output=True, text=True, env=env, timeout=120)
    finally:
        os.chmod(outdir, 0o755)
    assert proc.returncode == 1, proc.stderr
    assert "Permission denied" in proc.stderr and "Traceback" not in proc.stderr
    assert out.read_bytes() == before
    assert sorted(os.listdir(outdir)) == ["db.json", "db.json.lock", "db.mlee-index"]  # no temp file left


def _limit_file_size(limit: int):
    def set_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


def test_disk_full_while_writing_keeps_the_old_database(tmp_path):
    runs = tmp_path / "runs"
    _make(runs, 1)
    out = tmp_path / "db.json"
    assert _cli(runs, "-o", out).returncode == 0
    before = out.read_bytes()
    _make(runs, 6, offset=1)
    proc = _cli(runs, "-o", out, "--update", preexec_fn=_limit_file_size(len(before) + 100))
    assert proc.returncode == 1, proc.stderr
    assert "cannot write" in proc.stderr and "the old file is unchanged" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    # Once there is room again, the update goes through.
    assert _cli(runs, "-o", out, "--update").returncode == 0
    assert len(json.loads(out.read_text())["records"]) == 7


def test_output_file_mode_follows_the_umask(tmp_path):
    _make(tmp_path / "runs", 1)
    out = tmp_path / "db.json"
    old = os.umask(0o022)
    try:
        assert CliRunner().invoke(app, ["merge", str(tmp_path / "runs"), "-o", str(out)], env=ENV).exit_code == 0
    finally:
        os.umask(old)
    assert os.stat(out).st_mode & 0o777 == 0o644
