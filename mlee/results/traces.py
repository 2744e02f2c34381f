"""Trace CSV files of an experiment folder: strict parsing and per-channel statistics.

A trace is ``power/<source>.csv`` (``t_s,energy_j,power_w,valid``) or ``power/host.csv`` (psutil columns).
Every column but ``t_s`` is a channel. Statistics are taken over the rows whose ``valid`` flag is 1 (all rows
when the file has no ``valid`` column), skipping empty cells; the ``valid`` channel itself covers every row,
so its mean is the fraction of valid samples. ``std`` is the population standard deviation.

Files are read in blocks, so a trace of any length (up to :data:`MAX_TRACE_BYTES`) needs bounded memory.
"""

from __future__ import annotations

import io
import math
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlee.errors import ResultFormatError

#: Largest trace file read (a week at 10 Hz is about 300 MB). Units: bytes.
MAX_TRACE_BYTES = 1 << 30
#: Block size for reading traces; fixed, so that the statistics are the same floats on every machine.
#: Units: bytes.
BLOCK_BYTES = 8 << 20
#: Bytes a data row may contain: digits, sign, decimal point, exponent, separators.
_ALLOWED = b"0123456789+-.eE,\n\r "


@dataclass
class _Acc:
    """Running count, mean, squared deviations, min and max of one channel (Chan et al. combination)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    samples: list | None = field(default=None)

    def add(self, values: Any) -> None:
        import numpy as np

        nb = int(values.size)
        if nb == 0:
            return
        # The ufuncs' own reductions, not .mean()/.min(): the same floats (mean() is add.reduce / n)
        # without numpy's Python-level wrappers, which cost more than the arithmetic on short traces.
        mean_b = float(np.add.reduce(values)) / nb
        dev = values - mean_b
        self.combine(nb, mean_b, float(dev.dot(dev)), float(np.minimum.reduce(values)),
                     float(np.maximum.reduce(values)))

    def combine(self, nb: int, mean_b: float, m2_b: float, lo_b: float, hi_b: float) -> None:
        """Fold in a block of ``nb`` values with that mean, sum of squared deviations, min and max."""
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean += delta * nb / n
        self.m2 += m2_b + delta * delta * self.n * nb / n
        self.n = n
        self.lo = min(self.lo, lo_b)
        self.hi = max(self.hi, hi_b)

    def stats(self) -> dict:
        if self.n == 0:
            return {"min": None, "max": None, "mean": None, "std": None, "n": 0}
        return {"min": self.lo, "max": self.hi, "mean": self.mean, "std": math.sqrt(max(self.m2, 0.0) / self.n),
                "n": self.n}


def trace_names(power_dir: str) -> list[str]:
    """The trace files of a ``power/`` folder: ``*.csv`` names not starting with a dot, sorted.

    Raises:
        OSError: the folder cannot be listed (FileNotFoundError when there is none).
    """
    return sorted(e.name for e in os.scandir(power_dir) if e.name.endswith(".csv") and not e.name.startswith("."))


def _header(line: bytes, name: str) -> list[str]:
    try:
        cols = [c.strip() for c in line.decode("utf-8").strip().split(",")]
    except UnicodeDecodeError:
        raise ResultFormatError(f"{name}: the header is not UTF-8 text") from None
    if not cols or cols[0] != "t_s":
        raise ResultFormatError(f"{name}: the header must start with t_s (found {','.join(cols)[:60]!r})")
    if len(set(cols)) != len(cols) or any(not c.replace("_", "").replace("-", "").isalnum() for c in cols):
        raise ResultFormatError(f"{name}: the header {','.join(cols)[:60]!r} has empty, odd or repeated names")
    return cols


def _loadtxt(text: bytes) -> Any:
    import numpy as np

    return np.loadtxt(io.BytesIO(text), delimiter=",", dtype=float, ndmin=2, comments=None)


def _parse_block(block: bytes, ncols: int, valid_at: int | None) -> tuple[Any, bool, int]:
    """Parse whole rows into an (n, ncols) float array; empty cells become NaN (nothing else may).

    The common block (every cell a plain number) is parsed in one call and checked for non-finite values
    afterwards; a block with empty cells takes a second call; anything else (a letter, ``nan``, ``inf``, a
    literal too large to be finite, a row with too few or too many cells, no ``t_s``, a ``valid`` flag other
    than 0 or 1) is parsed row by row, and each such row is left out and counted as invalid.

    Returns:
        The array of good rows, whether any cell was empty (so callers can skip NaN handling when none was),
        and the number of invalid rows.
    """
    import numpy as np

    try:
        arr = _loadtxt(block)
    except ValueError:
        arr = None
    if arr is not None and arr.shape[1:] == (ncols,) and np.isfinite(arr).all():
        return _check_flags(arr, False, 0, valid_at)
    if not block.translate(None, _ALLOWED):
        # Letters would let "nan"/"inf" through np.loadtxt; only empty cells may be missing values.
        text = block.replace(b"\r", b"").replace(b" ", b"")
        text = b"\n" + text
        text = text.replace(b"\n,", b"\nnan,").replace(b",,", b",nan,").replace(b",,", b",nan,")
        text = text.replace(b",\n", b",nan\n")
        if text.endswith(b","):
            text += b"nan"
        try:
            arr = _loadtxt(text)
        except ValueError:
            arr = None
        if arr is not None and arr.shape[1] == ncols and np.isfinite(arr[:, 0]).all() and not np.isinf(arr).any():
            return _check_flags(arr, True, 0, valid_at)
    return _parse_rows(block, ncols, valid_at)


def _parse_rows(block: bytes, ncols: int, valid_at: int | None) -> tuple[Any, bool, int]:
    """:func:`_parse_block`, one row at a time: the rows that are not all finite numbers are counted, not kept."""
    import numpy as np

    rows: list[list[float]] = []
    bad = 0
    empty = False
    nan = math.nan
    for line in block.split(b"\n"):
        line = line.replace(b"\r", b"").replace(b" ", b"")
        if not line:
            continue
        cells = line.split(b",")
        values: list[float] = []
        if len(cells) == ncols and not line.translate(None, _ALLOWED):
            for cell in cells:
                if not cell:
                    values.append(nan)
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    break
                if not math.isfinite(value):
                    break
                values.append(value)
        if len(values) != ncols or values[0] != values[0]:  # malformed, non-finite, or no t_s
            bad += 1
            continue
        empty = empty or any(v != v for v in values)
        rows.append(values)
    arr = np.array(rows, dtype=float).reshape(len(rows), ncols)
    return _check_flags(arr, empty, bad, valid_at)


def _check_flags(arr: Any, empty: bool, bad: int, valid_at: int | None) -> tuple[Any, bool, int]:
    """Rows whose ``valid`` flag is neither 0 nor 1 are invalid rows too: left out and counted."""
    if valid_at is None or not arr.size:
        return arr, empty, bad
    flags = arr[:, valid_at]
    ok = (flags == 1) | (flags == 0)
    if ok.all():
        return arr, empty, bad
    return arr[ok], empty, bad + int((~ok).sum())


def trace_stats(path: str | Path, label: str, include_samples: bool = False,
                max_bytes: int = MAX_TRACE_BYTES,
                on_stat: Callable[[os.stat_result], None] | None = None,
                on_bytes: Callable[[bytes], None] | None = None) -> tuple[dict[str, dict], dict[str, list] | None]:
    """Statistics of every channel of one trace file, optionally with its raw samples.

    Args:
        path: The CSV file.
        label: Prefix of the channel keys (``"<label>.<column>"``), e.g. ``"rapl_package-0"``.
        include_samples: Also return every column's values (``t_s`` included; empty cells as None).
        max_bytes: Refuse larger files. Units: bytes.
        on_stat: Called with the stat of the open file before it is read (see ``jsonio.read_bytes``).
        on_bytes: Called with every block of bytes as it is read, in order (their concatenation is what was
            parsed), e.g. to checksum exactly those bytes.

    Returns:
        ``({"<label>.<column>": {"min","max","mean","std","n"}}, samples or None)``; a malformed or non-finite
        row is left out and counted (``invalid_rows`` on each channel; 0 in the ``valid`` channel).

    Raises:
        ResultFormatError: unreadable, oversized, or no header.
    """
    name = f"power/{os.path.basename(path)}"
    fh, st = _open_trace(path, name, max_bytes)
    with fh:
        if on_stat is not None:
            on_stat(st)
        try:
            first, eof = _read_block(fh, BLOCK_BYTES, st.st_size)
        except OSError as exc:
            raise ResultFormatError(f"{name} cannot be read: {exc.strerror or exc}") from None
        if on_bytes is not None:
            on_bytes(first)
        nl = first.find(b"\n")
        if not first.strip():
            raise ResultFormatError(f"{name} is empty (no header line)")
        cols = _header(first if nl < 0 else first[:nl], name)
        ncols = len(cols)
        valid_at = cols.index("valid") if "valid" in cols else None
        accs = {c: _Acc(samples=[] if include_samples else None) for c in cols}
        pending = b"" if nl < 0 else first[nl + 1:]
        invalid = 0
        for block in _line_blocks(fh, pending, eof, len(first), st.st_size, max_bytes, name, on_bytes):
            arr, empty, bad = _parse_block(block, ncols, valid_at)
            invalid += bad
            _accumulate(arr, empty, cols, valid_at, accs, name, bad)
    stats = {f"{label}.{c}": dict(accs[c].stats(), **({"invalid_rows": invalid} if invalid else {})) for c in cols
             if c != "t_s"}
    samples = None
    if include_samples:
        samples = {f"{label}.{c}": accs[c].samples for c in cols}
    return stats, samples


def _open_trace(path: str | Path, name: str, max_bytes: int) -> tuple[Any, os.stat_result]:
    """The trace opened unbuffered (a FIFO cannot hang it) with its stat; a regular file of at most ``max_bytes``.

    Units: ``max_bytes`` in bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ResultFormatError(f"{name} cannot be opened: {exc.strerror or exc}") from None
    fh = os.fdopen(fd, "rb", buffering=0)
    try:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ResultFormatError(f"{name} is not a regular file")
        if st.st_size > max_bytes:
            raise ResultFormatError(f"{name} is {st.st_size / 1e6:.0f} MB, more than the "
                                    f"{max_bytes / 1e6:.0f} MB limit for a trace")
    except BaseException:
        fh.close()
        raise
    return fh, st


