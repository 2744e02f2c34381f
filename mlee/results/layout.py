"""The experiment folder (docs/design.md section 2): its name, its files, and room for its last record.

``<output_dir>/<kind>-<name>-<YYYYmmddTHHMMSSZ>-<6 hex>/`` holding ``config.json``, ``environment.json``,
``power/<source>.csv``, ``power/host.csv``, ``log.txt`` and ``results.json``. JSON is written atomically. The
trace files are written by :mod:`mlee.results.tracefile`; the folder is read back by :mod:`mlee.results.folder`.

When a folder is made, :data:`RESERVE_BYTES` of disk are set aside in ``.results.reserve``: on a disk that
fills during the run, the reserve is released so that the final ``results.json`` can still be written.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import secrets
from pathlib import Path
from typing import Any

from mlee.errors import MleeError, UsageError
from mlee.fsutil import atomic_write_json, safe_name

SCHEMA_VERSION = 1
KINDS = ("run", "infer", "train", "measure", "profile", "sweep")
DEFAULT_OUTPUT_DIR = "results"
RESERVE_NAME = ".results.reserve"
#: Disk set aside for the final results.json (a typical record is 3 to 10 KB; the reserve and the space the
#: running record already holds are both given back for it). Units: bytes.
RESERVE_BYTES = 32 * 1024


def utc_stamp(when: dt.datetime) -> str:
    """``YYYYmmddTHHMMSSZ`` for folder names."""
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def utc_iso(when: dt.datetime) -> str:
    """``2026-11-22T07:01:02.123456Z`` for JSON."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def folder_name(kind: str, name: str, when: dt.datetime, short_id: str | None = None) -> str:
    """The folder name for one experiment; safe for any ``name`` (spaces, slashes, Unicode)."""
    if kind not in KINDS:
        raise UsageError(f"unknown experiment kind {kind!r}", fix=f"use one of: {', '.join(KINDS)}")
    return f"{kind}-{safe_name(name)}-{utc_stamp(when)}-{short_id or secrets.token_hex(3)}"


def create_folder(output_dir: str | os.PathLike, kind: str, name: str, when: dt.datetime,
                  reserve_bytes: int = RESERVE_BYTES) -> Path:
    """Make a fresh experiment folder (and ``power/``) under ``output_dir``, with disk reserved for its record.

    Raises:
        MleeError: the output folder cannot be created or written, or has no room for the reserve.
    """
    base = Path(output_dir)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MleeError(f"cannot create output folder {base}: {exc.strerror or exc}",
                        fix="choose a writable --output-dir") from exc
    for _ in range(8):
        folder = base / folder_name(kind, name, when)
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # two runs in the same second drew the same 6 hex digits
        except OSError as exc:
            raise MleeError(f"cannot create experiment folder in {base}: {exc.strerror or exc}",
                            fix="choose a writable --output-dir") from exc
        try:
            (folder / "power").mkdir()
            _reserve(folder / RESERVE_NAME, reserve_bytes)
        except OSError as exc:
            remove_folder(folder)
            raise MleeError(f"no room for an experiment folder in {base}: {exc.strerror or exc}",
                            fix="free disk space or choose another --output-dir") from exc
        return folder
    raise MleeError(f"cannot find a free experiment folder name in {base}", fix="retry")


def _reserve(path: Path, n_bytes: int) -> None:
    with open(path, "wb") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, n_bytes)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            fh.write(b"\0" * n_bytes)  # a filesystem without fallocate: real bytes hold the room as well
            fh.flush()
            os.fsync(fh.fileno())


def release_reserve(folder: Path) -> bool:
    """Give the reserved disk back (before the last write, or when the run is over); True if there was one."""
    try:
        os.unlink(folder / RESERVE_NAME)
    except FileNotFoundError:
        return False
    return True


def remove_folder(folder: Path) -> None:
    """Remove a folder this process just made and wrote nothing measured to (a start that failed)."""
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir() if path.is_dir() else path.unlink()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass


def write_json(folder: Path, file_name: str, data: Any) -> Path:
    """Write one of the folder's JSON files atomically (sorted keys, no NaN)."""
    return atomic_write_json(folder / file_name, data)


def write_final_json(folder: Path, file_name: str, data: Any) -> Path:
    """The last write of a run: on a full disk, release the reserve and try once more.

    Raises:
        OSError: not even the reserved room was enough (or the folder is gone).
    """
    try:
        path = write_json(folder, file_name, data)
    except OSError as exc:
        if not release_reserve(folder):
            raise
        del exc
        path = write_json(folder, file_name, data)
    release_reserve(folder)
    return path


def store_trace_stats(folder: Path) -> list[str]:
    """Write ``power/stats.json`` (the traces' statistics, so that merges need not parse the traces) and
    return the lines for ``log.txt`` about what could not be stored. A merge parses any trace without a
    matching entry, so a failure here costs merge time only, never data."""
    from mlee.results.statsfile import write_trace_stats

    try:
        _, problems = write_trace_stats(folder)
    except (OSError, ValueError) as exc:
        return [f"power/stats.json not written ({exc}); mlee merge will parse the traces"]
    return [f"power/{name}: no statistics stored ({reason})" for name, reason in problems.items()]
