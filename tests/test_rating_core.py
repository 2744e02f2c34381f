"""Pure rating arithmetic: index, per-metric letters and every compound mode (including the paper's tie rule)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlee.rating import COLOURS, COMPOUND_MODES, LETTERS, compound, index_of, quantile, rate_index

PAPER_WEIGHTS = [0.4, 0.2, 0.4, 0.7, 0.3, 0.8, 0.2]  # parameters, gflops, fsize, energy, time, top1, top5


# ------------------------------------------------------------------------------------------------------ index


def test_index_lower_is_better_is_reference_over_value():
    assert index_of(0.673, 0.859, higher_is_better=False) == pytest.approx(0.859 / 0.673)
    assert index_of(2.0, 1.0, higher_is_better=False) == 0.5


def test_index_higher_is_better_is_value_over_reference():
    assert index_of(0.681, 0.718, higher_is_better=True) == pytest.approx(0.681 / 0.718)
    assert index_of(0.8, 0.4, higher_is_better=True) == 2.0


def test_index_of_the_reference_itself_is_one():
    assert index_of(3.3, 3.3, True) == 1.0
    assert index_of(3.3, 3.3, False) == 1.0


@pytest.mark.parametrize("value, ref, higher", [
    (None, 1.0, False), (1.0, None, False), (None, None, True),
    (0.0, 1.0, False),   # zero energy: no meaningful index, never infinity
    (1.0, 0.0, True),    # zero reference accuracy
    (-1.0, 1.0, False),  # negative figures are not measurements
    (1.0, -2.0, True),
])
def test_index_undefined_is_none(value, ref, higher):
    assert index_of(value, ref, higher) is None


def test_index_zero_value_higher_is_better_is_zero():
    assert index_of(0.0, 0.7, True) == 0.0


# ------------------------------------------------------------------------------------------------------ letters

B = (1.8, 1.1, 0.9, 0.5)


@pytest.mark.parametrize("index, letter", [
    (5.0, "A"), (1.8000001, "A"), (1.8, "B"), (1.2, "B"), (1.1, "C"), (1.0, "C"), (0.9, "D"), (0.6, "D"),
    (0.5, "E"), (0.1, "E"), (0.0, "E"), (None, "E"),
])
def test_rate_index_boundaries_are_exclusive_above(index, letter):
    # A if index > b1, B if b1 >= index > b2, ..., E otherwise; a missing index rates E.
    assert rate_index(index, B) == letter


def test_paper_top1_reference_rates_c_because_b2_is_exactly_one():
    top1 = (1.0214309865015994, 1.0, 0.9534968399698301, 0.9289148797920729)
    assert rate_index(1.0, top1) == "C"
    assert rate_index(1.0000001, top1) == "B"


def test_colours_are_the_eu_scale():
    assert LETTERS == ("A", "B", "C", "D", "E")
    assert COLOURS == {"A": "#639B30", "B": "#B8AC2B", "C": "#F8B830", "D": "#EF7D29", "E": "#E52421"}


# ------------------------------------------------------------------------------------------------------ paper median


def test_paper_median_takes_the_rating_before_the_crossing_metric():
    # sorted: A (cum 0.2), C (cum 0.6 > 0.5): C is not first, so the rating just before it, A.
    assert compound(["A", "C", "E"], [0.2, 0.4, 0.4], "paper-median") == "A"


def test_paper_median_first_metric_crossing_gives_its_own_rating():
    assert compound(["B", "D"], [0.6, 0.4], "paper-median") == "B"
    assert compound(["D", "B"], [0.4, 0.6], "paper-median") == "B"


def test_paper_median_exact_half_takes_floor_of_mean():
    # sorted A (0.25), C (0.5 exactly), E (1.0): E crosses; the cumulative before it is exactly 0.5
    # -> floor((C + E) / 2) = floor(3) = D.
    assert compound(["A", "E", "C"], [0.25, 0.5, 0.25], "paper-median") == "D"
    # floor of a half: (A + D) / 2 = 1.5 -> B (the optimistic side)
    assert compound(["A", "D"], [0.5, 0.5], "paper-median") == "B"


def test_paper_median_half_reached_through_float_sums_is_still_a_tie():
    # 0.1 + 0.2 + 0.4 is 0.7000000000000001 in binary floating point; decimally it is exactly half of 1.4.
    assert 0.1 + 0.2 + 0.4 != (0.1 + 0.2 + 0.4 + 0.7) / 2
    # sorted A, A, B (cum half), D: D crosses after an exact half -> floor((B + D) / 2) = C.
    # (Comparing the float sums naively would make B the crossing metric and answer A.)
    assert compound(["A", "A", "B", "D"], [0.1, 0.2, 0.4, 0.7], "paper-median") == "C"


def test_paper_median_is_a_stable_sort_ties_keep_metric_order():
    # Equal ratings keep the metric order, so which B comes first decides where 0.5 is crossed.
    assert compound(["B", "A", "B"], [0.1, 0.35, 0.55], "paper-median") == "B"  # A .35, B .45, B 1.0 -> B
    assert compound(["B", "A", "B"], [0.55, 0.35, 0.1], "paper-median") == "A"  # A .35, B .90 -> A


def test_paper_median_on_the_papers_mobilenetv2_pattern_is_a():
    # A100 x8 TensorFlow MobileNetV2: size metrics A, energy and time B, accuracy E.
    ratings = ["A", "A", "A", "B", "B", "E", "E"]
    assert compound(ratings, PAPER_WEIGHTS, "paper-median") == "A"
    assert compound(ratings, PAPER_WEIGHTS, "median-optimistic") == "B"


def test_weights_need_not_sum_to_one():
    assert compound(["A", "C", "E"], [2, 4, 4], "paper-median") == compound(["A", "C", "E"], [0.2, 0.4, 0.4],
                                                                             "paper-median")


# ------------------------------------------------------------------------------------------------------ other modes


def test_weighted_median_crossing():
    assert compound(["A", "C", "E"], [0.2, 0.4, 0.4], "median-optimistic") == "C"
    assert compound(["A", "C", "E"], [0.2, 0.4, 0.4], "median-pessimistic") == "C"


def test_weighted_median_exact_half_rounds_by_mode():
    assert compound(["A", "D"], [0.5, 0.5], "median-optimistic") == "B"   # mean 1.5 -> B
    assert compound(["A", "D"], [0.5, 0.5], "median-pessimistic") == "C"  # mean 1.5 -> C
    assert compound(["A", "E"], [1, 1], "median-pessimistic") == "C"      # mean 2 exactly


def test_weighted_median_ignores_metric_order_where_paper_median_does_not():
    ratings = ["B", "A", "B"]
    for mode in ("median-optimistic", "median-pessimistic"):
        results = {compound([ratings[i] for i in p], [[0.1, 0.35, 0.55][i] for i in p], mode)
                   for p in itertools.permutations(range(3))}
        assert results == {"B"}
    paper = {compound([ratings[i] for i in p], [[0.1, 0.35, 0.55][i] for i in p], "paper-median")
             for p in itertools.permutations(range(3))}
    assert paper == {"A", "B"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LETTERS), st.integers(0, 10)), min_size=1, max_size=9),
       st.randoms())
def test_weighted_median_is_order_independent(pairs, rnd):
    if not any(w for _, w in pairs):
        pairs = pairs + [("C", 1)]
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    for mode in ("median-optimistic", "median-pessimistic", "mean-optimistic", "mean-pessimistic", "best", "worst"):
        assert compound(*zip(*pairs), mode) == compound(*zip(*shuffled), mode)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LETTERS), st.integers(1, 10)), min_size=1, max_size=9))
def test_optimistic_never_worse_than_pessimistic_and_within_range(pairs):
    ratings, weights = zip(*pairs)
    best, worst = min(ratings), max(ratings)
    for kind in ("median", "mean"):
        opt = compound(ratings, weights, f"{kind}-optimistic")
        pes = compound(ratings, weights, f"{kind}-pessimistic")
        assert best <= opt <= pes <= worst
    assert best <= compound(ratings, weights, "paper-median") <= worst


def test_weighted_mean_rounding():
    assert compound(["A", "B"], [0.5, 0.5], "mean-optimistic") == "A"
    assert compound(["A", "B"], [0.5, 0.5], "mean-pessimistic") == "B"
    assert compound(["A", "B", "C"], [0.1, 0.2, 0.7], "mean-optimistic") == "B"  # 1.6
    assert compound(["A", "B", "C"], [0.1, 0.2, 0.7], "mean-pessimistic") == "C"


def test_weighted_mean_whole_number_through_float_error_is_not_rounded_away():
    # (1 + 4 + 4) / 3 is exactly 3, but 0.1*1 + 0.1*4 + 0.1*4 over 0.3 is 2.9999999999999996 in floats:
    # without the tolerance the optimistic mean would be C instead of D.
    weights = [0.1, 0.1, 0.1]
    assert math.fsum(w * n for w, n in zip(weights, (1, 4, 4))) / math.fsum(weights) != 3.0
    assert compound(["B", "E", "E"], weights, "mean-optimistic") == "D"
    assert compound(["B", "E", "E"], weights, "mean-pessimistic") == "D"


def test_best_and_worst_ignore_zero_weights():
    assert compound(["B", "D", "A", "E"], [1, 1, 0, 0], "best") == "B"
    assert compound(["B", "D", "A", "E"], [1, 1, 0, 0], "worst") == "D"


def test_zero_weight_metric_is_not_the_one_before_in_paper_median():
    # Without dropping weight-0 metrics, the A (weight 0) would be "just before" C and win.
    assert compound(["A", "C", "E"], [0.0, 0.6, 0.4], "paper-median") == "C"


def test_paper_pessimistic_median_differs_from_optimistic_only_at_an_exact_half():
    # Sorted A (0.4), D (0.1) | E (0.5): the cumulative weight is exactly half after D, so the mean of D and E.
    assert compound(["A", "D", "E"], [0.4, 0.1, 0.5], "paper-median") == "D"
    assert compound(["A", "D", "E"], [0.4, 0.1, 0.5], "paper-median-pessimistic") == "E"
    # Away from a tie both take the rating just before the metric that crosses half the weight (B here),
    # where the weighted median takes the crossing metric's own rating (C): the two pessimistic modes differ.
    ratings, weights = ["B", "C", "C"], [0.4, 0.5, 0.1]
    assert compound(ratings, weights, "paper-median-pessimistic") == "B"
    assert compound(ratings, weights, "median-pessimistic") == "C"


def test_majority_counts_metrics_not_weights_and_breaks_ties_towards_the_better_rating():
    assert compound(["A", "C", "C"], [5.0, 0.1, 0.1], "majority") == "C"
    assert compound(["D", "B", "D", "B", "E"], [1, 1, 1, 1, 1], "majority") == "B"
    assert compound(["A", "A", "C"], [0, 0, 1], "majority") == "C"  # weight-0 metrics do not vote


def test_every_mode_is_listed_and_accepts_numbers():
    assert set(COMPOUND_MODES) == {"paper-median", "paper-median-pessimistic", "majority", "median-optimistic",
                                   "median-pessimistic", "mean-optimistic", "mean-pessimistic", "best", "worst"}
    assert compound([0, 4], [1, 1], "best") == "A"


@pytest.mark.parametrize("ratings, weights, mode, fragment", [
    (["A"], [1], "median", "unknown compound mode"),
    (["A", "B"], [1], "best", "2 ratings but 1 weights"),
    (["A"], [-1], "best", "non-negative"),
    (["A"], [float("nan")], "best", "finite"),
    (["A", "B"], [0, 0], "best", "no metric has a positive weight"),
    (["F"], [1], "best", "not a rating"),
])
def test_compound_rejects_bad_input(ratings, weights, mode, fragment):
    with pytest.raises(ValueError, match=fragment):
        compound(ratings, weights, mode)


# ------------------------------------------------------------------------------------------------------ quantile


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.001, 50, allow_nan=False), min_size=1, max_size=60),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5))
def test_quantile_is_bit_identical_to_numpy_linear(values, qs):
    np = pytest.importorskip("numpy")
    ordered = sorted(values)
    for q in qs:
        assert quantile(ordered, q) == float(np.quantile(values, q))
