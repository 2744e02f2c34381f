"""Issue 14, D1-D9 one by one: what each fix records, refuses or reports, on fake machines."""

from __future__ import annotations

import sys

import pynvml
import pytest

from fakes.amdsmi import AMDSMI_STATUS_NO_PERM, FakeAmdGpu, FakeAmdSmi
from fakes.clock import FakeClock
from fakes.estimator import FakeEstimator
from fakes.nvml import FakeGpu, FakeNvml
from fakes.powercap import Zone, make_powercap_tree, set_energy
from fakes.topologies import MIG, SCENARIOS, Rig
from mlee.errors import SourcePermissionError, SourceReadError, SourceUnavailable, UsageError
from mlee.measure.session import Measurement
from mlee.monitors.amdsmi import load_amdsmi
from mlee.monitors.detect import open_sources, parse_requested, probe_all
from mlee.monitors.rapl import detect_rapl, open_rapl
from mlee.vocabulary import Method


def scenario(key: str):
    return next(s for s in SCENARIOS if s.key == key)


def session(tmp_path, rig: Rig, **kw) -> Measurement:
    return Measurement("d", output_dir=tmp_path / "results", powercap_root=rig.root, nvml=rig.nvml,
                       amdsmi=rig.amdsmi, clock=rig.clock, sleep=rig.sleep, estimator=FakeEstimator(rig.clock),
                       background=False, **kw)


def test_d1_mirrored_dies_count_once_with_the_evidence_and_can_be_overridden(tmp_path, monkeypatch):
    monkeypatch.delenv("MLEE_RAPL_MIRRORS", raising=False)
    rig = scenario("D1-amd-multi-die-mirror").rig(tmp_path / "pc", FakeClock())
    with session(tmp_path, rig) as m:
        rig.clock.advance(2.0)
    r = m.result
    assert r.energy_j["cpu"] == pytest.approx(136.0)  # 68 W for 2 s, counted once (not 272 J)
    (source,) = r.sources
    check = source["detail"]["mirror_check"]
    assert check["decision"] == "independent" and source["detail"]["mirrored_by"] == ["rapl:package-0-die-1"]
    skipped = {s["name"]: s["reason"] for s in r.results["skipped_sources"]}
    assert "mirrors the counter of rapl:package-0-die-0" in skipped["rapl:package-0-die-1"]
    assert "MLEE_RAPL_MIRRORS=keep" in skipped["rapl:package-0-die-1"]  # the override is named
    monkeypatch.setenv("MLEE_RAPL_MIRRORS", "keep")
    rig2 = scenario("D1-amd-multi-die-mirror").rig(tmp_path / "pc2", FakeClock())
    kept = detect_rapl(rig2.root, clock=rig2.clock, sleep=rig2.sleep)
    assert [s.name for s in kept.sources] == ["rapl:package-0-die-0", "rapl:package-0-die-1"]
    assert kept.sources[0].detail["mirror_check"]["why"] == "MLEE_RAPL_MIRRORS=keep"


def test_d1_counters_that_do_not_move_are_not_called_mirrors(tmp_path):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0-die-0", 5),
                                                Zone("intel-rapl:1", "package-0-die-1", 5)])
    found = detect_rapl(root, sleep=lambda s: None)
    assert len(found.sources) == 2  # equal but still: nothing proves one counter; independent is the safe guess


def test_d2_one_unreadable_zone_is_skipped_alone(tmp_path):
    rig = scenario("D2-dram-without-energy-file").rig(tmp_path / "pc", FakeClock())
    with session(tmp_path, rig) as m:
        rig.clock.advance(1.0)
    assert m.result.energy_method["cpu"] == "counter" and m.result.energy_j["dram"] is None
    skipped = {s["name"]: s for s in m.result.results["skipped_sources"]}
    assert "no energy_uj" in skipped["rapl:package-0-dram"]["reason"]
    with pytest.raises(SourceUnavailable, match="no energy_uj"):  # but --source rapl asked for all of them
        open_sources(["rapl"], powercap_root=rig.root)


