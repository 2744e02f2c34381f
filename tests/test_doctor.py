"""`mlee doctor`: sources with reasons and fixes, measured vs estimated, the interval, exit codes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fakes.powercap import Zone, intel_laptop, make_powercap_tree
from mlee.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


def doctor(*args: str, root=None):
    env = dict(ENV)
    if root is not None:
        env["MLEE_POWERCAP_ROOT"] = str(root)
    return CliRunner().invoke(app, ["doctor", *args], env=env)


def test_json_report_with_rapl(tmp_path):
    root = intel_laptop(tmp_path / "pc")
    result = doctor("--json", root=root)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_name = {s["name"]: s for s in report["sources"]}
    assert by_name["rapl:package-0"]["available"] is True
    assert by_name["rapl:psys"]["available"] is False and "count the CPU twice" in by_name["rapl:psys"]["reason"]
    assert by_name["estimate"]["reason"] == "not used: RAPL counters are readable"
    assert report["components"]["cpu"] == "counter" and report["components"]["dram"] is None
    assert report["measured"] is True and report["estimated"] is False
    assert report["powercap_root"] == str(root) and report["interval_s"] == 0.1


def test_json_report_without_rapl_says_estimated_with_the_fix(tmp_path):
    result = doctor("--json", root=tmp_path / "absent")
    assert result.exit_code == 0
    report = json.loads(result.output)
    rapl = next(s for s in report["sources"] if s["name"] == "rapl")
    assert not rapl["available"] and "does not exist" in rapl["reason"] and "MLEE_POWERCAP_ROOT" in rapl["fix"]
    assert report["components"] == {"cpu": "estimate", "dram": "estimate", "gpu": report["components"]["gpu"]}
    assert report["estimated"] is True


def test_table_output_names_reason_fix_and_interval(tmp_path):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0, 100_000_000)])
    result = doctor(root=root)
    assert result.exit_code == 0
    text = result.output
    assert "rapl:package-0" in text and "available" in text
    assert "cpu   measured (energy counter)" in text
    assert "dram  not measured" in text
    assert "sampling interval: 0.03125 s (shortened from 0.1 s" in text


def test_nothing_usable_exits_3(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # hide GPUs on machines that have them
    result = doctor("--json", "--country", "ZZZ", root=tmp_path / "absent")
    report = json.loads(result.output)
    assert result.exit_code == 3 and report["usable"] is False
    assert not any(s["available"] for s in report["sources"])


def test_bad_interval_is_a_usage_error(tmp_path):
    assert doctor("--interval", "0", root=tmp_path).exit_code == 2
