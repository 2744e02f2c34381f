"""The pure arithmetic of a rating: index scaling, per-metric letters and compound ratings.

Nothing here reads files or knows the database; every function is a plain function of its arguments so that the
HTML report's JavaScript port can be checked against it value by value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Ratings from best to worst, public here as mlee.rating.LETTERS; a rating's number is its position (A = 0 ... E = 4).
from mlee.vocabulary import LETTERS

#: The colour of each rating on labels, tables and the report (the EU energy label's scale).
COLOURS = {"A": "#639B30", "B": "#B8AC2B", "C": "#F8B830", "D": "#EF7D29", "E": "#E52421"}

#: Compound modes: how the per-metric ratings of one model combine into one letter.
COMPOUND_MODES = (
    "paper-median",
    "paper-median-pessimistic",
    "majority",
    "median-optimistic",
    "median-pessimistic",
    "mean-optimistic",
    "mean-pessimistic",
    "best",
    "worst",
)

# Weights are decimals written by people (0.4, 0.2, ...): their float sums miss exact halves by an ulp or two.
# A cumulative weight within this fraction of the total of the half counts as exactly the half (a tie).
TIE_TOLERANCE = 1e-9


def index_of(value: float | None, ref: float | None, higher_is_better: bool) -> float | None:
    """The index of a metric value against the reference value of its group.

    ``value / ref`` when higher is better, ``ref / value`` when lower is better, so that an index above 1 always
    means "better than the reference".

    Args:
        value: The model's value (any unit; the same unit as ``ref``), or None when not measured.
        ref: The reference model's value, or None when not measured.
        higher_is_better: The metric's direction.

    Returns:
        The index, or None where it is undefined: a missing or negative value, or a division by zero
        (a zero-valued lower-is-better figure has no meaningful index; it is shown as "n/a", never invented).

    Units: dimensionless (a ratio of two values in the same unit).
    """
    if value is None or ref is None or value < 0 or ref < 0:
        return None
    num, den = (value, ref) if higher_is_better else (ref, value)
    if den == 0:
        return None
    index = num / den
    return index if math.isfinite(index) else None


def rate_index(index: float | None, boundaries: Sequence[float]) -> str:
    """The rating letter of an index: A if index > b1, B if b1 >= index > b2, ..., E otherwise.

    Args:
        index: The metric's index, or None when the value is missing (rates E).
        boundaries: Four index boundaries (A/B, B/C, C/D, D/E), descending.

    Units: ``index`` and ``boundaries`` dimensionless.
    """
    if index is None:
        return LETTERS[-1]
    for position, bound in enumerate(boundaries):
        if index > bound:
            return LETTERS[position]
    return LETTERS[len(boundaries)] if len(boundaries) < len(LETTERS) else LETTERS[-1]


def value_boundaries(base: float | None, boundaries: Sequence[float],
                     higher_is_better: bool) -> list[float | None] | None:
    """The index boundaries as figures in the metric's own unit, for a group whose base (reference) value is ``base``.

    An index is ``value / base`` (higher is better) or ``base / value`` (lower is better), so index boundary ``b``
    is the figure ``b * base`` or ``base / b``: "A if the energy per sample is below 0.49 Ws here", as the 2022
    paper's ELEx showed. A boundary of 0 for a lower-is-better metric has no figure (None: no upper limit).

    Returns:
        One figure per boundary (A/B, B/C, C/D, D/E), or None when the group has no base value.

    Units: those of ``base``.
    """
    if base is None or not math.isfinite(base) or base < 0:
        return None
    if higher_is_better:
        return [b * base for b in boundaries]
    return [base / b if b > 0 else None for b in boundaries]


def letter_number(rating: str | int) -> int:
    """The number of a rating (A = 0 ... E = 4); accepts a letter or a number already."""
    if isinstance(rating, int) and not isinstance(rating, bool) and 0 <= rating < len(LETTERS):
        return rating
    if isinstance(rating, str) and rating.upper() in LETTERS:
        return LETTERS.index(rating.upper())
    raise ValueError(f"not a rating: {rating!r} (ratings are the letters A-E)")


def compound(ratings: Sequence[str | int], weights: Sequence[float], mode: str) -> str:
    """Combine per-metric ratings into one compound rating letter.

    Metrics with weight 0 do not count in any mode. Modes (docs/rating.md has worked examples):

    - ``paper-median``: the 2022 paper's optimistic median. Ratings are sorted best first with a stable sort (ties
      keep the metric order given), weights normalised to sum 1; take the first metric whose cumulative weight
      exceeds 0.5. If it is the first in the order, its rating; otherwise the rating of the metric just before it,
      or, where the cumulative weight just before it is exactly 0.5, the floor of the mean of the two ratings.
    - ``paper-median-pessimistic``: the 2022 code's pessimistic median: as ``paper-median`` but the exact-half
      tie takes the ceiling of the mean. Not the weighted median below: away from a tie it still takes the
      rating just before the metric that crosses half the weight.
    - ``majority``: the 2022 code's majority: the rating most metrics have, counted without their weights
      (a metric of weight 0 still does not count); a tie goes to the better rating.
    - ``median-optimistic`` / ``median-pessimistic``: the weighted median, which depends only on the multiset of
      (rating, weight) pairs, not on the metric order: the best rating whose cumulative weight exceeds 0.5; where
      the cumulative weight reaches exactly 0.5 at a rating, the mean of that rating and the next worse one,
      rounded towards the better (optimistic) or the worse (pessimistic) letter.
    - ``mean-optimistic`` / ``mean-pessimistic``: the weighted mean of the rating numbers, rounded towards the
      better or the worse letter.
    - ``best`` / ``worst``: the best or worst rating among the weighted metrics.

    Args:
        ratings: One letter (or number 0-4) per metric, in the spec's metric order.
        weights: One non-negative weight per metric.
        mode: One of :data:`COMPOUND_MODES`.

    Raises:
        ValueError: unknown mode, lengths differ, a negative or non-finite weight, or no positive weight.
    """
    if mode not in COMPOUND_MODES:
        raise ValueError(f"unknown compound mode {mode!r}; use one of: {', '.join(COMPOUND_MODES)}")
    if len(ratings) != len(weights):
        raise ValueError(f"{len(ratings)} ratings but {len(weights)} weights")
    pairs = []
    for rating, weight in zip(ratings, weights):
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weights must be finite and non-negative, got {weight!r}")
        if weight > 0:
            pairs.append((letter_number(rating), float(weight)))
    if not pairs:
        raise ValueError("no metric has a positive weight: a compound rating needs at least one")
    return LETTERS[_compound_number(pairs, mode)]


def _compound_number(pairs: list[tuple[int, float]], mode: str) -> int:
    if mode == "best":
        return min(r for r, _ in pairs)
    if mode == "worst":
        return max(r for r, _ in pairs)
    if mode == "majority":
        counts = [0] * len(LETTERS)
        for rating, _ in pairs:
            counts[rating] += 1
        return counts.index(max(counts))  # index() finds the first: ties go to the better rating
    total = math.fsum(w for _, w in pairs)
    if mode.startswith("mean-"):
        mean = math.fsum(r * w for r, w in pairs) / total
        # Within the tolerance a mean is a whole number; without it 2.0000000001 would round pessimistically to 3.
        nearest = round(mean)
        if abs(mean - nearest) <= TIE_TOLERANCE:
            return int(nearest)
        return math.floor(mean) if mode == "mean-optimistic" else math.ceil(mean)
    if mode.startswith("paper-median"):
        return _paper_median(pairs, total, optimistic=(mode == "paper-median"))
    return _weighted_median(pairs, total, optimistic=(mode == "median-optimistic"))


def _is_half(cumulative: float, total: float) -> bool:
    return abs(cumulative - total / 2) <= TIE_TOLERANCE * total


def _paper_median(pairs: list[tuple[int, float]], total: float, optimistic: bool) -> int:
    ordered = sorted(pairs, key=lambda p: p[0])  # sorted() is stable: ties keep the metric order
    cumulative = 0.0
    previous_cumulative = 0.0
    for position, (rating, weight) in enumerate(ordered):
        previous_cumulative = cumulative
        cumulative += weight
        if cumulative > total / 2 and not _is_half(cumulative, total):
            if position == 0:
                return rating
            before = ordered[position - 1][0]
            if _is_half(previous_cumulative, total):
                mean = (before + rating) / 2
                return math.floor(mean) if optimistic else math.ceil(mean)
            return before
    return ordered[-1][0]  # pragma: no cover - the weights sum to total, so the loop always returns


def _weighted_median(pairs: list[tuple[int, float]], total: float, optimistic: bool) -> int:
    by_rating: dict[int, float] = {}
    for rating, weight in pairs:
        by_rating[rating] = by_rating.get(rating, 0.0) + weight
    levels = sorted(by_rating)
    cumulative = 0.0
    for position, rating in enumerate(levels):
        cumulative += by_rating[rating]
        if _is_half(cumulative, total) and position + 1 < len(levels):
            mean = (rating + levels[position + 1]) / 2
            return math.floor(mean) if optimistic else math.ceil(mean)
        if cumulative > total / 2:
            return rating
    return levels[-1]
