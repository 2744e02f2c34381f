"""Background power: a profile's window powers told apart from what the rest of the machine drew meanwhile."""

from __future__ import annotations

import statistics

import pytest

from mlee.predict import background
from mlee.predict.evaluate import evaluate
from mlee.predict.kernels import KernelConfig
from mlee.predict.training import fit_predictor, points_from_records, replacement_warnings


def _record(kernel_w, background_w, rounds=4, n_configs=24, rid="rec1"):
    """A ``profile`` record as the profiler writes it: fc kernels measured in rounds (one window of every
    configuration per round, 0.1 s each), the machine drawing ``background_w(t)`` plus ``kernel_w(k)``.

    Runtimes are exact (1 ns per MAC), so only power can differ from a perfect prediction. Odd
    configurations settle a round early, as stable points stop repeating.
    """
    windows, points, t = [], [], 0.0
    cfgs = [KernelConfig.make("fc", batch=1, fin=64 * (k + 1), fout=256) for k in range(n_configs)]
    names: dict[int, list[str]] = {k: [] for k in range(n_configs)}
    for r in range(rounds):
        for k, cfg in enumerate(cfgs):
            if k % 2 and r == rounds - 1 > 0:
                continue
            name = f"{cfg.key()}#{r}"
            power = background_w(t) + kernel_w(k)
            windows.append({"name": name, "start_s": t, "duration_s": 0.1, "valid": True,
                            "energy_j": {"total": power * 0.1}, "energy_method": {"total": "estimate"}})
            names[k].append(name)
            t += 0.1
    for k, cfg in enumerate(cfgs):
        time_s = cfg.features()["macs"] * 1e-9
        n = len(names[k])
        powers = [w["energy_j"]["total"] / 0.1 for w in windows if w["name"] in names[k]]
        points.append({"config": cfg.key(), "time_s": {"median": time_s, "mean": time_s},
                       "cpu_time_s": {"median": time_s},
                       "times_s": [time_s] * n, "cpu_times_s": [time_s] * n, "probe_s": [None] * n,
                       "windows": names[k], "power_w": statistics.median(powers), "energy_method": "estimate",
                       "stable": True})
    return {"id": rid, "kind": "profile", "status": "completed", "environment": "env A", "windows": windows,
            "environment_info": {"cpu": {"model": "Test CPU", "cache_bytes": {"l1d": 32768, "l2": 1 << 20,
                                                                           "l3": 32 << 20}}},
            "profile": {"clock": "cpu", "device": "cpu", "points": points}}


def _jump(t):
    # another process takes the second core after two rounds of 24 windows
    return 21.7 if t < 4.75 else 27.9


def test_a_background_jump_is_told_apart_from_the_kernels():
    rec = _record(lambda k: 0.0, _jump)
    points, notes = points_from_records([rec])
    assert not notes and len(points) == 24
    assert points[0].cache_bytes == (1 << 20, 32 << 20)  # the caches the profile recorded, for the cache features
    raw = sorted({round(p.power_w, 1) for p in points})
    assert raw == [21.7, 24.8]  # by when they were measured, not by what they compute
    for p in points:
        assert p.power_excess_w == pytest.approx(0.0, abs=1e-9)
    ref = background.reference(p.background_w for p in points)
    assert {round(p.power_at(ref), 6) for p in points} == {round(ref, 6)}
    assert points[0].power_at(None) == points[0].power_w  # no reference: the measured power


def test_a_kernels_own_power_survives_the_correction():
    # one configuration in six draws 3 W more than the others (as under a RAPL counter)
    rec = _record(lambda k: 3.0 if k % 6 == 0 else 0.0, _jump)
    points, _ = points_from_records([rec])
    ref = background.reference(p.background_w for p in points)
    for k, p in enumerate(points):
        assert p.power_at(ref) == pytest.approx(ref + (3.0 if k % 6 == 0 else 0.0), abs=1e-9)


def test_held_out_energy_tracks_runtime_once_the_background_is_removed():
    points, _ = points_from_records([_record(lambda k: 0.0, _jump)])
    train, test = points[::2], points[1::2]
    corrected = {(s.target): s for s in evaluate(fit_predictor(train), test) if s.kind == "fc"}
    assert corrected["runtime"].mape < 1e-6 and corrected["energy"].mape < 1e-6
    # the same predictor against the raw measured energies: the background jump is an error no model can predict
    raw = {s.target: s for s in evaluate(fit_predictor(train), test, drift=False) if s.kind == "fc"}
    assert raw["energy"].mape > 0.05
    # the previous behaviour (measured powers fit and scored) carries the jump into the energy error
    before = {s.target: s for s in evaluate(fit_predictor(train, background=False), test) if s.kind == "fc"}
    assert before["energy"].mape > 0.05 and before["runtime"].mape < 1e-6
    # the background-free power is one constant: the median replaces the degree-0 fit without a warning
    assert fit_predictor(train).kinds["fc"].power_w.quality["model"] == "constant"
    assert replacement_warnings(fit_predictor(train)) == []
    assert fit_predictor(train).basis["power_ref_w"] == pytest.approx(background.reference(
        p.background_w for p in train))


def test_folders_too_small_for_a_background_and_bad_windows_keep_the_raw_power():
    rec = _record(lambda k: 0.0, _jump, rounds=1, n_configs=8)  # 8 windows < MIN_WINDOWS
    points, _ = points_from_records([rec])
    assert all(p.background_w is None and p.power_at(25.0) == p.power_w for p in points)
    assert background.window_powers({"windows": [{"name": "a", "start_s": 0, "duration_s": 0, "energy_j": {}},
                                                 {"name": "b", "start_s": 1, "duration_s": 0.1, "valid": False,
                                                  "energy_j": {"total": 1.0}}, "junk"]}) == []
    assert background.at_reference(20.0, -30.0, 5.0) == 20.0  # never a non-positive power
    assert background.at_reference(20.0, None, 5.0) == 20.0
    assert background.reference([None, float("nan"), -1.0]) is None
