"""Cache features: a kernel's working set beyond one core's L2 and beyond the L3, kept where CV says they help."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mlee.errors import ResultFormatError
from mlee.predict.evaluate import evaluate, split_points
from mlee.predict.kernels import CACHE_FEATURES, KIND_FEATURES, KernelConfig, kind_features
from mlee.predict.predictor import load
from mlee.predict.training import Point, fit_predictor

L2, L3 = 1 << 20, 32 << 20
FP = {"cpu_model": "Test CPU", "torch_version": "9.9", "mlee_version": "0.1.0", "device": "cpu"}


def test_working_set_and_the_bytes_beyond_each_level():
    cfg = KernelConfig.make("fc", batch=1, fin=4096, fout=4096)  # 16.8M weights: 64 MiB of float32
    ws = 4.0 * (4096 + 4096 + 4096 * 4096)
    assert cfg.working_set_bytes() == ws
    f = cfg.feature_values((L2, L3))
    assert f["ws_beyond_l2"] == ws - L2 and f["ws_beyond_l3"] == ws - L3
    small = KernelConfig.make("fc", batch=1, fin=64, fout=64)
    assert small.feature_values((L2, L3))["ws_beyond_l3"] == 0.0
    assert cfg.feature_vector() == [cfg.features()[n] for n in KIND_FEATURES["fc"]]  # unchanged without caches
    assert cfg.feature_vector((L2, L3))[-2:] == [ws - L2, ws - L3]
    assert kind_features("fc", (L2, L3)) == KIND_FEATURES["fc"] + CACHE_FEATURES
    assert kind_features("relu", (L2, L3)) == KIND_FEATURES["relu"]  # only conv, depthwise conv and fc


def _fc_points(caches, seed=0):
    """fc kernels whose weights stream from DRAM 4x slower once the working set outgrows the L3."""
    rng = np.random.default_rng(seed)
    pts = []
    for fin in (64, 256, 512, 1024, 2048, 4096, 8192):
        for fout in (64, 256, 1000, 2048, 4096):
            for batch in (1, 8):
                cfg = KernelConfig.make("fc", batch=batch, fin=fin, fout=fout)
                f = cfg.features()
                t = 5e-6 + 1e-10 * f["macs"] + 1e-10 * f["params"] + 4e-10 * max(0.0, cfg.working_set_bytes() - L3)
                t *= 1 + 0.01 * rng.standard_normal()
                pts.append(Point(cfg, t, t, 25.0, "estimate", True, "rec", "env", FP, cache_bytes=caches))
    return pts


def test_fit_keeps_the_cache_features_where_they_help_and_the_file_round_trips(tmp_path):
    train, test = split_points(_fc_points((L2, L3)), 0.3, 1)
    with_caches = fit_predictor(train)
    km = with_caches.kinds["fc"]
    assert km.cache_bytes == (L2, L3) and km.features == KIND_FEATURES["fc"] + CACHE_FEATURES
    without = fit_predictor([replace(p, cache_bytes=None) for p in train])
    assert without.kinds["fc"].cache_bytes is None and without.kinds["fc"].features == KIND_FEATURES["fc"]
    mape = {name: next(s.mape for s in evaluate(pred, test) if s.target == "runtime")
            for name, pred in (("with", with_caches), ("without", without))}
    assert mape["with"] < 0.05 < mape["without"]

    path = tmp_path / "p.json"
    with_caches.save(path)
    loaded, _ = load(path)
    assert loaded.kinds["fc"].cache_bytes == (L2, L3)
    cfg = test[0].config
    assert loaded.kinds["fc"].vector(cfg) == km.vector(cfg)
    assert loaded.kinds["fc"].time_s.model.predict([km.vector(cfg)])[0] == pytest.approx(
        km.time_s.model.predict([km.vector(cfg)])[0])
    data = json.loads(path.read_text())
    data["kernels"]["fc"]["cache_bytes"] = {"l2": "1 MiB", "l3": L3}
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFormatError, match="cache_bytes"):
        load(path)


def test_cache_features_that_do_not_help_are_left_out():
    # no cache effect in these runtimes: cross-validation keeps the plain features
    pts = [replace(p, time_s=5e-6 + 2e-10 * p.config.features()["macs"],
                   cpu_time_s=5e-6 + 2e-10 * p.config.features()["macs"]) for p in _fc_points((L2, L3))]
    assert fit_predictor(pts).kinds["fc"].cache_bytes is None
    # points from machines with different caches never mix them
    mixed = pts[:35] + [replace(p, cache_bytes=(L2, 2 * L3)) for p in pts[35:]]
    assert fit_predictor(mixed).kinds["fc"].cache_bytes is None
