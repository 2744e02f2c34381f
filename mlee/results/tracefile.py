"""Trace CSVs of the experiment folder (docs/design.md section 2): the writer, the sink a sampler is handed, the reader.

``power/<source>.csv`` (``t_s,energy_j,power_w,valid``) and ``power/host.csv`` are streamed and flushed so that a
killed run keeps its samples. A write that fails (a full disk, an I/O error) stops that trace: the rows already
written stay, the trace is marked truncated with the reason, and measuring goes on in memory.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from mlee.errors import ResultFormatError
from mlee.fsutil import safe_name

POWER_COLUMNS = ("t_s", "energy_j", "power_w", "valid")
#: Longest time trace rows may sit in a buffer, so ``kill -9`` loses less than a second. Units: seconds.
FLUSH_S = 0.5


def trace_file_name(source_name: str) -> str:
    """``rapl:package-0`` -> ``rapl_package-0.csv``."""
    return safe_name(source_name.replace(":", "_"), max_len=120) + ".csv"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:.6f}".rstrip("0").rstrip(".") if value != 0 else "0"
    return str(value)


class TraceWriter:
    """A CSV trace streamed to disk, flushed at least every ``flush_s`` seconds of wall time.

    A failed write or flush does not raise: the trace stops there (``truncated`` holds the reason and
    ``rows_written`` the rows that reached the file) and later rows are only counted.

    Args:
        path: File to create.
        columns: Header.
        flush_s: Longest time rows may sit in the buffer. Units: seconds.
        now: Wall clock for the flush schedule (monotonic seconds).

    Raises:
        OSError: the file cannot be created at all (the caller decides; nothing is measured yet).
    """

    def __init__(self, path: Path, columns: Sequence[str], flush_s: float = FLUSH_S,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.columns = tuple(columns)
        self._now = now
        self._flush_s = flush_s
        self._fh: TextIO | None = open(path, "w", encoding="utf-8", newline="")
        self.rows = 0
        self.rows_written = 0
        self._pending = 0
        self.truncated: str | None = None
        self._guard(lambda fh: (fh.write(",".join(self.columns) + "\n"), fh.flush()))
        self._last_flush = self._now()

    def _guard(self, action: Callable[[TextIO], Any]) -> bool:
        if self._fh is None:
            return False
        try:
            action(self._fh)
        except OSError as exc:
            self._stop(exc)
            return False
        return True

    def _stop(self, exc: OSError) -> None:
        self.truncated = f"{exc.strerror or exc} ({type(exc).__name__}, errno {exc.errno})"
        fh, self._fh = self._fh, None
        try:
            if fh is not None:
                fh.close()
        except OSError:
            pass  # the buffer that could not be written is lost with the error; earlier rows stay

    def write(self, row: Sequence[Any]) -> None:
        """Append one row (cells: numbers, booleans, None for empty)."""
        self.rows += 1
        if self._fh is None:
            return
        if self._guard(lambda fh: fh.write(",".join(_cell(v) for v in row) + "\n")):
            self._pending += 1
            if self._now() - self._last_flush >= self._flush_s:
                self.flush()

    def flush(self) -> None:
        """Push buffered rows to the operating system."""
        if self._guard(lambda fh: fh.flush()):
            self.rows_written += self._pending
            self._pending = 0
        self._last_flush = self._now()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        self.flush()
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError as exc:
                self.truncated = self.truncated or f"{exc.strerror or exc} at close"


class TraceSink:
    """The traces of one experiment folder, handed to the sampler: rows go to ``power/<name>.csv`` by channel.

    Args:
        power_dir: The folder's ``power/``.
        channels: Channel name (a source name, or ``host``) -> columns.
        open_writer: Makes one writer (tests pass one that fails like a full disk).
    """

    def __init__(self, power_dir: Path, channels: Mapping[str, Sequence[str]],
                 open_writer: Callable[[Path, Sequence[str]], TraceWriter] = TraceWriter) -> None:
        self.writers = {}
        for channel, columns in channels.items():
            file_name = "host.csv" if channel == "host" else trace_file_name(channel)
            self.writers[channel] = open_writer(power_dir / file_name, columns)

    def write(self, channel: str, row: Sequence[Any]) -> None:
        """One row of channel ``channel`` (unknown channels are ignored: nothing was asked to keep them)."""
        writer = self.writers.get(channel)
        if writer is not None:
            writer.write(row)

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def truncated(self) -> dict[str, dict]:
        """Channels whose trace stopped early: ``{channel: {"reason", "rows_written", "rows"}}``."""
        return {c: {"reason": w.truncated, "rows_written": w.rows_written, "rows": w.rows}
                for c, w in self.writers.items() if w.truncated}


def read_trace(path: str | os.PathLike) -> dict[str, list[float | None]]:
    """Read a trace CSV written by :class:`TraceWriter` into columns (empty cells -> None).

    A last line cut short by a crash is dropped; anything else malformed is an error.

    Raises:
        ResultFormatError: not a trace file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultFormatError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    lines = text.split("\n")
    complete = lines[:-1] if not text.endswith("\n") else lines  # a torn last row from a kill
    rows = list(csv.reader([ln for ln in complete if ln]))
    if not rows:
        raise ResultFormatError(f"trace {path} is empty", fix="the run wrote no header; it did not start")
    header = rows[0]
    columns: dict[str, list[float | None]] = {c: [] for c in header}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ResultFormatError(f"trace {path} line {number}: {len(row)} cells, expected {len(header)}")
        for column, cell in zip(header, row):
            try:
                columns[column].append(float(cell) if cell != "" else None)
            except ValueError as exc:
                raise ResultFormatError(f"trace {path} line {number}: {column}={cell!r} is not a number") from exc
    return columns

