"""MLP sweeps: network shapes and sizes, cache sizes from the machine, the cache-aware fit and a tiny real sweep."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import MleeError, UsageError
from mlee.predict import sweep as S
from mlee.predict.cache import CacheSizes, read_cache_sizes
from mlee.predict.sweepfit import fit_sweep

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


@pytest.mark.parametrize("shape", S.SHAPES)
@pytest.mark.parametrize("size, depth", [(1000, 1), (10_000, 3), (100_000, 6)])
def test_widths_reach_the_target_size_with_the_shape(shape, size, depth):
    widths = S.widths_for(shape, size, depth, 64, 10)
    assert len(widths) == depth
    assert abs(S.parameter_count(64, widths, 10) - size) / size < 0.05
    if depth > 1:
        if shape in ("rectangle", "residual"):
            assert len(set(widths)) == 1
        elif shape in ("trapezoid", "exponential"):
            assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
        else:  # wide_first
            assert widths[0] >= 1.8 * widths[1] and len(set(widths[1:])) == 1


def test_parameter_count_and_unreachable_sizes():
    assert S.parameter_count(64, [10], 10) == 64 * 10 + 10 + 10 * 10 + 10
    assert S.widths_for("rectangle", 50, 8, 64, 10) is None  # even width 1 needs more parameters (99)
    nets, notes = S.plan(["rectangle"], [50, 5000], [1, 8], 64, 10, 32)
    assert [n.name for n in nets] == ["rectangle-s5000-d1", "rectangle-s5000-d8"]
    assert len(notes) == 2 and "too few" in notes[0]


def test_parsing_and_bad_input():
    assert S.parse_sizes("1e3, 10k,1M,1000") == [1000, 10_000, 1_000_000]
    assert S.parse_ints("4,1,2", "depths") == [1, 2, 4]
    with pytest.raises(UsageError, match="size '12q'"):
        S.parse_sizes("12q")
    with pytest.raises(UsageError, match="did you mean trapezoid"):
        S.parse_shapes("rectangle,trapezoyd")
    with pytest.raises(UsageError, match="depths"):
        S.parse_ints("0,2", "depths")
    with pytest.raises(UsageError, match="did you mean digits"):
        S.load_dataset("digit")


def test_network_features():
    net = S.Network("rectangle", 1000, 2, (10, 10), 64, 10, 32)
    assert net.flops_per_sample == 6.0 * (64 * 10 + 10 * 10 + 10 * 10)
    params = S.parameter_count(64, [10, 10], 10)
    assert net.working_set_bytes == 4 * (4 * params + 32 * (64 + 20 + 10) * 2)


def test_cache_sizes_from_sysfs_tree_and_from_lscpu(tmp_path):
    for i, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                             ("2", "Unified", "1024K"), ("3", "Unified", "32768K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    sizes = read_cache_sizes(tmp_path)
    assert (sizes.l1d, sizes.l2, sizes.l3, sizes.source) == (48 * 1024, 2**20, 32 * 2**20, "sysfs")
    assert sizes.level_of(40_000) == "l1d" and sizes.level_of(2**20) == "l2" and sizes.level_of(2**26) == "dram"
    lscpu = "L1d cache:   96 KiB (2 instances)\nL1i cache: 64 KiB (2 instances)\nL2 cache: 2 MiB (2 instances)\n" \
            "L3 cache: 32 MiB (1 instance)\n"
    from_lscpu = read_cache_sizes(tmp_path / "absent", lscpu_text=lscpu)
    assert (from_lscpu.l1d, from_lscpu.l2, from_lscpu.l3, from_lscpu.source) == (48 * 1024, 2**20, 32 * 2**20, "lscpu")
    with pytest.raises(MleeError, match="cache sizes cannot be read"):
        read_cache_sizes(tmp_path / "absent", lscpu_text="nothing useful")


def _synthetic_networks(cache: CacheSizes) -> list[dict]:
    """Energy per FLOP doubles once the working set leaves L2 (what BUTTER-E saw)."""
    nets = []
    for i, (flops, ws) in enumerate([(1e4, 2e4), (3e4, 3e4), (1e5, 4e4), (3e5, 3e5), (1e6, 6e5), (3e6, 9e5),
                                     (1e7, 4e6), (3e7, 8e6), (1e8, 2e7), (3e8, 3e7)]):
        level = cache.level_of(ws)
        per_flop = 1e-9 if level in ("l1d", "l2") else 2e-9
        nets.append({"name": f"n{i}", "depth": 1 + i % 3, "flops_per_sample": flops, "working_set_bytes": ws,
                     "parameters": int(flops / 6), "cache_level": level,
                     "per_sample": {"energy_j": 1e-5 + 2e-6 * (1 + i % 3) + per_flop * flops}})
    return nets


def test_cache_aware_fit_finds_the_break_the_flops_model_misses():
    cache = CacheSizes(48 * 1024, 2**20, 32 * 2**20, "test")
    fit = fit_sweep(_synthetic_networks(cache), cache)
    cache_aware, flops_only = fit["models"]["cache-aware"], fit["models"]["flops"]
    assert cache_aware["rmspe"] < 1e-6 < flops_only["rmspe"]
    per_level = {lv["level"]: lv["j_per_gflop"] for lv in fit["levels"]}
    assert per_level["l2"] == pytest.approx(1.0, rel=1e-6) and per_level["l3"] == pytest.approx(2.0, rel=1e-6)
    (brk,) = fit["breaks"]
    assert (brk["from"], brk["to"]) == ("l2", "l3") and brk["ratio"] == pytest.approx(2.0, rel=1e-6)
    assert "1 MiB" in brk["text"]
    assert fit["models"]["cache-aware"]["coefficients"]["j_per_layer"] == pytest.approx(2e-6, rel=1e-6)


def test_too_few_networks_fit_nothing():
    cache = CacheSizes(1, 2, 3, "test")
    fit = fit_sweep(_synthetic_networks(CacheSizes(48 * 1024, 2**20, 32 * 2**20, "t"))[:3], cache)
    assert fit["n_points"] == 3 and "note" in fit and "models" not in fit


def test_tiny_sweep_trains_under_measurement(tmp_path):
    pytest.importorskip("torch")
    from fakes.estimator import FakeEstimator

    from mlee.predict.builders import torch_threads

    cache = CacheSizes(48 * 1024, 2**20, 32 * 2**20, "test")
    nets, _ = S.plan(["rectangle", "exponential"], [2000, 6000], [1, 2], 64, 10, 64)
    with torch_threads(1):
        result, data = S.run_sweep(nets, "synthetic", epochs=1, min_window_s=0.0, cache=cache,
                                   output_dir=str(tmp_path), sources="estimate",
                                   session_kwargs={"estimator": FakeEstimator(time.monotonic)})
    assert result.status == "completed"
    saved = json.loads((result.folder / "results.json").read_text())
    assert saved["kind"] == "sweep" and len(saved["sweep"]["networks"]) == 8
    windows = {w["name"] for w in saved["windows"]}
    for net in saved["sweep"]["networks"]:
        assert net["window"] in windows and net["epochs"] == 1 and net["n_samples"] == 1600
        assert net["per_sample"]["energy_j"] > 0 and net["energy_method"] == "estimate"
        assert 0.0 <= net["test_top1"] <= 1.0
    assert saved["sweep"]["fit"]["n_points"] == 8 and "flops" in saved["sweep"]["fit"]["models"]
    assert data == saved["sweep"]


def test_sweep_cli_lists_and_rejects():
    res = CliRunner().invoke(app, ["sweep", "--list", "--sizes", "1e3,1e5", "--depths", "1,2", "--json"], env=ENV)
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert len(rows) == 16 and {r["cache_level"] for r in rows} <= {"l1d", "l2", "l3", "dram"}
    res = CliRunner().invoke(app, ["sweep", "--shapes", "round", "--list"], env=ENV)
    assert res.exit_code == 2 and "unknown shape 'round'" in res.output
    res = CliRunner().invoke(app, ["sweep", "--dataset", "mnist", "--list"], env=ENV)
    assert res.exit_code == 2 and "unknown sweep dataset 'mnist'" in res.output


def test_nnls_matches_least_squares_when_unconstrained_and_clamps_otherwise():
    import numpy as np

    from mlee.predict.sweepfit import nnls

    rng = np.random.default_rng(0)
    A = rng.uniform(0, 1, (30, 3))
    x_true = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(nnls(A, A @ x_true), x_true, atol=1e-9)
    b = A @ np.array([2.0, -0.5, 1.0])  # the best unconstrained fit has a negative coefficient
    x = nnls(A, b)
    assert x.min() >= 0 and x[1] == 0.0 and x[0] > 0 and x[2] > 0
    # optimality (KKT): zero gradient on the free coefficients, none pointing into x < 0 on the clamped one
    grad = A.T @ (b - A @ x)
    assert grad[1] <= 1e-9 and np.allclose(grad[[0, 2]], 0.0, atol=1e-9)
