"""Fonts for labels: discovery, glyph coverage, per-character fallback, fitting text into a width.

Text on a label is drawn with embedded TrueType fonts only (the PDF standard fonts cannot show
Cyrillic, Arabic or CJK). The chain is: fonts named in ``MLEE_LABEL_FONTS`` (paths separated by
``os.pathsep``), DejaVu Sans, then wide-coverage fallbacks found on the system (Noto, Droid Sans
Fallback, WenQuanYi, Unifont); where the system has none of them, reportlab's bundled Vera, so
that a label can always be drawn.
A character no font covers is drawn as U+FFFD (or ``?``) and reported, never as an empty box.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from mlee.label.textshape import display

#: Searched for font files; the first match of each candidate name wins (sorted walk: deterministic).
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")

#: (regular file, bold file or None, subfont index for .ttc): primary first, then fallbacks.
CANDIDATES: tuple[tuple[str, str | None, int], ...] = (
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", 0),
    ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf", 0),
    ("NotoSansArabic-Regular.ttf", "NotoSansArabic-Bold.ttf", 0),
    ("DroidSansFallbackFull.ttf", None, 0),
    ("DroidSansFallback.ttf", None, 0),
    ("wqy-microhei.ttc", None, 0),
    ("wqy-zenhei.ttc", None, 0),
    ("NanumGothic.ttf", "NanumGothicBold.ttf", 0),
    ("unifont.ttf", None, 0),
)

ENV_FONTS = "MLEE_LABEL_FONTS"
REPLACEMENT = "\ufffd"
ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Face:
    """One registered font. ``name`` is its reportlab name; ``codepoints`` what it can show."""

    name: str
    path: str
    codepoints: frozenset[int] = field(repr=False)


@dataclass(frozen=True)
class FontChain:
    """Regular and bold faces in fallback order (``bold[i]`` pairs with ``regular[i]``).

    ``skipped`` lists fonts that were found but could not be used, with the reason.
    """

    regular: tuple[Face, ...]
    bold: tuple[Face, ...]
    skipped: tuple[str, ...] = ()

    def faces(self, bold: bool) -> tuple[Face, ...]:
        return self.bold if bold else self.regular


@dataclass(frozen=True)
class Run:
    """A piece of display text drawn in one font. Units: ``width_pt`` points."""

    font: str
    text: str
    width_pt: float


@dataclass(frozen=True)
class Fitted:
    """Text laid out for one line: runs left to right at ``size_pt``; what could not be shown.

    Units: ``size_pt`` and ``width_pt`` points.
    """

    runs: tuple[Run, ...]
    size_pt: float
    width_pt: float
    missing: tuple[str, ...]
    shortened: bool


def _find_files() -> dict[str, str]:
    wanted = {c[0] for c in CANDIDATES} | {c[1] for c in CANDIDATES if c[1]}
    found: dict[str, str] = {}
    for root in FONT_DIRS:
        base = Path(root).expanduser()
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn in wanted and fn not in found:
                    found[fn] = os.path.join(dirpath, fn)
    return found


def _register(path: str, subfont: int, skipped: list[str]) -> Face | None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    stem = "".join(c if c.isalnum() else "-" for c in Path(path).stem)
    name = f"mlee-{stem}-{subfont}"
    # getRegisteredFontNames, not getFont: getFont of an unknown name searches the disk for AFM files.
    if name in pdfmetrics.getRegisteredFontNames():
        font = pdfmetrics.getFont(name)
    else:
        try:
            font = TTFont(name, path, subfontIndex=subfont)
        except (TTFError, OSError, ValueError, KeyError, IndexError) as exc:
            skipped.append(f"{path}: {exc}")
            return None
        pdfmetrics.registerFont(font)
    return Face(name=name, path=path, codepoints=frozenset(font.face.charToGlyph))


def _bundled() -> tuple[str, str]:
    import reportlab

    fonts = Path(reportlab.__file__).parent / "fonts"
    return str(fonts / "Vera.ttf"), str(fonts / "VeraBd.ttf")


@functools.lru_cache(maxsize=8)
def _chain(extra: str) -> FontChain:
    skipped: list[str] = []
    pairs: list[tuple[str, str | None, int]] = []
    for p in (x for x in extra.split(os.pathsep) if x):
        if os.path.isfile(p):
            pairs.append((p, None, 0))
        else:
            skipped.append(f"{p}: not a file (from {ENV_FONTS})")
    found = _find_files()
    for regular, bold, sub in CANDIDATES:
        if regular in found:
            pairs.append((found[regular], found.get(bold or ""), sub))
    reg: list[Face] = []
    bld: list[Face] = []
    for regular_path, bold_path, sub in pairs:
        face = _register(regular_path, sub, skipped)
        if face is None:
            continue
        bold_face = _register(bold_path, 0, skipped) if bold_path else None
        reg.append(face)
        bld.append(bold_face or face)
    if not any(f.path in found.values() for f in reg):
        # No system font (a minimal container): reportlab's own Vera keeps Latin text drawable.
        vera, vera_bold = _bundled()
        reg.append(_register(vera, 0, skipped) or _never(vera))
        bld.append(_register(vera_bold, 0, skipped) or reg[-1])
    return FontChain(regular=tuple(reg), bold=tuple(bld), skipped=tuple(skipped))


def _never(path: str) -> Face:
    raise RuntimeError(f"reportlab's bundled font {path} cannot be read: the reportlab installation is broken")


def font_chain(extra: str | None = None) -> FontChain:
    """The font chain for this process (cached). ``extra`` defaults to ``$MLEE_LABEL_FONTS``."""
    return _chain(os.environ.get(ENV_FONTS, "") if extra is None else extra)


def runs_for(text: str, chain: FontChain, bold: bool, size_pt: float) -> tuple[list[Run], list[str]]:
    """Split display text into runs of one font each; characters no font covers are replaced.

    Returns the runs and the characters that could not be shown (in order, without repeats).
    """
    from reportlab.pdfbase.pdfmetrics import stringWidth

    faces = chain.faces(bold)
    primary = faces[0]
    by_name = {f.name: f for f in faces}
    pieces: list[tuple[str, str]] = []
    missing: list[str] = []
    for ch in text:
        cp = ord(ch)
        if pieces and _is_mark(ch) and cp in by_name[pieces[-1][0]].codepoints:
            face: Face | None = by_name[pieces[-1][0]]  # a mark stays with its base letter's font
        else:
            face = next((f for f in faces if cp in f.codepoints), None)
        if face is None:
            if ch not in missing:
                missing.append(ch)
            face, ch = primary, (REPLACEMENT if ord(REPLACEMENT) in primary.codepoints else "?")
        if pieces and pieces[-1][0] == face.name:
            pieces[-1] = (face.name, pieces[-1][1] + ch)
        else:
            pieces.append((face.name, ch))
    runs = [Run(font=f, text=t, width_pt=stringWidth(t, f, size_pt)) for f, t in pieces]
    return runs, missing


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me", "Mc")


def fit(text: str, chain: FontChain, *, size_pt: float, max_width_pt: float, bold: bool = False,
        min_size_pt: float | None = None, middle: bool = True) -> Fitted:
    """Lay out ``text`` on one line no wider than ``max_width_pt``.

    The font shrinks down to ``min_size_pt`` first; if the text is still too wide it is shortened
    with an ellipsis (in the middle by default, where long model names differ least).

    Units: sizes and widths in points.
    """
    min_size = size_pt if min_size_pt is None else min(min_size_pt, size_pt)
    shown = display(text)
    runs, missing = runs_for(shown, chain, bold, size_pt)
    width = sum(r.width_pt for r in runs)
    if width <= max_width_pt or not shown:
        return Fitted(tuple(runs), size_pt, width, tuple(missing), False)
    size = max(min_size, size_pt * max_width_pt / width)
    runs, missing = runs_for(shown, chain, bold, size)
    width = sum(r.width_pt for r in runs)
    if width <= max_width_pt:
        return Fitted(tuple(runs), size, width, tuple(missing), False)
    # Shorten the logical text (so shaping and order stay right), keeping as much as fits.
    lo, hi = 0, len(text)
    best: tuple[list[Run], list[str], float] = ([], [], 0.0)
    while lo <= hi:
        keep = (lo + hi) // 2
        cand = display(_shorten(text, keep, middle))
        r, m = runs_for(cand, chain, bold, size)
        w = sum(x.width_pt for x in r)
        if w <= max_width_pt:
            best = (r, m, w)
            lo = keep + 1
        else:
            hi = keep - 1
    r, m, w = best
    return Fitted(tuple(r), size, w, tuple(dict.fromkeys(missing + m)), True)


def _shorten(text: str, keep: int, middle: bool) -> str:
    text = text.strip()
    if keep <= 0:
        return ELLIPSIS
    if not middle:
        return text[:keep].rstrip() + ELLIPSIS
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head].rstrip() + ELLIPSIS + (text[len(text) - tail:].lstrip() if tail else "")
