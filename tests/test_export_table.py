"""`mlee export DB --format parquet|csv`: one typed row per record, read back with pandas and DuckDB."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.export.figures import COLUMNS
from results_builders import environment, gpu_source, make_experiment, run_merge

ENV = {"NO_COLOR": "1", "COLUMNS": "160"}
CARBON = {"country": "FRA", "intensity_g_per_kwh": 56.0, "source": "test", "pue": 1.2, "emissions_g": 0.0015}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    make_experiment(results, name="resnet50", model="ResNet50")
    make_experiment(results, name="mnv2", model="MobileNetV2", duration_s=1.0, overrides={"carbon": CARBON})
    make_experiment(results, name="mnv2", model="MobileNetV2", duration_s=3.0, start=dt.datetime(2026, 11, 23, 8))
    make_experiment(results, name="broken", model="VGG16", status="failed")
    make_experiment(results, name="gpu", model="ResNet50", sources=(gpu_source(0),), device="cuda")
    make_experiment(results, name="alone", model="EfficientNetB0", env=environment(cpu_model="Other CPU"))
    out = results / "merged.json"
    assert run_merge(results, "-o", out).exit_code == 0
    return out


def _invoke(*args: object):
    return CliRunner().invoke(app, ["export", *map(str, args)], env=ENV)


def _records(db: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(db.read_text())["records"]}


def test_parquet_reads_back_typed_in_pandas_and_duckdb(tmp_path, db):
    import duckdb
    import pandas as pd

    out = tmp_path / "runs.parquet"
    result = _invoke(db, "--format", "parquet", "-o", out, "--spec", "mlee")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "wrote 6 row(s)" in said and "(2 run(s) not rated" in said
    frame = pd.read_parquet(out)
    records = _records(db)
    assert sorted(frame["id"]) == sorted(records)
    assert list(frame.columns[:len(COLUMNS)]) == [c.name for c in COLUMNS]
    assert str(frame["energy_total_j"].dtype) == "float64" and str(frame["n_samples"].dtype) == "int64"
    assert str(frame["estimated"].dtype) == "bool"
    for _, row in frame.iterrows():
        rec = records[row["id"]]
        assert row["energy_total_j"] == rec["energy_j"]["total"]
        cpu_j = rec["per_sample"]["energy_j"]["cpu"]
        assert pd.isna(row["per_sample_energy_cpu_j"]) if cpu_j is None else row["per_sample_energy_cpu_j"] == cpu_j
        assert row["per_sample_energy_method_total"] == rec["per_sample"]["energy_method"]["total"]
        assert row["status"] == rec["status"]
    cpu = frame[frame["device"] == "cpu"]
    assert cpu["energy_gpu_j"].isna().all()  # not measured is null, never 0
    gpu = frame[frame["device"] == "cuda"].iloc[0]
    assert pd.isna(gpu["energy_cpu_j"]) and gpu["energy_gpu_j"] > 0

    with duckdb.connect() as con:
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{out}')").fetchall()}
        assert types["energy_total_j"] == "DOUBLE" and types["batch_size"] == "BIGINT"
        assert types["estimated"] == "BOOLEAN" and types["model"] == "VARCHAR"
        emissions = con.execute(f"SELECT emissions_g, carbon_country FROM read_parquet('{out}') "
                                "WHERE emissions_g IS NOT NULL").fetchall()
        assert emissions == [(0.0015, "FRA")]
        ratings = dict(con.execute(f"SELECT model, rating_compound FROM read_parquet('{out}') WHERE device = 'cpu' "
                                   "AND status = 'completed'").fetchall())
    # Both runs of MobileNetV2 carry the rating of their mean; the failed run has none.
    assert ratings["ResNet50"] in "ABCDE" and ratings["MobileNetV2"] in "ABCDE" and ratings["EfficientNetB0"] is None
    mnv2 = frame[frame["model"] == "MobileNetV2"]
    assert mnv2["rating_compound"].nunique() == 1 and mnv2["index_energy_per_sample"].notna().all()
    assert frame[frame["status"] == "failed"]["rating_compound"].isna().all()
    # A group without the spec's reference model is left unrated; the other groups are still rated.
    assert frame[frame["model"] == "EfficientNetB0"][["rating_compound", "index_energy_per_sample"]].isna().all().all()
    assert (frame["rating_spec_sha256"].dropna().str.len() == 64).all()


def test_csv_reads_back_in_pandas_and_duckdb(tmp_path, db):
    import duckdb
    import pandas as pd

    out = tmp_path / "runs.csv"
    result = _invoke(db, "-o", out)  # the format from the suffix; no --spec: no rating columns
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert not any(c.startswith("rating_") for c in frame.columns)
    records = _records(db)
    for _, row in frame.iterrows():
        assert row["per_sample_time_ms"] == records[row["id"]]["per_sample"]["time_ms"]
    assert str(frame["estimated"].dtype) == "bool" and frame["energy_gpu_j"].isna().sum() == 5
    with duckdb.connect() as con:
        total = con.execute(f"SELECT sum(energy_total_j) FROM read_csv_auto('{out}')").fetchone()[0]
    assert total == pytest.approx(sum(r["energy_j"]["total"] for r in records.values()))


def test_bad_usage_exits_2_and_writes_nothing(tmp_path, db):
    no_output = _invoke(db, "--format", "parquet")
    assert no_output.exit_code == 2 and "-o FILE" in no_output.output
    unknown = _invoke(db, "-o", tmp_path / "runs.xlsx")
    assert unknown.exit_code == 2 and "--format parquet or --format csv" in unknown.output
    alone = _invoke("mlflow")
    assert alone.exit_code == 2 and "needs the database" in alone.output
    mixed = _invoke(db, "-o", tmp_path / "x.csv", "--experiment", "e")
    assert mixed.exit_code == 2 and "put `mlflow` before the database" in mixed.output
    missing = _invoke(tmp_path / "nope.json", "-o", tmp_path / "x.csv")
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert not list(tmp_path.glob("runs.*")) and not (tmp_path / "x.csv").exists()
