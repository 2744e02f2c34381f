"""Small filesystem helpers shared by every layer: outputs that never clobber, safe names, canonical JSON.

Every command's ``-o`` goes through :func:`output_target` and :func:`write_output`:

- ``-`` is standard output;
- an existing character device, FIFO or socket (``/dev/null``, ``/dev/stdout``, a pipe) is written through,
  never renamed over;
- a symlink is followed and its final target replaced atomically: the link stays a link;
- a regular file, or a new one, is written through a temporary file in the same folder and a rename;
- a folder where a file is expected, a file where a folder is expected, a missing folder or a block device is
  a usage error saying which.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import OutputError, UsageError

#: The kinds of :class:`OutputTarget`.
STDOUT, STREAM, FILE = "stdout", "stream", "file"


def canonical_json(data: Any, indent: int | None = 2) -> str:
    """Deterministic JSON text: sorted keys, no NaN/Infinity (they are not JSON), trailing newline.

    Raises:
        ValueError: when ``data`` holds NaN or an infinity.
    """
    return json.dumps(data, sort_keys=True, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def file_mode_for(path: str | Path) -> int:
    """The permission bits a rewritten ``path`` should have: its own, or what the umask gives a new file.

    (``mkstemp`` alone would leave every file at 0600.)
    """
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


@dataclass(frozen=True)
class OutputTarget:
    """Where an output really goes.

    Attributes:
        path: The file to replace (a symlink's final target), or the device/FIFO/socket itself.
        kind: ``stdout`` (``-o -``), ``stream`` (written through, never replaced) or ``file`` (atomic replace).
        given: The name the user gave, for messages.
    """

    path: Path
    kind: str
    given: str

    @property
    def is_file(self) -> bool:
        return self.kind == FILE


def output_target(path: str | Path, option: str = "-o") -> OutputTarget:
    """Classify an output path before anything is computed or written (see the module docstring).

    Raises:
        UsageError: a folder, a block device, a missing folder, or a file where a folder should be.
    """
    given = str(path)
    if given == "-":
        return OutputTarget(Path("-"), STDOUT, given)
    try:
        st = os.stat(given)  # follows symlinks: what a write would reach
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise UsageError(f"{option} {given}: {_file_above(Path(given))} is a file, not a folder",
                         f"give {option} a path inside a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot use {option} {given}: {exc.strerror or exc}") from None
    real = Path(os.path.realpath(given))
    if st is None:
        if not real.parent.is_dir():
            raise UsageError(f"{option} {given}: the folder {real.parent} does not exist",
                             "create it first or choose another location")
        return OutputTarget(real, FILE, given)
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{option} {given} is a folder, not a file", f"give {option} a file name inside it")
    if stat.S_ISREG(st.st_mode):
        return OutputTarget(real, FILE, given)
    if stat.S_ISBLK(st.st_mode):
        raise UsageError(f"{option} {given} is a block device", "write to a file and copy it there yourself")
    return OutputTarget(Path(given), STREAM, given)


def output_folder(path: str | Path, option: str = "-o", create: bool = True) -> Path:
    """A folder output (``label -o``): created when missing (unless ``create`` is False: only checked); a file
    there or above it is a usage error."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {p} is a file, not a folder", f"give {option} a folder for the files")
    above = _file_above(p)
    if above != p or (above.exists() and not above.is_dir()):
        raise UsageError(f"{option} {p}: {above} is a file, not a folder", f"give {option} a folder for the files")
    if not create:
        return p
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{option} {p}: {_file_above(p)} is a file, not a folder",
                         f"give {option} a folder for the files") from None
    except OSError as exc:
        raise OutputError(f"cannot create the folder {p}: {exc.strerror or exc}",
                          "choose a writable location") from None
    return p


def _file_above(path: Path) -> Path:
    """The first part of ``path`` that exists and is not a folder (why a path below it cannot exist)."""
    for parent in reversed([path, *path.parents]):
        if parent.exists() and not parent.is_dir():
            return parent
    return path


def write_output(path: str | Path | OutputTarget, data: bytes | str, option: str = "-o") -> OutputTarget:
    """Write a whole output to where ``path`` leads (see the module docstring), never destroying what is there.

    Raises:
        UsageError: as :func:`output_target`.
        OutputError: the write failed; a file that existed is unchanged.
    """
    target = path if isinstance(path, OutputTarget) else output_target(path, option)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if target.kind == FILE:
        try:
            atomic_write_bytes(target.path, raw)
        except OSError as exc:
            kept = "the old file is unchanged" if target.path.exists() else "nothing was written"
            raise OutputError(f"cannot write {target.given}: {exc.strerror or exc}; {kept}",
                              "free space or choose another location") from None
        return target
    try:
        if target.kind == STDOUT:
            stream = getattr(sys.stdout, "buffer", None)
            if stream is None:
                sys.stdout.write(raw.decode("utf-8"))
            else:
                sys.stdout.flush()
                stream.write(raw)
            sys.stdout.flush()
        else:
            write_through(target.path, raw)
    except OSError as exc:
        raise OutputError(f"cannot write to {target.given}: {exc.strerror or exc}") from None
    return target


def write_through(path: Path, data: bytes) -> None:
    """Write ``data`` into an existing device or FIFO (opened for writing, as a shell redirection does; a FIFO
    waits for its reader) or send it to a listening Unix socket. Raises OSError."""
    if stat.S_ISSOCK(os.stat(path).st_mode):
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            sock.sendall(data)
        return
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A crash or a full disk leaves either the old file or the new one, never a torn one. A symlink is followed
    (its target is replaced, the link kept); an existing device, FIFO or socket is written through, never
    replaced (see :func:`output_target`).
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    elif path.exists() and not path.is_file() and not path.is_dir():
        write_through(path, data)
        return path
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode_for(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomic write of UTF-8 text (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """Atomic write of canonical JSON (see :func:`canonical_json`)."""
    return atomic_write_text(path, canonical_json(data, indent=indent))


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: str, max_len: int = 60) -> str:
    """A filesystem- and shell-safe rendering of ``text`` (ASCII letters, digits, ``._+-``).

    Non-Latin text is transliterated where Unicode allows and replaced otherwise; never empty.
    """
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("-", norm).strip("-.")
    return (cleaned[:max_len].rstrip("-.") or "unnamed")


def finite(value: Any) -> bool:
    """True for an int or float that is neither NaN nor infinite (bools excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
