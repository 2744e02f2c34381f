"""`mlee merge --update` (incremental, never re-reading unchanged folders) and `--archive`."""

from __future__ import annotations

import datetime as dt
import json
import os
import tarfile
from pathlib import Path


from mlee.results.database import index_path
from results_builders import edit_results, make_experiment, run_merge

T0 = dt.datetime(2026, 11, 22, 7, 0, 0)


run = run_merge


def _make(root, n, offset=0):
    return [make_experiment(root, name=f"m{i}", start=T0 + dt.timedelta(minutes=i)) for i in range(offset, offset + n)]


def test_update_reads_only_new_folders_and_equals_a_full_merge(tmp_path):
    runs = tmp_path / "runs"
    _make(runs, 3)
    out = tmp_path / "db.json"
    assert run(runs, "-o", out).exit_code == 0
    _make(runs, 2, offset=3)
    result = run(runs, "-o", out, "--update")
    assert result.exit_code == 0, result.output
    assert "2 input(s) read, 3 unchanged (not read again)" in result.output
    full = tmp_path / "full.json"
    assert run(runs, "-o", full).exit_code == 0
    assert out.read_bytes() == full.read_bytes()
    again = run(runs, "-o", out, "--update")
    assert "0 input(s) read, 5 unchanged" in again.output
    assert out.read_bytes() == full.read_bytes()


def _edit_keeping_size_and_mtime(path, edit):
    st = os.stat(path)
    data = edit(path.read_bytes())
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_update_sees_in_place_edits_that_keep_size_and_mtime(tmp_path):
    runs = tmp_path / "runs"
    (folder,) = _make(runs, 1)
    out = tmp_path / "db.json"
    assert run(runs, "-o", out).exit_code == 0
    # A trace row made not finite, size and mtime kept: the ctime tells, and the row counts as invalid.
    trace = folder / "power" / "rapl_package-0.csv"
    _edit_keeping_size_and_mtime(trace, lambda b: b[:-3] + b"x" + b[-2:])
    result = run(runs, "-o", out, "--update")
    assert "1 input(s) read" in result.output and "1 trace row(s) in 1 experiment(s)" in result.output
    (rec,) = json.loads(out.read_text())["records"]
    assert rec["traces"]["rapl_package-0.energy_j"]["invalid_rows"] == 1
    # results.json edited in place, size and mtime kept: the new figure is merged.
    results = folder / "results.json"
    _edit_keeping_size_and_mtime(results, lambda b: b.replace(b'"duration_s": 2.0', b'"duration_s": 3.0'))
    result = run(runs, "-o", out, "--update")
    assert "1 input(s) read" in result.output
    (rec,) = json.loads(out.read_text())["records"]
    assert rec["duration_s"] == 3.0
    assert "0 input(s) read, 1 unchanged" in run(runs, "-o", out, "--update").output


def test_changed_folder_is_reread_and_replaced_not_duplicated(tmp_path):
    runs = tmp_path / "runs"
    folders = _make(runs, 2)
    out = tmp_path / "db.json"
    assert run(runs, "-o", out).exit_code == 0
    edit_results(folders[0], error="note added later")
    result = run(runs, "-o", out, "--update")
    assert "1 input(s) read, 1 unchanged" in result.output
    db = json.loads(out.read_text())
    assert len(db["records"]) == 2
    assert next(r for r in db["records"] if r["id"] == folders[0].name)["error"] == "note added later"


