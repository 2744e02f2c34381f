"""Label text: clean-up, Arabic shaping, bidirectional order, font fallback and fitting into a width."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from mlee.label.fonts import ELLIPSIS, REPLACEMENT, fit, font_chain, runs_for
from mlee.label.textshape import clean, display, shape_arabic, visual_order

HIEROGLYPH = "\U00013000"  # assigned, but in none of the fonts the chain looks for


def _vera() -> str:
    import reportlab

    return str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf")


def test_clean_drops_controls_and_folds_whitespace() -> None:
    assert clean("  Res\x00Net\n\t50\x1b[31m \u200e ") == "ResNet 50[31m"


def test_arabic_letters_take_their_joined_forms() -> None:
    shaped = shape_arabic("\u0633\u0644\u0627\u0645")  # seen, lam, alef, meem: "salam"
    names = [unicodedata.name(ch) for ch in shaped]
    assert names == ["ARABIC LETTER SEEN INITIAL FORM", "ARABIC LIGATURE LAM WITH ALEF FINAL FORM",
                     "ARABIC LETTER MEEM ISOLATED FORM"]
    assert shape_arabic("abc") == "abc"


def test_right_to_left_text_is_reversed_for_drawing_and_numbers_are_not() -> None:
    assert visual_order("ResNet50 <x>") == "ResNet50 <x>"
    # A right-to-left name: letters reversed, the number inside keeps its digit order, brackets mirror.
    logical = "\u0646\u0645\u0648\u0630\u062c (12)"
    assert visual_order(logical) == "(12) \u062c\u0630\u0648\u0645\u0646"
    # Left-to-right base: only the Arabic run turns around.
    assert visual_order("abc \u0627\u0628 def") == "abc \u0628\u0627 def"


BIDI_SAMPLE = Path(__file__).parent / "data" / "BidiCharacterTest-15.0.0-sample.txt"


def _bidi_cases() -> list[tuple[int, str, str | None, list[str], list[int]]]:
    cases = []
    for number, line in enumerate(BIDI_SAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        points, direction, _paragraph, levels, order = line.split(";")
        text = "".join(chr(int(cp, 16)) for cp in points.split())
        cases.append((number, text, {"0": "L", "1": "R", "2": None}[direction], levels.split(),
                      [int(i) for i in order.split()]))
    return cases


def test_visual_order_passes_unicodes_bidi_character_tests() -> None:
    cases = _bidi_cases()
    assert len(cases) > 500 and any("\u2067" in text for _, text, *_ in cases)  # isolates are in the sample
    failed = []
    for number, text, base_dir, levels, order in cases:
        removed = {text[i] for i, level in enumerate(levels) if level == "x"}  # rule X9: not in the order
        shown = "".join(ch for ch in visual_order(text, base_dir) if ch not in removed)
        # The file tests up to rule L2; L4 (mirroring) applies on top: odd levels show the mirrored glyph.
        expected = "".join(_mirrored(text[i]) if int(levels[i]) % 2 else text[i] for i in order)
        if shown != expected:
            failed.append(number)
    assert failed == []


def _mirrored(ch: str) -> str:
    from bidi.mirror import MIRRORED

    return MIRRORED.get(ch, ch)


def test_isolates_and_embeddings_are_honoured() -> None:
    hebrew = "\u05d0\u05d1"
    # A right-to-left isolate inside left-to-right text turns around alone; the text after it stays put.
    assert visual_order(f"a \u2067{hebrew} (1)\u2069 b") == f"a \u2067(1) {hebrew[::-1]}\u2069 b"
    # The same without the isolate: the bracketed number joins the Hebrew run (rule N0).
    assert visual_order(f"a {hebrew} [1] b") == f"a [1] {hebrew[::-1]} b"


def test_display_of_mixed_text_keeps_latin_in_place() -> None:
    shown = display("ResNet \u0633\u0644\u0627\u0645")
    assert shown.startswith("ResNet ")
    assert unicodedata.normalize("NFKC", shown[7:][::-1]) == "\u0633\u0644\u0627\u0645"


def test_chain_prefers_dejavu_and_pairs_bold_faces() -> None:
    chain = font_chain(extra="")
    assert len(chain.regular) == len(chain.bold) >= 1
    assert ord("A") in chain.regular[0].codepoints and ord("A") in chain.bold[0].codepoints
    if any("DejaVuSans.ttf" in f.path for f in chain.regular):
        assert chain.regular[0].path.endswith("DejaVuSans.ttf") and chain.bold[0].path.endswith("DejaVuSans-Bold.ttf")


def test_without_system_fonts_the_bundled_font_draws_latin(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlee.label import fonts

    monkeypatch.setattr(fonts, "FONT_DIRS", ())
    fonts._chain.cache_clear()
    try:
        chain = fonts.font_chain(extra="")
        assert [Path(f.path).name for f in chain.regular] == ["Vera.ttf"]
        assert [Path(f.path).name for f in chain.bold] == ["VeraBd.ttf"]
        fitted = fit("ResNet50 \u0416", chain, size_pt=10, max_width_pt=500)
        assert fitted.missing == ("\u0416",)  # Vera has no Cyrillic: shown as the replacement mark
    finally:
        fonts._chain.cache_clear()


def test_characters_missing_from_the_first_font_come_from_a_fallback() -> None:
    chain = font_chain(extra=_vera())  # Vera first: it has no Cyrillic
    if not any(ord("\u0416") in f.codepoints for f in chain.regular):
        pytest.skip("no font with Cyrillic on this system (DejaVu Sans is the usual one)")
    runs, missing = runs_for("Ab \u0416\u0436", chain, bold=False, size_pt=10)
    assert missing == []
    assert [r.text for r in runs] == ["Ab ", "\u0416\u0436"]
    assert runs[0].font != runs[1].font
    assert all(r.width_pt > 0 for r in runs)


def test_a_character_no_font_has_is_replaced_visibly_and_reported() -> None:
    chain = font_chain(extra="")
    runs, missing = runs_for(f"x{HIEROGLYPH}y", chain, bold=True, size_pt=10)
    assert missing == [HIEROGLYPH]
    text = "".join(r.text for r in runs)
    assert text in (f"x{REPLACEMENT}y", "x?y")
    assert HIEROGLYPH not in text


def test_bad_font_paths_are_skipped_with_a_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    chain = font_chain(extra=f"{broken}:{tmp_path / 'absent.ttf'}")
    assert any("broken.ttf" in s for s in chain.skipped)
    assert any("absent.ttf" in s and "not a file" in s for s in chain.skipped)
    assert all("broken" not in f.path for f in chain.regular)


def test_long_text_shrinks_then_is_shortened_in_the_middle() -> None:
    chain = font_chain(extra="")
    short = fit("ResNet50", chain, size_pt=17, max_width_pt=200, bold=True, min_size_pt=9)
    assert short.size_pt == 17 and not short.shortened
    medium = fit("EfficientNetB7-noisy-student", chain, size_pt=17, max_width_pt=200, bold=True, min_size_pt=9)
    assert 9 <= medium.size_pt < 17 and not medium.shortened and medium.width_pt <= 200
    name = "begin-" + "x" * 300 + "-end"
    long = fit(name, chain, size_pt=17, max_width_pt=200, bold=True, min_size_pt=9)
    text = "".join(r.text for r in long.runs)
    assert long.shortened and long.size_pt == 9 and long.width_pt <= 200
    assert text.startswith("begin-") and text.endswith("-end") and ELLIPSIS in text
    assert long.width_pt > 150  # shortened only as much as needed
