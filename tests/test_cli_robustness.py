"""Careless and hostile input through the CLI: hostile names, misspelt spec paths, unparsable specs, bad options.

Each test is one row of issue 15's table: the command gives one clear line and the documented exit code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.console import escape, name_list, names_hint
from mlee.rating import load_spec
from test_cli_rate import CPU, GPU, record, write_db

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}
HOSTILE = "VGG\x1b]0;T\x07\x1b[2J\u202e\x9b"


def with_summaries(path: Path) -> Path:
    """Add the one-run summaries `mlee merge` would write (what `mlee check` reads) to a database file."""
    db = json.loads(path.read_text())
    db["summaries"] = [{"task": r["task"], "model": r["model"], "backend": r["backend"], "environment": r["environment"],
                        "dataset": r["dataset"], "n": 1, "ids": [r["id"]], "estimated": r["estimated"],
                        "per_sample": {"energy_j": {"mean": r["per_sample"]["energy_j"]["total"], "std": None},
                                       "time_ms": {"mean": r["per_sample"]["time_ms"], "std": None}}}
                       for r in db["records"]]
    path.write_text(json.dumps(db))
    return path


def run(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture()
def hostile_db(tmp_path: Path) -> Path:
    many = [record(f"Model{i:04d}", energy=1.0 + i / 1000) for i in range(300)]
    return with_summaries(write_db(tmp_path / "merged.json", record("ResNet50"), record(HOSTILE, energy=2.0), *many))


def test_escape_shows_control_and_bidi_characters():
    assert escape("a\x1b[2J\x07\u202eb\x85\tc") == "a\\x1b[2J\\x07\\u202eb\\x85\\x09c"
    assert escape("ResNet50 · Ünïcödé") == "ResNet50 · Ünïcödé"


def test_names_hint_cuts_long_lists_to_close_matches():
    names = [f"Model{i:04d}" for i in range(1000)] + ["ResNet50", "ResNet101"]
    hint = names_hint("resnet5", names, "models")
    assert hint.startswith("closest models: ResNet50") and "Model0001" not in hint and len(hint) < 200
    assert names_hint("zzz", names, "models").endswith("and 997 more")
    assert name_list("resnet", names) == "ResNet101; ResNet50 (closest of 1002)"
    assert names_hint("x", ["a", "b"], "models") == "it has: a; b"


def test_rate_and_check_tables_show_hostile_names_escaped(hostile_db):
    for args in (("rate", str(hostile_db)), ("check", str(hostile_db), "--min-rating", "E")):
        result = run(*args)
        assert "\x1b" not in result.output and "\u202e" not in result.output and "\x07" not in result.output
        assert "VGG\\x1b]0;T\\x07\\x1b[2J\\u202e" in result.stdout, args


@pytest.mark.parametrize("command", ["label", "check"])
def test_unknown_model_error_is_one_short_escaped_line(hostile_db, command):
    result = run(command, str(hostile_db), "-m", "VGG\x1b[2J", *(["--min-rating", "E"] if command == "check" else []))
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and len(result.stderr) < 500, result.stderr
    assert "model 'VGG\\x1b[2J'" in result.stderr and "VGG\\x1b]0;T\\x07\\x1b[2J\\u202e\\x9b" in result.stderr
    assert "Model0001" not in result.stderr


def test_misspelt_spec_path_is_a_usage_error_naming_the_closest(tmp_path):
    db = write_db(tmp_path / "merged.json", record("ResNet50"), record("VGG16", energy=4.0))
    data = load_spec("mlee").to_dict()
    for metric in data["tasks"]["inference"]["metrics"]:
        if metric["key"] == "energy_per_sample":
            metric["value"] = "per_sample.energy_j.totl"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(data))
    for command in ("rate", "report", "check", "calibrate"):
        extra = {"report": ["-o", str(tmp_path / "r.html")], "check": ["--min-rating", "E"]}.get(command, [])
        result = run(command, str(db), "--spec", str(spec), *extra)
        assert result.exit_code == 2, (command, result.output)
        assert "'per_sample.energy_j.totl' is in no inference record" in result.stderr
        assert "closest paths: per_sample.energy_j.total" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_reference_without_a_rated_figure_is_named(tmp_path):
    db = write_db(tmp_path / "merged.json", record("ResNet50"), record("VGG16", energy=4.0),
                  record("ResNet50", GPU, energy=None), record("VGG16", GPU, energy=0.3))
    result = run("rate", str(db))
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "reference model ResNet50 has no Energy per sample figure" in warnings[0]
    assert GPU in warnings[0] and CPU not in warnings[0]


@pytest.mark.parametrize("name,text", [("spec.json", "neither: [json"), ("spec.toml", "= nor toml ["),
                                       ("spec.json", json.dumps({"x": float("nan")}))])
def test_unparsable_spec_is_a_usage_error(tmp_path, name, text):
    db = write_db(tmp_path / "merged.json", record("ResNet50"))
    spec = tmp_path / name
    spec.write_text(text)
    result = run("rate", str(db), "--spec", str(spec))
    assert result.exit_code == 2 and result.stderr.startswith(f"error: spec file {spec}")


def test_ascending_boundaries_are_a_usage_error(tmp_path):
    db = write_db(tmp_path / "merged.json", record("ResNet50"))
    data = load_spec("mlee").to_dict()
    data["tasks"]["inference"]["metrics"][0]["boundaries"] = [0.5, 0.8, 1.0, 1.2]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(data))
    result = run("rate", str(db), "--spec", str(spec))
    assert result.exit_code == 2 and "strictly descending" in result.stderr


@pytest.mark.parametrize("args,first", [(["rate", "--bogus", "x"], "error: no such option: --bogus"),
                                        (["rat"], "error: no such command 'rat'"),
                                        (["rate"], "error: missing argument"),
                                        (["report", "x", "--max-trace-points", "ten"], "error: invalid value")])
def test_option_parsing_errors_are_one_line_and_a_try(args, first):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(first), result.stderr
    assert lines[1].startswith("try: mlee") and lines[1].endswith("--help")
    assert "╭" not in result.stderr and "Usage:" not in result.stderr


def test_running_out_of_memory_is_one_line_not_an_empty_internal_error(tmp_path, monkeypatch):
    import mlee.results

    def exhausted(*_args, **_kwargs):
        raise MemoryError()

    db = write_db(tmp_path / "merged.json", record("ResNet50"))
    monkeypatch.setattr(mlee.results, "load_database", exhausted)
    result = run("rate", str(db))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: out of memory:") and len(result.stderr.splitlines()) == 1
    assert "internal error" not in result.stderr and "Traceback" not in result.output
