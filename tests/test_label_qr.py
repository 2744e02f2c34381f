"""The QR code: the same symbol reportlab's encoder makes, drawn the same way in every format."""

from __future__ import annotations

import random

import pytest
from reportlab.graphics.barcode import qrencoder

from mlee.label.qr import QrPlacement, penalty, qr_group, qr_modules, qr_pdf_operators, runs


def _reportlab_symbol(payload: str) -> list[list[bool]]:
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(qrencoder.QR8bitByte(payload))
    code.make()
    return [[bool(v) for v in row] for row in code.modules]


def _payloads() -> list[str]:
    rng = random.Random(7)
    alphabet = "abcXYZ 0123456789:;/\n\u00e9\u0416\u65e5"
    return ["x", "mlee energy label\nmodel: ResNet50"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(20, 420))) for _ in range(6)]


@pytest.mark.parametrize("payload", _payloads())
def test_symbol_and_mask_are_reportlabs(payload: str) -> None:
    assert qr_modules(payload) == _reportlab_symbol(payload)


def test_penalty_is_reportlabs_lost_point() -> None:
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(qrencoder.QR8bitByte("penalty check " * 9))
    code.version = code.calculate_version()
    scores = []
    for mask in range(8):
        code.makeImpl(True, mask)
        scores.append(penalty([list(r) for r in code.modules]))
        assert scores[-1] == qrencoder.QRUtil.getLostPoint(code)
    assert len(set(scores)) > 1  # masks really differ, so choosing among them matters


def test_runs_cover_exactly_the_dark_modules() -> None:
    rows = [[False, True, True, False, True], [True, True, True, True, True], [False] * 5]
    assert runs(rows) == [(0, 1, 3), (0, 4, 5), (1, 0, 5)]


def test_pdf_operators_and_shapes_draw_the_same_strokes() -> None:
    q = QrPlacement("same strokes", 10.0, 20.0, 90.0)
    dark = runs(qr_modules(q.payload))
    ops = qr_pdf_operators(q)
    assert ops.count(" m ") == len(dark) and ops.endswith("S Q")
    group = qr_group(q)
    background, path = group.contents
    assert (background.x, background.y, background.width) == (10.0, 20.0, 90.0)
    assert path.operators.count(0) == len(dark)  # one moveTo per run
    # The first run's stroke starts where the PDF operators start it.
    module, ox, oy, n, _ = q.geometry()
    r, c0, _c1 = dark[0]
    assert f"{ox + c0 * module:.3f} {oy + (n - r - 0.5) * module:.3f} m" in ops
    assert path.points[0] == pytest.approx(ox + c0 * module)
