"""A whole fake machine on a fake clock: RAPL counters and GPUs whose energy grows with time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fakes.clock import FakeClock
from fakes.nvml import FakeGpu, FakeNvml
from fakes.powercap import Zone, make_powercap_tree, set_energy


@dataclass
class FakeMachine:
    """RAPL package + dram and one counter GPU, drawing constant powers.

    Units: watts; counters in micro-joules (RAPL) and milli-joules (NVML).
    """

    root: Path
    nvml: FakeNvml
    clock: FakeClock
    package_w: float = 40.0
    dram_w: float = 5.0
    gpu_w: float = 200.0
    max_range_uj: int = 262143328850

    def attach(self) -> FakeMachine:
        """Move the counters whenever the clock moves; powers may be changed between steps."""
        state = {"t_s": self.clock(), "package_uj": 0.0, "dram_uj": 0.0, "gpu_mj": 0.0}

        def move(now_s: float) -> None:
            dt_s, state["t_s"] = now_s - state["t_s"], now_s
            state["package_uj"] += self.package_w * dt_s * 1e6
            state["dram_uj"] += self.dram_w * dt_s * 1e6
            state["gpu_mj"] += self.gpu_w * dt_s * 1e3
            set_energy(self.root, "intel-rapl:0", int(round(state["package_uj"])) % self.max_range_uj)
            set_energy(self.root, "intel-rapl:0:2", int(round(state["dram_uj"])) % self.max_range_uj)

        self.clock.listeners.append(move)
        self.state = state
        return self


def fake_machine(tmp_path: Path, clock: FakeClock, gpu: bool = True, **powers: float) -> FakeMachine:
    root = make_powercap_tree(tmp_path / "powercap", [Zone("intel-rapl:0", "package-0"), Zone("intel-rapl:0:0", "core"),
                                                      Zone("intel-rapl:0:2", "dram")])
    machine = FakeMachine(root, FakeNvml([]), clock, **powers).attach()
    if gpu:
        machine.nvml.gpus.append(FakeGpu(energy_mj=lambda: round(machine.state["gpu_mj"]),
                                         power_mw=lambda: round(machine.gpu_w * 1000)))
    return machine
