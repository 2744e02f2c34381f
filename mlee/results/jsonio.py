"""Fail-closed JSON reading: every way a file can be unreadable becomes one ResultFormatError with the reason."""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlee.errors import ResultFormatError

#: Largest JSON file of an experiment folder read without complaint (results.json of a long sweep stays far below).
#: Units: bytes.
MAX_JSON_BYTES = 64 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def a_json_type(value: Any) -> str:
    """``"an array"``, ``"a string"``, ``"null"``: the JSON type of a value with its article."""
    name = json_type(value)
    return name if name == "null" else ("an " if name[0] in "aeiou" else "a ") + name


def read_bytes(path: str | Path, max_bytes: int, on_stat: Callable[[os.stat_result], None] | None = None) -> bytes:
    """Read a regular file of at most ``max_bytes``, refusing devices, FIFOs and oversized files.

    Args:
        path: The file.
        max_bytes: Refuse larger files.
        on_stat: Called with the file's stat taken on the open file (before reading), so that a merge's
            ``--update`` fingerprint describes exactly the file that was read, without a second stat.

    Units: ``max_bytes`` in bytes.

    Raises:
        ResultFormatError: missing, not a regular file, unreadable, or larger than ``max_bytes``.
    """
    name = os.path.basename(path)
    try:
        # O_NONBLOCK so that a FIFO planted where a JSON file should be cannot hang the merge.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ResultFormatError(f"{name} is missing") from None
    except IsADirectoryError:
        raise ResultFormatError(f"{name} is a folder, not a file") from None
    except OSError as exc:
        raise ResultFormatError(f"{name} cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        import stat as _stat

        if not _stat.S_ISREG(st.st_mode):
            raise ResultFormatError(f"{name} is not a regular file")
        if on_stat is not None:
            on_stat(st)
        if st.st_size > max_bytes:
            raise ResultFormatError(
                f"{name} is {st.st_size / 1e6:.1f} MB, more than the {max_bytes / 1e6:.0f} MB limit",
                "check that it is really an mlee file",
            )
        chunks = []
        remaining = max_bytes + 1  # the file may grow while we read it: never read past the limit
        expected = st.st_size + 1
        while remaining > 0:
            # os.read allocates the size asked for: asking for the expected size (not 4 MB) keeps reading
            # thousands of small files cheap; a file that grows is still read to its end, in larger steps.
            want = min(remaining, expected if expected > 0 else 1 << 16, 1 << 22)
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
            expected -= len(chunk)
            if len(chunk) < want:
                break  # a short read of a regular file is its end: no second read call to learn it
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise ResultFormatError(f"{name} grew past the {max_bytes / 1e6:.0f} MB limit while being read")
        return data
    except OSError as exc:
        raise ResultFormatError(f"{name} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def parse_json(data: bytes, name: str, allow_nan: bool = False) -> Any:
    """Parse UTF-8 JSON text strictly (no NaN/Infinity unless ``allow_nan``), naming the file and position in errors.

    ``allow_nan`` is for foreign logs (the 2022 ones hold NaN losses of diverged trainings); their readers
    must check every figure they use.

    Raises:
        ResultFormatError: not UTF-8, empty, truncated or otherwise invalid JSON.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFormatError(f"{name} is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ResultFormatError(f"{name} is empty")
    try:
        if allow_nan:
            return json.loads(text)
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        # An unterminated string runs to the end of the file; any other error at the end means the end is missing.
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated" if cut else "not valid JSON"
        raise ResultFormatError(f"{name} is {what} (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:
        raise ResultFormatError(f"{name} holds NaN or Infinity ({exc}); JSON figures must be finite") from None
    except RecursionError:
        raise ResultFormatError(f"{name} is nested too deeply to be an mlee file") from None


def read_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES, allow_nan: bool = False,
              on_stat: Callable[[os.stat_result], None] | None = None) -> Any:
    """Read and strictly parse a JSON file (see :func:`read_bytes` and :func:`parse_json`)."""
    return parse_json(read_bytes(path, max_bytes, on_stat), os.path.basename(path), allow_nan)


def read_json_object(path: str | Path, max_bytes: int = MAX_JSON_BYTES, allow_nan: bool = False,
                     on_stat: Callable[[os.stat_result], None] | None = None) -> dict:
    """:func:`read_json` that also requires a JSON object at the top level."""
    data = read_json(path, max_bytes, allow_nan, on_stat)
    if not isinstance(data, dict):
        raise ResultFormatError(f"{os.path.basename(path)} holds {a_json_type(data)}, not a JSON object")
    return data


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (it is restored as it was).

    Reading parses hundreds of thousands of small dicts and lists; each batch of new containers sets off a
    collection that walks the young objects, and the ever-growing set of kept records makes the older
    generations dearer to walk: a third of a 10,000-folder merge's CPU time went there. Parsed JSON, record
    lines and trace arrays hold no reference cycles, so nothing is kept longer than without the pause.
    Forked readers inherit the pause. Rating 100,000 records (``mlee.rating``) pauses it for the same reason:
    it allocates about ten containers per metric and record and builds no cycles.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
