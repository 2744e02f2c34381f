"""Experiments as MLflow runs: parameters, figures as metrics (each energy figure's method as a tag), the power
traces as step metrics, and ``results.json``, the label PDF and the traces as artifacts.

The tracking URI is the caller's, else ``MLFLOW_TRACKING_URI``, else a local store file, ``mlflow.db`` in the
current folder (``sqlite:///...``; MLflow 3 keeps its older ``file:`` store only behind
``MLFLOW_ALLOW_FILE_STORE=true``, which mlee passes on as it is). A record is logged once: a run tagged with
its id in the same experiment is found and left alone, so exporting a database again adds only what is new.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, MleeError, OutputError
from mlee.export.figures import COLUMNS, COMPONENTS, flat_record
from mlee.export.labels import Rated, database_beside, label_bytes, rate_new_record, rate_records
from mlee.fsutil import canonical_json, finite

DEFAULT_EXPERIMENT = "mlee"
#: Parameters logged when the record has them (flat column names, see mlee.export.figures).
PARAMS = ("kind", "name", "model", "task", "dataset", "environment", "backend", "backend_version", "device",
          "batch_size", "n_samples", "origin", "host", "job_id", "carbon_country", "pue", "training_epochs")
#: MLflow takes at most this many metrics in one batch call.
BATCH = 1000
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


@dataclass(frozen=True)
class LoggedRun:
    """One record as an MLflow run. ``existing``: it was logged before and left alone.

    ``label``: ``"label.pdf"`` when the label is an artifact, else why there is none.
    """

    record_id: str
    run_id: str
    experiment_id: str
    tracking_uri: str
    existing: bool
    n_trace_points: int
    label: str


def tracking_uri(uri: str | None = None) -> str:
    """The URI to log to: ``uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _client(uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise BackendMissing("logging to MLflow needs mlflow, which is not installed",
                             "pip install 'mlee[mlflow]'") from None
    return MlflowClient(tracking_uri=uri)


def _failures() -> tuple[type[BaseException], ...]:
    """What MLflow raises when the store refuses or cannot be reached (REST, SQL and file stores alike)."""
    from mlflow.exceptions import MlflowException

    kinds: list[type[BaseException]] = [MlflowException, OSError]
    try:
        from requests import RequestException

        kinds.append(RequestException)
    except ImportError:  # pragma: no cover - mlflow depends on requests
        pass
    return tuple(kinds)


def _mlflow_error(exc: BaseException, uri: str) -> MleeError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    fix = "check the tracking URI (--mlflow-uri or MLFLOW_TRACKING_URI) and that the server is running"
    if "MLFLOW_ALLOW_FILE_STORE" in str(exc):
        fix = ("set MLFLOW_ALLOW_FILE_STORE=true to use MLflow's file store, or log to a database store "
               "such as sqlite:///mlflow.db")
    return OutputError(f"MLflow at {uri} refused the run: {text[:300]}", fix)


def _ms(utc: Any) -> int | None:
    if not isinstance(utc, str):
        return None
    try:
        stamp = dt.datetime.fromisoformat(utc.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return int(stamp.timestamp() * 1000)


def _params_tags(record: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], dict[str, float]]:
    flat = flat_record(record)
    params = {k: str(flat[k]) for k in PARAMS if flat.get(k) is not None}
    metrics = {c.name: float(flat[c.name]) for c in COLUMNS if c.metric and flat.get(c.name) is not None}
    tags = {"mlee.id": str(record.get("id")), "mlee.status": str(record.get("status")),
            "mlee.estimated": str(bool(record.get("estimated"))).lower(),
            "mlee.sources": ",".join(sorted(s.get("name", "?") for s in record.get("sources") or [])) or "none"}
    for c in COMPONENTS:
        for metric, method in ((f"energy_{c}_j", flat[f"energy_method_{c}"]),
                               (f"per_sample_energy_{c}_j", flat[f"per_sample_energy_method_{c}"])):
            if metric in metrics:
                tags[f"mlee.method.{metric}"] = method or "unknown"
    per_epoch = (record.get("training") or {}).get("per_epoch") or {}
    for metric in ("training_energy_per_epoch_j", "training_energy_j"):
        if metric in metrics:
            tags[f"mlee.method.{metric}"] = str(per_epoch.get("energy_method") or flat["energy_method_total"])
    if record.get("error"):
        tags["mlee.error"] = str(record["error"])[:4000]
    return params, tags, metrics


def _trace_points(folder: Path, start_ms: int) -> Iterator[tuple[str, float, int, int]]:
    """(metric name, value, timestamp in ms, step) of every valid sample of the power traces in ``folder``.

    ``trace/<file>/power_w`` and ``trace/<file>/energy_j`` (cumulative since the source was opened), one step per
    sample; samples marked invalid are left out, never logged as zero.
    """
    for path in sorted((folder / "power").glob("*.csv")):
        if path.name == "host.csv":
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            for step, row in enumerate(csv.DictReader(fh)):
                if row.get("valid", "1") != "1":
                    continue
                try:
                    t_s = float(row["t_s"])
                except (KeyError, TypeError, ValueError):
                    continue
                for column in ("power_w", "energy_j"):
                    text = row.get(column) or ""
                    try:
                        value = float(text)
                    except ValueError:
                        continue
                    if finite(value):
                        yield f"trace/{path.stem}/{column}", value, start_ms + int(round(t_s * 1000)), step


def _existing(client: Any, experiment_id: str, record_id: str) -> Any:
    found = client.search_runs([experiment_id], filter_string=f"tags.`mlee.id` = '{record_id}'", max_results=1)
    return found[0] if found else None


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else client.create_experiment(name)


def _log_metrics(client: Any, run_id: str, points: Iterator[tuple[str, float, int, int]]) -> int:
    from mlflow.entities import Metric

    batch: list[Any] = []
    count = 0
    for key, value, timestamp, step in points:
        batch.append(Metric(key, value, timestamp, step))
        count += 1
        if len(batch) == BATCH:
            client.log_batch(run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    return count


def _artifacts(client: Any, run_id: str, record: dict[str, Any], folder: Path | None, rated: Rated) -> str:
    with tempfile.TemporaryDirectory(prefix="mlee-mlflow-") as tmp:
        if folder is not None and (folder / "results.json").is_file():
            client.log_artifact(run_id, str(folder / "results.json"))
        else:
            path = Path(tmp) / "record.json"
            path.write_text(canonical_json({k: v for k, v in record.items() if k != "trace_samples"}),
                            encoding="utf-8")
            client.log_artifact(run_id, str(path))
        if folder is not None and (folder / "power").is_dir():
            client.log_artifacts(run_id, str(folder / "power"), artifact_path="traces")
        if rated.rated is None:
            return f"no label: {rated.reason}"
        path = Path(tmp) / "label.pdf"
        path.write_bytes(label_bytes(rated, "pdf"))
        client.log_artifact(run_id, str(path))
        return "label.pdf"


def _log_record(client: Any, uri: str, experiment_id: str, record: dict[str, Any], folder: Path | None,
                rated: Rated) -> LoggedRun:
    record_id = str(record.get("id"))
    found = _existing(client, experiment_id, record_id)
    if found is not None:
        return LoggedRun(record_id, found.info.run_id, experiment_id, uri, True, 0,
                         found.data.tags.get("mlee.label", ""))
    from mlflow.entities import Metric, Param, RunTag

    params, tags, metrics = _params_tags(record)
    start_ms, end_ms = _ms(record.get("start_utc")), _ms(record.get("end_utc"))
    run = client.create_run(experiment_id, start_time=start_ms, tags=tags, run_name=record_id)
    run_id = run.info.run_id
    try:
        stamp = end_ms if end_ms is not None else start_ms or 0
        client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in sorted(metrics.items())],
                         params=[Param(k, v) for k, v in sorted(params.items())])
        points = 0
        if folder is not None and start_ms is not None:
            points = _log_metrics(client, run_id, _trace_points(folder, start_ms))
        label = _artifacts(client, run_id, record, folder, rated)
        traces_note = "logged" if points else ("no experiment folder" if folder is None else "no samples")
        client.log_batch(run_id, tags=[RunTag("mlee.label", label), RunTag("mlee.traces", traces_note)])
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status=_STATUS.get(str(record.get("status")), "FAILED"), end_time=end_ms)
    return LoggedRun(record_id, run_id, experiment_id, uri, False, points, label)


