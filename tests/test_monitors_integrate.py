"""The pure arithmetic every energy figure is made of."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlee.monitors.integrate import counter_delta_uj, integrate_power_j, quarter_wrap_interval_s, trapezoid_j


def test_counter_delta_without_and_with_wrap():
    assert counter_delta_uj(100, 250, 1000) == 150
    assert counter_delta_uj(900, 100, 1000) == 200
    assert counter_delta_uj(900, 100, None) is None  # cannot resolve a wrap without the range
    assert counter_delta_uj(2000, 100, 1000) is None  # impossible values are not turned into energy


@given(st.integers(1, 2**40), st.integers(0, 2**40), st.integers(0, 2**40))
def test_counter_delta_recovers_any_single_wrap(max_uj, start_uj, step_uj):
    start_uj %= max_uj
    step_uj %= max_uj
    end_uj = (start_uj + step_uj) % max_uj
    assert counter_delta_uj(start_uj, end_uj, max_uj) == step_uj


def test_trapezoid_is_exact_for_linear_power():
    assert trapezoid_j(0.0, 10.0, 2.0, 30.0) == pytest.approx(40.0)
    # power rising linearly from 0 to 100 W over 10 s: exactly 500 J whatever the split
    samples = [(t / 10, t) for t in range(0, 101)]
    assert integrate_power_j(samples) == pytest.approx(500.0)
    assert integrate_power_j([]) == 0.0


def test_quarter_wrap_interval():
    assert quarter_wrap_interval_s(262143328850, 500.0) == pytest.approx(131.07, rel=1e-3)