def _line_blocks(fh: Any, pending: bytes, eof: bool, total: int, size: int, max_bytes: int, name: str,
                 on_bytes: Callable[[bytes], None] | None) -> Iterator[bytes]:
    """The rest of a trace after its first block, as blocks of whole lines (the last may lack its newline).

    ``pending``: what followed the header line in the first block; ``total``: bytes read so far. Blocks are cut
    where :data:`BLOCK_BYTES` reads end, so the statistics accumulated over them are the same floats everywhere.
    Units: ``total``, ``size``, ``max_bytes`` in bytes.
    """
    while True:
        try:
            more = b""
            if not eof and total <= max_bytes:
                more, eof = _read_block(fh, BLOCK_BYTES, size - total)
        except OSError as exc:
            raise ResultFormatError(f"{name} cannot be read: {exc.strerror or exc}") from None
        total += len(more)
        if on_bytes is not None and more:
            on_bytes(more)
        if total > max_bytes:
            raise ResultFormatError(f"{name} grew past the {max_bytes / 1e6:.0f} MB limit while being read")
        data = pending + more
        if more:
            cut = data.rfind(b"\n")
            if cut < 0:
                pending = data
                continue
            block, pending = data[:cut + 1], data[cut + 1:]
        else:
            block, pending = data, b""
        if block.strip():
            yield block
        if not more:
            return


