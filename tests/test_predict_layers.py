"""Per-layer breakdown: own-time accounting, energy attribution by the power trace, and a real session."""

from __future__ import annotations

import json
import time

import pytest

torch = pytest.importorskip("torch")

from mlee.commands._predict_tables import render_breakdown  # noqa: E402
from mlee.runners.layers import (  # noqa: E402
    AGREEMENT_TOLERANCE,
    LayerTimer,
    PowerTrace,
    attribute,
    profile_layers,
    trace_from_csvs,
)
from mlee.commands._predict_tables import render_breakdown  # noqa: E402


class StepClock:
    """Each read moves time forward by the next step (so every layer edge has a distinct, known time)."""

    def __init__(self, steps: list[float]) -> None:
        self.steps, self.t, self.i = steps, 0.0, 0

    def __call__(self) -> float:
        self.t += self.steps[self.i % len(self.steps)]
        self.i += 1
        return self.t


class Block(torch.nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(width, width, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(width)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)) + x)  # the add and relu are the block's own calls


def small_net(width: int = 4) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(), Block(width),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(width, 5)).eval()


def test_own_times_partition_the_forward_pass_exactly():
    model = small_net()
    clock = StepClock([1.0])  # every read is one second later
    with LayerTimer(model, clock=clock) as timer, torch.no_grad():
        for _ in range(3):
            model(torch.zeros(1, 3, 8, 8))
    own = {}
    for idx, a, b in timer.segments:
        assert b > a
        own[timer.names[idx]] = own.get(timer.names[idx], 0.0) + (b - a)
    calls_per_pass = sum(timer.calls) // 3
    # a pass reads the clock twice per module call; the root spans all reads but its first
    assert sum(own.values()) == pytest.approx(3 * (2 * calls_per_pass - 1))
    assert timer.calls[timer.names.index("2")] == 3 and timer.calls[timer.names.index("2.conv")] == 3
    assert own["2"] > 0  # the block's own add + relu are charged to the block, not lost
    assert not model._forward_hooks and not model[2].conv._forward_pre_hooks  # hooks removed afterwards


def test_energy_follows_the_power_trace_not_just_time():
    timer = LayerTimer(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.ReLU()))
    timer.names, timer.types, timer.calls = ["", "0", "1"], ["Sequential", "ReLU", "ReLU"], [1, 1, 1]
    timer.segments = [(1, 0.0, 1.0), (2, 1.0, 2.0)]  # layer 0 runs in [0, 1] s, layer 1 in [1, 2] s
    # 10 W during the first second, 30 W during the second
    trace = PowerTrace((0.0, 1.0, 2.0), (0.0, 10.0, 40.0))
    window = {"name": "w", "start_s": 0.0, "end_s": 2.0, "energy_j": {"total": 40.0},
              "energy_method": {"total": "counter"}}
    by_trace = attribute(timer, window, 0.0, trace, n_samples=4)
    assert [r["energy_j"] for r in by_trace["layers"]] == pytest.approx([10.0, 30.0])
    assert by_trace["attribution"] == "power trace" and by_trace["agreement"] == pytest.approx(1.0)
    assert by_trace["layers"][1]["per_sample"] == {"time_ms": pytest.approx(250.0), "energy_j": pytest.approx(7.5)}
    by_time = attribute(timer, window, 0.0, None, n_samples=4)
    assert [r["energy_j"] for r in by_time["layers"]] == pytest.approx([20.0, 20.0])
    assert by_time["attribution"] == "time"
    # a window without an energy figure keeps times and says n/a, never 0
    no_energy = attribute(timer, {**window, "energy_j": {"total": None}}, 0.0, trace, n_samples=4)
    assert [r["energy_j"] for r in no_energy["layers"]] == [None, None]


def test_gap_outside_layers_is_reported_and_breaks_agreement():
    timer = LayerTimer(torch.nn.ReLU())
    timer.names, timer.types, timer.calls = [""], ["ReLU"], [1]
    timer.segments = [(0, 0.0, 0.8)]
    window = {"name": "w", "start_s": 0.0, "end_s": 1.0, "energy_j": {"total": 10.0}, "energy_method": {}}
    out = attribute(timer, window, 0.0, None, n_samples=1)
    assert out["outside_layers"]["energy_j"] == pytest.approx(2.0)
    assert out["agreement"] == pytest.approx(0.8) and out["within_tolerance"] is False


def test_trace_from_csvs_sums_counter_and_power_sources(tmp_path):
    (tmp_path / "a.csv").write_text("t_s,energy_j,power_w,valid\n0,0,,1\n1,5,,1\n2,10,,1\n3,99,,0\n")
    (tmp_path / "b.csv").write_text("t_s,energy_j,power_w,valid\n0,,2,1\n2,,2,1\n")
    trace = trace_from_csvs([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert float(trace.energy(2.0)) == pytest.approx(14.0)  # 10 J counted + 2 W x 2 s integrated
    assert float(trace.energy(1.0)) == pytest.approx(7.0)
    assert trace_from_csvs([tmp_path / "b.csv"]) is not None
    (tmp_path / "c.csv").write_text("t_s,energy_j,power_w,valid\n0,0,,1\n")
    assert trace_from_csvs([tmp_path / "c.csv"]) is None  # one row is no trace


def test_profile_layers_in_a_real_session_sums_to_the_window(tmp_path):
    from fakes.estimator import FakeEstimator

    import mlee
    from mlee.predict.builders import torch_threads

    model = small_net(width=32)  # enough work per batch that the loop between batches stays well under 5 %
    x = torch.randn(8, 3, 32, 32)
    with torch_threads(1), mlee.measure("layers", kind="infer", output_dir=tmp_path, sources="estimate",
                                        estimator=FakeEstimator(time.monotonic, cpu_w=10.0, ram_w=3.0)) as m:
        breakdown = profile_layers(model, [x] * 10, m, "per-layer")
        m.add_results(per_layer=breakdown)
    assert abs(1 - breakdown["agreement"]) <= AGREEMENT_TOLERANCE
    assert breakdown["within_tolerance"] is True
    assert breakdown["n_samples"] == 80 and breakdown["energy_method"] == "estimate"
    assert breakdown["backend"] == "pytorch" and breakdown["device"] == "cpu"
    names = [r["name"] for r in breakdown["layers"]]
    assert names[:3] == ["(model)", "0", "1"] and "2.conv" in names and "5" in names
    total = breakdown["layers_sum"]["energy_j"] + breakdown["outside_layers"]["energy_j"]
    assert total == pytest.approx(breakdown["energy_j"])
    saved = json.loads((m.result.folder / "results.json").read_text())
    assert saved["per_layer"]["layers"][0]["name"] == "(model)"
    window = next(w for w in saved["windows"] if w["name"] == "per-layer")
    assert window["measured"] is False and window["n_samples"] == 80
    assert breakdown["energy_j"] == window["energy_j"]["total"] > 0  # the exact-edge figure is what is spread
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(render_breakdown(breakdown, top=3))
    text = console.export_text()
    assert "sum of layers" in text and "smaller layers not shown" in text and "estimate" in text
    assert "(pytorch; energy by power trace" in text
