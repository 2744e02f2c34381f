"""``mlee merge --archive DIR``: each merged experiment folder packed as ``DIR/<id>.tar.gz``, raw traces included.

Archives are deterministic (sorted members, fixed gzip header time, no owner names) and written atomically,
so re-archiving an unchanged folder gives the same bytes and an interrupted merge leaves no torn archive.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from mlee.errors import OutputError, ResultFormatError
from mlee.fsutil import safe_name
from mlee.results.discover import Input


def archive_path(archive_dir: Path, record_id: str) -> Path:
    return archive_dir / f"{safe_name(record_id, max_len=200)}.tar.gz"


def _members(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return out


def pack(folder: Path, record_id: str, archive_dir: Path) -> Path:
    """Pack ``folder`` into ``archive_dir/<id>.tar.gz`` under the top-level name ``<id>/``.

    Raises:
        OutputError: the archive folder cannot be created or written.
    """
    from mlee.results.database import write_bytes_atomic

    try:
        archive_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the archive folder {archive_dir}: {exc.strerror or exc}") from None
    top = safe_name(record_id, max_len=200)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in _members(folder):
                rel = path.relative_to(folder).as_posix()
                info = tar.gettarinfo(str(path), arcname=f"{top}/{rel}")
                if not info.isfile():
                    continue  # links and devices are not experiment data
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    target = archive_path(archive_dir, record_id)
    write_bytes_atomic(target, buf.getvalue())
    return target


def archive_inputs(inputs: list[Input], entries: dict[str, dict], fresh: set[str], archive_dir: Path) -> list[Path]:
    """Pack every merged experiment folder of a merge (``entries``: the merge's input entries by key, ``fresh``:
    the keys read in it); unchanged folders whose archive exists are left as they are."""
    from mlee.results.jsonio import read_json_object

    written = []
    for inp in inputs:
        entry = entries.get(inp.key) or {}
        if inp.kind != "folder" or entry.get("skip") or not entry.get("ids"):
            continue
        try:
            rid = read_json_object(inp.path / "results.json").get("id") or inp.path.name
        except ResultFormatError:
            continue
        if inp.key not in fresh and archive_path(archive_dir, str(rid)).exists():
            continue
        written.append(pack(inp.path, str(rid), archive_dir))
    return written
