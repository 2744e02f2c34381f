"""The pieces that keep a measurement when things go wrong: trace writers on a full device, who is still running,
and a record that cannot be written at all (its figures go to stderr)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlee.results.liveness import boot_id, is_gone, process_identity
from mlee.results.tracefile import TraceSink, TraceWriter

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_trace_on_a_full_device_stops_with_the_reason_and_counts_on():
    writer = TraceWriter(Path("/dev/full"), ("t_s", "energy_j"), flush_s=0.0)
    for i in range(5):
        writer.write((float(i), float(i)))
    writer.close()
    assert writer.truncated and "No space left on device" in writer.truncated and "errno 28" in writer.truncated
    assert writer.rows == 5 and writer.rows_written == 0


def test_a_sink_reports_only_the_traces_that_stopped(tmp_path):
    sink = TraceSink(tmp_path, {"rapl:package-0": ("t_s",), "host": ("t_s",)})
    sink.writers["host"] = TraceWriter(Path("/dev/full"), ("t_s",), flush_s=0.0)
    for i in range(3):
        sink.write("rapl:package-0", (float(i),))
        sink.write("host", (float(i),))
    sink.close()
    assert list(sink.truncated()) == ["host"]
    assert (tmp_path / "rapl_package-0.csv").read_text() == "t_s\n0\n1\n2\n"


def test_this_process_is_alive():
    me = process_identity()
    assert me["host"] == socket.gethostname() and me["pid"] == os.getpid()
    assert is_gone(me, age_s=1e9) == (False, f"its process {os.getpid()} is still running")


def test_a_dead_pid_and_a_reused_pid_are_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(proc.pid)
    proc.wait()
    gone, why = is_gone(identity, age_s=0.0)
    assert gone and f"process {proc.pid} no longer exists" in why
    reused = {**process_identity(), "start_s": process_identity()["start_s"] - 100.0}  # same pid, other start
    gone, why = is_gone(reused, age_s=0.0)
    assert gone and "belongs to a later process" in why


@pytest.mark.skipif(boot_id() is None, reason="no boot id on this system")
def test_a_run_from_before_a_reboot_is_gone():
    gone, why = is_gone({**process_identity(), "boot_id": "not-this-boot"}, age_s=0.0)
    assert gone and "rebooted" in why


def test_another_hosts_run_is_gone_only_once_stale():
    other = {"host": "some-other-node", "boot_id": "x", "pid": 1, "start_s": 0.0}
    assert is_gone(other, age_s=60.0, stale_after_s=600.0)[0] is False
    gone, why = is_gone(other, age_s=601.0, stale_after_s=600.0)
    assert gone and "--stale-after 600" in why
    assert is_gone(None, age_s=601.0)[0] is True  # an older folder without a process block


def test_a_record_that_cannot_be_written_goes_to_stderr_with_exit_1(tmp_path):
    from fakes.powercap import Zone, make_powercap_tree

    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0)])
    out = tmp_path / "out"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "MLEE_POWERCAP_ROOT": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "mlee", "run", "--source", "rapl", "-o", str(out), "--", "sleep",
                             "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (out.exists() and any(out.iterdir()) and (next(out.iterdir()) / "results.json").is_file()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        record = next(out.iterdir()) / "results.json"
        while not record.is_dir():  # the results.json slot becomes unwritable (a folder in its place)
            record.unlink(missing_ok=True)
            try:
                record.mkdir()
            except FileExistsError:
                pass
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.decode()
    assert proc.returncode == 1, text
    assert text.count("error:") == 1 and f"cannot write {record}" in " ".join(text.split())
    figures = json.loads(text[text.index("{"):text.rindex("}") + 1])
    assert figures["status"] == "completed" and figures["energy_method"]["cpu"] == "counter"
