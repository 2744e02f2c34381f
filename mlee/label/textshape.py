"""Display preparation of one line of label text: clean-up, Arabic shaping, bidirectional order.

reportlab draws code points left to right as given; it neither joins Arabic letters nor reorders
right-to-left text. A model name in Arabic would come out as isolated letters in reverse order, so
this module prepares each line: ``arabic-reshaper`` gives Arabic letters their contextual
presentation forms, and ``python-bidi`` (the full Unicode bidirectional algorithm, embeddings and
isolates included, conformant to Unicode's ``BidiCharacterTest.txt``) resolves the embedding level
of every character. python-bidi's own display function reorders but does not mirror brackets, so the
last two steps of the algorithm, reversal (L2) and mirroring (L4), are applied here from its levels.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

_WS = re.compile(r"\s+")
_LEVEL = re.compile(r"Level\(\s*(\d+)")

#: Lam-alef ligatures are mandatory in Arabic writing; the other ligatures arabic-reshaper knows are
#: optional and many fonts lack their glyphs.
_LIGATURES = ("ARABIC LIGATURE LAM WITH ALEF", "ARABIC LIGATURE LAM WITH ALEF WITH HAMZA ABOVE",
              "ARABIC LIGATURE LAM WITH ALEF WITH HAMZA BELOW", "ARABIC LIGATURE LAM WITH ALEF WITH MADDA ABOVE")
#: Bidi classes that make a right-to-left level possible; text without any is already in visual order.
_RTL_CLASSES = frozenset({"R", "AL", "AN", "RLE", "RLO", "RLI"})
#: Classes reset to the paragraph level before a separator or at the end of a line (rule L1), together
#: with the characters rule X9 leaves in place.
_TRAILING = frozenset({"WS", "FSI", "LRI", "RLI", "PDI", "BN", "LRE", "RLE", "LRO", "RLO", "PDF"})


def clean(text: str) -> str:
    """One display line: NFC, control and format characters dropped, whitespace runs made one space."""
    text = unicodedata.normalize("NFC", str(text))
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace():
            kept.append(" ")
        elif cat in ("Cc", "Cs", "Co", "Cn") or (cat == "Cf" and ch not in "\u200c\u200d"):
            continue  # invisible, unassigned or unpaired: nothing a label can show
        else:
            kept.append(ch)
    return _WS.sub(" ", "".join(kept)).strip()


@functools.lru_cache(maxsize=1)
def _reshaper() -> Any:
    import arabic_reshaper
    from arabic_reshaper.ligatures import LIGATURES

    config = {"delete_harakat": False, **{name: name in _LIGATURES for name, _forms in LIGATURES}}
    return arabic_reshaper.ArabicReshaper(configuration=config)


def shape_arabic(text: str) -> str:
    """Replace Arabic letters by their contextual presentation forms (logical order is kept)."""
    if not any("\u0600" <= ch <= "\u06ff" for ch in text):
        return text
    return _reshaper().reshape(text)


def _levels(text: str, base_dir: str | None) -> tuple[list[int], int] | None:
    """Embedding level of each character and the paragraph level, as python-bidi resolves them.

    python-bidi returns its levels through ``debug=True`` (one per UTF-8 byte); None when that text
    cannot be read, so the caller falls back to python-bidi's own order without mirroring.
    """
    from bidi import get_display

    info = get_display(text, base_dir=base_dir, debug=True)
    head, _, tail = info.partition("paragraphs:")
    by_byte = [int(x) for x in _LEVEL.findall(head.partition("levels:")[2])]
    paragraph = _LEVEL.search(tail)
    if paragraph is None or len(by_byte) != len(text.encode("utf-8")):
        return None
    levels, at = [], 0
    for ch in text:
        levels.append(by_byte[at])
        at += len(ch.encode("utf-8"))
    return levels, int(paragraph.group(1))


def visual_order(text: str, base_dir: str | None = None) -> str:
    """Reorder one line from logical to visual order (Unicode bidirectional algorithm, rules P2-L4).

    Args:
        text: One line in logical order (a paragraph separator inside it ends a paragraph).
        base_dir: ``"L"`` or ``"R"`` to set the paragraph direction; None: from the first strong character.
    """
    classes = [unicodedata.bidirectional(ch) for ch in text]
    if base_dir != "R" and not _RTL_CLASSES.intersection(classes):
        return text
    if "B" in classes:  # one paragraph at a time, each separator staying where it was
        cut = classes.index("B")
        return visual_order(text[:cut], base_dir) + text[cut] + visual_order(text[cut + 1:], base_dir)
    resolved = _levels(text, base_dir)
    if resolved is None:
        from bidi import get_display

        return get_display(text, base_dir=base_dir)
    levels, paragraph = resolved
    trailing = True  # L1: separators and the whitespace before them or at the end take the paragraph level
    for k in range(len(text) - 1, -1, -1):
        if classes[k] == "S":
            levels[k], trailing = paragraph, True
        elif trailing and classes[k] in _TRAILING:
            levels[k] = paragraph
        else:
            trailing = False
    from bidi.mirror import MIRRORED

    chars = [MIRRORED.get(ch, ch) if level % 2 else ch for ch, level in zip(text, levels)]  # L4
    lowest_odd = min(level for level in levels if level % 2) if any(level % 2 for level in levels) else 1
    for level in range(max(levels), lowest_odd - 1, -1):  # L2: reverse every run at this level or higher
        k = 0
        while k < len(chars):
            if levels[k] < level:
                k += 1
                continue
            m = k
            while m < len(chars) and levels[m] >= level:
                m += 1
            chars[k:m] = chars[k:m][::-1]
            levels[k:m] = levels[k:m][::-1]
            k = m
    return "".join(chars)


def display(text: str) -> str:
    """Clean, shape and reorder ``text`` for drawing left to right."""
    return visual_order(shape_arabic(clean(text)))