def test_d3_and_d4_each_gpu_degrades_alone_and_the_reason_is_recorded(tmp_path):
    rig = Rig(tmp_path / "pc", FakeClock()).nvidia().nvidia(energy_error=pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    rig.nvidia("NVIDIA GeForce GT 710", counter=False, power=False).build()
    probes = {p.name: p for p in probe_all(rig.root, rig.nvml, env={}, amdsmi=FakeAmdSmi([]), sleep=rig.sleep)}
    assert probes["nvml:0"].method is Method.counter
    assert probes["nvml:1"].method is Method.power_integration
    assert "Function Not Found" in probes["nvml:1"].detail["counter_unusable"]
    assert not probes["nvml:2"].available and "no energy counter either" in probes["nvml:2"].reason


def test_d4_a_counter_that_never_moves_falls_back_to_power(tmp_path):
    rig = scenario("D4-counter-that-never-moves").rig(tmp_path / "pc", FakeClock())
    with session(tmp_path, rig, sources=["nvml"]) as m:
        rig.clock.advance(2.0)
    (gpu,) = m.result.sources
    assert gpu["method"] == "power_integration" and gpu["energy_j"] == pytest.approx(400.0)
    assert "did not move" in gpu["detail"]["counter_unusable"]


def test_d4_no_permission_is_still_a_permission_error():
    nvml = FakeNvml([FakeGpu(energy_error=pynvml.NVML_ERROR_NO_PERMISSION)])
    with pytest.raises(SourcePermissionError):
        open_sources(["nvml"], nvml=nvml, env={})


def test_d5_mig_instance_measures_its_parent_gpu_marked_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIG)
    rig = scenario("D5-mig-instance").rig(tmp_path / "pc", FakeClock())
    with session(tmp_path, rig, sources=["nvml"]) as m:
        rig.clock.advance(1.0)
    (gpu,) = m.result.sources
    assert gpu["name"] == "nvml:1" and gpu["shared"] is True and gpu["detail"]["mig_instances"] == [MIG]
    assert m.result.results["shared"] is True
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-00000000-dead")
    with pytest.raises(SourceUnavailable, match="no NVIDIA GPU visible"):  # an unknown instance: nothing visible
        open_sources(["nvml"], nvml=scenario("D5-mig-instance").rig(tmp_path / "pc2", FakeClock()).nvml)


@pytest.mark.parametrize("names, pair", [
    (["rapl:package-0", "rapl:mmio-package-0"], "rapl:package-0 and rapl:mmio-package-0"),
    (["rapl:psys", "rapl:package-0-dram"], "rapl:psys and rapl:package-0-dram"),
    (["rapl", "rapl:psys"], "rapl:package-0 and rapl:psys"),
    (["rapl:package-0", "rapl:package-0-core"], "rapl:package-0 and rapl:package-0-core"),
    (["rapl:package-0", "rapl:tpmi-package-0"], "rapl:package-0 and rapl:tpmi-package-0"),
])
def test_d6_selections_that_count_one_energy_twice_are_refused_by_pair(tmp_path, names, pair):
    root = make_powercap_tree(tmp_path / "pc", [
        Zone("intel-rapl:0", "package-0"), Zone("intel-rapl:0:0", "core"), Zone("intel-rapl:0:2", "dram"),
        Zone("intel-rapl:1", "psys"), Zone("intel-rapl-mmio:0", "package-0"), Zone("intel-rapl-tpmi:0", "package-0")],
        ("intel-rapl", "intel-rapl-mmio", "intel-rapl-tpmi"))
    with pytest.raises(UsageError) as info:
        open_sources(names, powercap_root=root)
    assert pair in info.value.message and "count one energy twice" in info.value.message
    assert "select only one of" in info.value.fix


def test_d6_bare_rapl_beside_a_named_zone_is_the_union():
    assert parse_requested(["rapl", "rapl:psys"]) == {"rapl": ["rapl", "rapl:psys"]}
    assert parse_requested(["nvml", "nvml:1"]) == {"nvml": []}
    assert parse_requested(["rapl:psys"]) == {"rapl": ["rapl:psys"]}


