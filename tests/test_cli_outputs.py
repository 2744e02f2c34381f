"""Every command's ``-o`` through the CLI: devices, FIFOs and symlinks are written through, never replaced;
``-o -`` writes to stdout; a folder or file in the wrong place is a usage error (issue 15, item 1)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from results_builders import make_experiment
from test_cli_rate import record, write_db
from test_cli_robustness import with_summaries
from test_fsutil import char_device, fifo_reader

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return with_summaries(write_db(tmp_path / "merged.json", record("ResNet50"), record("VGG16", energy=4.0)))


def outputs(tmp_path: Path) -> dict[str, list[str]]:
    """The command lines that write one file, each with its output option last (the path follows)."""
    runs = tmp_path / "runs"
    make_experiment(runs, "a")
    return {"report": ["report", str(tmp_path / "merged.json"), "-o"],
            "check": ["check", str(tmp_path / "merged.json"), "--min-rating", "E", "--markdown"],
            "merge": ["merge", str(runs), "--overwrite", "-o"],
            "calibrate": ["calibrate", str(tmp_path / "merged.json"), "-o"]}


@pytest.mark.parametrize("command", ["report", "check", "merge", "calibrate"])
def test_a_character_device_stays_a_device(db, tmp_path, command):
    dev = char_device(tmp_path / "null")
    result = run(*outputs(tmp_path)[command], dev)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    assert not list(tmp_path.glob(".null.*")) and not (tmp_path / "null.lock").exists()


@pytest.mark.parametrize("command", ["report", "check", "merge", "calibrate"])
def test_a_fifo_is_written_through(db, tmp_path, command):
    fifo = tmp_path / "pipe"
    thread, chunks = fifo_reader(fifo)
    result = run(*outputs(tmp_path)[command], fifo)
    thread.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and len(chunks) == 1 and len(chunks[0]) > 100
    if command in ("merge", "calibrate"):
        assert isinstance(json.loads(chunks[0]), dict)


@pytest.mark.parametrize("command", ["report", "check", "merge", "calibrate"])
def test_a_symlink_is_kept_and_its_target_replaced(db, tmp_path, command):
    target = tmp_path / "x.json"
    link = tmp_path / "latest.json"
    link.symlink_to("x.json")
    args = outputs(tmp_path)[command]
    result = run(*args, link, *(["--force"] if command == "calibrate" else []))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == "x.json" and target.stat().st_size > 100
    if command == "merge":  # an update goes through the link too, and the lock and index sit by the target
        assert run("merge", tmp_path / "runs", "--update", "-o", link).exit_code == 0
        assert link.is_symlink() and (tmp_path / "x.json.lock").exists()


@pytest.mark.parametrize("command", ["report", "check", "merge", "calibrate"])
def test_dash_writes_to_stdout(db, tmp_path, command):
    result = run(*outputs(tmp_path)[command], "-")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "-").exists()
    if command == "report":
        assert result.stdout.startswith("<!DOCTYPE html>") or "<html" in result.stdout[:200]
    elif command == "check":
        assert result.stdout.startswith("#") or "|" in result.stdout
    else:
        assert isinstance(json.loads(result.stdout), dict)


@pytest.mark.parametrize("command", ["report", "check", "merge", "calibrate"])
def test_a_folder_for_a_file_is_a_usage_error_saying_which(db, tmp_path, command):
    folder = tmp_path / "out.json"
    folder.mkdir()
    result = run(*outputs(tmp_path)[command], folder)
    assert result.exit_code == 2, result.output
    assert "is a folder, not a file" in result.stderr and folder.is_dir() and not any(folder.iterdir())


def test_merge_update_into_a_device_is_a_usage_error(tmp_path):
    dev = char_device(tmp_path / "null")
    make_experiment(tmp_path / "runs", "a")
    result = run("merge", tmp_path / "runs", "--update", "-o", dev)
    assert result.exit_code == 2 and "is not a file" in result.stderr and stat.S_ISCHR(os.lstat(dev).st_mode)


def test_label_into_a_device_or_file_is_a_usage_error(db, tmp_path):
    dev = char_device(tmp_path / "null")
    result = run("label", db, "--all", "-o", dev)
    assert result.exit_code == 2 and "is a file, not a folder" in result.stderr
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_label_into_a_symlinked_folder_keeps_the_link(db, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "labels").symlink_to("real")
    result = run("label", db, "--all", "-f", "svg", "-o", tmp_path / "labels")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "labels").is_symlink() and len(list((tmp_path / "real").glob("*.svg"))) == 2
