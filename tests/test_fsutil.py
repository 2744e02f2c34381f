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
