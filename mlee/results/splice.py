"""A database written from parts: new bytes, and byte ranges copied from the database being updated.

``mlee merge --update`` keeps most records as they are. Their bytes go from the old file to the new one by
``os.copy_file_range`` (inside the kernel: no read into this process, no copy in memory, and on file
systems that share extents, no copy at all), so an update needs memory for the new records only, however
large the database. Where the call is missing (macOS) or refused (some network file systems), the ranges
are read and written in blocks instead; the bytes are the same.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlee.errors import OutputError

#: Block size of the read-and-write fallback. Units: bytes.
COPY_BLOCK_BYTES = 8 << 20
#: Buffers handed to one ``writev`` call (Linux takes at most 1024).
_IOV_MAX = 1024


@dataclass(frozen=True, slots=True)  # slots: an update holds one per record of the database
class Span:
    """``length`` bytes at ``offset`` of the source database.

    Units: bytes.
    """

    offset: int
    length: int


Part = bytes | memoryview | Span


def database_stamp(st: os.stat_result) -> dict:
    """What ties an index to one version of its database: size, mtime, ctime and inode (an edit in place that
    keeps size and mtime still changes the ctime)."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}


class Source:
    """The database an update starts from, open for copying from, and checked for changes before it is used.

    Args:
        path: The database file.
        stamp: ``{"size", "mtime_ns", "ino"}`` it must have (the ``--update`` index's record of it).

    Raises:
        OSError: it cannot be opened.
        ValueError: it is not the file the stamp describes (changed since the index was written).
    """

    def __init__(self, path: Path, stamp: dict) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._stamp = stamp
        if not self._matches():
            self.close()
            raise ValueError(f"{path} is not the file its index describes")

    def _matches(self) -> bool:
        st = os.fstat(self.fd)
        return database_stamp(st) == self._stamp

    def check(self) -> None:
        """Raise OutputError when the file changed since it was opened (another program wrote to it)."""
        if not self._matches():
            raise OutputError(f"{self.path} was changed by another program during the merge; nothing was written",
                              "run the merge again")

    def read(self, span: Span) -> bytes:
        """The bytes of ``span``."""
        chunks = []
        done = 0
        while done < span.length:
            chunk = os.pread(self.fd, min(COPY_BLOCK_BYTES, span.length - done), span.offset + done)
            if not chunk:
                raise OutputError(f"{self.path} ended early while being copied (truncated by another program?)",
                                  "run the merge again")
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def holds(self, parts: Sequence[Part]) -> bool:
        """Whether the file already holds exactly the bytes ``parts`` stand for (then it need not be
        written again): every span in its own place, every new byte equal, the same size."""
        if size_of(parts) != os.fstat(self.fd).st_size:
            return False
        pos = 0
        for part in parts:
            if isinstance(part, Span):
                if part.offset != pos:
                    return False
                pos += part.length
                continue
            if self.read(Span(pos, len(part))) != part:
                return False
            pos += len(part)
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def joined(parts: Sequence[Part], source: Source | None) -> bytes:
    """The bytes the parts stand for."""
    return b"".join(source.read(p) if isinstance(p, Span) else p for p in parts)  # type: ignore[union-attr]


def size_of(parts: Sequence[Part]) -> int:
    """How many bytes the parts stand for. Units: bytes."""
    return sum(p.length if isinstance(p, Span) else len(p) for p in parts)


def write_parts(fd: int, parts: Sequence[Part], source: Source | None) -> None:
    """Write the parts to ``fd`` at its current position: bytes by ``writev``, spans copied from ``source``.

    Raises:
        OSError: as the system calls raise it (disk full, quota).
        OutputError: a span but no source, or the source ended early.
    """
    pending: list[bytes | memoryview] = []
    for part in parts:
        if isinstance(part, Span):
            _writev_all(fd, pending)
            pending = []
            if source is None:
                raise OutputError("internal: a copied range without the database it comes from")
            _copy(source, part, fd)
        elif part:
            pending.append(part)
            if len(pending) == _IOV_MAX:
                _writev_all(fd, pending)
                pending = []
    _writev_all(fd, pending)


def _writev_all(fd: int, buffers: list[bytes | memoryview]) -> None:
    views = [memoryview(b) for b in buffers]
    while views:
        written = os.writev(fd, views)
        # A short write (rare for regular files) leaves the rest of the buffers to write again.
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _copy(source: Source, span: Span, fd: int) -> None:
    done = 0
    fast = hasattr(os, "copy_file_range")
    while done < span.length:
        left = span.length - done
        if fast:
            try:
                n = os.copy_file_range(source.fd, fd, left, span.offset + done)
            except OSError as exc:
                if exc.errno in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    fast = False  # this file system does not copy ranges: read and write instead
                    continue
                raise
            if n == 0:
                raise OutputError(f"{source.path} ended early while being copied (truncated by another program?)",
                                  "run the merge again")
            done += n
        else:
            data = source.read(Span(span.offset + done, min(COPY_BLOCK_BYTES, left)))
            _writev_all(fd, [data])
            done += len(data)
