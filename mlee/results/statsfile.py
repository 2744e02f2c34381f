"""``power/stats.json``: each trace's statistics, stored when the run ends, and their checked reuse by a merge.

Parsing the trace CSVs is most of the work of merging an experiment folder. The session that wrote the traces
computes their statistics once, with the function a merge uses (:func:`mlee.results.traces.trace_stats`), and
stores them with the size and CRC-32 of the exact bytes they were computed from. A merge still reads every
trace file, but parses only those whose size or CRC-32 differ from the stored ones: for the others the stored
figures are those parsing gives (same function, same bytes: identical with the same mlee and numpy), so a
record does not depend on whether the shortcut was taken. No stats.json, a damaged, foreign or newer one, a trace changed after the run
or one without an entry (its statistics could not be computed when the run ended): that trace is parsed.
The file is a cache that can only save time, never change or hide a figure.
"""

from __future__ import annotations

import os
import stat as _stat
import zlib
from collections.abc import Callable
from pathlib import Path

from mlee.errors import ResultFormatError
from mlee.results.jsonio import parse_json, read_bytes
from mlee.results.schema import CURRENT_VERSIONS, check_version, problem
from mlee.results.traces import BLOCK_BYTES, MAX_TRACE_BYTES, trace_names, trace_stats

#: File name inside ``power/``.
STATS_FILE = "stats.json"
KIND = "mlee-trace-stats"
#: Larger stats.json files are ignored (thousands of channels stay far below). Units: bytes.
MAX_STATS_BYTES = 16 << 20


def compute_entry(path: str | Path, label: str) -> dict:
    """The stats.json entry of one trace file: ``{"size_bytes", "crc32", "channels": {column: stats}}``.

    Raises:
        ResultFormatError: the trace cannot be read or does not parse (as :func:`trace_stats` says).
    """
    digest = _Digest()
    stats, _ = trace_stats(path, label, on_bytes=digest.add)
    prefix = len(label) + 1
    return {"size_bytes": digest.size, "crc32": digest.hex(), "channels": {k[prefix:]: v for k, v in stats.items()}}


def write_trace_stats(folder: str | Path) -> tuple[Path | None, dict[str, str]]:
    """Compute the statistics of every trace in ``<folder>/power/`` and write ``power/stats.json`` atomically.

    Returns:
        The file written (None when the folder has no trace), and per trace whose statistics could not be
        computed, the reason (such a trace gets no entry; a merge parses it and reports the problem itself).

    Raises:
        OSError: ``power/`` cannot be listed or the file cannot be written.
    """
    from mlee.fsutil import atomic_write_json

    power = os.path.join(os.fspath(folder), "power")
    try:
        names = trace_names(power)
    except FileNotFoundError:
        return None, {}
    if not names:
        return None, {}
    entries: dict[str, dict] = {}
    problems: dict[str, str] = {}
    for name in names:
        try:
            entries[name] = compute_entry(os.path.join(power, name), name[:-4])
        except ResultFormatError as exc:
            problems[name] = str(exc)
    doc = {"schema_version": CURRENT_VERSIONS["trace_stats"], "kind": KIND, "traces": entries}
    return atomic_write_json(os.path.join(power, STATS_FILE), doc, indent=None), problems


def load_trace_stats(folder: str | Path) -> dict[str, dict]:
    """The entries of ``<folder>/power/stats.json`` by trace file name; empty when there is no usable file
    (missing, unreadable, not valid JSON, another kind, a version this mlee does not read, or failing its
    schema): the traces are then parsed, which gives the same records."""
    path = os.path.join(os.fspath(folder), "power", STATS_FILE)
    try:
        doc = parse_json(read_bytes(path, MAX_STATS_BYTES), STATS_FILE)
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            return {}
        doc = check_version("trace_stats", doc, STATS_FILE)
    except ResultFormatError:
        return {}
    if problem("trace_stats", doc) is not None:
        return {}
    return doc["traces"]


def stored_stats(path: str, label: str, entry: dict,
                 on_stat: Callable[[os.stat_result], None] | None = None) -> dict[str, dict] | None:
    """The statistics stored in ``entry`` for the trace ``path``, keyed ``"<label>.<column>"`` as
    :func:`trace_stats` keys them, if the file's bytes still have the stored size and CRC-32; else None
    (also when the file cannot be opened or read: :func:`trace_stats` then says why)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _stat.S_ISREG(st.st_mode) or st.st_size != entry["size_bytes"] or st.st_size > MAX_TRACE_BYTES:
            return None
        if on_stat is not None:
            on_stat(st)
        digest = _Digest()
        want = st.st_size + 1  # one byte more: a short read is the end, no second call to learn it
        while digest.size <= entry["size_bytes"]:
            chunk = os.read(fd, min(want, BLOCK_BYTES))
            if not chunk:
                break
            digest.add(chunk)
            if len(chunk) < min(want, BLOCK_BYTES):
                break
            want = BLOCK_BYTES
    except OSError:
        return None
    finally:
        os.close(fd)
    if digest.size != entry["size_bytes"] or digest.hex() != entry["crc32"]:
        return None
    return {f"{label}.{column}": dict(stats) for column, stats in entry["channels"].items()}


class _Digest:
    """Running size and CRC-32 of the bytes fed to :meth:`add`."""

    __slots__ = ("size", "crc")

    def __init__(self) -> None:
        self.size = 0
        self.crc = 0

    def add(self, data: bytes) -> None:
        self.size += len(data)
        self.crc = zlib.crc32(data, self.crc)

    def hex(self) -> str:
        return f"{self.crc:08x}"
