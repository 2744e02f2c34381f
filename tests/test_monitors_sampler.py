"""The sampler: exact accumulation with a fake clock, gaps, streamed CSV traces."""

from __future__ import annotations

import pytest

from fakes.nvml import FakeGpu, FakeNvml
from fakes.powercap import Zone, make_powercap_tree, set_energy
from mlee.monitors.base import Reading
from mlee.monitors.nvml import open_nvml
from mlee.monitors.rapl import open_rapl
from mlee.monitors.sampler import POWER_ROW, Sampler, Track
from mlee.results.tracefile import TraceSink, read_trace
from mlee.vocabulary import Method


def sink_for(power, sources):
    """The experiment folder's trace sink for ``sources`` (the sampler itself writes no files)."""
    return TraceSink(power, {s.name: POWER_ROW for s in sources})


def test_track_counts_counter_deltas_and_skips_gaps():
    track = Track(Method.counter)
    track.add(Reading(0.0, 0.0))
    track.add(Reading(1.0, 5.0))
    track.fail(1.5, "read failed")
    track.add(Reading(2.0, 9.0))  # 4 J across a gap: not counted
    track.add(Reading(3.0, 10.0))
    assert track.energy_j == pytest.approx(6.0)
    assert track.invalid_intervals == [(1.0, 2.0)]
    assert track.n_errors == 1 and track.n_samples == 4


def test_track_integrates_power_with_the_trapezoid_rule():
    track = Track(Method.power_integration)
    for t_s, power_w in [(0.0, 100.0), (0.5, 200.0), (1.5, 200.0)]:
        track.add(Reading(t_s, None, power_w))
    assert track.energy_j == pytest.approx(0.5 * 150 + 1.0 * 200)


def test_reading_without_energy_or_power_is_invalid_not_zero():
    track = Track(Method.counter)
    track.add(Reading(0.0, 0.0))
    assert track.add(Reading(1.0)) is False
    assert track.invalid_until(2.0) == [(0.0, 2.0)]


def test_sampler_with_fake_clock_is_exact_and_streams_csv(tmp_path, clock):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0)])
    gpu = FakeGpu(energy_mj=None, power_mw=[50_000, 150_000, 150_000, 100_000])
    nvml = FakeNvml([gpu])
    sources = open_rapl(root, clock=clock) + open_nvml(nvml, clock=clock)
    power = tmp_path / "power"
    power.mkdir()
    t0 = clock()
    sampler = Sampler(sources, [s.first_reading for s in sources], t0, 0.1, sink_for(power, sources), clock=clock)
    for step_uj in (2_000_000, 3_000_000):
        clock.advance(1.0)
        set_energy(root, "intel-rapl:0", step_uj)
        sampler.sample()
    clock.advance(2.0)
    final = sampler.stop()
    assert final.energy_j["rapl:package-0"] == pytest.approx(3.0)
    # power 50 -> 150 -> 150 -> 100 W at t = 0, 1, 2, 4 s
    assert final.energy_j["nvml:0"] == pytest.approx(100 + 150 + 250)
    trace = read_trace(power / "nvml_0.csv")
    assert trace["t_s"] == [0.0, 1.0, 2.0, 4.0]
    assert trace["power_w"] == [50.0, 150.0, 150.0, 100.0]
    assert trace["energy_j"] == [None] * 4  # power-only: no made-up counter column
    rapl = read_trace(power / "rapl_package-0.csv")
    assert rapl["energy_j"] == [0.0, 2.0, 3.0, 3.0] and rapl["valid"] == [1.0] * 4


def test_failed_reads_are_written_as_invalid_rows(tmp_path, clock):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0)])
    sources = open_rapl(root, clock=clock)
    power = tmp_path / "power"
    power.mkdir()
    sampler = Sampler(sources, [s.first_reading for s in sources], clock(), 0.1, sink_for(power, sources), clock=clock)
    (root / "intel-rapl:0" / "energy_uj").unlink()
    clock.advance(1.0)
    snap = sampler.sample()
    assert "rapl:package-0" in snap.open_gaps
    set_energy(root, "intel-rapl:0", 1_000_000)
    clock.advance(1.0)
    sampler.stop()
    rows = read_trace(power / "rapl_package-0.csv")
    assert rows["valid"] == [1.0, 0.0, 1.0]
    assert rows["energy_j"][1] is None
    assert sampler.tracks["rapl:package-0"].invalid_intervals == [(clock() - 2.0, clock())]


def test_background_thread_samples_on_its_own(tmp_path):
    import time

    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0)])
    sources = open_rapl(root)
    power = tmp_path / "power"
    power.mkdir()
    sampler = Sampler(sources, [s.first_reading for s in sources], time.monotonic(), 0.02, sink_for(power, sources))
    sampler.start()
    time.sleep(0.3)
    sampler.stop()
    assert sampler.tracks["rapl:package-0"].n_samples >= 5
    assert len(read_trace(power / "rapl_package-0.csv")["t_s"]) >= 5
