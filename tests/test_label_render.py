"""Rendered labels, read back with poppler (pdftotext, pdftoppm) and zbar (zbarimg)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mlee import __version__
from mlee.errors import BackendMissing, UsageError
render_module = importlib.import_module("mlee.label.render")
from mlee.label.content import RATING_COLOURS, label_content
from mlee.label.draw import HEIGHT_PT, MARGIN_PT, WIDTH_PT
from mlee.label.fonts import font_chain
from mlee.label.render import render
from test_label_records import CPU_ENV, database, db_record, rate, rated_one

HOSTILE = ("<script>&amp;</script> \"q\" 'a' & > \u041c\u043e\u0434\u0435\u043b\u044c "
           "\u0646\u0645\u0648\u0630\u062c \u6a21\u578b\U00013000 " + "long-" * 60 + "end")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: apt-get install "
                    f"{'zbar-tools' if tool == 'zbarimg' else 'poppler-utils'})")
    return path


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    src = tmp_path / "l.pdf"
    src.write_bytes(pdf)
    out = subprocess.run([_need("pdftotext"), "-layout", "-enc", "UTF-8", str(src), "-"], capture_output=True,
                         check=True, timeout=60)
    return out.stdout.decode("utf-8")


def pdftoppm(pdf: bytes, tmp_path: Path, dpi: int = 72):
    from PIL import Image

    src = tmp_path / "r.pdf"
    src.write_bytes(pdf)
    subprocess.run([_need("pdftoppm"), "-png", "-r", str(dpi), "-singlefile", str(src), str(tmp_path / "r")],
                   check=True, capture_output=True, timeout=60)
    return Image.open(tmp_path / "r.png").convert("RGB")


def zbar(png: Path) -> str:
    out = subprocess.run([_need("zbarimg"), "--raw", "-q", "-Sbinary", str(png)], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode("utf-8").removesuffix("\n")


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _count(img, colour: tuple[int, int, int], box: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = box
    pixels = img.load()
    return sum(1 for x in range(x0, x1) for y in range(y0, y1)
               if all(abs(a - b) <= 3 for a, b in zip(pixels[x, y], colour)))


def test_pdf_text_has_model_rating_units_and_identity(tmp_path: Path) -> None:
    rated = rated_one("ResNet50")
    c = label_content(rated)
    text = pdftotext(render(c, "pdf").data, tmp_path)
    for needle in ("ENERGY LABEL", "ResNet50", "AMD EPYC 7B13", "PyTorch 2.14.1", "imagenet", "inference",
                   "0.550 Ws", "11.0 ms", "76.1 %", "25.6 M", "8.20 G", "102 MB", c.spec_short,
                   "mlee-2022 v2", "2026-11-22", f"mlee {__version__}", "ResNet101",
                   f"Rating {c.compound} against the reference ResNet101"):
        assert needle in text, needle
    assert "ESTIMATED" not in text and "Energy measured: energy counter" in text


def test_estimated_energy_is_said_on_the_label(tmp_path: Path) -> None:
    text = pdftotext(render(label_content(rated_one("ResNet50", method="estimate")), "pdf").data, tmp_path)
    assert "ESTIMATED energy (codecarbon cpu_load + ram_power_model)" in text
    assert "ESTIMATE: codecarbon" in text


def test_missing_values_read_not_measured_with_the_compounds_treatment(tmp_path: Path) -> None:
    records = [db_record(m, ident=f"infer-{m.lower()}") for m in ("ResNet101", "ResNet50")]
    records[1]["metrics"]["top5"] = None
    (rated,) = rate(database(*records), model="ResNet50")
    text = " ".join(pdftotext(render(label_content(rated), "pdf").data, tmp_path).split())
    assert "not measured" in text and "counted as E in the compound rating" in text


@pytest.mark.parametrize("model", ["MobileNetV2", "ResNet101"])
def test_rendered_page_shows_the_compound_colour_beside_its_arrow(model: str, tmp_path: Path) -> None:
    rated = rated_one(model)
    c = label_content(rated)
    img = pdftoppm(render(c, "pdf").data, tmp_path, dpi=72)
    assert img.size == (round(WIDTH_PT), round(HEIGHT_PT))
    white = _count(img, (255, 255, 255), (0, 0, img.size[0], img.size[1]))
    assert white < 0.9 * img.size[0] * img.size[1]  # not blank
    row = "ABCDE".index(c.compound)
    # The marker right of the scale, on the compound's row (1 pt = 1 px at 72 dpi; y from the top).
    marker_box = (int(WIDTH_PT - MARGIN_PT - 60), 126 + 24 * row, int(WIDTH_PT - MARGIN_PT - 4), 146 + 24 * row)
    assert _count(img, _rgb(RATING_COLOURS[c.compound]), marker_box) > 300
    column = (int(WIDTH_PT - MARGIN_PT - 60), 120, int(WIDTH_PT - MARGIN_PT - 4), 250)
    for letter, colour in RATING_COLOURS.items():
        if letter != c.compound:
            assert _count(img, _rgb(colour), column) == 0, letter
    # The energy pictogram takes the energy rating's colour.
    energy = rated["metrics"]["energy_per_sample"]["rating"]
    assert _count(img, _rgb(RATING_COLOURS[energy]), (int(MARGIN_PT) + 6, 268, int(MARGIN_PT) + 32, 296)) > 50


def test_qr_code_decodes_to_the_summary(tmp_path: Path) -> None:
    rated = rated_one("ResNet50")
    rated["model"] = "ResNet50 \u041c\u043e\u0434\u0435\u043b\u044c \u6a21\u578b"
    c = label_content(rated)
    pdftoppm(render(c, "pdf").data, tmp_path, dpi=150).save(tmp_path / "q.png")
    decoded = zbar(tmp_path / "q.png")
    assert decoded == c.qr_payload
    assert "model: ResNet50 \u041c\u043e\u0434\u0435\u043b\u044c \u6a21\u578b" in decoded


def test_qr_code_holds_the_given_url(tmp_path: Path) -> None:
    c = label_content(rated_one("ResNet50"), qr_url_template="https://models.example/{model}/{env}")
    pdftoppm(render(c, "pdf").data, tmp_path, dpi=150).save(tmp_path / "q.png")
    assert zbar(tmp_path / "q.png") == "https://models.example/ResNet50/AMD%20EPYC%207B13%20-%20PyTorch%202.14.1"


def test_same_input_gives_the_same_bytes_in_any_process(tmp_path: Path) -> None:
    c = label_content(rated_one("ResNet50"))
    first = render(c, "pdf").data
    assert render(c, "pdf").data == first
    assert render(c, "svg").data == render(c, "svg").data
    assert b"/CreationDate (D:20261122000000+00'00')" in first
    script = ("import sys; sys.path.insert(0, sys.argv[1]);"
              "from test_label_records import rated_one; from mlee.label import label_content, render;"
              "sys.stdout.buffer.write(render(label_content(rated_one('ResNet50')), 'pdf').data)")
    tests_dir = str(Path(__file__).resolve().parent)
    for seed, epoch in (("1", "0"), ("4242", "1700000000")):
        env = dict(os.environ, PYTHONHASHSEED=seed, SOURCE_DATE_EPOCH=epoch, TZ="Pacific/Kiritimati")
        out = subprocess.run([sys.executable, "-c", script, tests_dir], capture_output=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr.decode()
        assert out.stdout == first


def test_hostile_names_render_safely(tmp_path: Path) -> None:
    rated = rated_one("ResNet50")
    rated["model"] = HOSTILE
    rated["environment"] = "GPU <&> \u0413\u041f\u0423 x2 - PyTorch 2.14.1"
    c = label_content(rated)
    pdf = render(c, "pdf")
    assert set(pdf.missing) >= {"\U00013000"}
    text = pdftotext(pdf.data, tmp_path)
    assert "<script>&amp;" in text and "end" in text and "\u2026" in text
    assert "GPU <&>" in text
    folded = unicodedata.normalize("NFKC", text)
    chain = font_chain()
    for word in ("\u0413\u041f\u0423", "\u041c\u043e\u0434\u0435\u043b\u044c", "\u0646\u0645\u0648\u0630\u062c"):
        if all(any(ord(ch) in f.codepoints or ord(unicodedata.normalize("NFKC", ch)) in f.codepoints
                   for f in chain.regular + chain.bold) for ch in word):
            assert all(ch in folded for ch in word), word  # shown (Arabic as joined forms)
        else:
            assert len(pdf.missing) > 1 and "\ufffd" in text, word  # no font here: reported, never boxed
    assert "\ufffd" in text  # the glyph no font has is shown as the replacement mark, and explained
    assert "character no installed font can show" in text
    img = pdftoppm(pdf.data, tmp_path)
    assert img.getbbox() is not None
    svg = render(c, "svg")
    root = ET.fromstring(svg.data)
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "<script>&amp;" in texts and "GPU <&>" in texts
    assert b"&lt;script&gt;&amp;amp;" in svg.data and b"<script>" not in svg.data


def test_svg_uses_font_families_and_keeps_arabic_in_drawn_order() -> None:
    rated = rated_one("ResNet50")
    rated["model"] = "ResNet \u0633\u0644\u0627\u0645"
    data = render(label_content(rated), "svg").data.decode()
    assert data.startswith("<?xml")
    assert "font-family: 'DejaVu Sans'" in data or "Bitstream Vera Sans" in data
    assert "unicode-bidi: bidi-override" in data
    assert data.count("<path") >= 1 and "stroke-width" in data


def test_png_is_a_raster_of_the_label(tmp_path: Path) -> None:
    if render_module.png_support() is None:
        pytest.skip("no PNG renderer here (rlPyCairo or poppler's pdftoppm)")
    c = label_content(rated_one("ResNet50"))
    png = render(c, "png", dpi=150)
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "l.png").write_bytes(png.data)
    assert zbar(tmp_path / "l.png") == c.qr_payload
    assert render(c, "png", dpi=150).data == png.data


def test_png_without_a_renderer_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_module, "png_support", lambda: None)
    with pytest.raises(BackendMissing, match="rlPyCairo"):
        render(label_content(rated_one("ResNet50")), "png")


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="gif"):
        render(label_content(rated_one("ResNet50")), "gif")


def test_environment_is_on_the_label(tmp_path: Path) -> None:
    assert CPU_ENV.split(" - ")[0] in pdftotext(render(label_content(rated_one("ResNet50")), "pdf").data, tmp_path)


@pytest.mark.browser
def test_svg_as_a_browser_draws_it_carries_the_same_qr_code(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed")
    c = label_content(rated_one("ResNet50"))
    svg = tmp_path / "l.svg"
    svg.write_bytes(render(c, "svg").data)
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--force-device-scale-factor=3", f"--screenshot={shot}", "--window-size=300,560",
                    svg.as_uri()], capture_output=True, timeout=120, check=False)
    assert shot.is_file()
    assert zbar(shot) == c.qr_payload
