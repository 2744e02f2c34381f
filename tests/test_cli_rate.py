"""`mlee rate` and `mlee calibrate` through the real CLI (typer's CliRunner on mlee.cli.app)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.rating import load_spec

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}
CPU = "AMD EPYC 7B13 - PyTorch 2.14.1"
GPU = "A100 x8 - TensorFlow 2.8.0"


def record(model: str, env: str = CPU, energy: float | None = 1.0, time_ms: float = 10.0, top1: float | None = 0.7,
           params: int = 25_000_000, method: str = "counter", rid: str | None = None, task: str = "inference",
           training: dict | None = None) -> dict:
    """A complete database record (it passes the database schema check of `mlee.results.load_database`)."""
    estimated = method == "estimate"
    return {
        "schema_version": 1, "id": rid or f"infer-{model}-{env[:3]}", "kind": "infer" if task == "inference" else
        "train", "name": model, "status": "completed", "error": None,
        "start_utc": "2026-11-22T07:00:00.000000Z", "end_utc": "2026-11-22T07:00:10.000000Z", "duration_s": 10.0,
        "energy_j": {"total": 5.0, "cpu": 5.0, "dram": None, "gpu": None},
        "energy_method": {"total": method, "cpu": method, "dram": None, "gpu": None},
        "estimated": estimated, "sources": [], "origin": "mlee", "traces": {},
        "task": task, "model": model, "backend": {"name": "pytorch", "version": "2.14.1"}, "device": "cpu",
        "dataset": "synthetic", "environment": env,
        "metrics": {"top1": top1, "top5": 0.9 if top1 is not None else None, "loss": None},
        "model_info": {"parameters": params, "flops": params * 300.0, "weights_bytes": params * 4},
        "per_sample": {"energy_j": {"total": energy, "cpu": energy, "dram": None, "gpu": None},
                       "energy_method": {"total": method, "cpu": method, "dram": None, "gpu": None},
                       "time_ms": time_ms, "throughput_per_s": 1000.0 / time_ms},
        "training": training,
    }


def write_db(path: Path, *records: dict) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "kind": "mlee-database", "mlee_version": "0.1.0",
                                "records": sorted(records, key=lambda r: r["id"]), "summaries": [],
                                "skipped": []}), encoding="utf-8")
    return path


@pytest.fixture()
def dbfile(tmp_path: Path) -> Path:
    return write_db(tmp_path / "merged.json",
                    record("ResNet50"),
                    record("MobileNetV2", energy=0.25, time_ms=4.0, top1=0.65, params=3_500_000, method="estimate"),
                    record("VGG16", energy=4.0, time_ms=30.0, top1=0.71, params=138_000_000),
                    record("ResNet50", GPU, energy=0.1), record("VGG16", GPU, energy=0.3))


def run(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def test_rate_table_shows_each_group_with_values_indices_and_ratings(dbfile):
    result = run("rate", str(dbfile))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"inference · synthetic · {CPU}" in out and f"inference · synthetic · {GPU}" in out
    assert out.index(GPU) < out.index(CPU)  # groups in sorted order
    assert "index against ResNet50" in out
    flat = " ".join(out.split())
    assert "Energy per" in out and "sample [J]" in flat and "[ms]" in out and "Top-1" in out
    assert "4.00 A" in out  # MobileNetV2: a quarter of the reference's energy
    assert "0.25 E" in out  # VGG16: four times it
    assert "0.25 est." in out  # the estimated energy figure is marked
    assert "\x1b[" not in out  # NO_COLOR honoured
    assert "rated 5 model(s) in 2 group(s) with spec mlee v2" in result.stderr
    assert "est.: energy from an estimate" in result.stderr


def test_rate_narrow_terminal_gets_one_row_per_metric(dbfile):
    result = CliRunner().invoke(app, ["rate", str(dbfile), "--env", CPU], env={"NO_COLOR": "1", "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert any(line.split()[:2] == ["MobileNetV2", "A"] and "Energy per sample" in line for line in lines)
    energy = next(line for line in lines if "Energy per sample" in line and "MobileNetV2" in line)
    assert energy.split()[-5:] == ["0.25", "est.", "J", "4.00", "A"]
    assert any(line.split() == ["Time", "per", "sample", "4", "ms", "2.50", "A"] for line in lines)


def test_rate_json_is_the_rated_records(dbfile):
    result = run("rate", str(dbfile), "--json", "--env", CPU)
    assert result.exit_code == 0, result.output
    rated = json.loads(result.stdout)
    assert [r["model"] for r in rated] == ["MobileNetV2", "ResNet50", "VGG16"]
    mobile = rated[0]
    assert mobile["spec"]["sha256"] == load_spec("mlee").sha256
    assert mobile["estimated"] is True and mobile["metrics"]["energy_per_sample"]["method"] == "estimate"
    assert mobile["metrics"]["energy_per_sample"]["index"] == 4.0
    assert mobile["record"]["id"] == "infer-MobileNetV2-AMD"
    assert result.stderr == ""  # machine output only on stdout, nothing else


def test_rate_json_gives_the_boundaries_in_the_metrics_own_unit_for_the_group(dbfile):
    rated = {(r["environment"], r["model"]): r for r in json.loads(run("rate", str(dbfile), "--json").stdout)}
    energy = rated[(CPU, "VGG16")]["metrics"]["energy_per_sample"]
    # Reference ResNet50 uses 1.0 J here: A below 1.0 / 2 J, B below 1.0 / 1.25 J, ...
    assert energy["boundaries"] == [2.0, 1.25, 0.8, 0.5]
    assert energy["value_boundaries"] == [0.5, 0.8, 1.25, 2.0]
    assert rated[(GPU, "VGG16")]["metrics"]["energy_per_sample"]["value_boundaries"] == [0.05, 0.08, 0.125, 0.2]
    top1 = rated[(CPU, "VGG16")]["metrics"]["top1"]  # higher is better: A above 1.05 x the reference's 70 %
    assert top1["value_boundaries"] == [b * 70.0 for b in top1["boundaries"]]


def test_rate_table_shows_a_metric_not_measured_in_grey_without_a_letter(tmp_path):
    dbfile = write_db(tmp_path / "merged.json", record("ResNet50"), record("VGG16", energy=4.0, top1=None))
    result = CliRunner().invoke(app, ["rate", str(dbfile)], env={"COLUMNS": "80", "FORCE_COLOR": "1", "NO_COLOR": None},
                                color=True)
    assert result.exit_code == 0, result.output
    plain = CliRunner().invoke(app, ["rate", str(dbfile), "--model", "VGG16"], env={"NO_COLOR": "1", "COLUMNS": "80"})
    row = next(line for line in plain.stdout.splitlines() if "Top-1" in line)
    assert row.split() == ["Top-1", "accuracy", "not", "measured", "%"]  # no index, no letter
    assert "not measured" in run("rate", str(dbfile), "--model", "VGG16").stdout  # the wide table too
    assert "counted as E in the compound rating" in " ".join(plain.stderr.split())
    assert re.search("\x1b\\[(37|90|38;5;244|38;2;127;127;127)mnot measured", result.stdout)  # grey with colour on
    assert "counted as E" not in " ".join(run("rate", str(write_db(tmp_path / "full.json", record("ResNet50"),
                                                                   record("VGG16")))).stderr.split())


def test_rate_csv_has_one_row_per_model_with_metric_columns(dbfile):
    result = run("rate", str(dbfile), "--csv", "--model", "VGG16")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["environment"], r["model"]) for r in rows] == [(GPU, "VGG16"), (CPU, "VGG16")]
    cpu = rows[1]
    assert cpu["energy_per_sample_value"] == "4.0" and cpu["energy_per_sample_index"] == "0.25"
    assert cpu["energy_per_sample_rating"] == "E" and cpu["energy_per_sample_unit"] == "J"
    assert cpu["energy_per_sample_method"] == "counter" and cpu["time_per_sample_method"] == ""
    assert cpu["spec"] == "mlee" and cpu["spec_sha256"] == load_spec("mlee").sha256 and cpu["estimated"] == "false"
    assert cpu["compound"] in "ABCDE" and cpu["reference"] == "ResNet50"


def test_rate_with_a_spec_file_and_another_preset(dbfile, tmp_path):
    data = load_spec("mlee").to_dict()
    data["name"], data["compound"] = "mine", "best"
    spec_path = tmp_path / "mine.json"
    spec_path.write_text(json.dumps(data), encoding="utf-8")
    result = run("rate", str(dbfile), "--spec", str(spec_path), "--json")
    assert result.exit_code == 0, result.output
    rated = json.loads(result.stdout)
    assert {r["spec"]["name"] for r in rated} == {"mine"}
    assert {r["model"]: r["compound"] for r in rated if r["environment"] == CPU}["MobileNetV2"] == "A"
    relative = json.loads(run("rate", str(dbfile), "--spec", "relative", "--json").stdout)
    assert all(r["reference"] is None for r in relative)


@pytest.mark.parametrize("args, code, fragment", [
    (["--model", "GPT"], 2, "no model 'GPT' in the database (it has: MobileNetV2; ResNet50; VGG16)"),
    (["--env", "TPU"], 2, f"no environment 'TPU' in the database (it has: {GPU}; {CPU})"),
    (["--task", "training"], 2, "the database has no training run (it has: inference)"),
    (["--spec", "mlee-2023"], 2, "no rating spec 'mlee-2023': not a preset and no such file"),
    (["--spec", "mlee-2022"], 1, "no reference model ResNet101 in group inference / synthetic / "),
    (["--json", "--csv"], 2, "--json and --csv exclude each other"),
])
def test_rate_errors_are_one_line_with_the_fix(dbfile, args, code, fragment):
    result = run("rate", str(dbfile), *args)
    assert result.exit_code == code
    assert fragment in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_rate_missing_reference_names_the_command(dbfile):
    result = run("rate", str(dbfile), "--spec", "mlee-2022")
    text = " ".join(result.stderr.split())
    assert "mlee infer --model ResNet101 --backend pytorch --dataset synthetic" in text
    assert "the group has: ResNet50, VGG16" in text


def test_rate_bad_database_paths(tmp_path):
    result = run("rate", str(tmp_path / "nope.json"))
    assert result.exit_code == 2 and "no database file" in result.stderr
    result = run("rate", str(tmp_path))  # a folder without experiments: merged in memory, nothing to rate
    assert result.exit_code == 1 and "nothing to rate" in result.stderr
    assert "merged 0 experiment(s)" in " ".join(result.stderr.split())
    broken = tmp_path / "broken.json"
    broken.write_text('{"records": [', encoding="utf-8")
    result = run("rate", str(broken))
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_rate_bad_spec_file_names_the_field(dbfile, tmp_path):
    data = load_spec("mlee").to_dict()
    data["tasks"]["inference"]["metrics"][0]["boundaries"] = [1, 2, 3, 4]
    spec_path = tmp_path / "bad.json"
    spec_path.write_text(json.dumps(data), encoding="utf-8")
    result = run("rate", str(dbfile), "--spec", str(spec_path))
    assert result.exit_code == 2
    assert "tasks.inference.metrics.energy_per_sample.boundaries must be strictly descending" in " ".join(
        result.stderr.split())


# ------------------------------------------------------------------------------------------------------ calibrate


def many(tmp_path: Path) -> Path:
    records = [record("ResNet50")]
    records += [record(f"M{i}", energy=1.0 / (i + 1), time_ms=10.0 / (i + 1), top1=0.6 + i / 50,
                       params=(i + 1) * 5_000_000) for i in range(8)]
    return write_db(tmp_path / "many.json", *records)


def test_calibrate_writes_a_spec_that_rate_accepts(tmp_path):
    db = many(tmp_path)
    out = tmp_path / "cal.json"
    result = run("calibrate", str(db), "--quantiles", "0.8,0.6,0.4,0.2", "-o", str(out))
    assert result.exit_code == 0, result.output
    spec = load_spec(str(out))
    assert spec.name == "mlee-calibrated" and spec.calibration["quantiles"] == [0.8, 0.6, 0.4, 0.2]
    assert f"wrote {out}" in " ".join(result.stderr.split())
    assert "inference.energy_per_sample: boundaries" in result.stderr
    assert "training: no runs: boundaries kept" in result.stderr
    rated = json.loads(run("rate", str(db), "--spec", str(out), "--json").stdout)
    assert {r["spec"]["sha256"] for r in rated} == {spec.sha256}
    # Boundaries at the 0.8/0.6/0.4/0.2 quantiles spread nine models over the scale.
    assert {r["metrics"]["energy_per_sample"]["rating"] for r in rated} == set("ABCDE")


def test_calibrate_without_output_prints_the_spec(tmp_path):
    result = run("calibrate", str(many(tmp_path)), "--name", "site-2026", "--spec", "mlee")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "site-2026" and load_spec(data).name == "site-2026"


def test_calibrate_keeps_an_existing_file_unless_forced(tmp_path):
    db = many(tmp_path)
    out = tmp_path / "cal.json"
    out.write_text("precious", encoding="utf-8")
    result = run("calibrate", str(db), "-o", str(out))
    assert result.exit_code == 2 and "exists; it is kept" in result.stderr
    assert out.read_text(encoding="utf-8") == "precious"
    result = run("calibrate", str(db), "-o", str(out), "--force")
    assert result.exit_code == 0 and load_spec(str(out)).name == "mlee-calibrated"


@pytest.mark.parametrize("args, fragment", [
    (["--quantiles", "0.8,0.6,0.4"], "need four numbers strictly between 0 and 1, descending"),
    (["--quantiles", "0.2,0.4,0.6,0.8"], "need four numbers strictly between 0 and 1, descending"),
    (["--quantiles", "high,low"], "not a comma-separated list of numbers"),
    (["-o", "spec.toml"], "calibrate writes JSON"),
    (["--task", "training"], "no completed training run to calibrate from"),
])
def test_calibrate_bad_input(tmp_path, args, fragment):
    result = run("calibrate", str(many(tmp_path)), *args)
    assert result.exit_code in (1, 2)
    assert fragment in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_help_lists_both_commands():
    result = run("--help")
    assert "rate" in result.stdout and "calibrate" in result.stdout
