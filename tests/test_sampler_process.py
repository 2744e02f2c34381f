"""The sampler process (mlee/measure/worker.py, pool.py): one per measured process, reused, gone with it.

These tests run the real sampler process on a powercap tree in tmp_path (the same file reads as sysfs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from fakes.powercap import Zone, make_powercap_tree, set_energy
from mlee.errors import SourceUnavailable
from mlee.measure.pool import process_pool
from mlee.measure.session import Measurement

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_powercap_tree(tmp_path / "powercap", [Zone("intel-rapl:0", "package-0", energy_uj=1_000_000)])


def session(tmp_path: Path, tree: Path, name: str = "s", **kw) -> Measurement:
    kw.setdefault("write_log", False)
    return Measurement(name, output_dir=tmp_path / "results", sources=["rapl"], powercap_root=tree,
                       interval_s=0.05, **kw)


def gone(pid: int, within_s: float = 15.0) -> bool:
    """True once ``pid`` has ended (a zombie waiting for a reaper counts as ended)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_later_sessions_reuse_the_sampler_process_and_stay_exact(tmp_path, tree):
    jsonschema = pytest.importorskip("jsonschema")
    energies, pids, reused = [], [], []
    for i in range(3):
        with session(tmp_path, tree, f"s{i}", write_log=True) as m:
            assert m.sources[0].name == "rapl:package-0"
            with m.window("w") as w:
                set_energy(tree, "intel-rapl:0", 3_500_000)  # +2.5 J during the window
        set_energy(tree, "intel-rapl:0", 1_000_000)  # a new session opens the counter afresh
        energies.append(w.record["energy_j"]["cpu"])
        reused.append(m.result.results["sampler"]["process_reused"])
        pids += process_pool().idle_pids()
        # the sampler process wrote these itself, off the measured interpreter
        assert json.loads((m.folder / "environment.json").read_text())["hostname"]
        stats = m.folder / "power" / "stats.json"
        if stats.exists():
            traces = json.loads(stats.read_text())["traces"]
            assert traces["rapl_package-0.csv"]["channels"]["energy_j"]["max"] == pytest.approx(2.5)
        else:  # a session ended before the process loaded numpy: the statistics are left to merge, and it says so
            assert "power/stats.json not written (the session ended while the sampler process was still loading)" \
                in (m.folder / "log.txt").read_text()
        assert m.result.status == "completed"
        for name in ("results", "environment", "config"):  # what the sampler process wrote is mlee's format
            schema = json.loads((REPO / "mlee" / "schema" / f"{name}.schema.json").read_text())
            jsonschema.validate(json.loads((m.folder / f"{name}.json").read_text()), schema)
    assert energies == pytest.approx([2.5, 2.5, 2.5])
    assert reused[1:] == [True, True]
    assert len(set(pids)) == 1, pids  # one process served all three


def test_a_source_that_fails_to_open_leaves_the_process_reusable(tmp_path, tree):
    with session(tmp_path, tree, "warm"):
        pass
    (pid,) = process_pool().idle_pids()
    with pytest.raises(SourceUnavailable):
        session(tmp_path, tmp_path / "no-powercap", "bad").start()
    assert not list((tmp_path / "results").glob("*bad*"))  # nothing created
    assert process_pool().idle_pids() == [pid]
    with session(tmp_path, tree, "after") as m:
        pass
    assert m.result.results["sampler"]["process_reused"] is True
    assert process_pool().idle_pids() == [pid]


def test_two_sessions_at_once_get_two_processes(tmp_path, tree):
    with session(tmp_path, tree, "outer") as outer:
        with session(tmp_path, tree, "inner") as inner:
            set_energy(tree, "intel-rapl:0", 4_000_000)
    assert inner.result.energy_j["total"] == pytest.approx(3.0)
    assert outer.result.energy_j["total"] == pytest.approx(3.0)
    assert len(process_pool().idle_pids()) == 1  # one kept idle, the other let go


SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from mlee.measure.session import Measurement
from mlee.measure.pool import process_pool
def session(name):
    return Measurement(name, output_dir={out!r}, sources=["rapl"], powercap_root={tree!r}, write_log=False,
                       interval_s=0.05)
with session("first"):
    pass
