"""The Measurement session API (docs/design.md section 1) on a fake machine and a fake clock."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import pytest

import mlee
from fakes.estimator import FakeEstimator
from fakes.machine import fake_machine
from fakes.nvml import FakeNvml
from mlee.errors import MleeError, SourceUnavailable, UsageError
from mlee.measure.session import Measurement
from mlee.monitors.nvml import COUNTER_CHECK_S

SCHEMAS = Path(__file__).resolve().parents[1] / "mlee" / "schema"


def session(tmp_path, machine, **kw) -> Measurement:
    kw.setdefault("output_dir", tmp_path / "results")
    return Measurement(kw.pop("name", "exact"), powercap_root=machine.root, nvml=machine.nvml, clock=machine.clock,
                       sleep=machine.clock.sleep, background=False, **kw)


def load(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def test_energies_windows_and_marks_are_exact(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)  # 40 W package, 5 W dram, 200 W GPU
    with session(tmp_path, machine) as m:
        clock.advance(2.0)
        with m.window("repeat-0", measured=True, n_samples=64) as w:
            clock.advance(3.0)
        assert w.record["energy_j"]["cpu"] == pytest.approx(120.0)
        m.mark("tail")
        clock.advance(1.0)
    r = m.result
    assert r.status == "completed" and r.duration_s == pytest.approx(6.0)
    assert r.energy_j == pytest.approx({"total": 1470.0, "cpu": 240.0, "dram": 30.0, "gpu": 1200.0})
    assert r.energy_method == {"total": "counter", "cpu": "counter", "dram": "counter", "gpu": "counter"}
    assert r.estimated is False
    win, tail = r.windows
    assert (win["name"], win["measured"], win["n_samples"], win["valid"]) == ("repeat-0", True, 64, True)
    # the session starts at its first reading, before detection watched the GPU counter (COUNTER_CHECK_S)
    assert win["duration_s"] == pytest.approx(3.0) and win["start_s"] == pytest.approx(2.0 + COUNTER_CHECK_S)
    assert win["energy_j"] == pytest.approx({"total": 735.0, "cpu": 120.0, "dram": 15.0, "gpu": 600.0})
    assert tail["name"] == "tail" and tail["mark"] is True and tail["energy_j"]["total"] == pytest.approx(245.0)
    assert [s["name"] for s in r.sources] == ["rapl:package-0", "rapl:package-0-dram", "nvml:0"]
    on_disk = load(r.folder, "results.json")
    assert on_disk["energy_j"] == r.energy_j and on_disk["id"] == r.folder.name == r.id


def test_folder_files_follow_the_design_and_the_schemas(tmp_path, clock):
    jsonschema = pytest.importorskip("jsonschema")
    machine = fake_machine(tmp_path, clock)
    with session(tmp_path, machine, name="my model / v2 ü", config={"batch_size": 8}) as m:
        clock.advance(1.0)
    folder = m.result.folder
    assert re.fullmatch(r"measure-my-model-v2-u-\d{8}T\d{6}Z-[0-9a-f]{6}", folder.name)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "environment.json", "log.txt", "power",
                                                         "results.json"]
    assert sorted(p.name for p in (folder / "power").iterdir()) == [
        "host.csv", "nvml_0.csv", "rapl_package-0-dram.csv", "rapl_package-0.csv", "stats.json"]
    for name in ("results", "config", "environment"):
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        jsonschema.validate(load(folder, f"{name}.json"), schema)
    config = load(folder, "config.json")
    assert config["batch_size"] == 8 and config["kind"] == "measure" and config["interval_s"] == 0.1
    env = load(folder, "environment.json")
    assert env["gpus"][0]["uuid"].startswith("GPU-") and env["gpus"][0]["driver"] == "550.54.15"
    assert env["cpu"]["cores_logical"] >= 1 and env["packages"]["mlee"] == mlee.__version__
    assert "sources: rapl:package-0" in (folder / "log.txt").read_text()


def test_the_traces_statistics_are_stored_as_a_merge_computes_them(tmp_path, clock):
    from mlee.results.schema import problem
    from mlee.results.traces import trace_stats

    machine = fake_machine(tmp_path, clock)
    with session(tmp_path, machine) as m:
        clock.advance(2.0)
    power = m.result.folder / "power"
    doc = load(power, "stats.json")
    assert problem("trace_stats", doc) is None
    assert sorted(doc["traces"]) == sorted(p.name for p in power.glob("*.csv"))
    for name, entry in doc["traces"].items():
        data = (power / name).read_bytes()
        assert (entry["size_bytes"], entry["crc32"]) == (len(data), f"{zlib.crc32(data):08x}")
        parsed, _ = trace_stats(power / name, name[:-4])
        assert {f"{name[:-4]}.{c}": v for c, v in entry["channels"].items()} == parsed
    # 40 W from the first reading, which comes before detection watched the GPU counter (COUNTER_CHECK_S)
    assert doc["traces"]["rapl_package-0.csv"]["channels"]["energy_j"]["max"] == pytest.approx(80.0 + 40 * COUNTER_CHECK_S)


def test_a_stats_file_that_cannot_be_written_loses_nothing(tmp_path, clock, monkeypatch):
    import mlee.fsutil

    def disk_full(path, *args, **kwargs):
        raise OSError(28, "No space left on device")

    machine = fake_machine(tmp_path, clock)
    with session(tmp_path, machine) as m:
        clock.advance(1.0)
        monkeypatch.setattr(mlee.fsutil, "atomic_write_json", disk_full)
    assert m.result.status == "completed" and load(m.result.folder, "results.json")["status"] == "completed"
    assert not (m.result.folder / "power" / "stats.json").exists()
    assert "power/stats.json not written ([Errno 28] No space left on device)" in (
        m.result.folder / "log.txt").read_text()


def test_results_json_says_running_while_the_session_runs(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)
    with session(tmp_path, machine) as m:
        m.add_results(task="inference", model="ResNet50")
        running = load(m.folder, "results.json")
        assert running["status"] == "running" and running["model"] == "ResNet50"
        assert running["energy_j"]["total"] is None  # nothing invented before the end
        clock.advance(1.0)
    final = load(m.folder, "results.json")
    assert final["status"] == "completed" and final["task"] == "inference"


def test_add_results_refuses_keys_the_session_owns(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)
    with session(tmp_path, machine) as m:
        with pytest.raises(UsageError, match="energy_j"):
            m.add_results(energy_j={"total": 0})
        with pytest.raises(MleeError, match="not finished"):
            _ = m.result


def test_an_exception_writes_failed_and_is_re_raised(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)
    m = session(tmp_path, machine)
    with pytest.raises(ZeroDivisionError):
        with m:
            clock.advance(1.0)
            1 / 0
    results = load(m.folder, "results.json")
    assert results["status"] == "failed" and "ZeroDivisionError" in results["error"]
    assert results["energy_j"]["cpu"] == pytest.approx(40.0)  # what was measured is kept


def test_keyboard_interrupt_writes_interrupted(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)
    m = session(tmp_path, machine)
    with pytest.raises(KeyboardInterrupt):
        with m:
            clock.advance(0.5)
            raise KeyboardInterrupt
    assert load(m.folder, "results.json")["status"] == "interrupted"


def test_idle_baseline_gives_net_energy_per_component(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)
    with session(tmp_path, machine, baseline_s=5.0) as m:
        machine.package_w = 100.0  # the workload draws 60 W over the 40 W idle package
        clock.advance(2.0)
    b = m.result.baseline
    assert b["duration_s"] == pytest.approx(5.0)
    assert b["power_w"] == pytest.approx({"total": 245.0, "cpu": 40.0, "dram": 5.0, "gpu": 200.0})
    assert m.result.energy_j["cpu"] == pytest.approx(200.0)  # gross, workload only
    assert b["net_energy_j"] == pytest.approx({"total": 120.0, "cpu": 120.0, "dram": 0.0, "gpu": 0.0})
    assert m.result.duration_s == pytest.approx(2.0)


def test_decorator_measures_every_call(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)

    @mlee.measure("decorated", output_dir=tmp_path / "results", powercap_root=machine.root, nvml=machine.nvml,
                  clock=clock, background=False)
    def work(seconds):
        clock.advance(seconds)
        return "done"

    assert work(2.0) == "done"
    first = work.last_measurement.result
    assert work(1.0) == "done"
    second = work.last_measurement.result
    assert first.folder != second.folder
    assert first.energy_j["cpu"] == pytest.approx(80.0) and second.energy_j["cpu"] == pytest.approx(40.0)


def test_a_named_source_that_fails_stops_before_anything_is_written(tmp_path, clock):
    machine = fake_machine(tmp_path, clock, gpu=False)
    with pytest.raises(SourceUnavailable, match="no NVIDIA GPU"):
        with session(tmp_path, machine, sources=["rapl", "nvml"]):
            pytest.fail("the block must not run")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_auto_detection_falls_back_to_the_estimate_and_says_so(tmp_path, clock):
    estimator = FakeEstimator(clock, cpu_w=10.0, ram_w=3.0)
    m = Measurement("est", output_dir=tmp_path, powercap_root=tmp_path / "none", nvml=FakeNvml([]), clock=clock,
                    estimator=estimator, background=False)
    with m:
        clock.advance(4.0)
    r = m.result
    assert r.energy_j == pytest.approx({"total": 52.0, "cpu": 40.0, "dram": 12.0, "gpu": None})
    assert r.energy_method == {"total": "estimate", "cpu": "estimate", "dram": "estimate", "gpu": None}
    assert r.estimated is True
    skipped = {s["name"]: s for s in r.results["skipped_sources"]}
    assert set(skipped) == {"rapl", "nvml", "amdsmi"} and skipped["rapl"]["fix"]
    cpu = r.sources[0]
    assert cpu["detail"]["codecarbon_method"] == "cpu_load" and cpu["detail"]["tdp_w"] == 65.0
    assert estimator.started == 1 and estimator.stopped == 1  # one tracker shared by cpu and dram


def test_no_usable_source_at_all_is_an_error(tmp_path, clock):
    class Broken(FakeEstimator):
        def start(self):
            raise SourceUnavailable("codecarbon is not installed", fix="pip install codecarbon")

    with pytest.raises(SourceUnavailable, match="no usable power source"):
        Measurement("x", output_dir=tmp_path, powercap_root=tmp_path / "none", nvml=FakeNvml([]), clock=clock,
                    estimator=Broken(clock), background=False).start()


def test_estimate_only_what_rapl_lacks(tmp_path, clock):
    machine = fake_machine(tmp_path, clock, gpu=False)
    with pytest.raises(UsageError, match="counts it twice"):
        session(tmp_path, machine, sources=["rapl", "estimate"], estimator=FakeEstimator(clock)).start()
    m = session(tmp_path, machine, sources=["rapl:package-0", "estimate:dram"], estimator=FakeEstimator(clock))
    with m:
        clock.advance(1.0)
    assert m.result.energy_method == {"total": "estimate", "cpu": "counter", "dram": "estimate", "gpu": None}
    assert m.result.estimated is True


def test_gpu_lost_mid_run_marks_its_interval_invalid_and_the_run_goes_on(tmp_path, clock):
    machine = fake_machine(tmp_path, clock)
    machine.nvml.gpus[0].lost_after = 3  # open, the baseline edge, one read
    with session(tmp_path, machine) as m:
        clock.advance(1.0)
        m.mark("before")
        clock.advance(1.0)
        with m.window("after-loss"):
            clock.advance(1.0)
    r = m.result
    assert r.status == "completed"
    gpu = next(s for s in r.sources if s["name"] == "nvml:0")
    assert gpu["valid"] is False and gpu["invalid_intervals"] and "GPU lost" in gpu["last_error"]
    assert r.energy_j["cpu"] == pytest.approx(120.0)  # the other sources are untouched
    window = next(w for w in r.windows if w["name"] == "after-loss")
    assert window["valid"] is False and window["invalid_sources"] == ["nvml:0"]
    assert r.results["valid"] is False


def test_interval_is_shortened_so_a_counter_cannot_wrap_unseen(tmp_path, clock):
    machine = fake_machine(tmp_path, clock, gpu=False)
    for zone in ("intel-rapl:0", "intel-rapl:0:2"):
        (machine.root / zone / "max_energy_range_uj").write_text("100000000\n")  # 100 J: wraps in 0.125 s at 800 W
    m = session(tmp_path, machine, interval_s=1.0)
    with m:
        clock.advance(0.01)
    assert m.interval_s == pytest.approx(100 / 800 / 4) and m.requested_interval_s == 1.0
    assert load(m.folder, "config.json")["interval_s"] == pytest.approx(0.03125)


def test_rank_tags_come_from_torchrun_and_slurm(tmp_path, clock, monkeypatch):
    for var, value in {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "SLURM_JOB_ID": "1234"}.items():
        monkeypatch.setenv(var, value)
    machine = fake_machine(tmp_path, clock, gpu=False)
    with session(tmp_path, machine) as m:
        clock.advance(0.1)
    rank = m.result.results["rank"]
    assert {k: rank[k] for k in ("rank", "local_rank", "world_size", "job_id")} == {
        "rank": 3, "local_rank": 1, "world_size": 4, "job_id": "1234"}
    assert rank["host"]


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="not positive"):
        Measurement("x", interval_s=0)
    with pytest.raises(UsageError, match="negative"):
        Measurement("x", baseline_s=-1)
    with pytest.raises(UsageError, match="country"):
        Measurement("x", country="XYZ")
    with pytest.raises(UsageError, match="unknown experiment kind"):
        Measurement("x", kind="benchmark")
    with pytest.raises(UsageError, match="unknown power source"):
        Measurement("x", output_dir=tmp_path, sources=["battery"]).start()


def test_a_session_runs_once(tmp_path, clock):
    machine = fake_machine(tmp_path, clock, gpu=False)
    m = session(tmp_path, machine)
    with m:
        clock.advance(0.1)
    with pytest.raises(MleeError, match="runs once"):
        m.start()


def test_ctrl_c_during_the_baseline_keeps_what_was_measured(tmp_path, clock):
    machine = fake_machine(tmp_path, clock, gpu=False)

    def interrupted_sleep(seconds):
        clock.advance(seconds / 2)
        raise KeyboardInterrupt

    m = Measurement("b", output_dir=tmp_path / "results", powercap_root=machine.root, nvml=machine.nvml,
                    clock=clock, sleep=interrupted_sleep, background=False, baseline_s=4.0)
    with pytest.raises(KeyboardInterrupt):
        m.start()
    results = load(m.folder, "results.json")
    assert results["status"] == "interrupted" and results["energy_j"]["cpu"] == pytest.approx(80.0)


def test_zones_left_out_of_the_default_set_are_recorded(tmp_path, clock):
    machine = fake_machine(tmp_path, clock, gpu=False)
    with session(tmp_path, machine, sources=["rapl"]) as m:
        clock.advance(0.1)
    skipped = {s["name"]: s for s in m.result.results["skipped_sources"]}
    assert "part of its package" in skipped["rapl:package-0-core"]["reason"]
    assert "--source rapl:package-0-core" in skipped["rapl:package-0-core"]["fix"]


def test_carbon_follows_country_and_pue(tmp_path, clock):
    from mlee.carbon import intensity_for

    machine = fake_machine(tmp_path, clock)  # 1470 J over 6 s, see above
    with session(tmp_path, machine, country="FRA", pue=1.5) as m:
        clock.advance(6.0)
    carbon = load(m.result.folder, "results.json")["carbon"]
    fra = intensity_for("FRA")
    assert carbon["country"] == "FRA" and carbon["pue"] == 1.5 and carbon["estimated"] is True
    assert carbon["emissions_g"] == pytest.approx(1470.0 / 3.6e6 * 1.5 * fra.g_per_kwh)
    assert "codecarbon" in carbon["source"] and carbon["year"] == fra.year
    assert "carbon_reason" not in load(m.result.folder, "results.json")  # only said when there is no figure
    with pytest.raises(UsageError, match="PUE"):
        session(tmp_path, machine, pue=0.9)


def test_no_carbon_figure_says_why(tmp_path, clock, monkeypatch):
    import mlee.carbon
    from mlee.errors import ResultFormatError

    machine = fake_machine(tmp_path, clock)
    with session(tmp_path, machine, country="FRA") as m:
        clock.advance(6.0)
        # The table goes missing while the run goes on: the energy stays, the carbon figure says why it is absent.
        monkeypatch.setattr(mlee.carbon, "intensity_for", lambda *a, **k: (_ for _ in ()).throw(
            ResultFormatError("cannot read codecarbon's carbon intensity table in /gone", "reinstall codecarbon")))
    results = load(m.result.folder, "results.json")
    assert results["energy_j"]["total"] == pytest.approx(1470.0) and results["carbon"] is None
    assert results["carbon_reason"] == "cannot read codecarbon's carbon intensity table in /gone (reinstall codecarbon)"
