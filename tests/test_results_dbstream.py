"""Databases read record by record (issue 15, item 7): the same content as a whole-file read, the same errors,
and a fall-back to the whole file for any other layout."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import ResultFormatError
from mlee.rating import load_spec
from mlee.rating.records import record_keys
from mlee.results import load_database, merge
from mlee.results.database import index_path
from mlee.results.dbread import iter_database, records_by_id
from mlee.results.dbstream import NotStreamable
from results_builders import make_experiment, run_merge


@pytest.fixture()
def merged(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for i, model in enumerate(["ResNet50", "VGG16", "ResNet50", "MobileNetV2"]):
        make_experiment(runs, name=f"m{i}", model=model, start=dt.datetime(2026, 11, 22, 7, i))
    out = tmp_path / "db.json"
    merge([runs], out)
    return out


def one_line(path: Path, tmp_path: Path) -> Path:
    """The same database as one line of JSON (a layout the writer does not use)."""
    other = tmp_path / "one-line.json"
    other.write_text(json.dumps(json.loads(path.read_text())))
    return other


def test_streamed_and_whole_reads_agree(merged, tmp_path):
    whole = json.loads(merged.read_text())
    assert load_database(merged) == whole == load_database(one_line(merged, tmp_path))
    keys = record_keys(load_spec("mlee"))
    slim = load_database(merged, keys=keys)
    assert slim == load_database(one_line(merged, tmp_path), keys=keys)
    assert slim["summaries"] == whole["summaries"] and len(slim["records"]) == 4
    assert all(set(r) <= keys for r in slim["records"]) and "traces" not in slim["records"][0]
    assert records_by_id(merged, [whole["records"][1]["id"]]) == {whole["records"][1]["id"]: whole["records"][1]}


def test_records_come_with_their_place_in_the_file(merged):
    data = merged.read_bytes()
    seen = [(rec, data[offset:offset + length]) for rec, offset, length in iter_database(merged, True, lambda _: None)]
    assert [json.loads(line) for _, line in seen] == [rec for rec, _ in seen]


def test_a_record_split_over_lines_falls_back_to_the_whole_file(merged):
    text = merged.read_text()
    first = text.index('\n{"') + 1
    text = text[:first] + text[first:].replace(',"', ',\n"', 1)  # the first record now spans two lines
    merged.write_text(text)
    with pytest.raises(NotStreamable):
        list(iter_database(merged, True, lambda _: None))
    assert len(load_database(merged)["records"]) == 4


@pytest.mark.parametrize("damage,message", [
    (lambda t: t[: len(t) // 2], "truncated"),
    (lambda t: t.replace('"schema_version":1', '"schema_version":7'), "newer than this mlee"),
    (lambda t: t.replace('"duration_s":2.0', '"duration_s":NaN', 1), "not a finite number"),
    (lambda t: t.replace('"kind":"mlee-database"', '"kind":"other"'), "is not an mlee database"),
    (lambda t: t.replace('"duration_s":2.0', '"duration_s":"2"', 1), "duration_s"),
])
def test_damaged_databases_fail_closed_with_the_reason(merged, damage, message):
    merged.write_text(damage(merged.read_text()))
    with pytest.raises(ResultFormatError, match=message):
        load_database(merged)


def test_integers_beyond_64_bits_read_as_json_reads_them(merged):
    text = merged.read_text().replace('"n_samples":64', '"n_samples":123456789012345678901234567890', 1)
    merged.write_text(text)
    assert load_database(merged) == json.loads(text)


def test_rate_gives_the_same_output_from_either_layout(merged, tmp_path):
    env = {"NO_COLOR": "1", "COLUMNS": "200"}
    spec = load_spec("relative").to_dict()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    runs = [CliRunner().invoke(app, ["rate", str(p), "--csv", "--spec", str(tmp_path / "spec.json")], env=env)
            for p in (merged, one_line(merged, tmp_path))]
    assert runs[0].exit_code == 0, runs[0].output
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.count("\n") == 4  # header + three models


def test_update_without_its_index_equals_a_full_merge(tmp_path):
    runs = tmp_path / "runs"
    for i in range(3):
        make_experiment(runs, name=f"m{i}", start=dt.datetime(2026, 11, 22, 7, i))
    out = tmp_path / "db.json"
    assert run_merge(runs, "-o", out).exit_code == 0
    make_experiment(runs, name="m9", start=dt.datetime(2026, 11, 22, 8, 0))
    index_path(out).unlink()
    assert run_merge(runs / "m9" if (runs / "m9").exists() else runs, "-o", out, "--update").exit_code == 0
    full = tmp_path / "full.json"
    assert run_merge(runs, "-o", full).exit_code == 0
    assert out.read_bytes() == full.read_bytes()


def test_a_report_from_reduced_records_is_the_same_page(tmp_path):
    from mlee.report.build import build_report, record_fields

    runs = tmp_path / "runs"
    for i, model in enumerate(["ResNet50", "VGG16", "MobileNetV2"]):
        make_experiment(runs, name=f"m{i}", model=model, start=dt.datetime(2026, 11, 22, 7, i))
    out = tmp_path / "db.json"
    assert run_merge(runs, "-o", out, "--include-traces").exit_code == 0
    spec = load_spec("relative")
    whole = build_report(load_database(out), spec, database_name="db.json")
    reduced = build_report(load_database(out, keys=record_fields(spec)), spec, database_name="db.json")
    assert whole.n_traced == 3 and reduced.html == whole.html


def test_the_database_beside_an_experiment_is_found_by_parsing_not_by_sniffing(merged, tmp_path):
    from mlee.results.dbread import database_beside, is_database

    runs = tmp_path / "runs"
    folder = next(p for p in runs.iterdir() if p.is_dir())
    whole = json.loads(merged.read_text())
    assert database_beside(folder) is None  # db.json lies one folder up, not beside the experiment
    # Other JSON that mentions the marker in its first bytes is not a database (a byte search took it for one).
    (runs / "a-notes.json").write_text(json.dumps({"kind": "notes", "formats": {"mlee-database": 1}}))
    (runs / "b-list.json").write_text(json.dumps(["mlee-database"]))
    (runs / "c-broken.json").write_text('{\n"kind":"mlee-database",\n"records":[\n{"id": ')
    assert database_beside(folder) is None
    # A hand-laid database whose kind comes after megabytes of records is one (a 4 KB sniff missed it).
    reordered = {"records": whole["records"] * 200, "summaries": whole["summaries"], "skipped": whole["skipped"],
                 "schema_version": whole["schema_version"], "mlee_version": whole["mlee_version"],
                 "kind": whole["kind"]}
    late = runs / "d-late.json"
    late.write_text(json.dumps(reordered))
    assert late.stat().st_size > 1 << 20 and b"mlee-database" not in late.read_bytes()[:4096]
    assert is_database(late) and database_beside(folder) == late
    # merged.json wins when it is a database, and only then.
    (runs / "merged.json").write_text("[]")
    assert database_beside(folder) == late
    (runs / "merged.json").write_bytes(merged.read_bytes())
    assert database_beside(folder) == runs / "merged.json"
    assert not is_database(runs) and not is_database(runs / "missing.json")


def test_a_fifo_beside_an_experiment_is_not_opened(merged, tmp_path):
    import os

    from mlee.results.dbread import database_beside

    runs = tmp_path / "runs"
    os.mkfifo(runs / "a-pipe.json")  # opening it for reading would wait for a writer forever
    (runs / "b.json").write_bytes(merged.read_bytes())
    assert database_beside(next(p for p in runs.iterdir() if p.is_dir())) == runs / "b.json"
