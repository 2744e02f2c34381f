"""Shared file helpers: atomic writes keep permissions sensible, names are safe, JSON is canonical."""

from __future__ import annotations

import os

import pytest

from mlee.fsutil import atomic_write_json, atomic_write_text, canonical_json, file_mode_for, safe_name


def test_new_file_follows_umask_and_rewrite_keeps_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "one")
        assert path.stat().st_mode & 0o777 == 0o644
        os.chmod(path, 0o640)
        atomic_write_text(path, "two")
        assert path.stat().st_mode & 0o777 == 0o640 and path.read_text() == "two"
        assert file_mode_for(tmp_path / "missing") == 0o644
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left behind


def test_canonical_json_is_sorted_and_refuses_nan(tmp_path):
    assert canonical_json({"b": 1, "a": 2}) == '{\n  "a": 2,\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("text,expected", [("ResNet50", "ResNet50"), ("a/b c", "a-b-c"), ("Ünïcödé", "Unicode"),
                                           ("日本", "unnamed"), ("../..", "unnamed")])
def test_safe_name(text, expected):
    assert safe_name(text) == expected


# ------------------------------------------------------------------ outputs that never clobber (issue 15)

import stat  # noqa: E402
import threading  # noqa: E402

from mlee.errors import UsageError  # noqa: E402
from mlee.fsutil import output_folder, output_target, write_output  # noqa: E402


def fifo_reader(path):
    """Make a FIFO at ``path`` and read it whole in a thread; returns (thread, chunks)."""
    os.mkfifo(path)
    chunks: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as fh:
            chunks.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, chunks


def char_device(path):
    """A character device like /dev/null (1, 3) at ``path``; skips the test where it may not be made."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a character device here: {exc}")
    return path


def test_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    thread, chunks = fifo_reader(fifo)
    target = write_output(fifo, "through the pipe\n")
    thread.join(5)
    assert target.kind == "stream" and chunks == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_character_device_is_written_through_not_replaced(tmp_path):
    dev = char_device(tmp_path / "null")
    write_output(dev, b"x" * 100_000)
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_symlink_is_followed_and_kept(tmp_path):
    (tmp_path / "x.html").write_text("old")
    link = tmp_path / "latest.html"
    link.symlink_to("x.html")
    chain = tmp_path / "chain.html"
    chain.symlink_to("latest.html")
    write_output(chain, "new")
    assert chain.is_symlink() and link.is_symlink() and os.readlink(link) == "x.html"
    assert (tmp_path / "x.html").read_text() == "new"
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to("made.html")
    write_output(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "made.html").read_text() == "made"


def test_folder_and_file_mixups_are_usage_errors_saying_which(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match=r"dir is a folder, not a file"):
        write_output(tmp_path / "dir", "data")
    with pytest.raises(UsageError, match=r"file is a file, not a folder"):
        write_output(tmp_path / "file" / "out.json", "data")
    with pytest.raises(UsageError, match=r"file is a file, not a folder"):
        output_folder(tmp_path / "file")
    with pytest.raises(UsageError, match=r"file is a file, not a folder"):
        output_folder(tmp_path / "file" / "labels")
    with pytest.raises(UsageError, match=r"the folder .*missing does not exist"):
        output_target(tmp_path / "missing" / "out.json")
    assert (tmp_path / "file").read_text() == "x" and output_folder(tmp_path / "new" / "labels").is_dir()


def test_dash_is_stdout(capfdbinary):
    target = write_output("-", "to stdout\n")
    assert target.kind == "stdout" and capfdbinary.readouterr().out == b"to stdout\n"


def test_atomic_write_follows_symlinks_and_devices(tmp_path):
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to("real.json")
    atomic_write_json(tmp_path / "link.json", {"a": 1})
    assert (tmp_path / "link.json").is_symlink() and json_of(tmp_path / "real.json") == {"a": 1}
    fifo = tmp_path / "pipe"
    thread, chunks = fifo_reader(fifo)
    atomic_write_text(fifo, "through")
    thread.join(5)
    assert chunks == [b"through"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def json_of(path):
    import json

    return json.loads(path.read_text())
