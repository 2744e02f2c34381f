"""NVML through a fake module with the real pynvml error classes."""

from __future__ import annotations

import pynvml
import pytest

from fakes.nvml import FakeGpu, FakeNvml
from mlee.errors import SourcePermissionError, SourceReadError, SourceUnavailable
from mlee.monitors.nvml import NvmlSource, detect_nvml, open_nvml, probe_nvml, visible_indices
from mlee.vocabulary import Method


def test_counter_gpu_reports_joules_since_open(clock):
    gpu = FakeGpu(energy_mj=[5_000_000, 5_000_400, 5_001_500, 5_004_000])  # the 2nd read: the counter check
    nvml = FakeNvml([gpu])
    (src,) = open_nvml(nvml, clock=clock, env={}, sleep=clock.sleep)
    assert src.method is Method.counter and src.first_reading.energy_j == 0.0
    clock.advance(1.0)
    reading = src.read()
    assert reading.energy_j == pytest.approx(1.5) and reading.power_w == pytest.approx(1.5 / 1.25)  # 0.25 s check
    clock.advance(1.0)
    assert src.close().energy_j == pytest.approx(4.0)
    assert src.detail["uuid"] == gpu.uuid and src.detail["driver"] == "550.54.15"
    assert nvml.initialised == 0  # nvmlShutdown after the last source closed
    assert nvml.calls.count("nvmlDeviceGetPowerUsage") == 1  # once at open, to judge the counter check


def test_pre_volta_gpu_falls_back_to_power_readings(clock):
    nvml = FakeNvml([FakeGpu(name="Tesla P100", energy_mj=None, power_mw=[40_000, 60_000])])
    (src,) = open_nvml(nvml, clock=clock, env={})
    assert src.method is Method.power_integration
    assert src.first_reading.power_w == 40.0 and src.first_reading.energy_j is None
    assert "trapezoid" in src.detail["nvml_function"]
    src.close()


def test_gpu_without_energy_or_power_is_unavailable():
    class NoPower(FakeNvml):
        def nvmlDeviceGetPowerUsage(self, gpu):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    nvml = NoPower([FakeGpu(energy_mj=None)])
    with pytest.raises(SourceUnavailable, match="no energy counter either"):
        open_nvml(nvml, env={})
    probes, usable = probe_nvml(nvml, env={})
    assert usable == [] and not probes[0].available and "Not Supported" in probes[0].reason
    assert nvml.initialised == 0


def test_gpu_lost_mid_run_raises_a_read_error(clock):
    nvml = FakeNvml([FakeGpu(energy_mj=[0, 500, 1000, 2000], lost_after=4)])  # open: energy, power; check
    (src,) = open_nvml(nvml, clock=clock, env={}, sleep=clock.sleep)
    clock.advance(1.0)
    assert src.read().energy_j == pytest.approx(1.0)
    with pytest.raises(SourceReadError, match="GPU lost"):
        src.read()
    with pytest.raises(SourceReadError):
        src.close()
    assert nvml.initialised == 0  # released even though the final read failed


def test_no_driver_is_unavailable_with_the_fix():
    nvml = FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(SourceUnavailable, match="no NVIDIA driver") as info:
        open_nvml(nvml, env={})
    assert "nvidia-ml-py" in info.value.fix
    probes, usable = probe_nvml(nvml, env={})
    assert not usable and "no NVIDIA driver" in probes[0].reason


def test_no_permission_is_a_permission_error():
    nvml = FakeNvml([FakeGpu()], init_error=pynvml.NVML_ERROR_NO_PERMISSION)
    with pytest.raises(SourcePermissionError):
        open_nvml(nvml, env={})


def test_cuda_visible_devices_indices_uuids_and_cut_off():
    gpus = [FakeGpu(uuid=f"GPU-{i}{i}{i}-abc") for i in range(4)]
    nvml = FakeNvml(gpus)
    nvml.nvmlInit()
    assert visible_indices(nvml, {})[0] == [0, 1, 2, 3]
    assert visible_indices(nvml, {"CUDA_VISIBLE_DEVICES": "2,0"})[0] == [2, 0]
    assert visible_indices(nvml, {"CUDA_VISIBLE_DEVICES": "GPU-333,1"})[0] == [3, 1]
    assert visible_indices(nvml, {"CUDA_VISIBLE_DEVICES": "1,7,2"})[0] == [1]  # CUDA stops at a bad entry
    assert visible_indices(nvml, {"CUDA_VISIBLE_DEVICES": ""})[0] == []
    assert visible_indices(nvml, {"CUDA_VISIBLE_DEVICES": "-1"})[0] == []


def test_open_honours_cuda_visible_devices(clock):
    nvml = FakeNvml([FakeGpu(uuid="GPU-a"), FakeGpu(uuid="GPU-b")])
    sources = open_nvml(nvml, clock=clock, env={"CUDA_VISIBLE_DEVICES": "1"})
    assert [s.name for s in sources] == ["nvml:1"]
    with pytest.raises(SourceUnavailable, match="no NVIDIA GPU visible"):
        open_nvml(nvml, env={"CUDA_VISIBLE_DEVICES": ""})
    sources[0].close()


def test_source_object_is_lazy_about_pynvml():
    src = NvmlSource(0, nvml=FakeNvml([FakeGpu()]))
    assert src.name == "nvml:0" and src.first_reading is None  # nothing touched before open()


def test_a_gpu_lost_between_open_and_the_counter_check_degrades_alone(clock):
    # GPU 1 answers open (energy, power) and is lost at the counter check; GPU 0 stays usable.
    gpus = [FakeGpu(energy_mj=[0, 500, 1000, 2000]), FakeGpu(energy_mj=[0, 500, 1000, 2000], lost_after=2)]
    found = detect_nvml(FakeNvml(gpus), clock=clock, sleep=clock.sleep, env={})
    assert [s.name for s in found.sources] == ["nvml:0"]
    lost = found.probes[1]
    assert lost.name == "nvml:1" and not lost.available and "GPU is lost" in lost.reason and lost.detail == {"index": 1}
    nvml = FakeNvml([FakeGpu(energy_mj=[0, 500, 1000, 2000], lost_after=2)])
    with pytest.raises(SourceUnavailable, match="GPU is lost"):  # a GPU the user asked for must work
        detect_nvml(nvml, clock=clock, sleep=clock.sleep, env={}, strict=True)
    assert nvml.initialised == 0
