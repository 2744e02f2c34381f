"""Recorded traces (tests/data/traces, written by tests/trace_recordings.py) replayed by every trace reader."""

from __future__ import annotations

import math

import pytest

from mlee.monitors.nvml import COUNTER_CHECK_S
from mlee.results.tracefile import read_trace
from mlee.results.traces import trace_stats
from trace_recordings import DATA, GAP_S, SOURCES, WINDOW_S, WINDOWS, record, torn

#: The fake machine's powers per trace. Units: watts.
POWER_W = {"rapl_package-0.csv": 40.0, "rapl_package-0-dram.csv": 5.0, "nvml_0.csv": 200.0}
#: Opening the GPU waits COUNTER_CHECK_S to see its counter move; then the windows and their gaps. Units: seconds.
END_S = COUNTER_CHECK_S + WINDOWS * (WINDOW_S + GAP_S)


def test_todays_writer_writes_the_recorded_bytes(tmp_path):
    folder = record(tmp_path)
    for name in SOURCES:
        assert (folder / "power" / name).read_bytes() == (DATA / "session" / name).read_bytes(), name
    text = (folder / "power" / "nvml_0.csv").read_text(encoding="utf-8")
    assert torn(text) == (DATA / "torn" / "nvml_0.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", SOURCES)
def test_the_two_readers_agree_on_a_recorded_trace(name):
    path = DATA / "session" / name
    columns = read_trace(path)
    stats, samples = trace_stats(path, "t", include_samples=True)
    assert samples == {f"t.{c}": v for c, v in columns.items()}
    assert list(columns) == ["t_s", "energy_j", "power_w", "valid"]
    energy = columns["energy_j"]
    assert stats["t.energy_j"]["n"] == len(energy) == len(columns["t_s"]) and "invalid_rows" not in stats["t.energy_j"]
    assert stats["t.energy_j"]["mean"] == pytest.approx(math.fsum(energy) / len(energy))
    assert stats["t.valid"]["mean"] == 1.0
    # The counters grew at the fake machine's power: energy is power x time since the session opened.
    assert columns["t_s"][-1] == pytest.approx(END_S)
    assert energy == pytest.approx([POWER_W[name] * t for t in columns["t_s"]])


def test_a_torn_last_row_is_dropped_by_read_trace_and_counted_by_trace_stats():
    whole = read_trace(DATA / "session" / "nvml_0.csv")
    columns = read_trace(DATA / "torn" / "nvml_0.csv")
    assert columns == {c: v[:-1] for c, v in whole.items()}
    stats, samples = trace_stats(DATA / "torn" / "nvml_0.csv", "gpu", include_samples=True)
    assert stats["gpu.energy_j"]["invalid_rows"] == 1 and stats["gpu.energy_j"]["n"] == len(columns["energy_j"])
    assert samples["gpu.energy_j"] == columns["energy_j"]


def test_the_per_layer_trace_sums_the_recorded_sources():
    pytest.importorskip("numpy")
    from mlee.runners.layers import trace_from_csvs

    trace = trace_from_csvs([DATA / "session" / name for name in SOURCES])
    assert trace is not None
    total_w = sum(POWER_W.values())
    assert trace.times_s[-1] == pytest.approx(END_S)
    assert list(trace.energy_j) == pytest.approx([total_w * t for t in trace.times_s])
