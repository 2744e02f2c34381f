"""`mlee check`: conditions, regression against the runs' spread, markdown, exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import UsageError
from mlee.rating import gate as chk

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


def _summary(model, mean, std=0.0, n=1, env="CPU - PyTorch 2.14.1", estimated=False):
    return {"task": "inference", "model": model, "backend": {"name": "pytorch", "version": "2.14.1"},
            "environment": env, "dataset": "synthetic", "n": n, "ids": [f"id-{model}-{i}" for i in range(n)],
            "per_sample": {"energy_j": {"mean": mean, "std": std}, "time_ms": {"mean": 10.0, "std": 0.0}},
            "estimated": estimated}


def _db(*summaries):
    return {"schema_version": 1, "kind": "mlee-database", "records": [], "summaries": list(summaries), "skipped": []}


@pytest.mark.parametrize("text,joules", [("0.5J", 0.5), ("500mJ", 0.5), ("0.5 Ws", 0.5), ("1e-3Wh", 3.6),
                                         ("2", 2.0), ("1kJ", 1000.0)])
def test_parse_energy(text, joules):
    assert chk.parse_energy(text) == pytest.approx(joules)


@pytest.mark.parametrize("bad", ["", "abc", "5 parsecs", "0J", "-1J"])
def test_parse_energy_rejects(bad):
    with pytest.raises(UsageError):
        chk.parse_energy(bad)


def test_parse_percent_and_rating():
    assert chk.parse_percent("5%") == pytest.approx(0.05)
    assert chk.parse_percent("0.05") == pytest.approx(0.05)
    assert chk.parse_rating("b") == "B"
    with pytest.raises(UsageError):
        chk.parse_rating("F")


def test_energy_ceiling():
    rep = chk.run_checks(_db(_summary("A", 0.4), _summary("B", 0.6)), max_energy_j=0.5)
    assert [o.passed for o in rep.outcomes] == [True, False]
    assert not rep.passed and rep.failures[0].model == "B"


def test_min_rating_uses_rated_records():
    db = _db(_summary("A", 0.4), _summary("B", 0.6))
    rated = [{"model": "A", "environment": "CPU - PyTorch 2.14.1", "task": "inference", "dataset": "synthetic",
              "compound": "A"},
             {"model": "B", "environment": "CPU - PyTorch 2.14.1", "task": "inference", "dataset": "synthetic",
              "compound": "D"}]
    rep = chk.run_checks(db, rated=rated, min_rating="B")
    assert {o.model: o.passed for o in rep.outcomes} == {"A": True, "B": False}


def test_regression_and_spread():
    old = _db(_summary("A", 1.0, std=0.2, n=5), _summary("B", 1.0, std=0.001, n=5))
    new = _db(_summary("A", 1.1, std=0.2, n=5), _summary("B", 1.01, std=0.001, n=5), _summary("C", 9.0))
    rep = chk.run_checks(new, baseline=old, max_regression=0.05)
    by = {o.model: o for o in rep.outcomes}
    assert not by["A"].passed and by["A"].value == pytest.approx(0.1)
    assert "within the runs' spread" in by["A"].detail  # 0.1 < 2 * sqrt(0.04/5 * 2)
    assert by["B"].passed and "exceeds" in by["B"].detail
    assert by["C"].passed and "not in the baseline" in by["C"].detail


def test_no_condition_and_unknown_model():
    with pytest.raises(UsageError, match="no condition"):
        chk.run_checks(_db(_summary("A", 1.0)))
    with pytest.raises(UsageError, match="models: A"):
        chk.run_checks(_db(_summary("A", 1.0)), model="Z", max_energy_j=1.0)


def test_markdown_lists_failures_and_estimates():
    rep = chk.run_checks(_db(_summary("A|x", 0.6, estimated=True)), max_energy_j=0.5)
    md = chk.markdown(rep)
    assert "FAILED" in md and "A\\|x" in md and "(estimate)" in md and "exceeds 0.5 J" in md


def test_cli_exit_codes_and_markdown(tmp_path):
    db = tmp_path / "db.json"
    db.write_text(json.dumps(_db(_summary("A", 0.4), _summary("B", 0.6))))
    runner = CliRunner()
    ok = runner.invoke(app, ["check", str(db), "--model", "A", "--max-energy-per-sample", "0.5J"], env=ENV)
    assert ok.exit_code == 0, ok.output
    md = tmp_path / "summary.md"
    bad = runner.invoke(app, ["check", str(db), "--max-energy-per-sample", "500mJ", "--markdown", str(md)], env=ENV)
    assert bad.exit_code == 1
    assert "B (CPU - PyTorch 2.14.1, inference): energy per sample 0.6 J exceeds 0.5 J" in bad.output
    assert "| B |" in md.read_text()
    usage = runner.invoke(app, ["check", str(db), "--max-energy-per-sample", "lots"], env=ENV)
    assert usage.exit_code == 2 and "cannot read the energy" in usage.output
    nobase = runner.invoke(app, ["check", str(db), "--max-regression", "5%"], env=ENV)
    assert nobase.exit_code == 2 and "--baseline" in nobase.output


def test_task_picks_one_task_and_without_it_the_summary_says_which_tasks_were_covered(tmp_path):
    trained = dict(_summary("A", None), task="training", ids=["train-A"])
    db = tmp_path / "db.json"
    db.write_text(json.dumps(_db(_summary("A", 0.4), trained)))
    runner = CliRunner()
    both = runner.invoke(app, ["check", str(db), "--max-energy-per-sample", "0.5J"], env=ENV)
    # A training run has no energy per sample: checked on every task, the ceiling cannot hold for it.
    assert both.exit_code == 1
    flat = " ".join(both.stderr.split())
    assert "A (CPU - PyTorch 2.14.1, training): energy per sample n/a exceeds 0.5 J" in flat
    assert "max-energy-per-sample covered task(s): inference, training (--task picks one)" in flat
    one = runner.invoke(app, ["check", str(db), "--max-energy-per-sample", "0.5J", "--task", "inference", "--json"],
                        env=ENV)
    assert one.exit_code == 0, one.output
    payload = json.loads(one.stdout)
    assert payload["coverage"] == {"max-energy-per-sample": ["inference"]}
    assert [o["task"] for o in payload["outcomes"]] == ["inference"] and "covered task" not in one.stderr
    unknown = runner.invoke(app, ["check", str(db), "--max-energy-per-sample", "0.5J", "--task", "profiling"], env=ENV)
    assert unknown.exit_code == 2
    assert "the database has no profiling run; tasks: inference, training" in " ".join(unknown.output.split())


def test_cli_json(tmp_path):
    db = tmp_path / "db.json"
    db.write_text(json.dumps(_db(_summary("A", 0.4))))
    res = CliRunner().invoke(app, ["check", str(db), "--max-energy-per-sample", "1J", "--json"], env=ENV)
    assert res.exit_code == 0
    payload = json.loads(res.stdout)
    assert payload["passed"] is True and payload["rows"][0]["model"] == "A"


def test_cli_min_rating_rates_the_database_with_the_spec(tmp_path):
    """The whole path: database summaries -> mlee.rating with the default spec -> the gate."""
    from mlee.results.summary import facts, summarise
    from test_cli_rate import record

    records = [record("ResNet50", energy=1.0, time_ms=10.0),
               record("MobileNetV2", energy=0.25, time_ms=2.5, params=3_500_000),
               record("VGG16", energy=4.0, time_ms=40.0, params=138_000_000)]
    db = {"schema_version": 1, "kind": "mlee-database", "mlee_version": "0.1.0", "records": records,
          "summaries": summarise([facts(r) for r in records]), "skipped": []}
    path = tmp_path / "db.json"
    path.write_text(json.dumps(db))
    runner = CliRunner()
    good = runner.invoke(app, ["check", str(path), "--model", "MobileNetV2", "--min-rating", "B"], env=ENV)
    assert good.exit_code == 0, good.output
    bad = runner.invoke(app, ["check", str(path), "--min-rating", "B", "--json"], env=ENV)
    assert bad.exit_code == 1
    outcome = {o["model"]: o for o in json.loads(bad.stdout)["outcomes"]}
    assert outcome["MobileNetV2"]["passed"] and not outcome["VGG16"]["passed"]
    assert outcome["VGG16"]["value"] in ("C", "D", "E")
