"""Kernel kinds, configurations, features and the profiling grids."""

from __future__ import annotations

import pytest

from mlee.errors import UsageError
from mlee.predict import grids as G
from mlee.predict import kernels as K


def test_quick_grid_is_deterministic_bounded_and_a_subset_of_full():
    for kind in K.KERNEL_KINDS:
        quick = G.grid(kind, "quick")
        full = G.grid(kind, "full")
        assert quick == G.grid(kind, "quick")  # same order every time
        assert len(quick) == min(len(full), G.QUICK_PER_KIND.get(kind, G.QUICK_DEFAULT))
        full_keys = {c.key() for c in full}
        assert {c.key() for c in quick} <= full_keys
        assert len(full_keys) == len(full)  # no duplicates
        assert {c.get("batch") for c in full} == {1, 8}
        for cfg in full:
            f = cfg.features()
            assert f.get("macs", 0) <= G._MAX_MACS * cfg.get("batch")
            assert min(cfg.output_shape()) >= 1


def test_quick_grid_spans_every_feature_of_the_full_grid():
    for kind in K.KERNEL_KINDS:
        full, quick = G.grid(kind, "full"), G.grid(kind, "quick")
        for name in K.KIND_FEATURES[kind]:
            values = [c.features()[name] for c in full]
            assert min(c.features()[name] for c in quick) == min(values)
            assert max(c.features()[name] for c in quick) == max(values)


def test_enumerate_grid_keeps_kind_order():
    configs = G.enumerate_grid(("fc", "relu"), "quick")
    kinds = [c.kind for c in configs]
    assert kinds == ["fc"] * kinds.count("fc") + ["relu"] * kinds.count("relu")


def test_key_round_trip_and_features():
    cfg = K.KernelConfig.make("conv-bn-relu", batch=2, cin=64, h=56, w=56, cout=128, kh=3, kw=3, stride=2,
                              ph=1, pw=1)
    assert K.KernelConfig.from_key(cfg.key()) == cfg
    assert cfg.output_shape() == (2, 128, 28, 28)
    f = cfg.features()
    assert f["macs"] == 2 * 128 * 28 * 28 * 64 * 9
    assert f["params"] == 128 * 64 * 9
    assert f["in_elems"] == 2 * 64 * 56 * 56
    assert cfg.flops() == 2 * f["macs"]


def test_pool_ceil_mode_matches_pytorch():
    torch = pytest.importorskip("torch")
    for h, k, s, p in ((112, 3, 2, 0), (56, 3, 2, 1), (28, 2, 2, 0), (13, 3, 2, 0)):
        for ceil in (0, 1):
            cfg = K.KernelConfig.make("maxpool", batch=1, c=4, h=h, w=h, kh=k, kw=k, stride=s, ph=p, pw=p, ceil=ceil)
            out = torch.nn.functional.max_pool2d(torch.zeros(1, 4, h, h), k, s, p, ceil_mode=bool(ceil))
            assert tuple(out.shape) == cfg.output_shape()


def test_every_grid_kernel_builds_with_the_declared_output_shape():
    torch = pytest.importorskip("torch")
    from mlee.predict.builders import build_kernel

    for cfg in G.enumerate_grid(K.KERNEL_KINDS, "quick"):
        module, inputs = build_kernel(cfg, device="meta")
        with torch.no_grad():
            assert tuple(module(*inputs).shape) == cfg.output_shape(), cfg.key()


def test_unknown_kind_names_the_closest():
    with pytest.raises(UsageError) as info:
        K.parse_kinds("conv-bn-relu,conv-relu")
    assert "conv-relu" in str(info.value)
    assert "did you mean conv-bn-relu" in str(info.value)
    assert K.parse_kinds("relu, fc") == ("relu", "fc")  # profiling order, spaces ignored
    assert K.parse_kinds(None) == K.KERNEL_KINDS


@pytest.mark.parametrize("fields, words", [
    (dict(batch=1, fin=0, fout=3), "fin=0"),
    (dict(batch=1, fin=3), "missing ['fout']"),
    (dict(batch=1, fin=3, fout=3, extra=1), "unexpected ['extra']"),
])
def test_bad_configuration_is_a_usage_error(fields, words):
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        K.KernelConfig.make("fc", **fields)


def test_bad_key_and_empty_output():
    with pytest.raises(UsageError):
        K.KernelConfig.from_key("fc(batch=1)")
    with pytest.raises(UsageError, match="empty output"):
        K.KernelConfig.make("maxpool", batch=1, c=1, h=2, w=2, kh=3, kw=3, stride=1, ph=0, pw=0, ceil=0)
    with pytest.raises(UsageError, match="unknown grid"):
        G.grid("fc", "medium")