def test_update_keeps_records_of_folders_not_given(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    _make(old, 2)
    _make(new, 1, offset=5)
    out = tmp_path / "db.json"
    assert run(old, "-o", out).exit_code == 0
    result = run(new, "-o", out, "--update")
    assert result.exit_code == 0, result.output
    assert "3 record(s)" in result.output
    assert len(json.loads(out.read_text())["records"]) == 3


def test_update_skips_that_get_fixed_leave_the_skipped_list(tmp_path):
    runs = tmp_path / "runs"
    (folder,) = _make(runs, 1)
    text = (folder / "results.json").read_text()
    (folder / "results.json").write_text(text[:20])
    out = tmp_path / "db.json"
    assert run(runs, "-o", out).exit_code == 0
    assert len(json.loads(out.read_text())["skipped"]) == 1
    (folder / "results.json").write_text(text)
    assert run(runs, "-o", out, "--update").exit_code == 0
    db = json.loads(out.read_text())
    assert db["skipped"] == [] and len(db["records"]) == 1


def _merged(tmp_path, n):
    """``n`` folders under runs/, merged into db.json: (runs, db path, the database bytes)."""
    runs = tmp_path / "runs"
    _make(runs, n)
    out = tmp_path / "db.json"
    assert run(runs, "-o", out).exit_code == 0
    return runs, out, out.read_bytes()


def test_stale_index_falls_back_to_reading_everything(tmp_path):
    runs, out, full = _merged(tmp_path, 2)
    out.write_text(json.dumps(json.loads(full)))  # edited by another tool: the index no longer matches
    result = run(runs, "-o", out, "--update")
    assert result.exit_code == 0 and "2 input(s) read" in result.output
    assert out.read_bytes() == full
    index_path(out).unlink()
    assert run(runs, "-o", out, "--update").exit_code == 0
    assert out.read_bytes() == full


def test_torn_or_empty_index_is_ignored(tmp_path):
    # The index is written without fsync (it is only a cache): what a crash can leave of it must be harmless.
    runs, out, full = _merged(tmp_path, 2)
    whole = index_path(out).read_bytes()
    for torn in (whole[: len(whole) // 2], b""):
        index_path(out).write_bytes(torn)
        result = run(runs, "-o", out, "--update")
        assert result.exit_code == 0 and "2 input(s) read" in result.output, result.output
        assert out.read_bytes() == full
    assert "0 input(s) read, 2 unchanged" in run(runs, "-o", out, "--update").output


def test_update_of_a_missing_database_starts_one(tmp_path):
    _make(tmp_path / "runs", 1)
    result = run(tmp_path / "runs", "-o", tmp_path / "db.json", "--update")
    assert result.exit_code == 0 and "does not exist yet" in result.output


def test_archive_packs_each_folder_with_its_traces_deterministically(tmp_path):
    runs = tmp_path / "runs"
    folders = _make(runs, 2)
    out, arch = tmp_path / "db.json", tmp_path / "archive"
    result = run(runs, "-o", out, "--archive", arch)
    assert result.exit_code == 0, result.output
    assert "2 archive(s) written" in result.output
    path = arch / f"{folders[0].name}.tar.gz"
    with tarfile.open(path) as tar:
        names = sorted(tar.getnames())
        trace = tar.extractfile(f"{folders[0].name}/power/rapl_package-0.csv").read()
    assert names == sorted(f"{folders[0].name}/{p}" for p in
                           ["config.json", "environment.json", "log.txt", "results.json", "power/host.csv",
                            "power/rapl_dram-0.csv", "power/rapl_package-0.csv"])
    assert trace == (folders[0] / "power" / "rapl_package-0.csv").read_bytes()
    first = path.read_bytes()
    path.unlink()
    assert run(runs, "-o", out, "--archive", arch).exit_code == 0
    assert path.read_bytes() == first
    st = os.stat(path)
    assert "0 archive(s) written" in run(runs, "-o", out, "--update", "--archive", arch).output
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns


def test_an_update_that_changes_nothing_leaves_the_database_file_alone(tmp_path):
    runs, out, full = _merged(tmp_path, 3)
    before = os.stat(out)
    result = run(runs, "-o", out, "--update")
    assert result.exit_code == 0
    assert "is up to date (not rewritten)" in result.output and "0 input(s) read, 3 unchanged" in result.output
    after = os.stat(out)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # make-style tools see no change
    # A folder touched but not changed is read again; the records stay the same, so the database does too,
    # while the index learns the new fingerprint and the next update reads nothing.
    results = next(runs.iterdir()) / "results.json"
    st = os.stat(results)
    os.utime(results, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    touched = run(runs, "-o", out, "--update")
    assert "is up to date" in touched.output and "1 input(s) read, 2 unchanged" in touched.output
    assert out.read_bytes() == full and os.stat(out).st_mtime_ns == before.st_mtime_ns
    assert "0 input(s) read, 3 unchanged" in run(runs, "-o", out, "--update").output
    # New content is written as before.
    _make(runs, 1, offset=3)
    added = run(runs, "-o", out, "--update")
    assert "wrote " in added.output and "is up to date" not in added.output
    assert len(json.loads(out.read_text())["records"]) == 4


def test_the_unchanged_check_in_two_processes_finds_changes_in_either_half(tmp_path, monkeypatch):
    import mlee.results.reading as reading

    monkeypatch.setattr(reading, "PARALLEL_MIN_CHECKS", 2)  # fork for these few folders too
    monkeypatch.setattr(reading, "usable_cpus", lambda: 2)
    runs, out, _ = _merged(tmp_path, 6)
    folders = sorted(runs.iterdir())
    for f in (folders[1], folders[4]):  # one in each half
        edit_results(f, model="Edited")
    result = run(runs, "-o", out, "--update")
    assert result.exit_code == 0 and "2 input(s) read, 4 unchanged" in result.output, result.output
    models = sorted(r["model"] for r in json.loads(out.read_text())["records"])
    assert models.count("Edited") == 2


def test_flags_in_two_equal_the_serial_answers_and_survive_a_dying_child(monkeypatch):
    import mlee.results.reading as reading

    monkeypatch.setattr(reading, "PARALLEL_MIN_CHECKS", 2)
    monkeypatch.setattr(reading, "usable_cpus", lambda: 2)
    parent = os.getpid()
    here: list[int] = []

    def every_third(i: int) -> bool:
        if os.getpid() == parent:
            here.append(i)
        return i % 3 == 0

    n = 5001  # an odd count
    assert reading.flags_in_two(n, every_third) == [i % 3 == 0 for i in range(n)]
    assert here == list(range(n // 2))  # the other half was answered by the child
    big = 200_001  # more answers than a pipe holds: the child waits until they are read
    assert reading.flags_in_two(big, lambda i: i % 7 == 1) == [i % 7 == 1 for i in range(big)]

    def fails_in_the_child(i: int) -> bool:
        if os.getpid() != parent:
            raise RuntimeError("child lost")
        return i % 2 == 1

    assert reading.flags_in_two(10, fails_in_the_child) == [i % 2 == 1 for i in range(10)]


def test_the_index_is_checked_before_it_is_decoded(tmp_path):
    from mlee.results.database import decode_index, encode_index

    content = {"kind": "mlee-merge-index", "inputs": {"/a": {"fingerprint": "x", "ids": ["r1"]}}, "n": [1, 2.5, None]}
    data = encode_index(content)
    assert decode_index(data) == content
    flipped = bytearray(data)
    flipped[-2] ^= 0x01
    other_python = data.replace(b" marshal ", b" marshal9 ", 1)
    for bad in (bytes(flipped), data[:-1], data + b"x", other_python, b"", b'{"kind": "mlee-merge-index"}'):
        assert decode_index(bad) is None


def test_an_index_left_by_an_older_mlee_is_replaced(tmp_path):
    runs, out, full = _merged(tmp_path, 2)
    old = tmp_path / "db.mlee-index.json"
    old.write_text('{"kind": "mlee-merge-index", "version": 2}')
    _make(runs, 1, offset=2)
    result = run(runs, "-o", out, "--update")
    assert result.exit_code == 0 and "1 input(s) read, 2 unchanged" in result.output
    assert not old.exists() and index_path(out).exists()


KILLED_MERGE = """
import os, signal, sys, tempfile
from pathlib import Path
from mlee.results.database import index_path, locked
db = Path(sys.argv[1])
with locked(db):
    for target in (db, index_path(db)):  # a merge killed while writing the database, or its index
        fd, _ = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=db.parent)
        os.write(fd, b"x" * 1_000_000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_temporaries_of_a_killed_merge_are_removed_by_the_next(tmp_path):
    import signal
    import subprocess
    import sys

    runs = tmp_path / "runs"
    _make(runs, 2)
    out = tmp_path / "db.json"
    assert run(runs, "-o", out).exit_code == 0
    before = out.read_bytes()
    other = tmp_path / ".other.json.abc.tmp"  # another database's temporary is not this merge's business
    other.write_bytes(b"y")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", KILLED_MERGE, str(out)], env=env, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".db.*.tmp"))) == 2 and out.read_bytes() == before
    result = run(runs, "-o", out, "--update", "--lock-timeout", "5")
    assert result.exit_code == 0, result.output
    assert "removed 2 temporary file(s) left by an interrupted merge" in result.output
    assert list(tmp_path.glob(".db.*.tmp")) == [] and other.exists()
    assert len(json.loads(out.read_text())["records"]) == 2
