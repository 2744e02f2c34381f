"""A stand-in for codecarbon behind mlee's Estimator interface: constant power on an injected clock."""

from __future__ import annotations

from collections.abc import Callable


class FakeEstimator:
    """cpu and ram energy grow at fixed powers on ``clock``.

    Units: watts, seconds, joules.
    """

    def __init__(self, clock: Callable[[], float], cpu_w: float = 10.0, ram_w: float = 3.0) -> None:
        self.clock, self.cpu_w, self.ram_w = clock, cpu_w, ram_w
        self.t0_s: float | None = None
        self.started = self.stopped = 0
        self.measures = 0

    def start(self) -> None:
        self.started += 1
        self.t0_s = self.clock()

    def measure(self) -> tuple[float, float]:
        assert self.t0_s is not None, "measure() before start()"
        self.measures += 1
        elapsed_s = self.clock() - self.t0_s
        return self.cpu_w * elapsed_s, self.ram_w * elapsed_s

    def stop(self) -> None:
        self.stopped += 1

    def describe(self) -> dict:
        return {"country": "DEU", "codecarbon_version": "fake",
                "cpu": {"codecarbon_method": "cpu_load", "tdp_w": 65.0, "cpu_model": "Fake CPU"},
                "ram": {"codecarbon_method": "ram_power_model", "power_w": self.ram_w}}
