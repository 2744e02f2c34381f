"""codecarbon's estimate: the real tracker once (offline), the sharing logic with a fake."""

from __future__ import annotations

import os
import sys

import pytest

from fakes.estimator import FakeEstimator
from mlee.carbon import resolve_country
from mlee.errors import UsageError
from mlee.monitors.estimate import open_estimate, probe_estimate
from mlee.vocabulary import Domain, Method


def test_country_defaults_and_validation(monkeypatch):
    assert resolve_country(None) == "DEU"
    monkeypatch.setenv("MLEE_COUNTRY", "fra")
    assert resolve_country(None) == "FRA"
    assert resolve_country("usa") == "USA"
    with pytest.raises(UsageError, match="alpha-3"):
        resolve_country("Germany")
    (probe,) = probe_estimate("ZZZ")
    assert not probe.available and "ZZZ" in probe.reason


def test_probe_does_not_import_codecarbon():
    before = "codecarbon" in sys.modules
    (probe,) = probe_estimate("DEU")
    assert probe.available
    assert ("codecarbon" in sys.modules) == before


def test_cpu_and_dram_share_one_tracker_and_edges_are_exact(clock):
    estimator = FakeEstimator(clock, cpu_w=12.0, ram_w=4.0)
    cpu, dram = open_estimate("DEU", estimator, clock=clock)
    assert (cpu.domain, dram.domain) == (Domain.cpu, Domain.dram)
    assert cpu.method is Method.estimate and cpu.name == "estimate:cpu" and dram.name == "estimate:dram"
    clock.advance(2.5)
    assert cpu.read().energy_j == pytest.approx(30.0)
    assert dram.read().energy_j == pytest.approx(10.0)
    measures = estimator.measures
    clock.advance(1.0)
    assert cpu.close().energy_j == pytest.approx(42.0) and dram.close().energy_j == pytest.approx(14.0)
    assert estimator.measures == measures + 1  # dram reused cpu's update of the same instant
    assert estimator.started == 1 and estimator.stopped == 1
    assert cpu.detail["estimate"] is True and cpu.detail["codecarbon_method"] == "cpu_load"


def test_real_codecarbon_tracker_offline():
    """One real OfflineEmissionsTracker: quiet, offline (the socket guard is on), method and TDP recorded."""
    import time

    cpu, dram = open_estimate("DEU")
    assert os.environ.get("CODECARBON_LOG_LEVEL")
    time.sleep(0.3)
    first_cpu, first_dram = cpu.read().energy_j, dram.read().energy_j
    assert first_cpu > 0 and first_dram > 0  # an estimate grows with time, it is never a silent 0
    detail = cpu.detail
    assert detail["codecarbon_method"] in ("cpu_load", "constant") and detail["tdp_w"] > 0
    assert detail["codecarbon_version"] and dram.detail["codecarbon_method"] == "ram_power_model"
    cpu.close()
    dram.close()
