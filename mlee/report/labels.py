"""Energy labels rendered beside the report (``mlee label``): found by the label layer's file names, embedded.

A label PNG (or SVG) is embedded in the page as a data URI, shrunk to a thumbnail width so a thousand labels do
not make the report huge; its PDF is linked by a path relative to the report, so the folder can move as a whole.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: Width of an embedded label image (the page shows labels at most 320 px wide). Units: pixels.
THUMB_WIDTH_PX = 360
#: Colours of an embedded label image: labels are flat colours and text, so a palette keeps them sharp at a
#: fifth of the size (about 30 kB each).
THUMB_COLOURS = 64
#: Largest SVG label embedded as is. Units: bytes.
MAX_SVG_BYTES = 400_000


@dataclass(frozen=True)
class LabelFiles:
    """The label files of one rated record (None where that format was not rendered)."""

    pdf: Path | None
    png: Path | None
    svg: Path | None


def find_labels(rated: Sequence[Mapping[str, Any]], folders: Iterable[Path]) -> dict[str, LabelFiles]:
    """Per rated-record id, the label files found in the first of ``folders`` that holds any.

    File names are those ``mlee label`` writes (:func:`mlee.label.batch.label_filename`).
    """
    from mlee.label.batch import label_filename

    dirs = [Path(f) for f in folders if Path(f).is_dir()]
    found: dict[str, LabelFiles] = {}
    if not dirs:
        return found
    for r in rated:
        names = {fmt: label_filename(dict(r), fmt) for fmt in ("pdf", "png", "svg")}
        for folder in dirs:
            paths = {fmt: folder / name for fmt, name in names.items()}
            hits = {fmt: p if p.is_file() else None for fmt, p in paths.items()}
            if any(hits.values()):
                found[str(r.get("id"))] = LabelFiles(pdf=hits["pdf"], png=hits["png"], svg=hits["svg"])
                break
    return found


def relative_href(path: Path, report_dir: Path) -> str:
    """A URL path from the report's folder to ``path`` (percent-encoded, forward slashes)."""
    rel = os.path.relpath(path.resolve(), report_dir.resolve())
    return quote(Path(rel).as_posix(), safe="/-._~")


def thumbnail_png(data: bytes, width_px: int = THUMB_WIDTH_PX) -> bytes:
    """``data`` (PNG) scaled down to ``width_px`` wide with a small palette; unchanged when already narrow or
    Pillow is missing.

    Units: ``width_px`` pixels.
    """
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with reportlab; without it the label is embedded at full size
        return data
    with Image.open(io.BytesIO(data)) as img:
        if img.width <= width_px:
            return data
        height = max(1, round(img.height * width_px / img.width))
        small = img.convert("RGB").resize((width_px, height), Image.Resampling.LANCZOS)
        small = small.quantize(colors=THUMB_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = io.BytesIO()
        small.save(out, format="PNG", optimize=True)
        return out.getvalue()


def page_label(files: LabelFiles, report_dir: Path, images: bool = True) -> dict[str, str | None]:
    """What the page shows for one label: ``img`` (a data URI, or None when ``images`` is off or there is no
    PNG or SVG) and ``pdf`` (a relative link or None)."""
    img = None
    if not images:
        pass
    elif files.png is not None:
        img = "data:image/png;base64," + base64.b64encode(thumbnail_png(files.png.read_bytes())).decode("ascii")
    elif files.svg is not None and files.svg.stat().st_size <= MAX_SVG_BYTES:
        # An SVG shown through <img> runs no script, so a label's text cannot act on the page.
        img = "data:image/svg+xml;base64," + base64.b64encode(files.svg.read_bytes()).decode("ascii")
    pdf = relative_href(files.pdf, report_dir) if files.pdf is not None else None
    return {"img": img, "pdf": pdf}
