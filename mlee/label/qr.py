"""The label's QR code: reportlab's own QR encoder, drawn as one vector path.

reportlab's ``QrCodeWidget`` encodes its value twice per drawing (bounds, then draw) and emits one
rectangle shape per dark module, thousands per label; here the symbol is encoded once and each row's
runs of dark modules become strokes of one path (a shape for SVG/PNG, operators for PDF), which
keeps batch rendering fast and the PDF small.

segno (a complete QR encoder) was measured in its place (issue 21): about 20 ms per label's symbol against
9-18 ms here in the same process, and in scripts/bench_label.py run side by side a batch of PDF labels fell
from 36-44 to 24-28 labels per second, more than the 5 % the issue allowed, so this encoder stays.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any

QUIET_MODULES = 4


def qr_modules(payload: str, level: str = "M") -> list[list[bool]]:
    """The QR symbol of ``payload`` (UTF-8, byte mode) as rows of dark (True) / light modules.

    The symbol is the one reportlab's encoder makes, mask choice included (lowest penalty, first of
    equals), made faster in two places: Reed-Solomon codewords with cached generator polynomials,
    and the eight candidate masks applied to one base matrix as row bit masks instead of encoding
    the symbol eight times.
    """
    from reportlab.graphics.barcode import qrencoder

    code = qrencoder.QRCode(None, getattr(qrencoder.QRErrorCorrectLevel, level))
    code.addData(qrencoder.QR8bitByte(payload))
    code.version = code.calculate_version()
    code.dataCache = _codewords(code)
    code.makeImpl(True, 0)  # function patterns with blank format info, as the encoder scores masks
    n = code.getModuleCount()
    function = [_row_int(row) for row in code.modules]
    data_at = [0] * n
    data = [0] * n
    bits = code.dataBitIterator(code.dataCache)
    for (col, row), dark in zip(code.dataPosIterator(), itertools.chain(bits, itertools.repeat(False))):
        bit = 1 << (n - 1 - col)
        data_at[row] |= bit
        if dark:
            data[row] |= bit
    function = [f & ~d for f, d in zip(function, data_at)]
    best, best_score, best_rows = 0, -1, function
    for pattern in range(8):
        masks = _mask_rows(pattern, n)
        rows = [f | ((d ^ m) & p) for f, d, m, p in zip(function, data, masks, data_at)]
        score = penalty_of_ints(rows, n)
        if best_score < 0 or score < best_score:
            best, best_score, best_rows = pattern, score, rows
    code.modules = [[ch == "1" for ch in format(v, f"0{n}b")] for v in best_rows]
    code.setupTypeInfo(False, best)  # the format information of the chosen mask, as makeImpl writes it
    if code.version >= 7:
        code.setupTypeNumber(False)
    return code.modules


def _codewords(code: Any) -> list[int]:
    """Data and error-correction codewords, interleaved: what reportlab's ``QRCode.createData`` returns."""
    from reportlab.graphics.barcode import qrencoder

    blocks = qrencoder.QRRSBlock.getRSBlocks(code.version, code.errorCorrectLevel)
    buffer = qrencoder.QRBitBuffer()
    for item in code.dataList:
        item.write(buffer, code.version)
    capacity = 8 * sum(b.dataCount for b in blocks)
    if buffer.getLengthInBits() > capacity:
        raise ValueError(f"QR code length overflow ({buffer.getLengthInBits()} > {capacity} bits)")
    if buffer.getLengthInBits() + 4 <= capacity:
        buffer.put(0, 4)
    while buffer.getLengthInBits() % 8:
        buffer.putBit(False)
    pad = itertools.cycle((0xEC, 0x11))
    while buffer.getLengthInBits() < capacity:
        buffer.put(next(pad), 8)
    raw = list(buffer.buffer)
    data_blocks, ec_blocks, offset = [], [], 0
    for block in blocks:
        chunk = raw[offset:offset + block.dataCount]
        offset += block.dataCount
        data_blocks.append(chunk)
        ec_blocks.append(_rs_remainder(chunk, block.totalCount - block.dataCount))
    return [c for group in (data_blocks, ec_blocks) for row in itertools.zip_longest(*group)
            for c in row if c is not None]


@functools.lru_cache(maxsize=64)
def _generator(ec_count: int) -> tuple[int, ...]:
    """Coefficients of the Reed-Solomon generator polynomial of degree ``ec_count`` (highest first)."""
    from reportlab.graphics.barcode.qrencoder import EXP_TABLE, LOG_TABLE

    poly = [1]
    for i in range(ec_count):
        nxt = poly + [0]
        for j, c in enumerate(poly):
            if c:
                nxt[j + 1] ^= EXP_TABLE[(LOG_TABLE[c] + i) % 255]
        poly = nxt
    return tuple(poly)


def _rs_remainder(data: list[int], ec_count: int) -> list[int]:
    """Error-correction codewords of one block: data(x) * x^ec mod generator(x) over GF(256)."""
    from reportlab.graphics.barcode.qrencoder import EXP_TABLE, LOG_TABLE

    gen_logs = [LOG_TABLE[c] if c else None for c in _generator(ec_count)[1:]]
    rem = [0] * ec_count
    for d in data:
        factor = d ^ rem[0]
        rem = rem[1:] + [0]
        if factor:
            lf = LOG_TABLE[factor]
            for j, gl in enumerate(gen_logs):
                if gl is not None:
                    rem[j] ^= EXP_TABLE[(lf + gl) % 255]
    return rem


