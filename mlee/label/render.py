"""Turn a laid-out label into PDF, SVG or PNG bytes, the same bytes for the same input.

PDF: reportlab canvas with ``invariant=1`` and the measurement date as the document date (never
the wall clock, and not ``$SOURCE_DATE_EPOCH`` either: the same record gives the same bytes
anywhere). SVG: reportlab's renderSVG with the fonts mapped to their family names. PNG:
reportlab's renderPM when a raster backend (rlPyCairo or rl_renderPM) is installed, else
poppler's ``pdftoppm`` on the PDF.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlee.errors import BackendMissing, MleeError, UsageError
from mlee.label.content import LabelContent
from mlee.label.draw import HEIGHT_PT, WIDTH_PT, Drawn, draw_label
from mlee.label.fonts import FontChain, font_chain
from mlee.label.qr import qr_pdf_operators

FORMATS = ("pdf", "png", "svg")
PNG_DPI = 200
_NO_DATE = "D:20000101000000+00'00'"


@dataclass(frozen=True)
class Rendered:
    """One rendered label: ``data`` in ``fmt``; ``missing`` characters no font could show."""

    data: bytes
    fmt: str
    missing: tuple[str, ...]


def _pdf_date(content: LabelContent) -> str:
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)", content.measured_on)
    return f"D:{m.group(1)}{m.group(2)}{m.group(3)}000000+00'00'" if m else _NO_DATE


@contextlib.contextmanager
def _pdf_settings() -> Iterator[None]:
    """reportlab settings for one label document, restored right after it is written.

    - ``useA85=0``: compressed streams without reportlab's pure-Python ASCII85 layer (a third of the
      writing time; binary streams are valid PDF).
    - No ``SOURCE_DATE_EPOCH``: reportlab seeds the document ID with it even in invariant mode, so a
      label would depend on the environment; the document date is the measurement's (see ``_pdf_date``).
    """
    from reportlab import rl_config

    saved_a85 = rl_config.useA85
    saved_epoch = os.environ.pop("SOURCE_DATE_EPOCH", None)
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = saved_a85
        if saved_epoch is not None:
            os.environ["SOURCE_DATE_EPOCH"] = saved_epoch


def _pdf(drawn: Drawn, content: LabelContent) -> bytes:
    with _pdf_settings():
        return _pdf_document(drawn, content)


def _pdf_document(drawn: Drawn, content: LabelContent) -> bytes:
    from reportlab.graphics import renderPDF
    from reportlab.pdfgen.canvas import Canvas

    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(WIDTH_PT, HEIGHT_PT), invariant=1, pageCompression=1)
    date = _pdf_date(content)
    canvas.setDateFormatter(lambda *_: date)
    canvas.setTitle(content.title)
    canvas.setAuthor("mlee")
    canvas.setCreator(f"mlee {content.mlee_version}")
    canvas.setSubject(f"Energy label, rating {content.compound}, spec {content.spec_name} "
                      f"v{content.spec_version} sha256 {content.spec_sha256 or 'n/a'}")
    canvas.setKeywords(f"energy label; {content.task}; {content.dataset}; {content.environment}")
    renderPDF.draw(drawn.drawing, canvas, 0, 0)
    if not drawn.qr_drawn:
        canvas.addLiteral(qr_pdf_operators(drawn.qr))
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def _svg(drawing: Any, chain: FontChain) -> bytes:
    from reportlab.graphics import renderSVG

    hacks: dict[str, dict[str, str]] = {}
    for faces, weight in ((chain.regular, "normal"), (chain.bold, "bold")):
        for face in faces:
            family = "DejaVu Sans" if "DejaVu" in face.path else ("Bitstream Vera Sans" if "Vera" in face.path
                                                                  else face.name)
            hacks.setdefault(face.name, {"family": f"'{family}', sans-serif", "weight": weight})
    return _ltr_override(renderSVG.drawToString(drawing, fontHacks=hacks)).encode("utf-8")


_SVG_TEXT = re.compile(r'(<text\b[^>]*?style=")([^"]*)("[^>]*>)([^<]*)(</text>)')


def _ltr_override(svg: str) -> str:
    """Keep SVG viewers from reordering right-to-left text a second time.

    Label text is already shaped and in visual order (see :mod:`mlee.label.textshape`); a browser
    would apply the bidirectional algorithm again and reverse it, so those strings are marked
    left-to-right with an override.
    """
    def fix(m: re.Match[str]) -> str:
        if not any(unicodedata.bidirectional(ch) in ("R", "AL", "AN") for ch in m.group(4)):
            return m.group(0)
        style = m.group(2).rstrip() + " direction: ltr; unicode-bidi: bidi-override;"
        return m.group(1) + style + m.group(3) + m.group(4) + m.group(5)

    return _SVG_TEXT.sub(fix, svg)


def _png_backend() -> bool:
    try:
        from reportlab.graphics import renderPM

        renderPM._getPMBackend()  # raises when neither rlPyCairo nor _rl_renderPM is installed
        return True
    except Exception:  # noqa: BLE001 - any failure here means "no raster backend"
        return False


def png_support() -> str | None:
    """How PNG labels can be made here ("renderPM" or "pdftoppm"), or None when they cannot."""
    if _png_backend():
        return "renderPM"
    if shutil.which("pdftoppm"):
        return "pdftoppm"
    return None


def require_png() -> str:
    """How PNG labels will be made here; raise BackendMissing naming what to install when they cannot."""
    how = png_support()
    if how is None:
        raise BackendMissing(
            "PNG labels need a raster renderer and none is installed",
            "pip install rlPyCairo (reportlab's renderPM backend) or install poppler-utils (pdftoppm); "
            "--format pdf and --format svg work without either")
    return how


def _png(drawn: Drawn, content: LabelContent, dpi: int) -> bytes:
    if require_png() == "renderPM":
        from reportlab.graphics import renderPM

        return renderPM.drawToString(drawn.drawing, fmt="PNG", dpi=dpi)
    pdf = _pdf(drawn, content)
    with tempfile.TemporaryDirectory(prefix="mlee-label-") as tmp:
        src = os.path.join(tmp, "label.pdf")
        with open(src, "wb") as fh:
            fh.write(pdf)
        proc = subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-singlefile", src, os.path.join(tmp, "label")],
                              capture_output=True, text=True, timeout=60, check=False)
        out = os.path.join(tmp, "label.png")
        if proc.returncode != 0 or not os.path.exists(out):
            raise MleeError(f"pdftoppm could not rasterise the label: {proc.stderr.strip() or proc.returncode}",
                                   "use --format pdf or svg, or pip install rlPyCairo")
        with open(out, "rb") as fh:
            return fh.read()


def render(content: LabelContent, fmt: str = "pdf", *, chain: FontChain | None = None,
           dpi: int = PNG_DPI) -> Rendered:
    """Render one label.

    Args:
        content: What the label says (see :func:`mlee.label.content.label_content`).
        fmt: ``pdf``, ``png`` or ``svg``.
        chain: Fonts to use; None finds them on this system (see :mod:`mlee.label.fonts`).
        dpi: Resolution of PNG output. Units: dots per inch.

    Raises:
        UsageError: for an unknown format.
        BackendMissing: when PNG is asked for and no raster renderer is installed.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown label format {fmt!r}", "use one of: " + ", ".join(FORMATS))
    chain = chain or font_chain()
    # PDF writes the QR code as operators (fast); the other formats draw it as shapes.
    drawn = draw_label(content, chain, include_qr=(fmt == "svg" or (fmt == "png" and png_support() == "renderPM")))
    if fmt == "pdf":
        data = _pdf(drawn, content)
    elif fmt == "svg":
        data = _svg(drawn.drawing, chain)
    else:
        data = _png(drawn, content, dpi)
    return Rendered(data=data, fmt=fmt, missing=drawn.missing)
