"""The four metric pictograms, drawn from simple shapes in a unit box and scaled to place.

Each function returns a reportlab ``Group`` filling the ``size_pt`` square whose lower-left
corner is (``x_pt``, ``y_pt``), in the given fill colour (the metric's rating colour).
"""

from __future__ import annotations

from typing import Any

WHITE = "#FFFFFF"
INK = "#222222"


def _colour(hex_colour: str) -> Any:
    from reportlab.lib.colors import HexColor

    return HexColor(hex_colour)


def _poly(points: list[tuple[float, float]], x: float, y: float, s: float, fill: str) -> Any:
    from reportlab.graphics.shapes import Polygon

    flat = [v for px, py in points for v in (x + px * s, y + py * s)]
    return Polygon(flat, fillColor=_colour(fill), strokeColor=None, strokeWidth=0)


def _circle(cx: float, cy: float, r: float, x: float, y: float, s: float, fill: str | None,
            stroke: str | None = None, width: float = 0) -> Any:
    from reportlab.graphics.shapes import Circle

    return Circle(x + cx * s, y + cy * s, r * s, fillColor=_colour(fill) if fill else None,
                  strokeColor=_colour(stroke) if stroke else None, strokeWidth=width)


def _rect(x0: float, y0: float, x1: float, y1: float, x: float, y: float, s: float, fill: str,
          radius: float = 0) -> Any:
    from reportlab.graphics.shapes import Rect

    return Rect(x + x0 * s, y + y0 * s, (x1 - x0) * s, (y1 - y0) * s, rx=radius * s, ry=radius * s,
                fillColor=_colour(fill), strokeColor=None, strokeWidth=0)


def _line(x0: float, y0: float, x1: float, y1: float, x: float, y: float, s: float, colour: str,
          width: float) -> Any:
    from reportlab.graphics.shapes import Line

    return Line(x + x0 * s, y + y0 * s, x + x1 * s, y + y1 * s, strokeColor=_colour(colour),
                strokeWidth=width * s, strokeLineCap=1)


def energy(x_pt: float, y_pt: float, size_pt: float, fill: str) -> Any:
    """A lightning bolt: energy."""
    from reportlab.graphics.shapes import Group

    bolt = [(0.60, 1.00), (0.16, 0.44), (0.45, 0.44), (0.34, 0.00), (0.86, 0.60), (0.56, 0.60), (0.76, 1.00)]
    return Group(_poly(bolt, x_pt, y_pt, size_pt, fill))


def time(x_pt: float, y_pt: float, size_pt: float, fill: str) -> Any:
    """A stopwatch: time per sample."""
    from reportlab.graphics.shapes import Group

    x, y, s = x_pt, y_pt, size_pt
    return Group(
        _rect(0.40, 0.88, 0.60, 0.98, x, y, s, fill, radius=0.02),
        _rect(0.46, 0.80, 0.54, 0.90, x, y, s, fill),
        _circle(0.50, 0.42, 0.40, x, y, s, fill),
        _circle(0.50, 0.42, 0.30, x, y, s, WHITE),
        _line(0.50, 0.42, 0.50, 0.64, x, y, s, INK, 0.06),
        _line(0.50, 0.42, 0.66, 0.34, x, y, s, INK, 0.06),
        _circle(0.50, 0.42, 0.04, x, y, s, INK),
    )


def accuracy(x_pt: float, y_pt: float, size_pt: float, fill: str) -> Any:
    """A target with an arrow in its centre: accuracy."""
    from reportlab.graphics.shapes import Group

    x, y, s = x_pt, y_pt, size_pt
    return Group(
        _circle(0.46, 0.46, 0.44, x, y, s, fill),
        _circle(0.46, 0.46, 0.31, x, y, s, WHITE),
        _circle(0.46, 0.46, 0.19, x, y, s, fill),
        _circle(0.46, 0.46, 0.07, x, y, s, WHITE),
        _line(0.46, 0.46, 0.92, 0.92, x, y, s, INK, 0.06),
        _poly([(0.92, 0.92), (0.98, 0.80), (0.86, 0.80)], x, y, s, INK),
        _poly([(0.92, 0.92), (0.80, 0.98), (0.80, 0.86)], x, y, s, INK),
    )


def size(x_pt: float, y_pt: float, size_pt: float, fill: str) -> Any:
    """A processor chip with pins: parameters and FLOPs."""
    from reportlab.graphics.shapes import Group

    x, y, s = x_pt, y_pt, size_pt
    parts = [_rect(0.18, 0.18, 0.82, 0.82, x, y, s, fill, radius=0.06),
             _rect(0.34, 0.34, 0.66, 0.66, x, y, s, WHITE, radius=0.03)]
    for p in (0.30, 0.50, 0.70):
        parts += [_rect(p - 0.04, 0.02, p + 0.04, 0.18, x, y, s, fill),
                  _rect(p - 0.04, 0.82, p + 0.04, 0.98, x, y, s, fill),
                  _rect(0.02, p - 0.04, 0.18, p + 0.04, x, y, s, fill),
                  _rect(0.82, p - 0.04, 0.98, p + 0.04, x, y, s, fill)]
    return Group(*parts)


DRAW = {"energy": energy, "time": time, "accuracy": accuracy, "size": size}
