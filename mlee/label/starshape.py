"""Stars drawn as vector shapes (no font needs a star glyph), for specs that show ratings as 1-5 stars (issue 19).

Units: points.
"""

from __future__ import annotations

import math
from typing import Any


def star(cx: float, cy: float, radius: float, fill: Any, stroke: Any, stroke_width: float = 0.8) -> Any:
    """A five-pointed star centred at (cx, cy); ``fill`` None draws its outline only."""
    from reportlab.graphics.shapes import Polygon

    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * 0.45
        angle = math.pi / 2 + k * math.pi / 5
        points += [round(cx + r * math.cos(angle), 4), round(cy + r * math.sin(angle), 4)]
    return Polygon(points, fillColor=fill, strokeColor=stroke, strokeWidth=stroke_width if stroke else 0)


def star_row(x: float, cy: float, radius: float, filled: int, total: int, colour: Any) -> list[Any]:
    """``total`` stars from ``x`` (left edge) rightwards, the first ``filled`` solid, the rest outlined."""
    step = radius * 2.15
    return [star(x + radius + k * step, cy, radius, colour if k < filled else None, colour)
            for k in range(total)]
