"""Ratings shown as 1-5 stars (the AI Energy Score's scale): 5 stars for A ... 1 star for E.

A spec with ``display: stars`` rates as any other (letters A-E inside); its rated records also carry ``stars``,
for the compound and for every measured metric, which tables, labels and the report show instead of the letter.
"""

from __future__ import annotations

from typing import Any

from mlee.rating.core import LETTERS, letter_number

#: Most stars: the best rating (A).
MAX_STARS = len(LETTERS)
FULL, EMPTY = "\u2605", "\u2606"


def stars_of(rating: str | int) -> int:
    """Stars of a rating: 5 for A (or 0) ... 1 for E (or 4)."""
    return MAX_STARS - letter_number(rating)


def star_text(stars: int) -> str:
    """``★★★☆☆`` for 3: filled stars, then empty ones up to five."""
    if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= MAX_STARS:
        raise ValueError(f"not a star rating: {stars!r} (1-{MAX_STARS})")
    return FULL * stars + EMPTY * (MAX_STARS - stars)


def add_stars(rated: dict[str, Any]) -> dict[str, Any]:
    """Put ``stars`` on a rated record and its measured metrics (a metric without a figure gets None)."""
    rated["stars"] = stars_of(rated["compound"])
    for cell in rated["metrics"].values():
        cell["stars"] = stars_of(cell["rating"]) if cell.get("value") is not None else None
    return rated


def rated_stars(rated: Any) -> int | None:
    """The stars of a rated record (None when its spec shows letters or the field is not a star rating)."""
    stars = rated.get("stars") if isinstance(rated, dict) else None
    if isinstance(stars, int) and not isinstance(stars, bool) and 1 <= stars <= MAX_STARS:
        return stars
    return None
