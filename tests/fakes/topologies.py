"""Machines as they are in the field, re-created on fakes: powercap trees, NVML and AMD SMI GPUs.

A :class:`Rig` is a whole machine on a fake clock: every zone and GPU draws a constant power and its
counter moves whenever the clock does (mirrored zones show another zone's counter). :data:`SCENARIOS`
lists the topologies of issue 14 (D1-D9 and the ones that already came out right) with what auto-
detection must decide on each: the sources used (name -> method) and the devices skipped.

Units: watts; counters in micro-joules (RAPL), milli-joules (NVML) and AMD SMI ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pynvml

from fakes.amdsmi import FakeAmdGpu, FakeAmdSmi
from fakes.clock import FakeClock
from fakes.nvml import FakeGpu, FakeNvml
from fakes.powercap import INTEL_RANGE_UJ, Zone, make_powercap_tree, set_energy


@dataclass
class _RaplZone:
    zone_id: str
    name: str
    watts: float
    mirror_of: str | None
    range_uj: int
    energy: str  # "ok", "absent" (no energy_uj file), "garbage" (unreadable text)
    max_file: bool


class Rig:
    """One fake machine; build it with the ``zone``/``nvidia``/``amd`` calls, then :meth:`build`."""

    def __init__(self, root: Path, clock: FakeClock) -> None:
        self.root, self.clock = root, clock
        self.zones: list[_RaplZone] = []
        self.nvml = FakeNvml([])
        self.amdsmi = FakeAmdSmi([])
        self.env: dict[str, str] = {}
        self.uj: dict[str, float] = {}
        self.gpu_mj: list[float] = []
        self.amd_j: list[float] = []
        self._gpu_w: list[float] = []
        self._amd_w: list[float] = []
        self.built = False

    # -- parts -----------------------------------------------------------------------------------
    def zone(self, zone_id: str, name: str, watts: float = 20.0, mirror_of: str | None = None,
             range_uj: int = INTEL_RANGE_UJ, energy: str = "ok", max_file: bool = True) -> Rig:
        self.zones.append(_RaplZone(zone_id, name, watts, mirror_of, range_uj, energy, max_file))
        return self

    def nvidia(self, name: str = "NVIDIA A100-SXM4-40GB", watts: float = 200.0, counter: bool = True,
               energy_error: int | None = None, power: bool = True, stale: bool = False,
               mig: tuple[str, ...] = ()) -> Rig:
        i = len(self.gpu_mj)
        self.gpu_mj.append(5_000_000.0)
        self._gpu_w.append(watts)
        energy: Callable | None = (lambda: 5_000_000) if stale else (lambda: round(self.gpu_mj[i]))
        self.nvml.gpus.append(FakeGpu(
            name=name, uuid=f"GPU-{i}{i}{i}{i}-0000-1111", energy_mj=energy if counter else None,
            power_mw=(lambda: round(self._gpu_w[i] * 1000)) if power else None, energy_error=energy_error,
            mig_uuids=list(mig)))
        return self

    def amd(self, watts: float = 300.0, counter: bool = True, stale: bool = False, power: bool = True,
            old_api: bool = False) -> Rig:
        i = len(self.amd_j)
        self.amd_j.append(1000.0)
        self._amd_w.append(watts)
        resolution_uj = 15.3
        ticks: Callable | None = ((lambda: 1000 * 1e6 / resolution_uj) if stale
                                  else (lambda: self.amd_j[i] * 1e6 / resolution_uj))
        self.amdsmi.gpus.append(FakeAmdGpu(
            uuid=f"GPU-amd{i}-0000", energy_ticks=ticks if counter else None, resolution_uj=resolution_uj,
            power_w=(lambda: self._amd_w[i]) if power else None, old_api=old_api))
        return self

    # -- time ------------------------------------------------------------------------------------
    def build(self) -> Rig:
        """Write the powercap tree and move every counter with the clock."""
        zones = [Zone(z.zone_id, z.name, 0 if z.energy == "ok" else None, z.range_uj if z.max_file else None)
                 for z in self.zones]
        controls = sorted({z.zone_id.split(":")[0] for z in self.zones}) or ["intel-rapl"]
        make_powercap_tree(self.root, zones, tuple(controls))
        for k, z in enumerate(self.zones):
            if z.energy == "garbage":
                (self.root / z.zone_id / "energy_uj").write_text("not a number\n")
            # independent counters run from different values (energy since boot), as on real machines
            self.uj[z.zone_id] = 1e9 * (k + 1) + 12345.0 * k
            if z.energy == "ok":
                set_energy(self.root, z.zone_id, int(self.uj[z.mirror_of or z.zone_id]) % z.range_uj)
        state = {"t_s": self.clock()}

        def move(now_s: float) -> None:
            dt_s, state["t_s"] = now_s - state["t_s"], now_s
            for z in self.zones:
                if z.mirror_of is None:
                    self.uj[z.zone_id] += z.watts * dt_s * 1e6
            for z in self.zones:
                if z.energy != "ok":
                    continue
                value = self.uj[z.mirror_of or z.zone_id]
                set_energy(self.root, z.zone_id, int(round(value)) % z.range_uj)
            for i, watts in enumerate(self._gpu_w):
                self.gpu_mj[i] += watts * dt_s * 1e3
            for i, watts in enumerate(self._amd_w):
                self.amd_j[i] += watts * dt_s

        self.clock.listeners.append(move)
        self.built = True
        return self

    def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)


@dataclass
class Scenario:
    """A topology and what auto-detection must decide on it."""

    key: str
    origin: str
    make: Callable[[Rig], Rig]
    used: dict[str, str]
    skipped: set[str] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)

    def rig(self, root: Path, clock: FakeClock) -> Rig:
        rig = self.make(Rig(root, clock)).build()
        rig.env = dict(self.env)
        return rig


C, P = "counter", "power_integration"
NOT_FOUND, UNKNOWN = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, pynvml.NVML_ERROR_UNKNOWN
MIG = "MIG-5c1f2a3b-0000-1111-2222-333333333333"


def _intel_server(r: Rig) -> Rig:
    for p in (0, 1):
        r.zone(f"intel-rapl:{p}", f"package-{p}", 60 + p).zone(f"intel-rapl:{p}:0", "core", 30)
        r.zone(f"intel-rapl:{p}:1", "dram", 8).zone(f"intel-rapl-mmio:{p}", f"package-{p}", mirror_of=f"intel-rapl:{p}")
    return r


SCENARIOS = [
    # --- the ones that failed (issue 14, D1-D9) ---------------------------------------------------------
    Scenario("D1-amd-multi-die-mirror", "codecarbon #1274, #1379",
             lambda r: r.zone("intel-rapl:0", "package-0-die-0", 68).zone("intel-rapl:1", "package-0-die-1",
                                                                            mirror_of="intel-rapl:0"),
             {"rapl:package-0-die-0": C}, {"rapl:package-0-die-1"}),
    Scenario("D1-intel-dies-independent", "Intel Xeon 6 with two compute dies",
             lambda r: r.zone("intel-rapl:0", "package-0-die-0", 50).zone("intel-rapl:1", "package-0-die-1", 45),
             {"rapl:package-0-die-0": C, "rapl:package-0-die-1": C}),
    Scenario("D2-dram-without-energy-file", "codecarbon test_non_main_rapl_permission",
             lambda r: r.zone("intel-rapl:0", "package-0").zone("intel-rapl:0:2", "dram", energy="absent"),
             {"rapl:package-0": C}, {"rapl:package-0-dram"}),
    Scenario("D2-second-package-unreadable", "Zeus RAPL exceptions",
             lambda r: r.zone("intel-rapl:0", "package-0").zone("intel-rapl:1", "package-1", energy="garbage"),
             {"rapl:package-0": C}, {"rapl:package-1"}),
    Scenario("D3-a6000-and-gt710", "a workstation with a display GPU",
             lambda r: r.zone("intel-rapl:0", "package-0").nvidia("NVIDIA RTX A6000").nvidia(
                 "NVIDIA GeForce GT 710", counter=False, power=False),
             {"rapl:package-0": C, "nvml:0": C}, {"nvml:1"}),
    Scenario("D4-counter-function-not-found", "codecarbon test_gpu_not_ready",
             lambda r: r.nvidia(energy_error=NOT_FOUND), {"nvml:0": P}, {"rapl"}),
    Scenario("D4-counter-unknown-error", "codecarbon test_gpu_not_ready",
             lambda r: r.nvidia(energy_error=UNKNOWN), {"nvml:0": P}, {"rapl"}),
    Scenario("D4-counter-that-never-moves", "issue 14 item 3",
             lambda r: r.nvidia(stale=True), {"nvml:0": P}, {"rapl"}),
    Scenario("D5-mig-instance", "codecarbon maps MIG to its parent; Zeus refuses it",
             lambda r: r.nvidia().nvidia(mig=(MIG,)), {"nvml:1": C}, {"rapl"}, {"CUDA_VISIBLE_DEVICES": MIG}),
    Scenario("D9-tpmi-only", "newer Intel server parts",
             lambda r: r.zone("intel-rapl-tpmi:0", "package-0").zone("intel-rapl-tpmi:1", "package-1", 55),
             {"rapl:tpmi-package-0": C, "rapl:tpmi-package-1": C}),
    Scenario("D9-tpmi-twin-of-msr", "Granite Rapids with both drivers loaded",
             lambda r: r.zone("intel-rapl:0", "package-0").zone("intel-rapl-tpmi:0", "package-0",
                                                                  mirror_of="intel-rapl:0"),
             {"rapl:package-0": C}, {"rapl:tpmi-package-0"}),
    # --- AMD GPUs (issue 14 item 9) ------------------------------------------------------------------
    Scenario("amd-counter", "ROCm 6.3+", lambda r: r.amd(), {"amdsmi:0": C}, {"rapl", "nvml"}),
    Scenario("amd-stale-counter", "ROCm before 6.3 (ROCm/amdsmi#22)", lambda r: r.amd(stale=True),
             {"amdsmi:0": P}, {"rapl", "nvml"}),
    Scenario("amd-no-counter", "a GPU without the energy accumulator", lambda r: r.amd(counter=False),
             {"amdsmi:0": P}, {"rapl", "nvml"}),
    Scenario("amd-old-api-key", "amdsmi before 6.2.1 returns the counter as 'power'",
             lambda r: r.amd(old_api=True), {"amdsmi:0": C}, {"rapl", "nvml"}),
    Scenario("amd-hip-visible", "HIP_VISIBLE_DEVICES=1", lambda r: r.amd().amd(), {"amdsmi:1": C}, {"rapl", "nvml"},
             {"HIP_VISIBLE_DEVICES": "1"}),
    Scenario("amd-rocr-then-hip", "ROCR_VISIBLE_DEVICES=1,2 then HIP_VISIBLE_DEVICES=1", lambda r: r.amd().amd().amd(),
             {"amdsmi:2": C}, {"rapl", "nvml"}, {"ROCR_VISIBLE_DEVICES": "1,2", "HIP_VISIBLE_DEVICES": "1"}),
    # --- the ones that already came out right ---------------------------------------------------------
    Scenario("intel-laptop-psys-left-out", "pyJoules, codecarbon",
             lambda r: r.zone("intel-rapl:0", "package-0").zone("intel-rapl:0:0", "core").zone(
                 "intel-rapl:0:1", "uncore").zone("intel-rapl:1", "psys", 30),
             {"rapl:package-0": C}, {"rapl:package-0-core", "rapl:package-0-uncore", "rapl:psys"}),
    Scenario("intel-server-msr-mmio-twins", "Zeus, codecarbon", _intel_server,
             {"rapl:package-0": C, "rapl:package-0-dram": C, "rapl:package-1": C, "rapl:package-1-dram": C},
             {"rapl:package-0-core", "rapl:package-1-core", "rapl:mmio-package-0", "rapl:mmio-package-1"}),
    Scenario("amd-epyc-core-subzone", "codecarbon AMD", lambda r: r.zone("intel-rapl:0", "package-0").zone(
        "intel-rapl:0:0", "core"), {"rapl:package-0": C}, {"rapl:package-0-core"}),
    Scenario("psys-only", "pyJoules", lambda r: r.zone("intel-rapl:0", "psys"), {"rapl:psys": C}),
    Scenario("mmio-only", "Zeus", lambda r: r.zone("intel-rapl-mmio:0", "package-0"), {"rapl:mmio-package-0": C}),
    Scenario("same-label-mirror", "codecarbon #1274 (older kernels)",
             lambda r: r.zone("intel-rapl:0", "package-0").zone("intel-rapl:1", "package-0", mirror_of="intel-rapl:0"),
             {"rapl:package-0": C}, {"rapl:package-0-intel-rapl-1"}),
    Scenario("unreadable-max-range", "codecarbon max_energy_range_uj permission",
             lambda r: r.zone("intel-rapl:0", "package-0", max_file=False), {"rapl:package-0": C}),
    Scenario("pre-volta-gpu", "carbontracker, Zeus", lambda r: r.nvidia("Tesla P100", counter=False),
             {"nvml:0": P}, {"rapl"}),
    Scenario("cuda-visible-index", "CUDA_VISIBLE_DEVICES=1", lambda r: r.nvidia().nvidia(), {"nvml:1": C}, {"rapl"},
             {"CUDA_VISIBLE_DEVICES": "1"}),
    Scenario("cuda-visible-uuid-prefix", "CUDA_VISIBLE_DEVICES=GPU-1111", lambda r: r.nvidia().nvidia(),
             {"nvml:1": C}, {"rapl"}, {"CUDA_VISIBLE_DEVICES": "GPU-1111"}),
    Scenario("cuda-visible-cut-at-bad-entry", "CUDA stops at the first bad entry", lambda r: r.nvidia().nvidia(),
             {"nvml:0": C}, {"rapl"}, {"CUDA_VISIBLE_DEVICES": "0,7,1"}),
    Scenario("cuda-visible-empty", "CUDA_VISIBLE_DEVICES=''", lambda r: r.zone("intel-rapl:0", "package-0").nvidia(),
             {"rapl:package-0": C}, {"nvml"}, {"CUDA_VISIBLE_DEVICES": ""}),
    Scenario("gpu-without-counter-or-power", "a display-only GPU",
             lambda r: r.zone("intel-rapl:0", "package-0").nvidia(counter=False, power=False),
             {"rapl:package-0": C}, {"nvml:0"}),
]
