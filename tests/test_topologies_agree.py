"""Auto-detection on every topology of issue 14: the decision is right, and `mlee doctor --json` and a run
make the same one (they call the same functions; this proves it on the same fake machines)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fakes.clock import FakeClock
from fakes.estimator import FakeEstimator
from fakes.topologies import SCENARIOS, Scenario
from mlee.commands.doctor import diagnose
from mlee.measure.session import Measurement

FAMILIES = ("rapl", "nvml", "amdsmi")
ENV_KEYS = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "MLEE_RAPL_MIRRORS")


def _measured(name: str) -> bool:
    return name.split(":", 1)[0] in FAMILIES


def _environment(monkeypatch, scenario: Scenario) -> None:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in scenario.env.items():
        monkeypatch.setenv(key, value)


def doctor_verdict(tmp_path, scenario: Scenario) -> tuple[dict, set]:
    clock = FakeClock()
    rig = scenario.rig(tmp_path / "doctor" / "powercap", clock)
    report = diagnose(country="DEU", powercap_root=rig.root, nvml=rig.nvml, amdsmi=rig.amdsmi, sleep=rig.sleep,
                      clock=clock)
    report = json.loads(json.dumps(report))  # what --json prints
    used = {s["name"]: s["method"] for s in report["sources"] if s["available"] and _measured(s["name"])}
    skipped = {s["name"] for s in report["sources"] if not s["available"] and _measured(s["name"])}
    return used, skipped


def run_verdict(tmp_path, scenario: Scenario) -> tuple[dict, set, dict]:
    clock = FakeClock()
    rig = scenario.rig(tmp_path / "run" / "powercap", clock)
    m = Measurement("topology", output_dir=tmp_path / "run" / "results", powercap_root=rig.root, nvml=rig.nvml,
                    amdsmi=rig.amdsmi, clock=clock, sleep=rig.sleep, estimator=FakeEstimator(clock),
                    background=False)
    with m:
        clock.advance(2.0)
    results = m.result.results
    used = {s["name"]: s["method"] for s in results["sources"] if _measured(s["name"])}
    skipped = {s["name"] for s in results["skipped_sources"] if _measured(s["name"])}
    return used, skipped, results


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.key for s in SCENARIOS])
def test_doctor_and_a_run_decide_the_same_and_right(tmp_path, monkeypatch, scenario):
    _environment(monkeypatch, scenario)
    doctor_used, doctor_skipped = doctor_verdict(tmp_path, scenario)
    run_used, run_skipped, results = run_verdict(tmp_path, scenario)
    assert doctor_used == run_used == scenario.used
    assert doctor_skipped == run_skipped
    assert scenario.skipped <= run_skipped, f"{scenario.key}: skipped {run_skipped}"
    for source in results["sources"]:  # every used source measured the 2 s workload in full
        assert source["energy_j"] is not None and source["valid"] is True and source["covered_fraction"] == 1.0


def test_the_cli_json_is_the_same_report(tmp_path, monkeypatch):
    scenario = next(s for s in SCENARIOS if s.key == "D2-dram-without-energy-file")
    _environment(monkeypatch, scenario)
    rig = scenario.rig(tmp_path / "powercap", FakeClock())
    monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(rig.root))
    result = CliRunner().invoke(__import__("mlee.cli", fromlist=["app"]).app, ["doctor", "--json"],
                                env={"NO_COLOR": "1", "COLUMNS": "120", "CUDA_VISIBLE_DEVICES": ""})
    assert result.exit_code == 0, result.output
    by_name = {s["name"]: s for s in json.loads(result.output)["sources"]}
    assert by_name["rapl:package-0"]["available"] is True
    assert by_name["rapl:package-0-dram"]["available"] is False and "no energy_uj" in by_name["rapl:package-0-dram"]["reason"]
