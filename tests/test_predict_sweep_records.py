"""BUTTER-E scale sweeps: wider grids, the residual shape, resuming an interrupted sweep, importing records."""

from __future__ import annotations

import csv
import json
import time

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import UsageError
from mlee.predict import sweep as S
from mlee.predict.cache import CacheSizes
from mlee.predict.sweepimport import parse_caches, read_sweep_records

ENV = {"NO_COLOR": "1", "COLUMNS": "160"}
CACHE = CacheSizes(48 * 1024, 2**20, 32 * 2**20, "test")


def test_butter_scale_grid_syntax():
    assert S.parse_sizes("2^5..2^24") == [2 ** k for k in range(5, 25)]
    assert S.parse_sizes("2^10,1e3") == [1000, 1024]
    assert S.parse_ints("2..20", "depths") == list(range(2, 21))
    assert S.parse_ints("1,3..4", "depths") == [1, 3, 4]
    with pytest.raises(UsageError):
        S.parse_sizes("2^9..2^5")
    with pytest.raises(UsageError):
        S.parse_ints("4..x", "depths")
    nets, notes = S.plan(["residual"], S.parse_sizes("2^12..2^14"), S.parse_ints("2..3", "depths"), 64, 10, 32)
    assert len(nets) == 6 and all(len(set(n.widths)) == 1 for n in nets)


def test_residual_networks_add_their_input():
    torch = pytest.importorskip("torch")
    net = S.Network("residual", 5000, 3, (40, 40, 40), 64, 10, 32)
    model = S.build_mlp(net)
    plain = S.build_mlp(S.Network("rectangle", 5000, 3, (40, 40, 40), 64, 10, 32))
    plain.load_state_dict(model.state_dict())
    x = torch.randn(4, 64)
    assert model(x).shape == (4, 10)
    assert not torch.allclose(model(x), plain(x))  # the skips change the function
    assert sum(p.numel() for p in model.parameters()) == net.parameters


def test_resume_keeps_trained_networks_and_trains_only_the_rest(tmp_path):
    pytest.importorskip("torch")
    from fakes.estimator import FakeEstimator

    from mlee.predict.builders import torch_threads
    from mlee.results.folder import read_experiment

    nets, _ = S.plan(["rectangle"], [2000, 6000], [1, 2], 64, 10, 64)
    kw = dict(epochs=1, min_window_s=0.0, cache=CACHE, output_dir=str(tmp_path / "a"), sources="estimate",
              session_kwargs={"estimator": FakeEstimator(time.monotonic)})
    with torch_threads(1):
        first, _ = S.run_sweep(nets[:2], "synthetic", **kw)
        previous = S.resumable_entries(read_experiment(first.folder), "synthetic", 1, 64)
        assert [e["name"] for e in previous] == [n.name for n in nets[:2]]
        second, data = S.run_sweep(nets, "synthetic", **{**kw, "output_dir": str(tmp_path / "b")},
                                   previous=previous)
    saved = json.loads((second.folder / "results.json").read_text())
    trained = {w["name"] for w in saved["windows"]}
    assert trained == {n.name for n in nets[2:]}  # only the missing networks ran
    assert [e["name"] for e in data["networks"]] == [n.name for n in nets]
    assert data["networks"][0]["resumed_from"] == str(first.id) and "resumed_from" not in data["networks"][3]
    assert read_experiment(second.folder)["config"]["resumed"] == sorted(n.name for n in nets[:2])
    with pytest.raises(UsageError, match="resume with the same settings"):
        S.resumable_entries(read_experiment(first.folder), "digits", 1, 64)


def _write_records(path, rows):
    cols = ["size", "shape", "depth", "dataset", "epochs", "energy_j", "time_s", "device", "train_samples", "n_in",
            "n_out", "batch_size"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow(dict(zip(cols, r)))
    return path


def _records(device="A100"):
    rows = []
    for i, size in enumerate([2 ** k for k in range(8, 24, 2)]):
        for depth in (2, 4):
            net = S.Network("rectangle", size, depth, tuple(S.widths_for("rectangle", size, depth, 16, 2)), 16, 2, 32)
            level = CACHE.level_of(net.working_set_bytes)
            per_flop = 1e-9 if level in ("l1d", "l2") else 2e-9
            per_sample = 1e-5 + per_flop * net.flops_per_sample
            rows.append([size, "rectangle", depth, "wine", 3, per_sample * 3 * 60000, 1.0 + i, device, 60000, 16, 2,
                         32])
    return rows


def test_import_sweep_records_fits_the_cache_aware_model(tmp_path):
    from mlee.predict.sweepfit import fit_sweep

    path = _write_records(tmp_path / "runs.csv", _records())
    entries = read_sweep_records(path, CACHE)
    assert len(entries) == 16 and entries[0]["n_samples"] == 180000 and entries[0]["device"] == "A100"
    assert entries[0]["per_sample"]["energy_j"] == pytest.approx(entries[0]["energy_j"] / 180000)
    assert {e["cache_level"] for e in entries} >= {"l2", "l3"}
    fit = fit_sweep(entries, CACHE)
    assert fit["models"]["cache-aware"]["rmspe"] < 1e-6 < fit["models"]["flops"]["rmspe"]
    assert any(b["to"] in ("l3", "dram") for b in fit["breaks"])
    # two devices need a choice; a bad row is named by its line
    both = _write_records(tmp_path / "both.csv", _records() + _records("V100"))
    with pytest.raises(UsageError, match="2 devices"):
        read_sweep_records(both, CACHE)
    assert len(read_sweep_records(both, CACHE, device="V100")) == 16
    bad = _records()
    bad[1][1] = "round"
    with pytest.raises(UsageError, match="line 3: shape 'round'"):
        read_sweep_records(_write_records(tmp_path / "bad.csv", bad), CACHE)
    assert parse_caches("l1d=32K,l2=1M").l2 == 2 ** 20
    with pytest.raises(UsageError):
        parse_caches("l4=1M")


def test_sweep_import_cli(tmp_path):
    path = _write_records(tmp_path / "runs.csv", _records())
    res = CliRunner().invoke(app, ["sweep", "--import", str(path), "--caches", "l1d=48K,l2=1M,l3=32M", "--json"],
                             env=ENV)
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert len(body["networks"]) == 16 and body["cache_bytes"]["source"] == "given" and body["fit"]["models"]
    res = CliRunner().invoke(app, ["sweep", "--import", str(tmp_path / "none.csv"), "--caches", "l2=1M"], env=ENV)
    assert res.exit_code == 2 and "does not exist" in res.output
