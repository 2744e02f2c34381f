"""Small filesystem helpers shared by every layer: atomic writes, safe names, canonical JSON."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any


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


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A crash or a full disk leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
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
