"""`mlee report` through the CLI: the file it writes, its messages, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest
from test_report_support import copy_database, database, record, small_database
from typer.testing import CliRunner

from mlee.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def flat(text: str) -> str:
    """Terminal text with rich's line wrapping undone."""
    return " ".join(text.split())


def _data(path) -> dict:
    html = path.read_text(encoding="utf-8")
    start = html.index('id="mlee-data">') + len('id="mlee-data">')
    return json.loads(html[start:html.index("</script>", start)])


def test_report_writes_one_page(tmp_path) -> None:
    db = copy_database(small_database(traces=True), tmp_path / "db.json")
    out = tmp_path / "site" / "report.html"
    result = invoke("report", str(db), "-o", str(out), "--spec", "mlee", "--title", "Nightly")
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert result.stdout.strip() == str(out)
    assert "10 rated record(s), 0 with a label, 2 with power traces" in flat(result.stderr)
    data = _data(out)
    assert data["title"] == "Nightly" and data["database"] == "db.json"
    assert len(data["records"]) == 10 and data["spec"]["name"] == "mlee"


def test_default_output_is_results_report_html(tmp_path, monkeypatch) -> None:
    db = copy_database(small_database(), tmp_path / "db.json")
    monkeypatch.chdir(tmp_path)
    result = invoke("report", "db.json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "report.html").is_file()


def test_same_input_same_bytes(tmp_path) -> None:
    db = copy_database(small_database(hostile=True, traces=True), tmp_path / "db.json")
    for name in ("a.html", "b.html"):
        assert invoke("report", str(db), "-o", str(tmp_path / name)).exit_code == 0
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_missing_reference_group_is_reported_not_fatal(tmp_path) -> None:
    db = small_database()
    db["records"] = [r for r in db["records"] if not (r["model"] == "ResNet50" and "EPYC" in r["environment"])]
    path = copy_database(db, tmp_path / "db.json")
    result = invoke("report", str(path), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 0, result.output
    assert "note: Not rated: inference in AMD EPYC 7B13 - TensorFlow 2.21.0" in flat(result.stderr)
    assert "mlee infer --model ResNet50" in flat(result.stderr)


@pytest.mark.parametrize("args, code, text", [
    (("report", "{tmp}/nope.json"), 1, "nope.json"),
    (("report", "{tmp}"), 2, "is a folder, not a database"),
    (("report", "{db}", "--spec", "no-such-spec"), 2, "no rating spec 'no-such-spec'"),
    (("report", "{db}", "-o", "{tmp}"), 2, "is a folder"),
    (("report", "{db}", "--labels", "{tmp}/nolabels"), 2, "--labels"),
    (("report", "{db}", "--max-trace-points", "3"), 2, "--max-trace-points must be at least 10"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, code, text) -> None:
    db = copy_database(small_database(), tmp_path / "db.json")
    argv = [a.format(tmp=tmp_path, db=db) for a in args]
    result = invoke(*argv)
    assert result.exit_code == code, result.output
    assert text in flat(result.stderr)
    assert "Traceback" not in result.output


def test_nothing_to_rate_fails_with_the_reason(tmp_path) -> None:
    run = record("x")
    run.update(kind="run", task=None, model=None)
    path = copy_database(database([run]), tmp_path / "db.json")
    result = invoke("report", str(path), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    assert "nothing to rate" in flat(result.stderr)
    assert not (tmp_path / "r.html").exists()


def test_corrupt_database_is_a_format_error(tmp_path) -> None:
    path = tmp_path / "db.json"
    path.write_text('{"schema_version": 1, "kind": "mlee-database", "records": [', encoding="utf-8")
    result = invoke("report", str(path), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    assert "db.json" in flat(result.stderr) and "Traceback" not in result.output


def test_failed_rebuild_keeps_the_old_report(tmp_path) -> None:
    db = copy_database(small_database(), tmp_path / "db.json")
    out = tmp_path / "r.html"
    assert invoke("report", str(db), "-o", str(out)).exit_code == 0
    before = out.read_bytes()
    assert invoke("report", str(db), "-o", str(out), "--spec", str(tmp_path / "bad.json")).exit_code == 2
    assert out.read_bytes() == before


def test_output_below_a_file_is_a_usage_error_naming_the_file(tmp_path) -> None:
    db = copy_database(small_database(), tmp_path / "db.json")
    (tmp_path / "file").write_text("x")
    result = invoke("report", str(db), "-o", str(tmp_path / "file" / "r.html"))
    assert result.exit_code == 2
    assert f"{tmp_path / 'file'} is a file, not a folder" in flat(result.stderr)
    assert (tmp_path / "file").read_text() == "x"


def test_labels_folder_option_links_rendered_labels(tmp_path) -> None:
    from mlee.label.batch import write_labels
    from mlee.rating import load_spec, rate_database

    db = small_database()
    path = copy_database(db, tmp_path / "db.json")
    rated = rate_database(db, load_spec("mlee"))
    written = write_labels([r for r in rated if r["model"] == "MobileNetV2"], tmp_path / "labels", fmt="pdf")
    assert len(written) == 2
    out = tmp_path / "site" / "report.html"
    result = invoke("report", str(path), "-o", str(out), "--labels", str(tmp_path / "labels"))
    assert result.exit_code == 0, result.output
    assert "2 with a label" in flat(result.stderr)
    links = sorted(r["label"]["pdf"] for r in _data(out)["records"] if r["label"])
    assert links == sorted(f"../labels/{w.path.name}" for w in written)
    assert all((out.parent / link).is_file() for link in links)
    assert all(r["label"]["img"] is None for r in _data(out)["records"] if r["label"])  # PDF only: links
    from PIL import Image

    for w in written:
        Image.new("RGB", (40, 70), (99, 155, 48)).save(w.path.with_suffix(".png"))
    assert invoke("report", str(path), "-o", str(out), "--labels", str(tmp_path / "labels")).exit_code == 0
    images = [r["label"]["img"] for r in _data(out)["records"] if r["label"]]
    assert len(images) == 2 and all(i.startswith("data:image/png;base64,") for i in images)
    assert invoke("report", str(path), "-o", str(out), "--labels", str(tmp_path / "labels"),
                  "--no-label-images").exit_code == 0
    assert [r["label"]["img"] for r in _data(out)["records"] if r["label"]] == [None, None]


def test_help_lists_report() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "report" in result.stdout
    result = invoke("report", "--help")
    assert result.exit_code == 0 and "--labels" in result.stdout and "--spec" in result.stdout


def test_from_experiment_folders_through_merge_to_power_traces(tmp_path) -> None:
    merge_only = ("environment", "origin", "origin_path", "config", "environment_info", "traces", "trace_samples")
    for rec in small_database()["records"]:
        if rec["estimated"]:
            continue
        folder = tmp_path / "results" / rec["id"]
        (folder / "power").mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({k: v for k, v in rec.items() if k not in merge_only}))
        (folder / "config.json").write_text(json.dumps({"kind": "infer", "name": rec["model"]}))
        cpu = "Intel(R) Xeon(R) W-2155 CPU @ 3.30GHz" if "Xeon" in rec["environment"] else "AMD EPYC 7B13 64-Core Processor"
        (folder / "environment.json").write_text(json.dumps({"cpu": {"model": cpu}, "gpus": [], "packages": {}}))
        rows = ["t_s,energy_j,power_w,valid"]
        energy = 0.0
        for i in range(100):  # 20 W, 30 W from 3 s to 6 s
            energy += (30.0 if 30 < i <= 60 else 20.0) * 0.1 if i else 0.0
            rows.append(f"{i / 10:.1f},{energy:.4f},,1")
        (folder / "power" / "rapl_package-0.csv").write_text("\n".join(rows) + "\n")
    db = tmp_path / "db.json"
    merged = invoke("merge", str(tmp_path / "results"), "-o", str(db), "--include-traces")
    assert merged.exit_code == 0, merged.output
    out = tmp_path / "report.html"
    result = invoke("report", str(db), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "8 rated record(s), 0 with a label, 8 with power traces" in flat(result.stderr)
    records = _data(out)["records"]
    trace = records[0]["traces"][0]
    assert trace["name"] == "rapl:package-0" and trace["method"] == "counter"
    assert min(trace["power_w"]) == pytest.approx(20.0) and max(trace["power_w"]) == pytest.approx(30.0)
    assert trace["t_s"][0] == pytest.approx(0.05)