def _vanishing(tmp_path, clock: FakeClock, at_s: float | None) -> Rig:
    """package-0 at 20 W whose energy_uj disappears once the clock passes ``at_s`` (None: when told)."""
    rig = Rig(tmp_path / "pc", clock).zone("intel-rapl:0", "package-0", 20).build()
    path = rig.root / "intel-rapl:0" / "energy_uj"
    start = clock()

    def vanish(now_s: float) -> None:
        if path.exists() and (at_s is None or now_s - start > at_s):
            path.unlink()

    if at_s is None:
        rig.vanish_now = lambda: path.unlink()  # type: ignore[attr-defined]
    else:
        clock.listeners.append(vanish)
    return rig


def test_d7_a_counter_that_never_reads_again_gives_no_figure_not_zero(tmp_path):
    from mlee.commands.run import _summary

    clock = FakeClock()
    rig = _vanishing(tmp_path, clock, None)
    m = session(tmp_path, rig, sources=["rapl"])
    m.start()
    rig.vanish_now()
    clock.advance(3.0)
    result = m.finish()
    (src,) = result.sources
    assert src["energy_j"] is None and src["valid"] is False and src["covered_fraction"] == 0.0
    assert "cannot read" in src["reason"]
    assert result.energy_j == {"total": None, "cpu": None, "dram": None, "gpu": None}
    assert result.results["carbon"] is None and result.results["missing_energy"][0]["name"] == "rapl:package-0"
    assert result.results["carbon_reason"] == "no total energy figure"  # said, not a silent null
    line = _summary(result)
    assert line.startswith("no valid energy reading from rapl:package-0: ") and " J (" not in line


def test_d7_a_counter_gone_after_a_third_of_the_run_is_a_partial_figure(tmp_path):
    from mlee.commands.run import _summary

    clock = FakeClock()
    rig = _vanishing(tmp_path, clock, 1.0)
    with session(tmp_path, rig, sources=["rapl"]) as m:
        for _ in range(3):
            clock.advance(1.0)
            m._sampler.sample()
    (src,) = m.result.sources
    assert src["energy_j"] == pytest.approx(20.0) and src["covered_fraction"] == pytest.approx(1 / 3)
    assert m.result.results["partial"] is True and m.result.results["energy_coverage"]["cpu"] == pytest.approx(1 / 3)
    assert "PARTIAL: valid readings cover 33.3% of the run" in _summary(m.result)


def test_d8_a_read_after_a_stall_longer_than_the_wrap_period_is_dropped(tmp_path):
    clock = FakeClock()
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0, 65532610987)])
    (src,) = open_rapl(root, clock=clock)
    assert src.wrap_period_s == pytest.approx(65532.610987 / 800)  # about 82 s at 800 W
    clock.advance(1000.0)
    set_energy(root, "intel-rapl:0", 5_000_000)
    with pytest.raises(SourceReadError, match="longer than the counter's wrap period"):
        src.read()
    clock.advance(1.0)
    set_energy(root, "intel-rapl:0", 45_000_000)
    assert src.read().energy_j == pytest.approx(40.0)  # the stalled interval added nothing; the next one counts
    assert src.detail["stalls"] == 1


def test_d9_tpmi_zones_are_found_and_named(tmp_path):
    rig = scenario("D9-tpmi-only").rig(tmp_path / "pc", FakeClock())
    found = detect_rapl(rig.root, clock=rig.clock, sleep=rig.sleep)
    assert [s.name for s in found.sources] == ["rapl:tpmi-package-0", "rapl:tpmi-package-1"]
    assert found.sources[0].detail["interface"] == "tpmi"


def test_amdsmi_absent_is_listed_with_the_fix(tmp_path):
    probes = {p.name: p for p in probe_all(tmp_path / "none", FakeNvml([]), env={})}
    amd = probes["amdsmi"]
    assert not amd.available and "mlee[amd]" in amd.fix


