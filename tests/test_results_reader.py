"""Reading experiment folders: the record's content, and every way a folder fails closed with a reason."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mlee.errors import ResultFormatError
from mlee.results import read_experiment
from mlee.results.traces import trace_stats
from results_builders import DEFAULT_SOURCES, edit_results, gpu_source, make_experiment, write_trace


def test_record_is_results_plus_config_environment_and_trace_stats(tmp_path):
    folder = make_experiment(tmp_path, sources=DEFAULT_SOURCES + (gpu_source(0),), device="cuda")
    rec = read_experiment(folder)
    results = json.loads((folder / "results.json").read_text())
    for key, value in results.items():
        assert rec[key] == value
    assert rec["origin"] == "mlee"
    assert rec["config"]["name"] == "resnet18"
    assert rec["environment_info"]["hostname"] == "node1"
    assert rec["environment"] == "A100 - PyTorch 2.14.1"
    data = np.loadtxt(folder / "power" / "rapl_package-0.csv", delimiter=",", skiprows=1)
    stats = rec["traces"]["rapl_package-0.power_w"]
    assert stats["n"] == len(data)
    assert stats["mean"] == pytest.approx(data[:, 2].mean())
    assert stats["std"] == pytest.approx(data[:, 2].std())
    assert (stats["min"], stats["max"]) == (data[:, 2].min(), data[:, 2].max())
    assert "rapl_package-0.t_s" not in rec["traces"]
    assert rec["traces"]["host.proc_cpu_percent"]["max"] == 99.0
    assert "trace_samples" not in rec


def test_include_traces_keeps_raw_samples(tmp_path):
    folder = make_experiment(tmp_path, duration_s=0.3)
    rec = read_experiment(folder, include_traces=True)
    assert rec["trace_samples"]["rapl_package-0.t_s"] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert rec["trace_samples"]["rapl_package-0.power_w"] == [40.0, 40.5, 41.0, 40.0]


def test_invalid_rows_and_empty_cells_are_left_out_of_channel_stats(tmp_path):
    path = tmp_path / "nvml_0.csv"
    write_trace(path, [[0.0, None, 100.0, 1], [0.1, None, 9999.0, 0], [0.2, None, 110.0, 1], [0.3, None, None, 1]])
    stats, _ = trace_stats(path, "nvml_0")
    assert stats["nvml_0.power_w"] == {"min": 100.0, "max": 110.0, "mean": 105.0, "std": 5.0, "n": 2}
    assert stats["nvml_0.energy_j"]["n"] == 0 and stats["nvml_0.energy_j"]["mean"] is None
    assert stats["nvml_0.valid"]["mean"] == 0.75  # fraction of valid samples over all rows


def test_blocks_give_the_same_stats_as_one_pass(tmp_path, monkeypatch):
    import mlee.results.traces as traces

    rng = np.random.default_rng(3)
    rows = [[i * 0.1, float(i), float(v), 1] for i, v in enumerate(rng.normal(50, 5, 3000))]
    path = tmp_path / "rapl_package-0.csv"
    write_trace(path, rows)
    whole, _ = trace_stats(path, "x")
    monkeypatch.setattr(traces, "BLOCK_BYTES", 1000)  # forces ~100 blocks split mid-file
    parts, _ = trace_stats(path, "x")
    for key in whole:
        assert parts[key]["n"] == whole[key]["n"]
        assert parts[key]["mean"] == pytest.approx(whole[key]["mean"], rel=1e-12)
        assert parts[key]["std"] == pytest.approx(whole[key]["std"], rel=1e-9)


def _fails(folder, *words):
    with pytest.raises(ResultFormatError) as info:
        read_experiment(folder)
    text = str(info.value)
    for w in words:
        assert w in text, text
    return text


def test_truncated_results_json(tmp_path):
    folder = make_experiment(tmp_path)
    text = (folder / "results.json").read_text()
    (folder / "results.json").write_text(text[: len(text) // 2])
    _fails(folder, "results.json", "truncated")


def test_non_utf8_results_json(tmp_path):
    folder = make_experiment(tmp_path)
    (folder / "results.json").write_bytes(b'{"id": "caf\xe9"}')
    _fails(folder, "results.json", "not UTF-8")


def test_nan_in_results_json(tmp_path):
    folder = make_experiment(tmp_path)
    text = (folder / "results.json").read_text().replace('"duration_s": 2.0', '"duration_s": NaN')
    (folder / "results.json").write_text(text)
    _fails(folder, "NaN")


def test_infinity_in_results_json(tmp_path):
    folder = make_experiment(tmp_path)
    text = (folder / "results.json").read_text().replace('"duration_s": 2.0', '"duration_s": -Infinity')
    (folder / "results.json").write_text(text)
    _fails(folder, "Infinity")


@pytest.mark.parametrize("change, words", [
    ({"energy_j": {"total": "1.0", "cpu": None, "dram": None, "gpu": None}}, ("energy_j.total", "string")),
    ({"sources": {"name": "rapl"}}, ("sources", "an object, not array")),
    ({"status": "done"}, ("status", "not one of")),
    ({"duration_s": -1.0}, ("duration_s",)),
    ({"estimated": 1}, ("estimated", "boolean")),
])
def test_wrong_types_name_the_key(tmp_path, change, words):
    folder = make_experiment(tmp_path)
    edit_results(folder, **change)
    _fails(folder, *words)


def test_missing_required_key(tmp_path):
    folder = make_experiment(tmp_path)
    data = json.loads((folder / "results.json").read_text())
    del data["energy_method"]
    (folder / "results.json").write_text(json.dumps(data))
    _fails(folder, "energy_method is missing")


def test_total_that_is_not_the_sum_of_components(tmp_path):
    folder = make_experiment(tmp_path)
    edit_results(folder, energy_j={"total": 1000.0, "cpu": 80.0, "dram": 10.0, "gpu": None})
    _fails(folder, "not the sum")


def test_newer_schema_version_is_refused_with_the_fix(tmp_path):
    folder = make_experiment(tmp_path)
    edit_results(folder, schema_version=2)
    _fails(folder, "schema_version 2", "upgrade mlee")


def test_run_in_progress_is_refused(tmp_path):
    folder = make_experiment(tmp_path, status="running")
    _fails(folder, "still in progress")


def test_missing_files(tmp_path):
    folder = make_experiment(tmp_path)
    (folder / "environment.json").unlink()
    _fails(folder, "environment.json is missing")
    folder = make_experiment(tmp_path, name="b")
    (folder / "power" / "rapl_dram-0.csv").unlink()
    _fails(folder, "power/rapl_dram-0.csv is missing", "rapl:dram-0")


def test_huge_results_json_is_refused_without_reading_it(tmp_path):
    folder = make_experiment(tmp_path)
    with open(folder / "results.json", "r+b") as fh:
        fh.truncate(200 * 1024 * 1024)  # sparse: costs no disk, would cost 200 MB of memory to read
    _fails(folder, "results.json is 209.7 MB", "limit")


def test_huge_trace_is_refused(tmp_path):
    folder = make_experiment(tmp_path)
    with open(folder / "power" / "host.csv", "r+b") as fh:
        fh.truncate(3 << 30)
    _fails(folder, "power/host.csv", "limit for a trace")


def test_fifo_instead_of_a_file_does_not_hang(tmp_path):
    folder = make_experiment(tmp_path)
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    _fails(folder, "config.json is not a regular file")


@pytest.mark.parametrize("row", ["0.1,abc,1.0,1", "0.1,nan,1.0,1", "0.1,inf,1.0,1", "0.1,1e999,1.0,1",
                                 "0.1,1.0,1", "0.1,1.0,1.0,1,5", "0.1,1.0,1.0,7", ",1.0,1.0,1", "0.1,1.0,1.0,0x1"])
@pytest.mark.parametrize("empty_cell", [False, True])
def test_a_bad_trace_row_is_an_invalid_row_not_a_lost_experiment(tmp_path, row, empty_cell):
    folder = make_experiment(tmp_path)
    path = folder / "power" / "rapl_package-0.csv"
    lines = path.read_text().splitlines()
    if empty_cell:  # the block then also takes the parser's path for empty cells
        lines[4] = lines[4].split(",", 1)[0] + ",," + lines[4].split(",", 2)[2]
    rows = len(lines) - 1
    lines[2] = row
    path.write_text("\n".join(lines) + "\n")
    rec = read_experiment(folder)
    energy, valid = rec["traces"]["rapl_package-0.energy_j"], rec["traces"]["rapl_package-0.valid"]
    assert energy["invalid_rows"] == 1 and valid["invalid_rows"] == 1
    assert energy["n"] == rows - 1 - empty_cell and valid["n"] == rows
    assert valid["mean"] == pytest.approx((rows - 1) / rows)
    assert "invalid_rows" not in rec["traces"]["rapl_dram-0.energy_j"]  # the other trace is untouched


def test_trace_without_header(tmp_path):
    folder = make_experiment(tmp_path)
    (folder / "power" / "host.csv").write_text("")
    _fails(folder, "power/host.csv is empty")
    (folder / "power" / "host.csv").write_text("time,power\n1,2\n")
    _fails(folder, "must start with t_s")


def test_trace_with_only_a_header_has_no_samples(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("t_s,energy_j,power_w,valid\n")
    stats, _ = trace_stats(path, "x")
    assert stats["x.power_w"] == {"min": None, "max": None, "mean": None, "std": None, "n": 0}


def test_crlf_and_a_missing_final_newline_are_read(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"t_s,energy_j,power_w,valid\r\n0,0,10,1\r\n0.1,1,12,1")
    stats, _ = trace_stats(path, "x")
    assert stats["x.power_w"]["mean"] == 11.0 and stats["x.power_w"]["n"] == 2
