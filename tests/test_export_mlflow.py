"""MLflow: `mlee export mlflow DB` and `--mlflow` on run/infer, against a real tracking server started here on
127.0.0.1 and against MLflow's file store; every run is read back through MLflow's own client."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.powercap import Zone, make_powercap_tree
from mlee.cli import app
from results_builders import make_experiment, run_merge

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

ENV = {"NO_COLOR": "1", "COLUMNS": "160"}
CARBON = {"country": "FRA", "intensity_g_per_kwh": 56.0, "source": "test", "pue": 1.0, "emissions_g": 0.0015}
SERVER_START_S = 180


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch):
    # MLflow 3 would send usage telemetry from a background thread; tests never leave the machine.
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` (SQLite backend, proxied artifacts) on a free local port; stopped afterwards."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = open(root / "server.log", "wb")
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}: {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up in {SERVER_START_S} s: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    make_experiment(results, name="resnet50", model="ResNet50")
    make_experiment(results, name="mnv2", model="MobileNetV2", overrides={"carbon": CARBON})
    make_experiment(results, name="broken", model="VGG16", status="failed", start=dt.datetime(2026, 11, 23, 9))
    out = results / "merged.json"
    assert run_merge(results, "-o", out).exit_code == 0
    return out


def _invoke(*args: object, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env={**ENV, **(env or {})})


def _runs_by_id(uri: str, experiment: str = "mlee") -> dict:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client, {r.data.tags["mlee.id"]: r for r in client.search_runs([exp.experiment_id])}


def _trace(folder: Path, name: str, column: str) -> list[float]:
    with open(folder / "power" / name, newline="") as fh:
        return [float(row[column]) for row in csv.DictReader(fh) if row["valid"] == "1" and row[column]]


def _check_database_runs(uri: str, db: Path) -> None:
    client, runs = _runs_by_id(uri)
    records = {r["id"]: r for r in json.loads(db.read_text())["records"]}
    assert sorted(runs) == sorted(records)
    mnv2_id = next(i for i, r in records.items() if r["model"] == "MobileNetV2")
    run = runs[mnv2_id]
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "MobileNetV2" and run.data.params["backend"] == "pytorch"
    assert run.data.params["batch_size"] == "32" and run.data.params["device"] == "cpu"
    per_sample = records[mnv2_id]["per_sample"]
    assert run.data.metrics["per_sample_energy_cpu_j"] == per_sample["energy_j"]["cpu"]
    assert run.data.metrics["per_sample_time_ms"] == per_sample["time_ms"]
    assert run.data.metrics["emissions_g"] == 0.0015
    assert "per_sample_energy_gpu_j" not in run.data.metrics  # not measured: no metric, not a zero
    assert run.data.tags["mlee.method.per_sample_energy_cpu_j"] == "counter"
    history = client.get_metric_history(run.info.run_id, "trace/rapl_package-0/power_w")
    expected = _trace(db.parent / mnv2_id, "rapl_package-0.csv", "power_w")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == expected
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "label.pdf", "traces"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "traces")} >= {
        "traces/rapl_package-0.csv", "traces/rapl_dram-0.csv"}
    local = client.download_artifacts(run.info.run_id, "label.pdf", str(db.parent.parent))
    assert Path(local).read_bytes().startswith(b"%PDF")
    failed = next(r for i, r in runs.items() if records[i]["status"] == "failed")
    assert failed.info.status == "FAILED" and failed.data.tags["mlee.label"].startswith("no label: the run did not")
    assert failed.data.tags["mlee.error"] == "RuntimeError: boom"


def test_export_to_the_file_store_then_again_adds_nothing(tmp_path, db, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    result = _invoke("export", "mlflow", db, "--mlflow-uri", uri, "--json")
    assert result.exit_code == 0, result.output
    logged = json.loads(result.stdout)
    assert len(logged) == 3 and not any(r["existing"] for r in logged)
    _check_database_runs(uri, db)
    again = _invoke("export", "mlflow", db, "--mlflow-uri", uri, "--json")
    assert again.exit_code == 0 and all(r["existing"] for r in json.loads(again.stdout))
    assert len(_runs_by_id(uri)[1]) == 3


def test_file_store_refused_by_mlflow_is_one_clear_line(tmp_path, db, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result = _invoke("export", "mlflow", db, "--mlflow-uri", f"file:{tmp_path / 'mlruns'}")
    assert result.exit_code == 1
    assert "MLFLOW_ALLOW_FILE_STORE=true" in result.output and "Traceback" not in result.output


def test_export_to_a_tracking_server_from_the_environment(server, db):
    result = _invoke("export", "mlflow", db, env={"MLFLOW_TRACKING_URI": server})
    assert result.exit_code == 0, result.output
    assert "logged 3 new run(s) to MLflow at " + server in result.output
    _check_database_runs(server, db)


def test_mlee_run_with_mlflow_logs_the_finished_folder(tmp_path, server, monkeypatch):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 1000)])
    monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(root))
    out = tmp_path / "out"
    result = _invoke("run", "--source", "rapl", "-o", out, "--interval", "0.05", "--mlflow-uri", server,
                     "--", sys.executable, "-c", "import time; time.sleep(0.3)")
    assert result.exit_code == 0, result.output
    assert f"logged 1 run(s) to MLflow at {server}" in result.output
    (folder,) = out.iterdir()
    client, runs = _runs_by_id(server)
    run = runs[folder.name]
    results = json.loads((folder / "results.json").read_text())
    assert run.data.metrics["energy_total_j"] == results["energy_j"]["total"]
    assert run.data.tags["mlee.method.energy_total_j"] == results["energy_method"]["total"]
    assert run.data.tags["mlee.label"].startswith("no label: a `run` session is not a model run")
    history = client.get_metric_history(run.info.run_id, "trace/rapl_package-0/energy_j")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == _trace(folder, "rapl_package-0.csv",
                                                                             "energy_j")
    assert "results.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_mlflow_down_keeps_the_measured_folder(tmp_path, monkeypatch):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 1000)])
    monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    out = tmp_path / "out"
    result = _invoke("run", "--source", "rapl", "-o", out, "--mlflow-uri", f"http://127.0.0.1:{_free_port()}",
                     "--", "true")
    assert result.exit_code == 1 and "Traceback" not in result.output
    (folder,) = out.iterdir()
    assert "nothing measured is lost" in " ".join(result.output.split()) and folder.name in result.output
    assert json.loads((folder / "results.json").read_text())["status"] == "completed"


def test_train_and_run_take_the_mlflow_options():
    for command in ("train", "run", "infer"):
        said = " ".join(_invoke(command, "--help", env={"COLUMNS": "200"}).output.split())
        assert "--mlflow " in said and "--mlflow-uri" in said and "MLFLOW_TRACKING_URI" in said


@pytest.mark.slow
def test_infer_with_mlflow_logs_the_model_run(tmp_path, server):
    out = tmp_path / "out"
    result = _invoke("infer", "-m", "MobileNetV3Small", "-o", out, "--batch-size", "2", "--n-batches", "2",
                     "--input-size", "64", "--threads", "1", "--warmup-batches", "1", "--mlflow",
                     env={"MLFLOW_TRACKING_URI": server, "MLFLOW_EXPERIMENT_NAME": "infer-test"})
    assert result.exit_code == 0, result.output
    (folder,) = out.iterdir()
    _, runs = _runs_by_id(server, "infer-test")
    run = runs[folder.name]
    results = json.loads((folder / "results.json").read_text())
    assert run.data.params["model"] == "MobileNetV3Small" and run.data.params["n_samples"] == "4"
    assert run.data.metrics["per_sample_energy_total_j"] == results["per_sample"]["energy_j"]["total"]
    assert run.data.tags["mlee.method.per_sample_energy_total_j"] == results["per_sample"]["energy_method"]["total"]
    assert run.info.status == "FINISHED"
