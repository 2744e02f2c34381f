"""RAPL through powercap trees built under tmp_path: naming, default set, wrap-around, failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.powercap import Zone, amd_epyc, intel_laptop, intel_server, make_powercap_tree, set_energy
from mlee.errors import SourcePermissionError, SourceReadError, SourceUnavailable, UsageError
from mlee.vocabulary import Domain, Method
from mlee.monitors.rapl import (
    PERMISSION_FIX,
    default_zones,
    discover_zones,
    open_rapl,
    powercap_root,
    probe_rapl,
    select_zones,
)


def names(sources) -> list[str]:
    return [s.name for s in sources]


def test_root_comes_from_env_then_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(tmp_path / "env"))
    assert powercap_root() == tmp_path / "env"
    assert powercap_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MLEE_POWERCAP_ROOT")
    assert powercap_root() == Path("/sys/class/powercap")


def test_two_packages_default_set_is_packages_and_dram_without_core_or_mmio(tmp_path):
    root = intel_server(tmp_path / "pc", packages=2)
    sources = open_rapl(root)
    assert names(sources) == ["rapl:package-0", "rapl:package-0-dram", "rapl:package-1", "rapl:package-1-dram"]
    assert [s.domain for s in sources] == [Domain.cpu, Domain.dram, Domain.cpu, Domain.dram]
    _, skipped = default_zones(discover_zones(root))
    reasons = {z.source_name: why for z, why in skipped}
    assert "MMIO duplicate" in reasons["rapl:mmio-package-0"]
    assert "part of its package" in reasons["rapl:package-1-core"]


def test_psys_is_never_taken_together_with_package(tmp_path):
    root = intel_laptop(tmp_path / "pc")
    assert names(open_rapl(root)) == ["rapl:package-0"]
    _, skipped = default_zones(discover_zones(root))
    assert any(z.label == "psys" and "count the CPU twice" in why for z, why in skipped)
    with pytest.raises(UsageError, match="psys includes the package"):
        select_zones(discover_zones(root), ["rapl:psys", "rapl:package-0"])
    (psys,) = open_rapl(root, names=["rapl:psys"])
    assert psys.domain is Domain.system


def test_psys_alone_is_used_when_there_is_no_package(tmp_path):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "psys")])
    assert names(open_rapl(root)) == ["rapl:psys"]


def test_mmio_zone_without_msr_twin_is_kept(tmp_path):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl-mmio:0", "package-0")], ("intel-rapl-mmio",))
    assert names(open_rapl(root)) == ["rapl:mmio-package-0"]


def test_amd_naming_package_with_core_subzone_and_no_dram(tmp_path):
    root = amd_epyc(tmp_path / "pc")
    (source,) = open_rapl(root)
    assert source.name == "rapl:package-0" and source.domain is Domain.cpu and source.method is Method.counter
    assert source.detail["max_energy_range_uj"] == 65532610987


def test_mirrored_package_counters_are_counted_once(tmp_path):
    # Multi-die AMD parts can show one socket counter twice under the same name.
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0"), Zone("intel-rapl:1", "package-0")])
    assert names(open_rapl(root)) == ["rapl:package-0"]


def test_nested_layout_is_found(tmp_path):
    root = tmp_path / "pc"
    make_powercap_tree(root / "intel-rapl", [Zone("intel-rapl:0", "package-0")], control_types=())
    make_powercap_tree(root / "intel-rapl" / "intel-rapl:0", [Zone("intel-rapl:0:1", "dram")], control_types=())
    assert names(open_rapl(root)) == ["rapl:package-0", "rapl:package-0-dram"]


def test_counter_delta_and_single_wrap(tmp_path, clock):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 900_000, 1_000_000)])
    (src,) = open_rapl(root, clock=clock)
    set_energy(root, "intel-rapl:0", 950_000)
    assert src.read().energy_j == pytest.approx(0.05)
    set_energy(root, "intel-rapl:0", 20_000)  # wrapped: 50_000 to the top, then 20_000
    assert src.read().energy_j == pytest.approx(0.12)
    assert src.detail["wraps"] == 1


def test_several_wraps_in_one_run_are_exact(tmp_path, clock):
    max_uj = 1_000_000
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0, max_uj)])
    (src,) = open_rapl(root, clock=clock)
    raw, total_uj = 0, 0
    for _ in range(25):  # 25 x 300_000 uJ = 7.5 J: seven wraps
        raw = (raw + 300_000) % max_uj
        total_uj += 300_000
        set_energy(root, "intel-rapl:0", raw)
        reading = src.read()
    assert reading.energy_j == pytest.approx(total_uj / 1e6, abs=1e-9)
    assert src.detail["wraps"] == 7


def test_interval_limit_is_a_quarter_wrap_at_the_highest_plausible_power(tmp_path):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0, 4_000_000_000)])
    (src,) = open_rapl(root)
    # 4000 J range at 800 W plausible package power: one wrap per 5 s, so read at least every 1.25 s
    assert src.max_interval_s == pytest.approx(1.25)
    (root / "intel-rapl:0" / "constraint_0_max_power_uw").write_text("1000000000\n")  # a 1 kW part
    (src2,) = open_rapl(root)
    assert src2.max_interval_s == pytest.approx(4000 / 1500 / 4)


def test_unreadable_max_makes_a_wrapped_interval_invalid_not_negative(tmp_path, clock):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 900_000, None)])
    (src,) = open_rapl(root, clock=clock)
    assert src.max_interval_s is None
    set_energy(root, "intel-rapl:0", 950_000)
    assert src.read().energy_j == pytest.approx(0.05)
    set_energy(root, "intel-rapl:0", 10_000)
    with pytest.raises(SourceReadError, match="max_energy_range_uj is unreadable"):
        src.read()
    set_energy(root, "intel-rapl:0", 30_000)  # anchored again at the failed read: the next interval is good
    assert src.read().energy_j == pytest.approx(0.07)


def test_missing_energy_file_mid_run_is_an_invalid_interval(tmp_path, clock):
    root = make_powercap_tree(tmp_path / "pc", [Zone("intel-rapl:0", "package-0", 0)])
    (src,) = open_rapl(root, clock=clock)
    (root / "intel-rapl:0" / "energy_uj").unlink()
    with pytest.raises(SourceReadError):
        src.read()
    (root / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    with pytest.raises(SourceReadError):
        src.read()
    set_energy(root, "intel-rapl:0", 5_000_000)
    assert src.read().energy_j == 0.0  # re-anchored: the unknown gap adds nothing
    set_energy(root, "intel-rapl:0", 6_000_000)
    assert src.read().energy_j == pytest.approx(1.0)


def test_no_tree_is_unavailable_with_a_fix(tmp_path):
    with pytest.raises(SourceUnavailable, match="does not exist") as info:
        open_rapl(tmp_path / "absent")
    assert "MLEE_POWERCAP_ROOT" in info.value.fix
    probes, usable = probe_rapl(tmp_path / "absent")
    assert not usable and not probes[0].available and "modprobe" in probes[0].fix


def test_unknown_zone_name_is_a_usage_error(tmp_path):
    root = intel_laptop(tmp_path / "pc")
    with pytest.raises(UsageError, match="no RAPL zone named 'rapl:nope'"):
        open_rapl(root, names=["rapl:nope"])


def _unreadable_tree(base: Path) -> Path:
    root = make_powercap_tree(base, [Zone("intel-rapl:0", "package-0", 123)])
    os.chmod(root / "intel-rapl:0" / "energy_uj", 0o000)  # root-only since Linux 5.10 (0400 root)
    return root


PROBE = (
    "import sys; from mlee.monitors.rapl import open_rapl; from mlee.errors import SourcePermissionError\n"
    "try:\n    open_rapl(sys.argv[1])\nexcept SourcePermissionError as e:\n    print('PERM', e.fix); sys.exit(4)\n"
)


def test_permission_denied_names_the_fix(tmp_path):
    root = _unreadable_tree(tmp_path / "pc")
    if os.geteuid() != 0:
        with pytest.raises(SourcePermissionError) as info:
            open_rapl(root)
        assert info.value.fix == PERMISSION_FIX
        return
    # As root the file mode does not stop us; drop the capabilities that let root read anything.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing, cannot drop CAP_DAC_OVERRIDE")
    caps = "-dac_override,-dac_read_search"
    proc = subprocess.run([setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", sys.executable, "-c", PROBE,
                           str(root)], capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "root only since Linux 5.10" in proc.stdout and "udev" in proc.stdout and "chmod" in proc.stdout