def _read_block(fh: Any, size: int, left: int) -> tuple[bytes, bool]:
    """``fh.read(size)`` on an unbuffered regular file, without allocating ``size`` bytes for a short file.

    A raw read allocates what it is asked for: 8 MB (twice) for each 30 kB trace of a merge of thousands.
    The bytes returned are those ``fh.read(size)`` returns: a file that grew since it was stat-ed is read
    on, up to ``size`` bytes, as one block, so blocks (and so the statistics' floats) do not change.

    Returns:
        The bytes, and whether the end of the file was seen: a short read of a regular file is its end,
        so the caller needs no further read call to learn it.

    Units: ``size`` and ``left`` (the bytes the file is expected to still hold) in bytes.
    """
    if left + 1 >= size:
        data = fh.read(size)
        return data, len(data) < size
    data = fh.read(max(left, 0) + 1)
    if len(data) <= max(left, 0):
        return data, True
    data += fh.read(size - len(data))
    return data, len(data) < size


def _accumulate(arr: Any, empty: bool, cols: list[str], valid_at: int | None, accs: dict[str, _Acc],
                name: str, bad: int = 0) -> None:
    """Fold a block's good rows into the channels; ``bad`` rows left out count as 0 in the ``valid`` channel."""
    import numpy as np

    if bad and valid_at is not None:
        accs[cols[valid_at]].add(np.zeros(bad))
    keep = None
    if valid_at is not None:
        flags = arr[:, valid_at]
        ones = flags == 1
        if not ones.all():
            if not np.all(ones | (flags == 0)):
                raise ResultFormatError(f"{name}: the valid column holds values other than 0 and 1")
            keep = ones
    if keep is None and not empty and accs[cols[0]].samples is None:
        _accumulate_whole(arr, cols, accs)
        return
    for j, c in enumerate(cols):
        col = arr[:, j]
        acc = accs[c]
        if acc.samples is not None:
            acc.samples.extend(None if v != v else v for v in col.tolist())
        if c == "t_s":
            if empty and np.isnan(col).any():
                raise ResultFormatError(f"{name}: a row has no t_s")
            continue
        if keep is not None and j != valid_at:
            col = col[keep]
        if empty:
            col = col[~np.isnan(col)]
        acc.add(col)


def _accumulate_whole(arr: Any, cols: list[str], accs: dict[str, _Acc]) -> None:
    """The common block (every row valid, no empty cell): every channel at once.

    The channels are made contiguous rows so that one reduction call covers all of them; each row is
    summed in the same pairwise order as a single column, so the floats are those of :meth:`_Acc.add`
    (the squared deviations still go through one ``dot`` per channel, as there).
    """
    import numpy as np

    nb = int(arr.shape[0])
    if nb == 0:
        return
    rows = np.ascontiguousarray(arr.T)
    sums = np.add.reduce(rows, axis=1).tolist()
    los = np.minimum.reduce(rows, axis=1).tolist()
    his = np.maximum.reduce(rows, axis=1).tolist()
    for j, c in enumerate(cols):
        if c == "t_s":
            continue
        mean_b = sums[j] / nb
        dev = rows[j] - mean_b
        accs[c].combine(nb, mean_b, float(dev.dot(dev)), los[j], his[j])
