"""Real-hardware checks: they run on a machine with readable RAPL counters or an NVIDIA GPU and skip elsewhere.

Everything else in the suite drives fakes; these prove the same code reads the real interfaces.
"""

from __future__ import annotations

import glob
import os
import time

import pytest

from mlee.measure.session import Measurement

pytestmark = pytest.mark.hardware


def _readable_rapl() -> bool:
    root = os.environ.get("MLEE_POWERCAP_ROOT", "/sys/class/powercap")
    return any(os.access(p, os.R_OK) for p in glob.glob(os.path.join(root, "intel-rapl:*", "energy_uj")))


def _nvml_gpus() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - any failure means: no usable NVML here
        return 0


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


@pytest.mark.skipif(not _readable_rapl(), reason="no readable RAPL counter (powercap) on this machine")
def test_real_rapl_measures_a_busy_loop(tmp_path):
    with Measurement("hw-rapl", sources=["rapl"], output_dir=tmp_path) as m:
        _busy(1.0)
    r = m.result
    assert r.energy_j["cpu"] > 0 and r.energy_method["cpu"] == "counter" and r.estimated is False
    assert all(s["valid"] for s in r.sources)


@pytest.mark.skipif(_nvml_gpus() == 0, reason="no NVIDIA GPU reachable through NVML on this machine")
def test_real_nvml_measures_the_gpus(tmp_path):
    with Measurement("hw-nvml", sources=["nvml"], output_dir=tmp_path) as m:
        time.sleep(1.0)
    r = m.result
    assert r.energy_j["gpu"] > 0 and r.energy_method["gpu"] in ("counter", "power_integration")
    assert {s["domain"] for s in r.sources} == {"gpu"}
    assert all(s["detail"].get("uuid") for s in r.sources)