def _row_int(row: list[bool]) -> int:
    value = 0
    for v in row:
        value = (value << 1) | (1 if v else 0)
    return value


@functools.lru_cache(maxsize=64)
def _mask_rows(pattern: int, n: int) -> tuple[int, ...]:
    """Mask ``pattern`` over an n x n symbol as one bit mask per row (column 0 = highest bit)."""
    from reportlab.graphics.barcode import qrencoder

    mask = qrencoder.QRUtil.getMask(pattern)
    return tuple(_row_int([bool(mask(r, c)) for c in range(n)]) for r in range(n))


def penalty(rows: list[list[bool]]) -> int:
    """The mask penalty exactly as reportlab's ``QRUtil.getLostPoint`` scores it (rules 1-4)."""
    return penalty_of_ints([_row_int(row) for row in rows], len(rows))


_RUN = re.compile(r"0{5,}|1{5,}")
_FINDER = re.compile(r"10111010000")


def penalty_of_ints(ints: list[int], n: int) -> int:
    """:func:`penalty` of a symbol given as one bit mask per row (column 0 = highest bit)."""
    horizontal = [format(v, f"0{n}b") for v in ints]
    vertical = ["".join(col) for col in zip(*horizontal)]
    runs_found = _RUN.findall("|".join(horizontal + vertical))  # runs of five or more, each row and column
    score = sum(map(len, runs_found)) - 2 * len(runs_found)
    # Finder-like pattern: reportlab scans rows only (its column pass compares tuples with a list and
    # never matches) and stops one place short of the end; matching it keeps the same mask choice.
    score += 40 * len(_FINDER.findall("|".join(line[:-1] for line in horizontal)))
    full = (1 << n) - 1
    pair = (1 << (n - 1)) - 1
    for upper, lower in zip(ints, ints[1:]):
        same_rows = ~(upper ^ lower) & full
        same_cols = ~(upper ^ (upper >> 1)) & pair
        score += 3 * bin(same_rows & (same_rows >> 1) & same_cols).count("1")  # 2x2 blocks of one colour
    dark = sum(bin(v).count("1") for v in ints)
    score += 10 * (abs(100 * dark // (n * n) - 50) // 5)
    return score


def runs(rows: list[list[bool]]) -> list[tuple[int, int, int]]:
    """Runs of dark modules as (row, first column, column after the last), row 0 at the top."""
    out = []
    for r, row in enumerate(rows):
        c, n = 0, len(row)
        while c < n:
            if not row[c]:
                c += 1
                continue
            start = c
            while c < n and row[c]:
                c += 1
            out.append((r, start, c))
    return out


@dataclass(frozen=True)
class QrPlacement:
    """Where the label's QR code goes and what it holds. Units: points; (x, y) is the lower-left corner."""

    payload: str
    x_pt: float
    y_pt: float
    size_pt: float
    level: str = "M"

    def geometry(self) -> tuple[float, float, float, int, list[tuple[int, int, int]]]:
        """(module size, origin x, origin y, modules per side, dark runs)."""
        rows = qr_modules(self.payload, self.level)
        n = len(rows)
        module = self.size_pt / (n + 2 * QUIET_MODULES)
        return module, self.x_pt + QUIET_MODULES * module, self.y_pt + QUIET_MODULES * module, n, runs(rows)


def qr_group(q: QrPlacement) -> Any:
    """The QR code as a reportlab ``Group`` (for SVG and PNG): white square, then one stroked path.

    Each run of dark modules is one stroke as wide as a module with butt caps: an exact rectangle
    for half the coordinates of a filled one.
    """
    from reportlab.graphics.shapes import Group, Path, Rect
    from reportlab.lib.colors import black, white

    module, ox, oy, n, dark = q.geometry()
    path = Path(fillColor=None, strokeColor=black, strokeWidth=module, strokeLineCap=0)
    for r, c0, c1 in dark:
        y = oy + (n - r - 0.5) * module
        path.moveTo(ox + c0 * module, y)
        path.lineTo(ox + c1 * module, y)
    return Group(Rect(q.x_pt, q.y_pt, q.size_pt, q.size_pt, fillColor=white, strokeColor=None, strokeWidth=0),
                 path)


def qr_pdf_operators(q: QrPlacement) -> str:
    """The same QR code as PDF content-stream operators (the same strokes as :func:`qr_group`).

    Written directly because reportlab formats each path coordinate in pure Python, which made the
    QR code half the time of writing a label.
    """
    module, ox, oy, n, dark = q.geometry()
    ops = [f"q 1 g {q.x_pt:.3f} {q.y_pt:.3f} {q.size_pt:.3f} {q.size_pt:.3f} re f",
           f"0 G 0 J [] 0 d {module:.4f} w"]
    for r, c0, c1 in dark:
        y = oy + (n - r - 0.5) * module
        ops.append(f"{ox + c0 * module:.3f} {y:.3f} m {ox + c1 * module:.3f} {y:.3f} l")
    ops.append("S Q")
    return "\n".join(ops)
