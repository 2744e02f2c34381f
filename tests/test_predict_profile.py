"""Kernel profiling under a real session (fake power source), then fitting from the folders it wrote."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from mlee.cli import app

torch = pytest.importorskip("torch")

from mlee.predict import kernels as K  # noqa: E402
from mlee.predict.grids import grid  # noqa: E402
from mlee.predict.profile import ProfileSettings, profile_kernels, stats  # noqa: E402

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}
FAST = ProfileSettings(cv_threshold=0.5, min_repeats=2, max_repeats=3, min_window_s=0.004, warmup_calls=1,
                       probe=False)


def _session_kwargs():
    from fakes.estimator import FakeEstimator

    return {"estimator": FakeEstimator(time.monotonic, cpu_w=10.0, ram_w=3.0)}


def _tiny_configs():
    return {
        "fc": [K.KernelConfig.make("fc", batch=1, fin=16, fout=8), K.KernelConfig.make("fc", batch=2, fin=64, fout=32),
               K.KernelConfig.make("fc", batch=1, fin=128, fout=16),
               K.KernelConfig.make("fc", batch=4, fin=32, fout=8)],
        "relu": [K.KernelConfig.make("relu", batch=1, c=c, h=h, w=h) for c, h in ((4, 4), (8, 8), (16, 8), (8, 16))],
    }


def test_stats_median_and_robust_cv():
    st = stats([1.0, 1.0, 1.0, 10.0])  # one window slowed down by another process
    assert st["median"] == 1.0 and st["robust_cv"] == 0.0
    assert st["cv"] > 1.0  # the plain CV would call this unstable
    assert stats([2.0])["std"] is None and stats([2.0])["robust_cv"] is None


def test_profile_writes_points_that_fit_into_a_predictor(tmp_path):
    configs = _tiny_configs()
    seen = []
    results = profile_kernels(("fc", "relu"), configs, "quick", FAST, str(tmp_path), sources="estimate",
                              on_point=lambda cfg, point: seen.append(cfg.key()), threads=1,
                              session_kwargs=_session_kwargs())
    assert [r.status for r in results] == ["completed", "completed"]
    assert sorted(seen) == sorted(c.key() for cs in configs.values() for c in cs)
    saved = json.loads((results[0].folder / "results.json").read_text())
    assert saved["kind"] == "profile" and saved["model"] == "fc"
    prof = saved["profile"]
    assert prof["kernel"] == "fc" and prof["torch_threads"] == 1 and len(prof["points"]) == 4
    config = json.loads((results[0].folder / "config.json").read_text())
    assert prof["allocator"]["mode"] == "steady" and config["allocator"] == prof["allocator"]
    windows = {w["name"]: w for w in saved["windows"]}
    for point in prof["points"]:
        assert 2 <= point["repeats"] <= 3 and point["finished"] is True
        assert point["energy_method"] == "estimate" and point["power_w"] > 0
        for name in point["windows"]:  # every repeat is an ordinary measured window
            assert name.startswith(point["config"] + "#") and windows[name]["measured"] is True
        assert windows[point["windows"][0]]["n_samples"] % point["batch"] == 0  # whole calls of the batch
    # fit straight from the results folder (no merge needed), then predict with it
    out = tmp_path / "pred.json"
    res = CliRunner().invoke(app, ["fit", str(tmp_path), "-o", str(out)], env=ENV)
    assert res.exit_code == 0, res.output
    assert "fc" in res.output and "relu" in res.output and "RMSPE" in res.output
    data = json.loads(out.read_text())
    assert sorted(data["kernels"]) == ["fc", "relu"]
    assert data["basis"]["energy_method"] == "estimate" and data["fingerprint"]["torch_threads"] == 1
    assert data["fingerprint"]["allocator"] == "steady"  # what predict --measure sets up to check it
    assert data["kernels"]["fc"]["n_points"] == 4
    # the same points as layer data: exported, then fit again from the CSV alone
    csv_path, again = tmp_path / "layers.csv", tmp_path / "again.json"
    res = CliRunner().invoke(app, ["fit", str(tmp_path), "-o", str(out), "--export", str(csv_path)], env=ENV)
    assert res.exit_code == 0 and "wrote 8 point(s)" in res.output
    rows = csv_path.read_text().splitlines()
    assert len(rows) == 9 and rows[1].startswith("fc,") and ",estimate," in rows[1]
    res = CliRunner().invoke(app, ["fit", str(csv_path), "-o", str(again), "--json"], env=ENV)
    assert res.exit_code == 0, res.output
    redo = json.loads(again.read_text())
    a, b = redo["kernels"]["fc"]["time_s"], data["kernels"]["fc"]["time_s"]  # same points, another order
    assert a["model"] == b["model"] and a["quality"]["rmspe"] == pytest.approx(b["quality"]["rmspe"])
    assert redo["basis"]["energy_method"] == "estimate"


def test_speed_probe_is_recorded_between_rounds_and_gives_the_drift(tmp_path):
    from dataclasses import replace

    from mlee.predict.probe import drift
    from mlee.predict.training import load_records, probes_from_records

    configs = {"fc": _tiny_configs()["fc"][:1]}
    settings = replace(FAST, probe=True, min_repeats=2, max_repeats=2)
    (res,) = profile_kernels(("fc",), configs, "quick", settings, str(tmp_path), sources="estimate", threads=1,
                             session_kwargs=_session_kwargs())
    probes = res.results["profile"]["probe_s"]
    assert len(probes) == 3 and all(p > 0 for p in probes)  # before the first round, after each of two
    records, _ = load_records(tmp_path)
    assert probes_from_records(records, {res.id}) == sorted(probes)
    assert drift(2 * sorted(probes)[1], probes) == pytest.approx(2.0)
    assert drift(None, probes) is None and drift(1.0, []) is None


def test_interrupted_profile_keeps_what_it_measured(tmp_path):
    configs = {"relu": _tiny_configs()["relu"]}
    calls = []

    def stop_after_two(cfg, point):
        calls.append(cfg)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        profile_kernels(("relu",), configs, "quick", FAST, str(tmp_path), sources="estimate",
                        on_point=stop_after_two, session_kwargs=_session_kwargs())
    (folder,) = list(tmp_path.iterdir())
    saved = json.loads((folder / "results.json").read_text())
    assert saved["status"] == "interrupted"
    points = saved["profile"]["points"]
    assert len(points) >= 2  # finished or not, every configuration with a window is kept
    assert sum(p["finished"] for p in points) >= 2


def test_profile_cli_bad_inputs_and_listing():
    res = CliRunner().invoke(app, ["profile", "--kernels", "fc,dwconv"], env=ENV)
    assert res.exit_code == 2 and "unknown kernel kind 'dwconv'" in res.output and "dwconv-bn-relu" in res.output
    res = CliRunner().invoke(app, ["profile", "--grid", "huge"], env=ENV)
    assert res.exit_code == 2 and "unknown grid 'huge'" in res.output
    res = CliRunner().invoke(app, ["profile", "--cv", "2", "--kernels", "fc", "--limit", "1"], env=ENV)
    assert res.exit_code == 2 and "CV threshold 2" in res.output
    res = CliRunner().invoke(app, ["profile", "-k", "fc", "--list", "--json"], env=ENV)
    assert res.exit_code == 0
    listed = json.loads(res.stdout)
    assert [row["config"] for row in listed] == [c.key() for c in grid("fc", "quick")]


def test_fit_cli_bad_inputs(tmp_path):
    res = CliRunner().invoke(app, ["fit", str(tmp_path / "missing.json")], env=ENV)
    assert res.exit_code == 2 and "does not exist" in res.output
    res = CliRunner().invoke(app, ["fit", str(tmp_path)], env=ENV)
    assert res.exit_code == 2 and "no profiled kernels found" in res.output
    res = CliRunner().invoke(app, ["fit", str(tmp_path), "--kind", "forest"], env=ENV)
    assert res.exit_code == 2 and "unknown predictor kind 'forest'" in res.output
