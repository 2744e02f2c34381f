"""Reading a merged database record by record, in memory bounded by the largest record.

The writer (:func:`mlee.results.database.render`) lays the file out as one JSON document whose keys are sorted
and where every record sits on a line of its own::

    {
    "kind":"mlee-database",
    "mlee_version":"...",
    "records":[
    {...record...},
    {...record...}
    ],
    "schema_version":1,
    "skipped":[...],
    "summaries":[...]
    }

so a reader can take the head, then the tail (found from the end: ``\\n"schema_version":`` can only start a
line, never sit inside a JSON string), then each record line alone. A file laid out otherwise (written by hand
or by another tool) is still read, whole, through :func:`mlee.results.database.parse_database`: correct, only
not bounded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlee.errors import ResultFormatError

_HEAD_END = b'"records":['
_TAIL_START = b'\n"schema_version":'
#: Bytes read per step while looking for the tail from the end of the file. Units: bytes.
_TAIL_STEP = 1 << 20
#: Read buffer of the record lines. Units: bytes.
_BUFFER = 1 << 20


class NotStreamable(Exception):
    """The file is not laid out one record per line; read it whole instead."""


@dataclass
class Layout:
    """Where the parts of a one-record-per-line database lie.

    Attributes:
        head: The document without records, summaries and skipped entries (``kind``, ``mlee_version``,
            ``schema_version``), with ``summaries`` and ``skipped`` parsed from the tail.
        records_start: Offset of the first record line (or of the closing ``]`` when there is none).
        records_end: Offset of the tail (``\\n"schema_version":``).
    Units: offsets in bytes.
    """

    head: dict[str, Any]
    records_start: int
    records_end: int
    stat: os.stat_result = field(repr=False, default=None)  # type: ignore[assignment]


def _parse(data: bytes, label: str) -> Any:
    from mlee.results.jsonio import parse_json

    return parse_json(data, label)


def layout(fh: Any, label: str) -> Layout:
    """Find head, records and tail of an open database file (binary, seekable).

    Raises:
        NotStreamable: the file is not in the writer's layout.
        ResultFormatError: it is, but the head or the tail is not valid JSON.
    """
    st = os.fstat(fh.fileno())
    size = st.st_size
    fh.seek(0)
    first = fh.read(min(size, 4096))
    cut = first.find(_HEAD_END)
    if not first.startswith(b"{\n") or cut < 0:
        raise NotStreamable
    records_start = cut + len(_HEAD_END)
    if first[records_start:records_start + 1] == b"\n":
        records_start += 1
    try:
        head = json.loads(first[:cut] + b'"records":[]}')
    except ValueError:
        raise NotStreamable from None
    # The tail starts at the last "\n"schema_version":" of the file, searched backwards a step at a time.
    end = size
    tail_at = -1
    carry = b""
    while end > records_start and tail_at < 0:
        start = max(records_start, end - _TAIL_STEP)
        fh.seek(start)
        chunk = fh.read(end - start) + carry
        found = chunk.rfind(_TAIL_START)
        if found >= 0:
            tail_at = start + found
        carry = chunk[:len(_TAIL_START)]
        end = start
    if tail_at < 0:
        raise NotStreamable
    fh.seek(tail_at)
    tail = _parse(b"{" + fh.read(size - tail_at), label)
    if not isinstance(head, dict) or not isinstance(tail, dict) or set(head) & set(tail) - {"records"}:
        raise NotStreamable
    head.update(tail)
    head.pop("records", None)
    return Layout(head, records_start, tail_at, st)


def record_lines(fh: Any, where: Layout, label: str) -> Iterator[tuple[bytes, int]]:
    """Every record line (without its ``,``) with its offset, in file order.

    Raises:
        NotStreamable: a line between head and tail is not one record followed by ``,`` (or the closing ``]``).
    """
    fh.seek(where.records_start)
    pos = where.records_start
    remaining = where.records_end - pos
    pending_last = False
    while remaining > 0:
        line = fh.readline(min(remaining, 1 << 62))
        if not line:
            raise ResultFormatError(f"{label} ended early (truncated while being read?)")
        length = len(line)
        remaining -= length
        body = line.rstrip(b"\n")
        if body in (b"]", b"],"):
            if remaining > 0:
                raise NotStreamable
            return
        if pending_last:
            raise NotStreamable  # a record after one without a comma: not the writer's layout
        if body.endswith(b","):
            body = body[:-1]
        else:
            pending_last = True
        if not body.startswith(b"{") or not body.endswith(b"}"):
            raise NotStreamable
        yield body, pos
        pos += length
    raise NotStreamable  # no closing "]"


def stream_records(path: str | Path, on_layout: Callable[[Layout], None],
                   parse: Callable[[bytes], Any] = json.loads) -> Iterator[tuple[Any, int, int]]:
    """The records of a database one at a time, as ``(record, offset, length)``; ``on_layout`` is called with
    the head and tail (version, summaries, skipped) before the first record.

    Raises:
        NotStreamable: not the writer's layout (nothing has been yielded then when the head or tail is off;
            a malformed record line can raise it later, and the caller falls back to reading the file whole).
        ResultFormatError: the file cannot be opened or read, or a record line is not valid JSON.
    """
    label = os.path.basename(path)
    try:
        fh = open(path, "rb", buffering=_BUFFER)  # noqa: SIM115 - closed in finally, the generator may stop early
    except FileNotFoundError:
        raise ResultFormatError(f"{label} is missing") from None
    except IsADirectoryError:
        raise ResultFormatError(f"{label} is a folder, not a file") from None
    except OSError as exc:
        raise ResultFormatError(f"{label} cannot be opened: {exc.strerror or exc}") from None
    try:
        import stat as _stat

        if not _stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ResultFormatError(f"{label} is not a regular file")
        where = layout(fh, label)
        on_layout(where)
        for body, offset in record_lines(fh, where, label):
            try:
                record = parse(body)
            except ValueError as exc:
                raise ResultFormatError(f"{label}: the record at byte {offset} is not valid JSON ({exc})") from None
            yield record, offset, len(body)
    except OSError as exc:
        raise ResultFormatError(f"{label} cannot be read: {exc.strerror or exc}") from None
    finally:
        fh.close()
