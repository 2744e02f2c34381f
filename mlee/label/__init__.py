"""Energy labels: render a rated record (docs/design.md section 4) as a PDF, SVG or PNG label.

The label layer renders ratings; it never computes one. reportlab is imported only when a label is
drawn, so importing this package stays cheap.

Typical use::

    from mlee.label import ordered, write_labels
    written = write_labels(ordered(rated), "labels", fmt="pdf")
"""

from __future__ import annotations

from mlee.label.batch import Written, check_selection, dates_from_database, label_filename, ordered, write_labels
from mlee.label.content import LabelContent, label_content
from mlee.label.qrtext import QR_FIELDS
from mlee.label.fonts import FontChain, font_chain
from mlee.label.render import FORMATS, Rendered, png_support, render

__all__ = [
    "FORMATS", "QR_FIELDS", "FontChain", "LabelContent", "Rendered", "Written", "dates_from_database",
    "check_selection", "font_chain", "label_content", "label_filename", "ordered", "png_support", "render",
    "write_labels",
]
