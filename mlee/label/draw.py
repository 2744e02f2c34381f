"""Lay out a label as a reportlab vector drawing (one ``Drawing``, rendered to PDF, SVG or PNG).

Units: points (1/72 inch) throughout; the label is 300 x 560 pt (about 106 x 198 mm, the EU label's 1:2 shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlee.label import pictograms
from mlee.label.content import NA, RATING_COLOURS, RATINGS, UNRATED_COLOUR, Block, LabelContent
from mlee.label.fonts import REPLACEMENT, FontChain, fit
from mlee.label.qr import QrPlacement, qr_group
from mlee.label.starshape import star, star_row

WIDTH_PT = 300.0
HEIGHT_PT = 560.0
MARGIN_PT = 14.0
INK = "#1D1D1B"
GREY = "#5F6368"
LIGHT = "#BDBDBD"
HEADER = "#1F2A30"
ESTIMATE_FILL = "#FDECEA"
ESTIMATE_INK = "#A31515"


@dataclass(frozen=True)
class Drawn:
    """A laid-out label, the characters no font could show (drawn as U+FFFD) and its QR code.

    The drawing holds the QR code only when asked to (SVG, PNG); PDF output writes it directly.
    """

    drawing: Any
    missing: tuple[str, ...]
    qr: QrPlacement
    qr_drawn: bool


def _c(hex_colour: str) -> Any:
    from reportlab.lib.colors import HexColor

    return HexColor(hex_colour)


class _Painter:
    """Adds shapes and fitted text to one drawing and remembers what could not be shown."""

    def __init__(self, drawing: Any, chain: FontChain) -> None:
        self.d = drawing
        self.chain = chain
        self.missing: dict[str, None] = {}

    def add(self, shape: Any) -> None:
        self.d.add(shape)

    def text(self, x: float, y: float, text: str, size: float, *, bold: bool = False, colour: str = INK,
             anchor: str = "start", max_width: float | None = None, min_size: float | None = None,
             middle: bool = True) -> float:
        """Draw one line; returns its width. ``anchor`` is start, middle or end (at ``x``)."""
        from reportlab.graphics.shapes import String

        fitted = fit(text, self.chain, size_pt=size, max_width_pt=max_width or 1e9, bold=bold,
                     min_size_pt=min_size if min_size is not None else size * 0.6, middle=middle)
        for ch in fitted.missing:
            self.missing.setdefault(ch, None)
        start = {"start": x, "middle": x - fitted.width_pt / 2, "end": x - fitted.width_pt}[anchor]
        for run in fitted.runs:
            self.d.add(String(start, y, run.text, fontName=run.font, fontSize=fitted.size_pt,
                              fillColor=_c(colour)))
            start += run.width_pt
        return fitted.width_pt


def _header(p: _Painter, c: LabelContent) -> None:
    from reportlab.graphics.shapes import Rect

    p.add(Rect(6, HEIGHT_PT - 46, WIDTH_PT - 12, 40, rx=5, ry=5, fillColor=_c(HEADER), strokeColor=None))
    p.text(MARGIN_PT, HEIGHT_PT - 32, "ENERGY LABEL", 16, bold=True, colour="#FFFFFF")
    task = c.task.upper() if c.task != NA else "MODEL"
    p.text(WIDTH_PT - MARGIN_PT, HEIGHT_PT - 23, f"ML {task}", 8.5, bold=True, colour="#FFFFFF", anchor="end",
           max_width=110)
    p.text(WIDTH_PT - MARGIN_PT, HEIGHT_PT - 35, "machine-learning efficiency", 6.5, colour="#D0D7DA",
           anchor="end", max_width=110)


def _model_name(p: _Painter, name: str, avail: float) -> None:
    """The model name: one line down to 12 pt, else two lines split at a space, else shortened."""
    one = fit(name, p.chain, size_pt=17, max_width_pt=avail, bold=True, min_size_pt=12)
    words = name.split()
    if not one.shortened or len(words) < 2:
        if one.shortened:  # one long word: smaller, then shortened in the middle
            p.text(MARGIN_PT, HEIGHT_PT - 70, name, 12, bold=True, max_width=avail, min_size=9)
        else:
            p.text(MARGIN_PT, HEIGHT_PT - 70, name, 17, bold=True, max_width=avail, min_size=12)
        return
    half = len(name) / 2
    cut = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - half))
    p.text(MARGIN_PT, HEIGHT_PT - 62, " ".join(words[:cut]), 12, bold=True, max_width=avail, min_size=9)
    p.text(MARGIN_PT, HEIGHT_PT - 75, " ".join(words[cut:]), 12, bold=True, max_width=avail, min_size=9)


def _identity(p: _Painter, c: LabelContent) -> None:
    from reportlab.graphics.shapes import Line

    avail = WIDTH_PT - 2 * MARGIN_PT
    _model_name(p, c.model, avail)
    rows = (("Task", c.task, "Dataset", c.dataset), ("Hardware", c.hardware, None, None),
            ("Backend", c.backend, None, None))
    y = HEIGHT_PT - 88
    for key, value, key2, value2 in rows:
        w = p.text(MARGIN_PT, y, f"{key}:", 7.5, bold=True, colour=GREY)
        if key2 is None:
            p.text(MARGIN_PT + w + 4, y, value, 8, max_width=avail - w - 4)
        else:
            half = avail / 2 - w - 8
            p.text(MARGIN_PT + w + 4, y, value, 8, max_width=half)
            w2 = p.text(MARGIN_PT + avail / 2, y, f"{key2}:", 7.5, bold=True, colour=GREY)
            p.text(MARGIN_PT + avail / 2 + w2 + 4, y, value2 or NA, 8, max_width=avail / 2 - w2 - 4)
        y -= 11
    p.add(Line(MARGIN_PT, HEIGHT_PT - 118, WIDTH_PT - MARGIN_PT, HEIGHT_PT - 118, strokeColor=_c(LIGHT),
               strokeWidth=0.8))


def _scale(p: _Painter, c: LabelContent) -> None:
    from reportlab.graphics.shapes import Polygon

    row_h, gap, top = 20.0, 4.0, HEIGHT_PT - 126
    for i, letter in enumerate(RATINGS):
        y1 = top - i * (row_h + gap)
        y0 = y1 - row_h
        x0, x1 = MARGIN_PT, MARGIN_PT + 96 + i * 20
        p.add(Polygon([x0, y0, x1, y0, x1 + 10, (y0 + y1) / 2, x1, y1, x0, y1],
                      fillColor=_c(RATING_COLOURS[letter]), strokeColor=None, strokeWidth=0))
        if c.stars is None:
            p.text(x0 + 7, y0 + 5, letter, 13, bold=True, colour="#FFFFFF")
        else:  # issue 19: a star spec's scale reads 5 stars (A) down to 1 star (E)
            for shape in star_row(x0 + 5, (y0 + y1) / 2, 5.0, len(RATINGS) - i, len(RATINGS) - i, _c("#FFFFFF")):
                p.add(shape)
        if letter == c.compound:
            # The marker carries the compound's own colour so that it reads without the scale.
            xr, xl = WIDTH_PT - MARGIN_PT, WIDTH_PT - MARGIN_PT - 74
            yc, half = (y0 + y1) / 2, 14.0
            p.add(Polygon([xl, yc, xl + 14, yc + half, xr, yc + half, xr, yc - half, xl + 14, yc - half],
                          fillColor=_c(RATING_COLOURS[letter]), strokeColor=_c(INK), strokeWidth=1.4))
            if c.stars is None:
                p.text(xl + 44, yc - 7.5, letter, 22, bold=True, colour="#FFFFFF", anchor="middle")
            else:
                for shape in star_row(xl + 13, yc, 5.6, c.stars, len(RATINGS), _c("#FFFFFF")):
                    p.add(shape)
    y = top - 5 * (row_h + gap) - 6
    against = f"the reference {c.reference}" if c.reference else "the best model of each metric"
    caption = f"Rating {c.compound} against {against} in the same environment"
    if c.stars is not None:
        caption = f"{c.stars} of 5 stars: five equal bands of the energy range of this task's models here"
    p.text(MARGIN_PT, y, caption, 7, colour=GREY, max_width=WIDTH_PT - 2 * MARGIN_PT)


def _badge(p: _Painter, x: float, y: float, letter: str, size: float, stars: bool = False) -> None:
    from reportlab.graphics.shapes import Rect

    p.add(Rect(x, y, size, size, rx=2.5, ry=2.5, fillColor=_c(RATING_COLOURS[letter]), strokeColor=None))
    text = str(len(RATINGS) - RATINGS.index(letter)) if stars else letter  # a star spec: the number of stars
    p.text(x + size / 2, y + size * 0.24, text, size * 0.62, bold=True, colour="#FFFFFF", anchor="middle")
    if stars:
        p.add(star(x + size - 2, y + size - 2, 2.6, _c("#FFFFFF"), None))


def _block(p: _Painter, b: Block, x: float, top: float, w: float, h: float, stars: bool = False) -> None:
    from reportlab.graphics.shapes import Rect

    p.add(Rect(x, top - h, w, h, rx=4, ry=4, fillColor=None, strokeColor=_c(LIGHT), strokeWidth=0.8))
    colour = RATING_COLOURS[b.rating] if b.rating else UNRATED_COLOUR
    p.add(pictograms.DRAW[b.kind](x + 6, top - 32, 26, colour))
    p.text(x + 38, top - 15, b.title, 9, bold=True, max_width=w - 38 - 24)
    if b.rating:
        _badge(p, x + w - 22, top - 22, b.rating, 16, stars)
    if b.note:
        p.text(x + 38, top - 26, b.note, 6.5, colour=GREY, max_width=w - 44)
    lines = b.lines or ()
    room = 34.0 - (9.0 if b.footnote else 0.0)
    step = min(11.0, room / max(1, len(lines)))
    size = min(7.5, step * 0.75)
    y = top - 44
    for ln in lines:
        colour = UNRATED_COLOUR if not ln.measured else ESTIMATE_INK if ln.method == "estimate" else INK
        value_w = p.text(x + w - 16, y, ln.text, size, bold=ln.measured, colour=colour, anchor="end",
                         max_width=w * 0.5)
        p.text(x + 6, y, ln.label, size * 0.88, colour=GREY, max_width=w - 22 - value_w - 6, middle=False)
        if ln.rating and stars:
            p.add(star(x + w - 8, y + size * 0.35, size * 0.6, _c(RATING_COLOURS[ln.rating]), None))
        elif ln.rating:
            p.text(x + w - 8, y, ln.rating, size, bold=True, colour=RATING_COLOURS[ln.rating], anchor="middle")
        y -= step
    if b.footnote:
        p.text(x + 6, top - h + 6, b.footnote, 6.5, bold=b.footnote_alert,
               colour=ESTIMATE_INK if b.footnote_alert else GREY, max_width=w - 12, middle=False)


def _blocks(p: _Painter, c: LabelContent) -> None:
    gap, h = 6.0, 74.0
    w = (WIDTH_PT - 2 * MARGIN_PT - gap) / 2
    top = HEIGHT_PT - 268
    for i, b in enumerate(c.blocks):
        col, row = i % 2, i // 2
        _block(p, b, MARGIN_PT + col * (w + gap), top - row * (h + gap), w, h, c.stars is not None)


def _energy_note(p: _Painter, c: LabelContent) -> None:
    from reportlab.graphics.shapes import Rect

    y = HEIGHT_PT - 440
    avail = WIDTH_PT - 2 * MARGIN_PT
    if c.estimated:
        p.add(Rect(MARGIN_PT, y - 5, avail, 17, rx=3, ry=3, fillColor=_c(ESTIMATE_FILL),
                   strokeColor=_c(RATING_COLOURS["E"]), strokeWidth=1))
        p.text(WIDTH_PT / 2, y, c.energy_note, 8, bold=True, colour=ESTIMATE_INK, anchor="middle",
               max_width=avail - 8, middle=False)
    else:
        p.text(MARGIN_PT, y, c.energy_note, 7, colour=GREY, max_width=avail, middle=False)
    if c.unmeasured_note:
        p.text(MARGIN_PT, y - 12, c.unmeasured_note, 6.5, colour=GREY, max_width=avail, middle=False)


QR_SIZE_PT = 92.0


def _footer(p: _Painter, c: LabelContent) -> None:
    avail = WIDTH_PT - 2 * MARGIN_PT - QR_SIZE_PT - 4
    against = c.reference or ("range of group" if c.stars is not None else "best of group")
    rows = [("Measured", c.measured_on), ("Spec", f"{c.spec_name} v{c.spec_version}"),
            ("Spec sha256", c.spec_short), ("Reference", against), ("Record", c.record_id),
            ("Made with", f"mlee {c.mlee_version}")]
    y = 94.0
    for key, value in rows:
        w = p.text(MARGIN_PT, y, f"{key}:", 7, bold=True, colour=GREY)
        p.text(MARGIN_PT + w + 3, y, value, 7, colour=INK, max_width=avail - w - 3)
        y -= 11


def draw_label(content: LabelContent, chain: FontChain, include_qr: bool = True) -> Drawn:
    """Lay out ``content`` as a reportlab ``Drawing`` using the fonts of ``chain``."""
    from reportlab.graphics.shapes import Drawing, Rect

    d = Drawing(WIDTH_PT, HEIGHT_PT)
    p = _Painter(d, chain)
    p.add(Rect(1, 1, WIDTH_PT - 2, HEIGHT_PT - 2, rx=8, ry=8, fillColor=_c("#FFFFFF"), strokeColor=_c(INK),
               strokeWidth=1.2))
    _header(p, content)
    _identity(p, content)
    _scale(p, content)
    _blocks(p, content)
    _energy_note(p, content)
    _footer(p, content)
    if p.missing:
        p.text(MARGIN_PT, 22, f"{REPLACEMENT} = character no installed font can show; the QR code holds the full text",
               5.5, colour=GREY, max_width=WIDTH_PT - 2 * MARGIN_PT - 96, middle=False)
    qr = QrPlacement(content.qr_payload, WIDTH_PT - MARGIN_PT - QR_SIZE_PT + 4, 8, QR_SIZE_PT)
    if include_qr:
        d.add(qr_group(qr))
    return Drawn(drawing=d, missing=tuple(p.missing), qr=qr, qr_drawn=include_qr)
