"""power/stats.json: statistics stored when a run ends, used by merges only for unchanged trace bytes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlee.results.folder as folder_mod
from mlee.results import merge, merge_into
from mlee.results.schema import problem
from mlee.results.statsfile import STATS_FILE, compute_entry, load_trace_stats, stored_stats, write_trace_stats
from mlee.results.traces import trace_stats
from results_builders import DEFAULT_SOURCES, gpu_source, make_experiment, write_trace

T0 = dt.datetime(2026, 11, 22, 7, 0, 0)


def _runs(root: Path) -> Path:
    """Three folders: plain, with a GPU, and one whose trace has invalid rows and empty cells."""
    runs = root / "runs"
    make_experiment(runs, "resnet18", start=T0)
    make_experiment(runs, "vgg16", start=T0 + dt.timedelta(minutes=1), sources=DEFAULT_SOURCES + (gpu_source(0),),
                    device="cuda")
    odd = make_experiment(runs, "alexnet", start=T0 + dt.timedelta(minutes=2))
    write_trace(odd / "power" / "rapl_package-0.csv",
                [[0.0, 0.0, 40.0, 1], [0.1, 4.0, None, 1], [0.2, None, 41.5, 0], [0.3, 12.0, 39.25, 1]])
    return runs


def _store_all(runs: Path) -> None:
    for f in sorted(runs.iterdir()):
        written, problems = write_trace_stats(f)
        assert written == f / "power" / STATS_FILE and problems == {}


@pytest.fixture
def parses(monkeypatch):
    """Counts the traces the merge parses."""
    calls: list[str] = []

    def spy(path, *args, **kwargs):
        calls.append(Path(path).name)
        return trace_stats(path, *args, **kwargs)

    monkeypatch.setattr(folder_mod, "trace_stats", spy)
    return calls


def _merged(runs: Path, out: Path, **kw) -> bytes:
    merge([runs], out, overwrite=True, **kw)
    return out.read_bytes()


def test_the_stored_entry_is_what_parsing_gives_with_the_files_size_and_crc(tmp_path):
    runs = _runs(tmp_path)
    for f in sorted(runs.iterdir()):
        for csv in sorted((f / "power").glob("*.csv")):
            entry = compute_entry(csv, csv.stem)
            data = csv.read_bytes()
            assert entry["size_bytes"] == len(data) and entry["crc32"] == f"{zlib.crc32(data):08x}"
            parsed, _ = trace_stats(csv, csv.stem)
            assert {f"{csv.stem}.{c}": v for c, v in entry["channels"].items()} == parsed


def test_stats_json_conforms_to_its_shipped_schema(tmp_path):
    runs = _runs(tmp_path)
    _store_all(runs)
    for f in runs.iterdir():
        doc = json.loads((f / "power" / STATS_FILE).read_text())
        assert problem("trace_stats", doc) is None
        assert doc["kind"] == "mlee-trace-stats" and doc["schema_version"] == 1
        assert sorted(doc["traces"]) == sorted(p.name for p in (f / "power").glob("*.csv"))


def test_merge_uses_stored_statistics_and_writes_the_same_bytes_as_parsing(tmp_path, parses):
    runs = _runs(tmp_path)
    parsed = _merged(runs, tmp_path / "a.json")
    assert len(parses) == 10  # 3 folders: 3 + 4 + 3 traces
    _store_all(runs)
    parses.clear()
    stored = _merged(runs, tmp_path / "b.json")
    assert parses == []
    assert stored == parsed
    # The odd trace: valid rows only, the empty cell left out.
    assert b'"rapl_package-0.power_w":{"max":40.0,"mean":39.625,"min":39.25,"n":2,' in stored


def test_a_trace_changed_after_the_run_is_parsed_again(tmp_path, parses):
    runs = _runs(tmp_path)
    _store_all(runs)
    trace = sorted(runs.glob("*/power/rapl_package-0.csv"))[0]
    data = trace.read_bytes()
    edited = data.replace(b",40.000000,", b",49.000000,", 1)  # same size, other bytes
    assert len(edited) == len(data) and edited != data
    trace.write_bytes(edited)
    out = _merged(runs, tmp_path / "db.json")
    assert parses == ["rapl_package-0.csv"]
    expected, _ = trace_stats(trace, "rapl_package-0")
    rec = next(r for r in json.loads(out)["records"] if r["traces"]["rapl_package-0.power_w"]["max"] == 49.0)
    assert {k: v for k, v in rec["traces"].items() if k.startswith("rapl_package-0.")} == expected
    trace.write_bytes(data + b"9.9,400.0,40.0,1\n")  # appended: another size
    parses.clear()
    _merged(runs, tmp_path / "db.json")
    assert parses == ["rapl_package-0.csv"]


@pytest.mark.parametrize("damage", [
    "truncated", "not json", "newer version", "another kind", "wrong types", "bad crc text", "a folder", "empty",
])
def test_an_unusable_stats_file_is_ignored_and_the_traces_parsed(tmp_path, parses, damage):
    runs = _runs(tmp_path)
    parsed = _merged(runs, tmp_path / "a.json")
    _store_all(runs)
    target = sorted(runs.iterdir())[0] / "power" / STATS_FILE
    doc = json.loads(target.read_text())
    text = target.read_text()
    if damage == "truncated":
        target.write_text(text[: len(text) // 2])
    elif damage == "not json":
        target.write_bytes(b"\xff\xfe nonsense")
    elif damage == "newer version":
        target.write_text(json.dumps({**doc, "schema_version": 2}))
    elif damage == "another kind":
        target.write_text(json.dumps({**doc, "kind": "something-else"}))
    elif damage == "wrong types":
        name = next(iter(doc["traces"]))
        doc["traces"][name]["size_bytes"] = "large"
        target.write_text(json.dumps(doc))
    elif damage == "bad crc text":
        name = next(iter(doc["traces"]))
        doc["traces"][name]["crc32"] = "XYZ"
        target.write_text(json.dumps(doc))
    elif damage == "a folder":
        target.unlink()
        target.mkdir()
    else:
        target.write_text("")
    assert load_trace_stats(target.parent.parent) == {}
    parses.clear()
    assert _merged(runs, tmp_path / "b.json") == parsed
    assert len(parses) == 3  # the damaged folder's traces, and only those


def test_a_trace_with_a_non_finite_row_is_stored_with_the_row_counted_and_the_run_kept(tmp_path):
    runs = _runs(tmp_path)
    bad = sorted(runs.iterdir())[0]
    (bad / "power" / "host.csv").write_text("t_s,proc_cpu_percent\n0.0,nan\n0.1,5.0\n")
    written, problems = write_trace_stats(bad)
    assert problems == {}
    stored = json.loads(written.read_text())["traces"]["host.csv"]["channels"]["proc_cpu_percent"]
    assert stored["invalid_rows"] == 1 and stored["n"] == 1 and stored["mean"] == 5.0
    report = merge_into(tmp_path / "db.json", [runs])
    db = json.loads((tmp_path / "db.json").read_text())
    assert db["skipped"] == [] and len(db["records"]) == len(list(runs.iterdir()))
    assert report.invalid_rows == 1 and report.invalid_inputs == 1


def test_include_traces_parses_every_trace(tmp_path, parses):
    runs = _runs(tmp_path)
    _store_all(runs)
    merge([runs], tmp_path / "db.json", include_traces=True)
    assert len(parses) == 10
    rec = json.loads((tmp_path / "db.json").read_text())["records"][0]
    assert rec["trace_samples"]["rapl_package-0.t_s"][:2] == [0.0, 0.1]


def test_stored_stats_refuses_other_bytes_and_unreadable_files(tmp_path):
    trace = tmp_path / "rapl_package-0.csv"
    write_trace(trace, [[0.0, 0.0, 40.0, 1], [0.1, 4.0, 40.0, 1]])
    entry = compute_entry(trace, "rapl_package-0")
    assert stored_stats(str(trace), "rapl_package-0", entry)["rapl_package-0.energy_j"]["max"] == 4.0
    assert stored_stats(str(trace), "rapl_package-0", {**entry, "crc32": "00000000"}) is None
    assert stored_stats(str(trace), "rapl_package-0", {**entry, "size_bytes": entry["size_bytes"] + 1}) is None
    assert stored_stats(str(tmp_path / "missing.csv"), "missing", entry) is None
    assert stored_stats(str(tmp_path), "x", entry) is None  # not a regular file


def test_a_copied_folder_keeps_using_its_stored_statistics(tmp_path, parses):
    # Copies change mtimes and inodes, not bytes: the check is on content.
    runs = _runs(tmp_path)
    _store_all(runs)
    copy = tmp_path / "copy"
    shutil.copytree(runs, copy)
    merge([copy], tmp_path / "db.json")
    assert parses == []


rows = st.lists(
    st.tuples(st.floats(0, 1e6, allow_nan=False), st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)),
              st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False)), st.sampled_from([0, 1])),
    min_size=0, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows)
def test_property_stored_statistics_equal_parsed_ones(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("p")
    (d / "power").mkdir()
    trace = d / "power" / "nvml_0.csv"
    write_trace(trace, [list(r) for r in rows])
    written, problems = write_trace_stats(d)
    assert problems == {}
    entry = load_trace_stats(d)["nvml_0.csv"]
    assert stored_stats(str(trace), "nvml_0", entry) == trace_stats(trace, "nvml_0")[0]


def test_merge_says_how_many_traces_it_had_to_parse(tmp_path):
    from mlee.results import merge_into
    from results_builders import run_merge

    runs = _runs(tmp_path)
    said = run_merge(runs, "-o", tmp_path / "a.json")
    assert said.exit_code == 0
    assert "10 trace(s) had no matching power/stats.json and were parsed" in said.output
    _store_all(runs)
    said = run_merge(runs, "-o", tmp_path / "b.json")
    assert said.exit_code == 0 and "had no matching" not in said.output
    one = sorted(runs.glob("*/power/host.csv"))[0]
    one.write_bytes(one.read_bytes() + b"0.3,1,2,3,4\n")
    assert merge_into(tmp_path / "c.json", [runs]).traces_parsed == 1
    assert merge_into(tmp_path / "d.json", [runs], include_traces=True).traces_parsed == 10
