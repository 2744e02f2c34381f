"""`--update` copies unchanged records from the old database file as byte ranges (mlee.results.splice)."""

from __future__ import annotations

import errno
import os

import pytest

from mlee.errors import OutputError
from mlee.results.database import dumps_line, render, write_bytes_atomic
from mlee.results.splice import Source, Span, joined, size_of, write_parts

LINES = {f"rec-{i}": dumps_line({"id": f"rec-{i}", "value": i * 1.5, "name": "é" * i}) for i in range(6)}
SUMMARIES = [{"n": 2}]
SKIPPED = [{"path": "runs/x", "reason": "truncated"}]


def _stamp(path):
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}


def _old_database(tmp_path):
    parts, spans = render(sorted(LINES.items()), SUMMARIES, SKIPPED, "0.1.0")
    path = tmp_path / "db.json"
    path.write_bytes(b"".join(parts))
    return path, spans


def test_unchanged_records_become_few_spans_and_the_same_bytes(tmp_path):
    path, old_spans = _old_database(tmp_path)
    new_line = dumps_line({"id": "rec-3b", "value": 0})
    # rec-0..rec-3 unchanged, a new record, rec-4 replaced, rec-5 unchanged.
    records = {rid: Span(*old_spans[rid]) for rid in LINES}
    records["rec-3b"] = new_line
    records["rec-4"] = dumps_line({"id": "rec-4", "value": "changed"})
    parts, spans = render(sorted(records.items()), SUMMARIES, SKIPPED, "0.1.0")
    assert sum(isinstance(p, Span) for p in parts) == 2  # rec-0..3 in one range, rec-5 in another
    expected, expected_spans = render(sorted({**LINES, "rec-3b": new_line, "rec-4": records["rec-4"]}.items()),
                                      SUMMARIES, SKIPPED, "0.1.0")
    source = Source(path, _stamp(path))
    try:
        assert joined(parts, source) == b"".join(expected)
        assert spans == expected_spans
        assert size_of(parts) == len(b"".join(expected))
        out = tmp_path / "new.json"
        write_bytes_atomic(out, parts, source=source)
        assert out.read_bytes() == b"".join(expected)
    finally:
        source.close()


def test_ranges_are_read_and_written_where_the_file_system_cannot_copy_them(tmp_path, monkeypatch):
    path, old_spans = _old_database(tmp_path)
    parts, _ = render(sorted((rid, Span(*old_spans[rid])) for rid in LINES), SUMMARIES, SKIPPED, "0.1.0")

    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    source = Source(path, _stamp(path))
    fd = os.open(tmp_path / "copy.json", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        write_parts(fd, parts, source)
    finally:
        os.close(fd)
        source.close()
    assert (tmp_path / "copy.json").read_bytes() == path.read_bytes()


def test_a_database_changed_by_another_program_is_not_copied_from(tmp_path):
    path, old_spans = _old_database(tmp_path)
    stamp = _stamp(path)
    with open(path, "ab") as fh:  # another program appends: the stamp no longer matches
        fh.write(b" ")
    with pytest.raises(ValueError):
        Source(path, stamp)
    source = Source(path, _stamp(path))
    try:
        with open(path, "r+b") as fh:
            fh.truncate(10)
        out = tmp_path / "new.json"
        out.write_bytes(b"old contents")
        with pytest.raises(OutputError, match="changed by another program"):
            write_bytes_atomic(out, [b"{", Span(0, 5)], source=source)
        assert out.read_bytes() == b"old contents"  # nothing written
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    finally:
        source.close()


def test_update_keeps_little_of_the_old_database_in_memory(tmp_path):
    # The update reads the index, not the database: the records it keeps are spans, not bytes.
    import datetime as dt

    from mlee.results.database import index_path
    from mlee.results.previous import read_previous
    from results_builders import make_experiment, run_merge

    runs = tmp_path / "runs"
    for i in range(3):
        make_experiment(runs, name=f"m{i}", start=dt.datetime(2026, 11, 22, 7, i))
    out = tmp_path / "db.json"
    assert run_merge(runs, "-o", out).exit_code == 0
    prev = read_previous(out, update=True, overwrite=False)
    try:
        assert prev.source is not None and len(prev.lines) == 3 and prev.indexed
        assert all(isinstance(v, Span) for v in prev.lines.values())
    finally:
        prev.source.close()
    # Without the index the database is read record by record, and its records are still kept as spans.
    index_path(out).unlink()
    prev = read_previous(out, update=True, overwrite=False)
    try:
        assert prev.source is not None and len(prev.lines) == 3 and not prev.indexed
        assert all(isinstance(v, Span) for v in prev.lines.values())
        data = out.read_bytes()
        assert all(data[s.offset:s.offset + s.length].startswith(b'{"') for s in prev.lines.values())
    finally:
        prev.source.close()