def test_amdsmi_without_rocm_prints_nothing_on_stdout(tmp_path, monkeypatch, capsys):
    # The real package print()s its loader error and raises KeyError when libamd_smi.so
    # is missing: stdout carries `doctor --json`, so that text must end up in the reason.
    (tmp_path / "amdsmi.py").write_text(
        "print('/opt/rocm/lib/libamd_smi.so: cannot open shared object file')\n"
        "raise KeyError('libamd_smi.so')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    with pytest.raises(SourceUnavailable, match="libamd_smi.so: cannot open") as caught:
        load_amdsmi()
    assert "mlee[amd]" in caught.value.fix
    assert capsys.readouterr().out == ""


def test_amdsmi_permission_and_named_source_failures(tmp_path):
    with pytest.raises(SourcePermissionError):
        open_sources(["amdsmi"], amdsmi=FakeAmdSmi([FakeAmdGpu()], init_error=AMDSMI_STATUS_NO_PERM), env={})
    with pytest.raises(SourceUnavailable, match="no AMD GPU visible"):
        open_sources(["amdsmi"], amdsmi=FakeAmdSmi([]), env={})


def test_amdsmi_counter_is_exact_and_a_stale_one_is_replaced_by_power(tmp_path):
    rig = Rig(tmp_path / "pc", FakeClock()).amd(300).amd(250, stale=True).build()
    with session(tmp_path, rig, sources=["amdsmi"]) as m:
        rig.clock.advance(2.0)
    good, stale = m.result.sources
    assert good["method"] == "counter" and good["energy_j"] == pytest.approx(600.0, rel=1e-6)
    assert stale["method"] == "power_integration" and stale["energy_j"] == pytest.approx(500.0)
    assert "stale counter" in stale["detail"]["counter_unusable"]
    assert rig.amdsmi.initialised == 0  # amdsmi_shut_down after the last source closed


def test_d7_infer_exits_1_when_no_component_has_a_valid_figure(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import mlee.runners.modelrun as modelrun
    from mlee.commands._modelruns import execute

    def outcome(energy_j, sources):
        results = {"energy_j": energy_j, "energy_method": {"total": None}, "sources": sources, "estimated": False}
        return SimpleNamespace(model="m", status="completed", results=results, error=None, folder=tmp_path)

    lost = [{"name": "nvml:0", "energy_j": None, "valid": False, "reason": "NVML: read GPU 0: GPU is lost"}]
    none = {"total": None, "cpu": None, "dram": None, "gpu": None}
    options = SimpleNamespace(task="inference", backend="pytorch", validate=lambda: None)
    monkeypatch.setattr(modelrun, "check_models", lambda names, backend=None: None)
    monkeypatch.setattr(modelrun, "run_models", lambda *a, **k: [outcome(none, lost)])
    assert execute(["m"], options, {}, as_json=True) == 1
    assert "no valid energy reading from nvml:0: NVML: read GPU 0: GPU is lost" in capsys.readouterr().err
    cpu_ok = {"total": None, "cpu": 12.0, "dram": None, "gpu": None}  # the CPU figure is still valid: exit 0
    monkeypatch.setattr(modelrun, "run_models", lambda *a, **k: [outcome(cpu_ok, lost)])
    assert execute(["m"], options, {}, as_json=True) == 0


def test_d7_a_lost_gpu_beside_a_valid_cpu_leaves_the_total_null_and_the_folder_merges(tmp_path):
    from mlee.results.folder import read_experiment

    clock = FakeClock()
    rig = Rig(tmp_path / "pc", clock).zone("intel-rapl:0", "package-0", 20).nvidia(watts=100).build()
    with session(tmp_path, rig) as m:
        rig.nvml.gpus[0].lost_after = 0  # every read from now on: NVMLError_GpuIsLost
        clock.advance(2.0)
    r = m.result
    assert r.energy_j["cpu"] == pytest.approx(40.0) and r.energy_j["gpu"] is None and r.energy_j["total"] is None
    assert r.energy_method["gpu"] is None and r.results["energy_coverage"]["gpu"] == 0.0
    assert [e["name"] for e in r.results["missing_energy"]] == ["nvml:0"]
    record = read_experiment(r.folder)  # merge accepts a null total when a source had no figure
    assert record["energy_j"]["total"] is None and record["missing_energy"][0]["name"] == "nvml:0"


def test_labels_and_the_report_say_partial_and_shared():
    import copy

    from mlee.label.content import label_content
    from mlee.report.payload import page_record
    from test_label_records import rated_one

    plain = rated_one("ResNet50")
    marked = copy.deepcopy(plain)
    marked["record"].update(partial=True, shared=True, energy_coverage={"total": 0.5})
    assert "PARTIAL" not in label_content(plain).energy_note
    note = label_content(marked).energy_note
    assert note.endswith(" \u00b7 PARTIAL (valid readings cover 50% of the run) \u00b7 SHARED GPU (whole MIG parent measured)")
    page = page_record(marked, {}, None, None)
    assert page["partial"] is True and page["shared"] is True
    assert page_record(plain, {}, None, None)["partial"] is False


def test_doctor_table_shows_the_mirror_decision_and_the_gpu_fallback(tmp_path, monkeypatch, capsys):
    from mlee.commands.doctor import _render, diagnose

    clock = FakeClock()
    rig = scenario("D1-amd-multi-die-mirror").make(Rig(tmp_path / "pc", clock))
    rig.nvidia(energy_error=pynvml.NVML_ERROR_UNKNOWN).build()
    monkeypatch.setenv("COLUMNS", "250")
    _render(diagnose(powercap_root=rig.root, nvml=rig.nvml, amdsmi=FakeAmdSmi([]), sleep=rig.sleep, clock=clock,
                     env={}))
    text = capsys.readouterr().out
    assert "counted once, rapl:package-0-die-1 is the same counter" in text
    assert "power integration: nvmlDeviceGetTotalEnergyConsumption failed: Unknown Error" in text


def test_the_infer_table_marks_partial_and_shared_figures(tmp_path):
    from types import SimpleNamespace

    from mlee.commands._modelruns import _summary_rows

    per = {"energy_j": {"total": 0.5}, "energy_method": {"total": "counter"}}
    outcome = SimpleNamespace(model="m", status="completed", error=None, folder=tmp_path,
                              results={"per_sample": per, "partial": True, "shared": True})
    assert _summary_rows([outcome])[0]["energy_per_sample"] == "0.5 J (counter) PARTIAL SHARED"
    outcome.results = {"per_sample": per}
    assert _summary_rows([outcome])[0]["energy_per_sample"] == "0.5 J (counter)"


def test_ratings_use_partial_figures_only_when_the_spec_allows_them():
    from mlee.rating import load_spec, rate_database
    from mlee.rating.spec import spec_from_dict
    from test_label_records import MODELS, database, db_record

    records = [db_record(m, ident=f"infer-{m.lower()}", **({"partial": True} if m == "ResNet50" else {}))
               for m in MODELS]
    strict = load_spec("mlee-2022")
    assert "ResNet50" not in {r["model"] for r in rate_database(database(*records), strict)}
    lenient = spec_from_dict({**strict.to_dict(), "allow_partial": True}, "test")
    assert "ResNet50" in {r["model"] for r in rate_database(database(*records), lenient)}
    assert lenient.sha256 != strict.sha256 and "allow_partial" not in strict.to_dict()


def test_gpu_counter_reset_and_a_lost_amd_gpu_drop_their_interval_only(tmp_path):
    clock = FakeClock()
    nvml = FakeNvml([FakeGpu(energy_mj=[9_000_000, 9_001_000, 9_002_000, 1_000, 3_000])])
    (gpu,) = open_sources(["nvml"], nvml=nvml, clock=clock, sleep=clock.sleep, env={}).sources
    clock.advance(1.0)
    assert gpu.read().energy_j == pytest.approx(2.0)
    with pytest.raises(SourceReadError, match="went backwards"):  # a driver reset: never a negative figure
        gpu.read()
    assert gpu.read().energy_j == pytest.approx(2.0)  # counting again from the new anchor
    amd = FakeAmdSmi([FakeAmdGpu(energy_ticks=[1000, 1000 + 300 / 15.3e-6 * 0.5, 3e7], power_w=[300], lost_after=5)])
    (src,) = open_sources(["amdsmi"], amdsmi=amd, clock=clock, sleep=clock.sleep, env={}).sources
    assert src.method is Method.counter  # 300 W by the counter over the 0.5 s check, as power said
    assert src.read().energy_j == pytest.approx(3e7 * 15.3e-6 - 1000 * 15.3e-6)  # the 5th call to the GPU
    with pytest.raises(SourceReadError, match="AMD SMI"):  # then the driver is gone: that interval is invalid
        src.read()
