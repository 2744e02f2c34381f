"""`mlee merge` from the command line: records, summaries, skipped inputs, determinism, --strict, exit codes."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import pytest

from results_builders import DEFAULT_SOURCES, edit_results, gpu_source, make_experiment, run_merge

T0 = dt.datetime(2026, 11, 22, 7, 0, 0)


run = run_merge


def _repeats(root, n=3, model="ResNet18", seconds=(2.0, 2.5, 3.0)):
    return [make_experiment(root, name=model.lower(), model=model, start=T0 + dt.timedelta(minutes=i),
                            duration_s=seconds[i % len(seconds)]) for i in range(n)]


def test_merge_writes_one_record_per_experiment_and_summarises_repeats(tmp_path):
    runs = tmp_path / "runs"
    folders = _repeats(runs)
    make_experiment(runs, name="mobilenet", model="MobileNetV2", start=T0)
    make_experiment(runs, name="broken", model="ResNet18", start=T0 + dt.timedelta(hours=1), status="failed")
    out = tmp_path / "db.json"
    result = run(runs, "-o", out)
    assert result.exit_code == 0, result.output
    assert "5 record(s), 2 summary(ies), 0 skipped" in result.output
    db = json.loads(out.read_text())
    assert [r["id"] for r in db["records"]] == sorted(r["id"] for r in db["records"])
    assert {r["id"] for r in db["records"]} >= {f.name for f in folders}
    res = [s for s in db["summaries"] if s["model"] == "ResNet18"]
    assert len(res) == 1
    s = res[0]
    assert s["n"] == 3 and s["ids"] == sorted(f.name for f in folders)  # the failed run is a record, not in it
    per = [json.loads((f / "results.json").read_text())["per_sample"] for f in folders]
    energies = [p["energy_j"]["total"] for p in per]
    mean = sum(energies) / 3
    assert s["per_sample"]["energy_j"]["mean"] == pytest.approx(mean)
    std = (sum((e - mean) ** 2 for e in energies) / 2) ** 0.5
    assert s["per_sample"]["energy_j"]["std"] == pytest.approx(std)
    assert s["per_sample"]["time_ms"]["mean"] == pytest.approx(sum(p["time_ms"] for p in per) / 3)
    assert s["environment"] == "AMD EPYC 7B13 - PyTorch 2.14.1" and s["estimated"] is False
    single = next(s for s in db["summaries"] if s["model"] == "MobileNetV2")
    assert single["n"] == 1 and single["per_sample"]["energy_j"]["std"] is None
    failed = next(r for r in db["records"] if r["name"] == "broken")
    assert failed["status"] == "failed"


def test_estimates_are_labelled_in_summaries(tmp_path):
    runs = tmp_path / "runs"
    make_experiment(runs, sources=(("estimate:cpu", "cpu", "estimate", 30.0),))
    db_path = tmp_path / "db.json"
    assert run(runs, "-o", db_path).exit_code == 0
    db = json.loads(db_path.read_text())
    assert db["records"][0]["estimated"] is True
    assert db["summaries"][0]["estimated"] is True and db["summaries"][0]["energy_method"] == "estimate"


def _scramble(src, dst, order):
    dst.mkdir(parents=True)
    for name in order:
        shutil.copytree(src / name, dst / name)


def test_output_is_byte_identical_whatever_the_filesystem_order(tmp_path):
    src = tmp_path / "src"
    _repeats(src, n=4)
    make_experiment(src, name="gpu", sources=DEFAULT_SOURCES + (gpu_source(0),), device="cuda", start=T0)
    (src / "junk").mkdir()
    (src / "junk" / "results.json").write_text("{")
    names = sorted(os.listdir(src))
    _scramble(src, tmp_path / "a" / "runs", names)
    _scramble(src, tmp_path / "b" / "runs", list(reversed(names)))
    assert run(tmp_path / "a" / "runs", "-o", tmp_path / "a.json", "-j", "1").exit_code == 0
    assert run(tmp_path / "b" / "runs", "-o", tmp_path / "b.json", "-j", "2").exit_code == 0
    first = (tmp_path / "a.json").read_bytes()
    assert first == (tmp_path / "b.json").read_bytes()
    # Merging again into the same file gives the same bytes: no timestamps, no duplicates.
    assert run(tmp_path / "a" / "runs", "-o", tmp_path / "a.json").exit_code == 0
    assert (tmp_path / "a.json").read_bytes() == first


def test_parallel_and_serial_reading_agree(tmp_path, monkeypatch):
    import mlee.results.reading as merge_mod

    runs = tmp_path / "runs"
    for i in range(12):
        make_experiment(runs, name=f"m{i}", start=T0 + dt.timedelta(seconds=i))
    monkeypatch.setattr(merge_mod, "PARALLEL_MIN_INPUTS", 2)
    assert run(runs, "-o", tmp_path / "p.json", "-j", "2").exit_code == 0
    assert run(runs, "-o", tmp_path / "s.json", "-j", "1").exit_code == 0
    assert (tmp_path / "p.json").read_bytes() == (tmp_path / "s.json").read_bytes()


def test_skipped_inputs_are_listed_with_reasons_and_strict_fails(tmp_path):
    runs = tmp_path / "runs"
    good = make_experiment(runs, start=T0)
    trunc = make_experiment(runs, name="trunc", start=T0)
    (trunc / "results.json").write_text((trunc / "results.json").read_text()[:50])
    nores = make_experiment(runs, name="nores", start=T0)
    (nores / "results.json").unlink()
    newer = make_experiment(runs, name="newer", start=T0)
    edit_results(newer, schema_version=9)
    running = make_experiment(runs, name="running", start=T0, status="running")
    out = tmp_path / "db.json"
    result = run(runs, "-o", out)
    assert result.exit_code == 0, result.output
    db = json.loads(out.read_text())
    assert [r["id"] for r in db["records"]] == [good.name]
    reasons = {s["path"].split("/")[-1]: s["reason"] for s in db["skipped"]}
    assert "truncated" in reasons[trunc.name]
    assert reasons[nores.name] == "results.json is missing"
    assert "schema_version 9" in reasons[newer.name] and "upgrade mlee" in reasons[newer.name]
    assert "still in progress" in reasons[running.name]
    assert all(s["path"].startswith("runs/") for s in db["skipped"])
    assert "skipped (4)" in result.output and "results.json is missing" in result.output
    strict = run(runs, "-o", out, "--strict")
    assert strict.exit_code == 1 and "--strict: 4 input(s) were skipped" in strict.output


def test_odd_folder_names_are_merged_and_shown_escaped(tmp_path):
    runs = tmp_path / "runs"
    make_experiment(runs, folder_name="with space [bold]x[/bold]", start=T0)
    make_experiment(runs, folder_name="ümlaut-实验", name="u", start=T0)
    bad = make_experiment(runs, folder_name="new\nline", name="n", start=T0)
    (bad / "config.json").write_text("[1, 2")
    raw = os.fsencode(runs) + b"/bytes-\xff"
    os.mkdir(raw)
    os.mkdir(raw + b"/power")  # an experiment-like folder without results.json
    out = tmp_path / "db.json"
    result = run(runs, "-o", out)
    assert result.exit_code == 0, result.output
    db = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(r["id"] for r in db["records"]) == ["with space [bold]x[/bold]", "ümlaut-实验"]
    paths = sorted(s["path"] for s in db["skipped"])
    assert paths == ["runs/bytes-\\xff", "runs/new\\nline"]
    assert "runs/bytes-\\xff" in result.output


def test_symlink_loops_are_reported_not_followed(tmp_path):
    runs = tmp_path / "runs"
    make_experiment(runs / "a", start=T0)
    os.symlink(runs, runs / "a" / "loop")
    os.symlink("self", runs / "self")
    out = tmp_path / "db.json"
    result = run(runs, "-o", out)
    assert result.exit_code == 0, result.output
    db = json.loads(out.read_text())
    assert len(db["records"]) == 1
    reasons = " ".join(s["reason"] for s in db["skipped"])
    assert "loop" in reasons
    assert "Too many levels of symbolic links" in reasons or "broken symbolic link" in reasons


def test_missing_input_is_a_usage_error(tmp_path):
    result = run(tmp_path / "nope", "-o", tmp_path / "db.json")
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "notes.txt").write_text("x")
    result = run(tmp_path / "notes.txt", "-o", tmp_path / "db.json")
    assert result.exit_code == 2 and "neither a folder nor a 2022 mlee log" in result.output
    make_experiment(tmp_path / "runs", start=T0)
    result = run(tmp_path / "runs", "-o", tmp_path / "missing-dir" / "db.json")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_include_traces_stores_samples(tmp_path):
    runs = tmp_path / "runs"
    make_experiment(runs, start=T0, duration_s=0.2)
    out = tmp_path / "db.json"
    assert run(runs, "-o", out, "--include-traces").exit_code == 0
    rec = json.loads(out.read_text())["records"][0]
    assert rec["trace_samples"]["rapl_package-0.power_w"] == [40.0, 40.5, 41.0]
    assert run(runs, "-o", out).exit_code == 0
    assert "trace_samples" not in json.loads(out.read_text())["records"][0]


def test_existing_database_records_are_not_dropped_silently(tmp_path):
    runs = tmp_path / "runs"
    a = make_experiment(runs, name="a", start=T0)
    make_experiment(runs, name="b", start=T0)
    out = tmp_path / "db.json"
    assert run(runs, "-o", out).exit_code == 0
    before = out.read_bytes()
    shutil.rmtree(a)
    result = run(runs, "-o", out)
    assert result.exit_code == 2 and "would be lost" in result.output and "--update" in result.output
    assert out.read_bytes() == before
    assert run(runs, "-o", out, "--overwrite").exit_code == 0
    assert len(json.loads(out.read_text())["records"]) == 1


def test_refuses_to_overwrite_a_file_that_is_not_a_database(tmp_path):
    make_experiment(tmp_path / "runs", start=T0)
    out = tmp_path / "notes.json"
    out.write_text("my precious notes")
    result = run(tmp_path / "runs", "-o", out)
    assert result.exit_code == 2 and "not a readable mlee database" in result.output
    assert out.read_text() == "my precious notes"


def test_default_input_is_results_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run()
    assert result.exit_code == 2 and "results/ does not exist" in result.output
    make_experiment(tmp_path / "results", start=T0)
    result = run()
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "results" / "merged.json").read_text())["records"]) == 1
    # The database inside results/ is not taken for an input on the next merge.
    assert run().exit_code == 0
    assert len(json.loads((tmp_path / "results" / "merged.json").read_text())["records"]) == 1


def test_duplicate_ids_keep_the_first_and_skip_the_copy(tmp_path):
    runs = tmp_path / "runs"
    folder = make_experiment(runs / "a", start=T0)
    shutil.copytree(folder, runs / "b" / folder.name)
    out = tmp_path / "db.json"
    result = run(runs, "-o", out)
    assert result.exit_code == 0, result.output
    db = json.loads(out.read_text())
    assert [r["id"] for r in db["records"]] == [folder.name]
    assert db["skipped"] == [{"path": f"runs/b/{folder.name}",
                              "reason": f"duplicate experiment id {folder.name} (also in runs/a/{folder.name})"}]
