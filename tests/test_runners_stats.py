"""Per-sample arithmetic, repeat statistics and accuracy helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlee.errors import MleeError
from mlee.runners import stats
from mlee.runners.stats import WindowFigures

METHODS = {"total": "counter", "cpu": "counter", "dram": "counter", "gpu": None}


def test_per_sample_divides_every_measured_component_and_keeps_none() -> None:
    w = WindowFigures({"total": 12.0, "cpu": 9.0, "dram": 3.0, "gpu": None}, METHODS, duration_s=2.0, n_samples=64)
    p = stats.per_sample(w)
    assert p["energy_j"] == {"total": 12.0 / 64, "cpu": 9.0 / 64, "dram": 3.0 / 64, "gpu": None}
    assert p["energy_method"] == {"total": "counter", "cpu": "counter", "dram": "counter", "gpu": None}
    assert p["time_ms"] == pytest.approx(31.25)
    assert p["throughput_per_s"] == pytest.approx(32.0)


def test_per_sample_refuses_empty_windows() -> None:
    with pytest.raises(MleeError, match="no samples"):
        stats.per_sample(WindowFigures({"total": 1.0}, METHODS, 1.0, 0))
    with pytest.raises(MleeError, match="duration"):
        stats.per_sample(WindowFigures({"total": 1.0}, METHODS, 0.0, 4))


def test_summary_mean_sample_std_and_cv() -> None:
    s = stats.summary([2.0, 4.0, 6.0])
    assert s["mean"] == 4.0
    assert s["std"] == pytest.approx(2.0)  # sample std (n - 1)
    assert s["cv"] == pytest.approx(0.5)


def test_summary_of_one_value_has_no_spread_and_none_poisons() -> None:
    assert stats.summary([3.0]) == {"mean": 3.0, "std": None, "cv": None}
    assert stats.summary([3.0, None]) == {"mean": None, "std": None, "cv": None}
    assert stats.summary([]) == {"mean": None, "std": None, "cv": None}


def test_combine_repeats_means_and_weakest_method() -> None:
    a = WindowFigures({"total": 10.0, "cpu": 10.0, "dram": None, "gpu": None},
                      {"total": "counter", "cpu": "counter"}, 1.0, 10)
    b = WindowFigures({"total": 30.0, "cpu": 30.0, "dram": None, "gpu": None},
                      {"total": "estimate", "cpu": "estimate"}, 3.0, 10)
    per, rep = stats.combine_repeats([a, b])
    assert per["energy_j"]["total"] == pytest.approx(2.0)  # mean of 1.0 and 3.0 J/sample
    assert per["energy_method"]["total"] == "estimate"
    assert per["energy_j"]["dram"] is None and per["energy_method"]["dram"] is None
    assert per["time_ms"] == pytest.approx(200.0)
    assert per["throughput_per_s"] == pytest.approx(20 / 4.0)
    assert rep["n"] == 2
    assert rep["per_sample_energy_j"]["std"] == pytest.approx(math.sqrt(2.0))
    assert rep["per_sample_time_ms"]["cv"] == pytest.approx(math.sqrt(20000.0) / 200.0)


@given(st.lists(st.floats(min_value=0.001, max_value=1e6), min_size=2, max_size=20))
def test_summary_agrees_with_numpy(values: list[float]) -> None:
    s = stats.summary(values)
    assert s["mean"] == pytest.approx(float(np.mean(values)), rel=1e-9)
    assert s["std"] == pytest.approx(float(np.std(values, ddof=1)), rel=1e-6, abs=1e-9)


def test_topk_hits_and_cross_entropy() -> None:
    logits = np.array([[0.0, 5.0, 1.0], [3.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    labels = np.array([1, 1, 0])
    assert stats.topk_hits(logits, labels, 1) == 1
    assert stats.topk_hits(logits, labels, 2) == 2
    assert stats.topk_hits(logits, labels, 3) == 3
    uniform = np.zeros((4, 10))
    assert stats.cross_entropy(uniform, np.arange(4)) == pytest.approx(math.log(10))