def log_experiment(folder: str | Path, uri: str | None = None, experiment: str | None = None,
                   spec: str | None = None) -> LoggedRun:
    """Log one finished experiment folder as an MLflow run (rated against ``merged.json`` beside it, if any).

    Raises:
        ResultFormatError: the folder cannot be read.
        BackendMissing: mlflow is not installed.
        OutputError: MLflow refused (bad URI, server down, file store not allowed); the folder is untouched.
    """
    from mlee.results import load_database, read_experiment

    folder = Path(folder)
    record = read_experiment(folder)
    beside = database_beside(folder)
    rated = rate_new_record(record, load_database(beside) if beside is not None else None, spec)
    uri = tracking_uri(uri)
    client = _client(uri)
    try:
        experiment_id = _experiment_id(client, experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
                                       or DEFAULT_EXPERIMENT)
        return _log_record(client, uri, experiment_id, record, folder, rated)
    except _failures() as exc:
        raise _mlflow_error(exc, uri) from exc


def log_database(db_path: str | Path, uri: str | None = None, experiment: str | None = None,
                 spec: str | None = None) -> list[LoggedRun]:
    """Log every record of a merged database as an MLflow run (what was measured before ``--mlflow``).

    Traces and ``results.json`` come from each record's experiment folder when it sits beside the database
    (``<db folder>/<id>/``); otherwise the record itself is the artifact.

    Raises:
        ResultFormatError: the database cannot be read.
        BackendMissing: mlflow is not installed.
        OutputError: MLflow refused; runs logged before the refusal stay logged (a rerun adds the rest).
    """
    from mlee.results import load_database

    db_path = Path(db_path)
    db = load_database(db_path)
    ratings = rate_records(db, spec)
    uri = tracking_uri(uri)
    client = _client(uri)
    logged = []
    try:
        experiment_id = _experiment_id(client, experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
                                       or DEFAULT_EXPERIMENT)
        for record in db.get("records") or []:
            folder = db_path.resolve().parent / str(record.get("id"))
            rated = ratings.get(str(record.get("id")), Rated(None, "not rated"))
            logged.append(_log_record(client, uri, experiment_id, record, folder if folder.is_dir() else None,
                                      rated))
    except _failures() as exc:
        raise _mlflow_error(exc, uri) from exc
    return logged


def runs_json(logged: list[LoggedRun]) -> str:
    """The logged runs as deterministic JSON (for ``--json``)."""
    return json.dumps([vars(r) for r in logged], sort_keys=True, indent=2) + "\n"


def log_finished(folders: list[Path | None], uri: str | None = None) -> str:
    """Log the experiment folders a command just finished (``--mlflow``) and say so in one line.

    Folders that were never written (a run that failed before it started) are left out.

    Raises:
        OutputError: MLflow refused; the message names the folders, which keep everything measured.
    """
    written = [Path(f) for f in folders if f is not None and (Path(f) / "results.json").is_file()]
    logged = []
    for folder in written:
        try:
            logged.append(log_experiment(folder, uri=uri))
        except MleeError as exc:
            kept = ", ".join(str(f) for f in written)
            raise type(exc)(exc.message, f"{exc.fix + '; ' if exc.fix else ''}nothing measured is lost: {kept} "
                            "can be logged later with `mlee merge` and `mlee export mlflow DB`") from exc
    if not logged:
        return "mlee: no experiment folder to log to MLflow"
    runs = ", ".join(r.run_id for r in logged)
    return f"mlee: logged {len(logged)} run(s) to MLflow at {logged[0].tracking_uri} (run id {runs})"
