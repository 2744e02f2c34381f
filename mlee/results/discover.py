"""Finding the inputs of a merge under the given paths: experiment folders and 2022 logs.

Symlinks are followed once (a loop is reported, not walked forever); hidden entries (``.name``) are ignored;
names with spaces, newlines or bytes that are not UTF-8 are handled and shown escaped.
"""

from __future__ import annotations

import os
import stat as _stat
from dataclasses import dataclass, field
from pathlib import Path

from mlee.errors import UsageError
from mlee.results.legacy import is_legacy_log

#: Deepest folder level searched below each given path.
MAX_DEPTH = 32
#: Files or folders whose presence marks an experiment folder (whether or not results.json is there).
MARKERS = ("results.json", "config.json", "environment.json", "power")


@dataclass(frozen=True)
class Input:
    """One thing to merge.

    Attributes:
        kind: ``"folder"`` (experiment folder) or ``"legacy"`` (a 2022 log file).
        location: Where it is on disk, as text (what :attr:`path` wraps; plain text is cheaper to build and
            join for the thousands of folders of a results tree).
        display: Location-independent name: the given path's last component joined with the path below it.
        key: Absolute path, the identity used by the ``--update`` index.
        probe: The stat of the folder's ``results.json`` taken while discovering it (None when not taken):
            the fingerprint reuses it instead of asking again, one syscall less per folder.
    """

    kind: str
    location: str
    display: str
    key: str
    probe: os.stat_result | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> Path:
        """:attr:`location` as a Path."""
        return Path(self.location)


@dataclass(frozen=True)
class Skip:
    """An input that cannot be merged, with the reason."""

    display: str
    reason: str
    key: str = ""


def display_text(text: str) -> str:
    """A path as printable UTF-8 text: undecodable bytes and control characters escaped."""
    if text.isprintable():
        return text
    raw = text.encode("utf-8", "surrogateescape")
    shown = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in shown)


def path_key(path: str | Path) -> str:
    """The absolute path as text that JSON can hold (names that are not UTF-8 become their bytes in hex)."""
    text = os.path.abspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "bytes:" + os.fsencode(text).hex()


def _root_label(arg: Path) -> str:
    name = arg.name or Path(os.path.abspath(arg)).name or "/"
    return display_text(name)


def discover(paths: list[str | Path]) -> tuple[list[Input], list[Skip]]:
    """The experiment folders and 2022 logs under ``paths``, sorted by display name.

    Raises:
        UsageError: a given path does not exist or is neither a folder nor a 2022 log.
    """
    inputs: list[Input] = []
    skips: list[Skip] = []
    seen: set[tuple[int, int]] = set()
    for raw in paths:
        arg = Path(raw)
        if not os.path.lexists(arg):
            raise UsageError(f"{display_text(str(arg))} does not exist", "give experiment folders or a results folder")
        label = _root_label(arg)
        if arg.is_file():
            if is_legacy_log(arg):
                inputs.append(Input("legacy", os.fspath(arg), label, path_key(arg)))
                continue
            if arg.name == "results.json":
                arg = arg.parent
                label = _root_label(arg)
            else:
                raise UsageError(f"{display_text(str(arg))} is neither a folder nor a 2022 mlee log",
                                 "give experiment folders, a results folder or infer_*/train_*.json logs")
        if not arg.is_dir():
            if arg.is_symlink():
                skips.append(Skip(label, "broken symbolic link", path_key(arg)))
                continue
            raise UsageError(f"{display_text(str(arg))} is not a folder")
        _walk(os.fspath(arg), label, 0, seen, inputs, skips)
    unique: dict[str, Input] = {}
    for i in inputs:
        unique.setdefault(i.key, i)
    return sorted(unique.values(), key=lambda i: (i.display, i.key)), sorted(skips, key=lambda s: (s.display, s.reason))


def _child_key(parent_key: str, name: str, path: str) -> str:
    """:func:`path_key` of ``parent/name`` from the parent's key: a joined name needs no normalising."""
    if parent_key.startswith("bytes:") or name in (".", ".."):
        return path_key(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return path_key(path)
    return parent_key + name if parent_key.endswith(os.sep) else parent_key + os.sep + name


def _walk(folder: str, label: str, depth: int, seen: set, inputs: list[Input], skips: list[Skip],
          ident: tuple[int, int] | None = None, key: str | None = None) -> None:
    """Search ``folder``; ``ident`` is its (device, inode) when the caller knows it without a stat, ``key``
    its :func:`path_key` when the caller has it."""
    if key is None:
        key = path_key(folder)
    if ident is None:
        try:
            st = os.stat(folder)
        except OSError as exc:
            skips.append(Skip(label, f"cannot be read: {exc.strerror or exc}", key))
            return
        ident = (st.st_dev, st.st_ino)
    if ident in seen:
        if os.path.islink(folder):
            skips.append(Skip(label, "symbolic link to a folder already merged (loop or duplicate), not followed",
                              key))
        return
    seen.add(ident)
    # Most folders below a results folder are experiments: one stat tells, no listing needed (and the
    # fingerprint reuses that stat).
    base = folder if folder.endswith(os.sep) else folder + os.sep
    try:
        probe = os.stat(base + "results.json")
    except (OSError, ValueError):
        probe = None
    if probe is not None and _stat.S_ISREG(probe.st_mode):
        inputs.append(Input("folder", folder, label, key, probe))
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        skips.append(Skip(label, f"cannot be listed: {exc.strerror or exc}", key))
        return
    names = {e.name for e in entries}
    if any(m in names for m in MARKERS):
        inputs.append(Input("folder", folder, label, key))
        return
    if depth >= MAX_DEPTH:
        skips.append(Skip(label, f"deeper than {MAX_DEPTH} folder levels, not searched", key))
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        child = base + e.name  # cheaper than e.path or a Path join; the same path
        child_label = f"{label}/{display_text(e.name)}"
        try:
            link = e.is_symlink()
            is_dir = e.is_dir(follow_symlinks=True)
            is_file = not is_dir and e.is_file(follow_symlinks=True)
        except OSError as exc:
            skips.append(Skip(child_label, f"cannot be read: {exc.strerror or exc}", path_key(child)))
            continue
        if is_dir:
            # A real sub-folder lives on its parent's device; its inode comes with the listing.
            _walk(child, child_label, depth + 1, seen, inputs, skips, None if link else (ident[0], e.inode()),
                  _child_key(key, e.name, child))
        elif is_file and is_legacy_log(Path(child)):
            inputs.append(Input("legacy", child, child_label, path_key(child)))
        elif link and not os.path.exists(child):
            skips.append(Skip(child_label, "broken symbolic link", path_key(child)))
