"""Display preparation of one line of label text: clean-up, Arabic shaping, bidirectional order.

reportlab draws code points left to right as given; it neither joins Arabic letters nor reorders
right-to-left text unless optional native packages are installed. A model name in Arabic would
come out as isolated letters in reverse order, so this module does the small part of the work a
one-line label needs: contextual forms from Unicode's own presentation-form tables (read from
:mod:`unicodedata`, so no table is copied here) and a reduced version of the Unicode
bidirectional algorithm (one paragraph, no embeddings or isolates).
"""

from __future__ import annotations

import functools
import re
import unicodedata

_WS = re.compile(r"\s+")

#: Characters whose mirrored glyph must be shown inside right-to-left runs (rule L4).
_MIRROR = {"(": ")", ")": "(", "[": "]", "]": "[", "{": "}", "}": "{", "<": ">", ">": "<",
           "\u00ab": "\u00bb", "\u00bb": "\u00ab", "\u2039": "\u203a", "\u203a": "\u2039"}

_LAM = "\u0644"
_TATWEEL = "\u0640"
_FORMS = ("<isolated>", "<final>", "<initial>", "<medial>")


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
def _tables() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Presentation forms from unicodedata: letter -> {form: char}, and the lam-alef ligatures."""
    letters: dict[str, dict[str, str]] = {}
    lam_alef: dict[str, dict[str, str]] = {}
    # Presentation Forms-B first: it is the block fonts cover; Forms-A only adds letters B lacks.
    for cp in list(range(0xFE70, 0xFF00)) + list(range(0xFB50, 0xFE00)):
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) < 2 or parts[0] not in _FORMS:
            continue
        bases = "".join(chr(int(p, 16)) for p in parts[1:])
        if len(bases) == 1:
            letters.setdefault(bases, {}).setdefault(parts[0], chr(cp))
        elif len(bases) == 2 and bases[0] == _LAM:
            lam_alef.setdefault(bases[1], {}).setdefault(parts[0], chr(cp))
    return letters, lam_alef


def _joining(ch: str) -> str:
    """Joining type: D (both sides), R (right only), C (causing, tatweel), T (transparent), U (none)."""
    if ch == _TATWEEL or ch == "\u200d":
        return "C"
    if unicodedata.category(ch) in ("Mn", "Me"):
        return "T"
    forms = _tables()[0].get(ch)
    if not forms:
        return "U"
    return "D" if ("<initial>" in forms or "<medial>" in forms) else "R"


def shape_arabic(text: str) -> str:
    """Replace Arabic letters by their contextual presentation forms (logical order is kept)."""
    if not any("\u0600" <= ch <= "\u06ff" for ch in text):
        return text
    letters, lam_alef = _tables()
    types = [_joining(ch) for ch in text]

    def neighbour(i: int, step: int) -> int | None:
        j = i + step
        while 0 <= j < len(text) and types[j] == "T":
            j += step
        return j if 0 <= j < len(text) else None

    out: list[str] = []
    i = 0
    while i < len(text):
        ch, kind = text[i], types[i]
        if kind not in ("D", "R"):
            out.append(ch)
            i += 1
            continue
        prev, nxt = neighbour(i, -1), neighbour(i, 1)
        joins_prev = prev is not None and types[prev] in ("D", "C")
        if ch == _LAM and nxt is not None and nxt == i + 1 and text[nxt] in lam_alef:
            lig = lam_alef[text[nxt]]
            out.append(lig.get("<final>" if joins_prev else "<isolated>", ch + text[nxt]))
            i += 2
            continue
        joins_next = kind == "D" and nxt is not None and types[nxt] in ("D", "R", "C")
        form = {(True, True): "<medial>", (True, False): "<final>",
                (False, True): "<initial>", (False, False): "<isolated>"}[(joins_prev, joins_next)]
        forms = letters[ch]
        out.append(forms.get(form) or forms.get("<isolated>") or ch)
        i += 1
    return "".join(out)


def visual_order(text: str) -> str:
    """Reorder one line from logical to visual order (reduced Unicode bidirectional algorithm).

    One paragraph without explicit embeddings: base direction from the first strong character
    (P2/P3), weak types W2/W7, neutrals N1/N2, implicit levels I1/I2, reversal L2 and bracket
    mirroring L4. Enough for names and figures on one label line.
    """
    classes = [unicodedata.bidirectional(ch) or "L" for ch in text]
    if not any(c in ("R", "AL", "AN") for c in classes):
        return text
    strong = {"L": "L", "R": "R", "AL": "R"}
    base = next((strong[c] for c in classes if c in strong), "L")
    kinds: list[str] = []
    last_strong = "AL" if base == "R" else "L"
    for cls in classes:
        if cls in strong:
            last_strong = cls
            kinds.append(strong[cls])
        elif cls == "EN":  # W2 then W7
            kinds.append("AN" if last_strong == "AL" else ("L" if last_strong == "L" else "EN"))
        elif cls == "AN":
            kinds.append("AN")
        elif cls == "NSM" and kinds:
            kinds.append(kinds[-1])
        else:
            kinds.append("N")
    n = len(text)
    i = 0
    while i < n:  # N1/N2: a neutral run takes the direction around it, else the base's
        if kinds[i] != "N":
            i += 1
            continue
        j = i
        while j < n and kinds[j] == "N":
            j += 1
        before = _side(kinds[i - 1]) if i > 0 else base
        after = _side(kinds[j]) if j < n else base
        for k in range(i, j):
            kinds[k] = before if before == after else base
        i = j
    even = base == "L"
    levels = [({"L": 0, "R": 1}.get(k, 2) if even else {"R": 1}.get(k, 2)) for k in kinds]
    chars = [(_MIRROR.get(ch, ch) if levels[k] % 2 else ch) for k, ch in enumerate(text)]
    for level in range(max(levels), 0, -1):  # L2: reverse every run at this level or higher
        k = 0
        while k < n:
            if levels[k] < level:
                k += 1
                continue
            m = k
            while m < n and levels[m] >= level:
                m += 1
            chars[k:m] = chars[k:m][::-1]
            levels[k:m] = levels[k:m][::-1]
            k = m
    return "".join(chars)


def _side(kind: str) -> str:
    """The direction a resolved character presents to neighbouring neutrals (numbers count as R)."""
    return "L" if kind == "L" else "R"


def display(text: str) -> str:
    """Clean, shape and reorder ``text`` for drawing left to right."""
    return visual_order(shape_arabic(clean(text)))
