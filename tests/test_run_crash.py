"""Nothing measured is lost (issue 13), through the real CLI in subprocesses: SIGKILL then merge, signal
sequences during a run and during its shutdown, a disk that fills, bad options that leave no folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fakes.powercap import Zone, make_powercap_tree, set_energy
from mlee.results.tracefile import read_trace

ROOT = Path(__file__).resolve().parents[1]
ENV = {"NO_COLOR": "1", "COLUMNS": "120"}
#: A child that says it is ready, then on SIGINT/SIGTERM/SIGHUP takes 0.5 s to shut down (so that later signals
#: arrive while mlee is shutting down too), then exits 0.
SLOW_STOPPER = ("import signal, sys, time\n"
                "def stop(*_):\n    time.sleep(0.5); print('child stopped', flush=True); sys.exit(0)\n"
                "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, stop)\n"
                "print('ready', flush=True)\ntime.sleep(60)\n")


class MovingCounter:
    """Moves a fake RAPL counter forward at ``power_w`` from a thread, as the hardware would."""

    def __init__(self, root: Path, power_w: float = 10.0) -> None:
        self.root, self.power_w = root, power_w
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(0.02):
            set_energy(self.root, "intel-rapl:0", int((time.monotonic() - t0) * self.power_w * 1e6))

    def __enter__(self) -> MovingCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def tree(tmp_path):
    return make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0)])


def mlee(tmp_path: Path, root: Path, *args: str, out: Path | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, **ENV, "MLEE_POWERCAP_ROOT": str(root)}
    return subprocess.Popen([sys.executable, "-m", "mlee", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


def spawn_run(tmp_path: Path, root: Path, *cmd: str, interval: str = "0.05", out: Path | None = None):
    return mlee(tmp_path, root, "run", "--source", "rapl", "--interval", interval, "-o", str(out or tmp_path / "out"),
                "--", *cmd)


def wait_for(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def ready(out: Path) -> bool:
    return any("ready" in (f / "log.txt").read_text() for f in folders(out) if (f / "log.txt").exists())


def test_sigkill_loses_at_most_a_second_and_merge_records_it_interrupted(tmp_path, tree):
    import psutil

    with MovingCounter(tree, power_w=10.0):
        proc = spawn_run(tmp_path, tree, "sleep", "30")
        try:
            wait_for(lambda: len(folders(tmp_path / "out")) == 1)
            time.sleep(3.0)
            children = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            for child in locals().get("children", []):
                child.kill()
            if proc.poll() is None:
                proc.kill()
    (folder,) = folders(tmp_path / "out")
    running = results(folder)
    assert running["status"] == "running" and running["process"]["pid"] == proc.pid
    trace = read_trace(folder / "power" / "rapl_package-0.csv")
    assert max(trace["t_s"]) >= 2.0  # killed after about 3 s: at most about a second of samples lost
    db = tmp_path / "db.json"
    merged = subprocess.run([sys.executable, "-m", "mlee", "merge", str(tmp_path / "out"), "-o", str(db)],
                            cwd=ROOT, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=60)
    assert merged.returncode == 0, merged.stderr
    (record,) = json.loads(db.read_text())["records"]
    assert record["status"] == "interrupted"
    assert f"its process {proc.pid} no longer exists" in record["error"]
    assert any("integrated by mlee merge from the traces" in n for n in record["notes"])
    # about 10 W for the seconds the traces cover, from the traces (never a zero, never an invented tail)
    assert record["energy_j"]["cpu"] == pytest.approx(10.0 * record["duration_s"], rel=0.25)
    assert record["duration_s"] == pytest.approx(max(trace["t_s"]), abs=0.2)
    assert record["energy_method"]["cpu"] == "counter"


def test_a_live_run_is_still_in_progress_for_merge(tmp_path, tree):
    proc = spawn_run(tmp_path, tree, "sleep", "30")
    try:
        wait_for(lambda: len(folders(tmp_path / "out")) == 1 and (folders(tmp_path / "out")[0] / "environment.json")
                 .exists())
        merged = subprocess.run([sys.executable, "-m", "mlee", "merge", str(tmp_path / "out"), "-o",
                                 str(tmp_path / "db.json")], cwd=ROOT, env={**os.environ, **ENV},
                                capture_output=True, text=True, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert "still in progress" in " ".join(merged.stderr.split())
    assert json.loads((tmp_path / "db.json").read_text())["records"] == []


@pytest.mark.parametrize("signals, code", [
    ((signal.SIGTERM, signal.SIGTERM), 143),          # twice, 0.1 s apart: the second during shutdown
    ((signal.SIGINT, signal.SIGTERM), 130),
    ((signal.SIGHUP,), 129),
    ((signal.SIGINT, signal.SIGHUP, signal.SIGTERM), 130),
])
def test_any_signal_sequence_ends_with_a_finished_folder(tmp_path, tree, signals, code):
    proc = spawn_run(tmp_path, tree, sys.executable, "-c", SLOW_STOPPER)
    try:
        wait_for(lambda: ready(tmp_path / "out"))
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.1)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err.decode()
    (folder,) = folders(tmp_path / "out")
    data = results(folder)
    assert data["status"] == "interrupted" and data["end_utc"]
    assert signal.Signals(signals[0]).name in data["error"]
    stopped = "child stopped" in (folder / "log.txt").read_text()
    # forwarded: the child shut down by itself; a third signal stops it for good (SIGKILL) instead
    assert stopped if len(signals) < 3 else not stopped


def test_signals_while_mlee_itself_shuts_down(tmp_path, tree):
    """TERM arrives after the command ended, while the record is being written: the run still finishes."""
    proc = spawn_run(tmp_path, tree, sys.executable, "-c", "import time; time.sleep(0.3)")
    try:
        wait_for(lambda: len(folders(tmp_path / "out")) == 1)
        time.sleep(0.25)
        for _ in range(5):  # a burst across the end of the command and mlee's shutdown
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (folder,) = folders(tmp_path / "out")
    data = results(folder)
    assert data["status"] in ("interrupted", "completed") and data["end_utc"]
    # A TERM that comes after the record is written ends mlee as TERM does: the shell shows 143 either way.
    assert proc.returncode in ((143, -signal.SIGTERM) if data["status"] == "interrupted" else (0, -signal.SIGTERM))


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_a_disk_that_fills_keeps_measuring_and_passes_the_code_on(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "96k"):
        pytest.skip("cannot mount a tmpfs here (needs root); TraceWriter's own test covers the failing writes")
    root = make_powercap_tree(tmp_path / "pc", [Zone(f"intel-rapl:{i}", f"package-{i}", 0) for i in range(6)])
    try:
        proc = spawn_run(tmp_path, root, "sh", "-c", "sleep 4; exit 3", interval="0.005", out=disk / "out")
        _, err = proc.communicate(timeout=60)
        err_text = " ".join(err.decode().split())
        assert proc.returncode == 3, err_text  # the command's own code, not an internal error
        assert "internal error" not in err_text and err_text.count("warning:") == 1
        assert "No space left on device" in err_text
        (folder,) = folders(disk / "out")
        data = results(folder)
        assert data["status"] == "failed" and data["exit_code"] == 3  # the record was still written
        truncated = data["truncated_traces"]
        assert truncated and all("No space left" in t["reason"] for t in truncated.values())
        source = data["sources"][0]
        assert source["n_samples"] > truncated[source["name"]]["rows_written"]  # measuring went on in memory
        trace = read_trace(folder / "power" / "rapl_package-0.csv")  # the rows that reached the disk stay
        assert 10 < len(trace["t_s"]) < source["n_samples"]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize("args, needle", [
    (["run", "--interval", "inf", "--", "true"], "sampling interval"),
    (["run", "--pue", "inf", "--", "true"], "PUE"),
    (["run", "--baseline-s", "nan", "--", "true"], "baseline"),
    (["infer", "-m", "MobileNetV3Small", "--interval", "inf"], "sampling interval"),
    (["infer", "-m", "MobileNetV3Small", "--pue", "inf"], "PUE"),
    (["infer", "-m", "MobileNetV3Small", "--baseline-s", "nan"], "baseline"),
    (["infer", "-m", "ResNet5O"], "unknown model 'ResNet5O'"),
    (["infer", "-m", "MobileNetV3Small", "--batch-size", "0"], "--batch-size 0"),
    (["infer", "-m", "MobileNetV3Small", "--batch-size", "-3"], "--batch-size -3"),
    (["infer", "-m", "MobileNetV3Small", "--backend", "jax"], "unknown backend 'jax'"),
    (["infer", "-m", "MobileNetV3Small", "--weights", "/no/such.pt"], "weights file /no/such.pt does not exist"),
    (["infer", "-m", "MobileNetV3Small", "--data-path", "/no/such/dir"], "--data-path /no/such/dir does not exist"),
    (["infer", "-m", "MobileNetV3Small", "--n-batches", "0"], "--n-batches 0"),
    (["infer", "-m", "MobileNetV3Small", "--repeat", "0"], "--repeat 0"),
    (["infer", "-m", "MobileNetV3Small", "--threads", "0"], "--threads 0"),
    (["infer", "-m", "MobileNetV3Small", "--input-size", "100000"], "--input-size 100000"),
    (["infer", "-m", "MobileNetV3Small", "--device", "tpu"], "unknown device 'tpu'"),
    (["train", "-m", "MobileNetV3Small", "--epochs", "0"], "--epochs 0"),
    (["train", "-m", "MobileNetV3Small", "--lr", "nan"], "--lr"),
])
def test_bad_options_are_usage_errors_that_leave_no_folder(tmp_path, tree, args, needle):
    out = tmp_path / "out"
    proc = mlee(tmp_path, tree, *args[:1], "-o", str(out), "--source", "rapl", *args[1:])
    _, err = proc.communicate(timeout=120)
    text = " ".join(err.decode().split())
    assert proc.returncode == 2, text
    assert text.count("error:") == 1 and needle in text and "Traceback" not in text
    assert not out.exists() or list(out.iterdir()) == []  # nothing made before measuring could begin


def test_merge_update_reads_a_run_again_once_its_process_is_gone(tmp_path, tree):
    """`--update` must not keep a killed run skipped as "in progress" for ever because its files stopped changing."""
    proc = spawn_run(tmp_path, tree, "sleep", "30")
    db = tmp_path / "db.json"

    def merge_update() -> dict:
        done = subprocess.run([sys.executable, "-m", "mlee", "merge", "--update", str(tmp_path / "out"), "-o",
                               str(db)], cwd=ROOT, env={**os.environ, **ENV}, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(db.read_text())

    import psutil

    try:
        wait_for(lambda: len(folders(tmp_path / "out")) == 1 and (folders(tmp_path / "out")[0] / "environment.json")
                 .exists())
        children = psutil.Process(proc.pid).children(recursive=True)
        assert merge_update()["records"] == []  # alive: still in progress
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        for child in locals().get("children", []):
            child.kill()
        if proc.poll() is None:
            proc.kill()
    (record,) = merge_update()["records"]
    assert record["status"] == "interrupted"