print(process_pool().idle_pids()[0], flush=True)
if sys.argv[1] in ("kill", "fork"):
    m = session("killed").start()
    print(m.folder, flush=True)
    if sys.argv[1] == "fork":  # a fork (a data loader's worker) keeps a copy of the socket open
        import os
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
    time.sleep(60)
"""


def run_script(tmp_path: Path, tree: Path, mode: str) -> subprocess.Popen:
    script = SCRIPT.format(repo=str(REPO), out=str(tmp_path / "results"), tree=str(tree))
    return subprocess.Popen([sys.executable, "-c", script, mode], stdout=subprocess.PIPE, text=True)


def test_the_idle_sampler_process_ends_with_the_measured_process(tmp_path, tree):
    proc = run_script(tmp_path, tree, "exit")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert gone(int(out.split()[0]))


def test_a_killed_measured_process_takes_its_sampler_process_along_and_keeps_the_traces(tmp_path, tree):
    proc = run_script(tmp_path, tree, "kill")
    pid = int(proc.stdout.readline())
    folder = Path(proc.stdout.readline().strip())
    time.sleep(1.5)  # traces reach the disk at least once a second
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert gone(pid)
    rows = (folder / "power" / "rapl_package-0.csv").read_text().splitlines()
    assert len(rows) > 10  # header + samples at 20 Hz for 1.5 s, not only the first row
    assert json.loads((folder / "results.json").read_text())["status"] == "running"  # merge marks it interrupted


def test_the_sampler_process_ends_with_the_measured_process_even_when_a_fork_outlives_it(tmp_path, tree):
    proc = run_script(tmp_path, tree, "fork")
    pid = int(proc.stdout.readline())
    proc.stdout.readline()
    fork_pid = int(proc.stdout.readline())
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert gone(pid, within_s=10.0)
        assert not gone(fork_pid, within_s=0.1)  # the fork still holds the socket: the sampler saw no end-of-file
    finally:
        os.kill(fork_pid, signal.SIGKILL)


def test_an_edge_cut_short_by_ctrl_c_does_not_shift_later_answers(tmp_path, tree, monkeypatch):
    from multiprocessing.connection import Connection

    real_recv = Connection.recv
    m = session(tmp_path, tree, "cut").start()

    def interrupted(self):  # Ctrl-C lands while the measured process waits: the answer stays in the pipe
        monkeypatch.setattr(Connection, "recv", real_recv)
        raise KeyboardInterrupt

    monkeypatch.setattr(Connection, "recv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with m.window("cut"):
            pass
    set_energy(tree, "intel-rapl:0", 2_000_000)  # +1 J between the cut edge and the next window
    with m.window("next") as w:
        set_energy(tree, "intel-rapl:0", 4_000_000)  # +2 J inside it
    m.finish()
    assert w.record["energy_j"]["cpu"] == pytest.approx(2.0)  # not 3.0: the late answer was not taken for this edge
    assert m.result.energy_j["total"] == pytest.approx(3.0)


def test_a_fresh_process_whose_first_open_failed_still_loads_and_writes_the_statistics(tmp_path, tree):
    process_pool().close()  # the next session starts a fresh sampler process
    with pytest.raises(SourceUnavailable):
        session(tmp_path, tmp_path / "no-powercap", "bad").start()
    with session(tmp_path, tree, "later") as m:
        time.sleep(2.0)  # longer than the process's loading
    assert m.result.results["sampler"]["process_reused"] is True
    assert "rapl_package-0.csv" in json.loads((m.folder / "power" / "stats.json").read_text())["traces"]


def test_a_sampler_process_starts_when_the_measured_process_has_no_stderr(monkeypatch):
    """A measured process started with standard error closed (`2>&-` in a cron line) still gets its sampler
    process: library chatter goes to /dev/null instead (this path once raised NameError)."""
    from mlee.measure import pool

    real_fstat = os.fstat

    def fstat(fd):
        if fd == 2:
            raise OSError(9, "Bad file descriptor")
        return real_fstat(fd)

    monkeypatch.setattr(pool.os, "fstat", fstat)
    assert pool._stderr_fd() == subprocess.DEVNULL
    proc = pool.SamplerProcess()
    try:
        assert proc.usable()
    finally:
        proc.close()
    assert proc.proc.returncode is not None
