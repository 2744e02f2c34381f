"""The profiling grids: which configurations of each kernel kind ``mlee profile`` measures.

``full`` is every configuration of a product over the sizes ImageNet CNNs use (channels tied to the
spatial size, kernel sizes and strides as networks combine them), bounded so one call stays under
roughly 0.1 s on a small CPU; ``quick`` is a deterministic subset that keeps every cost feature's range.
Pure Python and deterministic.
"""

from __future__ import annotations

import hashlib

from mlee.errors import UsageError
from mlee.predict.kernels import KIND_FEATURES, KernelConfig, check_kind


#: Grid names, and how many configurations ``quick`` keeps per kind (``full`` keeps all). Convolutions
#: get the most because they dominate a CNN's runtime and have the most features; depthwise convolutions
#: keep the whole full grid (152), which their shape correction needs (with 80 points their held-out MAPE
#: was 15-21 %, with all of them 13.7 %), and fully connected layers 160 of their 286 (docs/prediction.md).
GRIDS = ("quick", "full")
QUICK_PER_KIND: dict[str, int] = {"conv-bn-relu": 90, "dwconv-bn-relu": 152, "fc": 160}
QUICK_DEFAULT = 24

_SPATIAL = (7, 14, 28, 56, 112, 224)
_CHANNELS = (16, 32, 64, 128, 256, 512, 1024, 2048)  # elementwise kernels and pooling
#: Bounds that keep one call of a grid kernel under roughly 0.1 s on a small CPU.
_MAX_MACS = 1.2e9
_MAX_ELEMS = 1.6e7


#: Input channels that occur at each spatial size in ImageNet CNNs (wide at low resolution, narrow at high):
#: a grid over combinations no network uses would spend the profile where no prediction is asked.
_CONV_CHANNELS = {224: (3,), 112: (3, 16, 32, 64), 56: (16, 32, 64, 128, 256), 28: (64, 128, 256, 512),
                  14: (128, 256, 512, 1024), 7: (256, 512, 1024, 2048)}
_DW_CHANNELS = {112: (16, 32, 64, 96), 56: (64, 96, 144, 240), 28: (96, 144, 192, 288), 14: (192, 384, 576, 672),
                7: (576, 960, 1152)}


def _conv_grid(batches: tuple[int, ...]) -> list[KernelConfig]:
    out = []
    for batch in batches:
        for h, cins in _CONV_CHANNELS.items():
            for cin in cins:
                couts = (16, 32, 64) if cin == 3 else sorted({max(16, min(2048, int(cin * r)))
                                                               for r in (0.25, 0.5, 1, 2, 4)})
                for cout in couts:
                    for k, stride in ((1, 1), (1, 2), (3, 1), (3, 2), (5, 1), (7, 2), (11, 4)):
                        if (k in (7, 11)) != (cin == 3) and not (cin == 3 and k == 3):
                            continue  # large kernels are network stems; stems read 3 channels
                        if (k, stride) == (1, 2) and cout < cin:
                            continue  # strided 1x1 convolutions are residual downsamples, which widen
                        if k == 5 and h > 56:
                            continue
                        cfg = KernelConfig.make("conv-bn-relu", batch=batch, cin=cin, h=h, w=h, cout=cout,
                                                kh=k, kw=k, stride=stride, ph=k // 2, pw=k // 2)
                        if _within_bounds(cfg):
                            out.append(cfg)
    return out


def _dwconv_grid(batches: tuple[int, ...]) -> list[KernelConfig]:
    out = []
    for batch in batches:
        for h, channels in _DW_CHANNELS.items():
            for c in channels:
                for k, stride in ((3, 1), (3, 2), (5, 1), (5, 2)):
                    cfg = KernelConfig.make("dwconv-bn-relu", batch=batch, c=c, h=h, w=h, mult=1, kh=k, kw=k,
                                            stride=stride, ph=k // 2, pw=k // 2)
                    if _within_bounds(cfg):
                        out.append(cfg)
    return out


def _elementwise_grid(kind: str, batches: tuple[int, ...]) -> list[KernelConfig]:
    out = []
    for batch in batches:
        for h in _SPATIAL:
            for c in _CHANNELS:
                cfg = KernelConfig.make(kind, batch=batch, c=c, h=h, w=h)
                if _within_bounds(cfg):
                    out.append(cfg)
    return out


def _pool_grid(kind: str, batches: tuple[int, ...]) -> list[KernelConfig]:
    out = []
    for batch in batches:
        for h in _SPATIAL:
            for c in _CHANNELS:
                windows = [(2, 2, 0), (3, 2, 1), (3, 1, 1)] + ([(h, 1, 0)] if kind == "avgpool" else [])
                for k, stride, pad in windows:
                    if k > h:
                        continue
                    cfg = KernelConfig.make(kind, batch=batch, c=c, h=h, w=h, kh=k, kw=k, stride=stride,
                                            ph=pad, pw=pad, ceil=0)
                    if _within_bounds(cfg):
                        out.append(cfg)
    return out


def _fc_grid(batches: tuple[int, ...]) -> list[KernelConfig]:
    """Fully connected layers: the widths networks use (512 ResNet18, 768 ViT, 1280 MobileNetV2, 3072
    transformer blocks, 9216 and 25088 AlexNet and VGG) between powers of two.

    The runtime of a layer does not follow its costs smoothly in its input width (on the project's
    2-core machine 256 inputs ran 2-3 times as slowly per weight as 25088 at batch 1), so the shape
    correction needs neighbours on both sides of a layer to predict it: on one profile, held-out runtime
    MAPE was 12.9 % with the 96 layers of 8 x 6 widths this grid had before, 9.9 % with the quick grid's
    160 of these 286 and 8.0 % with all of them.
    """
    fins = (64, 128, 256, 512, 768, 1000, 1024, 1280, 2048, 3072, 4096, 9216, 25088)
    fouts = (64, 128, 256, 512, 768, 1000, 1024, 1280, 2048, 3072, 4096)
    out = []
    for batch in batches:
        for fin in fins:
            for fout in fouts:
                cfg = KernelConfig.make("fc", batch=batch, fin=fin, fout=fout)
                if cfg.features()["params"] <= 1.1e8:
                    out.append(cfg)
    return out


def _concat_grid(batches: tuple[int, ...]) -> list[KernelConfig]:
    out = []
    for batch in batches:
        for h in _SPATIAL:
            for c in _CHANNELS[1:]:
                for n in (2, 4, 8):
                    if c % n:
                        continue
                    cfg = KernelConfig.make("concat", batch=batch, c=c, h=h, w=h, n=n)
                    if _within_bounds(cfg):
                        out.append(cfg)
    return out


def _within_bounds(cfg: KernelConfig) -> bool:
    f = cfg.features()
    elems = max(f.get("in_elems", 0.0), f.get("out_elems", 0.0), f.get("elems", 0.0))
    return f.get("macs", 0.0) <= _MAX_MACS * cfg.get("batch") and elems <= _MAX_ELEMS


def full_grid(kind: str, batches: tuple[int, ...] = (1, 8)) -> list[KernelConfig]:
    """Every configuration of ``kind`` in the full grid (deterministic order)."""
    check_kind(kind)
    if kind == "conv-bn-relu":
        return _conv_grid(batches)
    if kind == "dwconv-bn-relu":
        return _dwconv_grid(batches)
    if kind in ("avgpool", "maxpool"):
        return _pool_grid(kind, batches)
    if kind == "fc":
        return _fc_grid(batches)
    if kind == "concat":
        return _concat_grid(batches)
    return _elementwise_grid(kind, batches)


def _rank(cfg: KernelConfig) -> str:
    # A content hash gives a stable pseudo-random order that does not depend on Python's hash seed.
    return hashlib.sha256(cfg.key().encode("ascii")).hexdigest()


def grid(kind: str, name: str = "quick") -> list[KernelConfig]:
    """The configurations of ``kind`` in grid ``name`` (``quick`` or ``full``), in a stable order.

    ``quick`` keeps :data:`QUICK_PER_KIND` configurations of the full grid at batch sizes 1 and 8,
    spread over its range: the smallest and the largest of every cost feature, then a fixed
    pseudo-random sample.

    Raises:
        UsageError: unknown kind or grid name.
    """
    check_kind(kind)
    if name not in GRIDS:
        raise UsageError(f"unknown grid {name!r}", f"use one of {', '.join(GRIDS)}")
    configs = full_grid(kind)
    wanted = QUICK_PER_KIND.get(kind, QUICK_DEFAULT)
    if name == "full" or len(configs) <= wanted:
        return configs
    keep: dict[str, KernelConfig] = {}
    for name in KIND_FEATURES[kind]:  # the extremes of every feature, so the fitted range covers the grid's
        ordered = sorted(configs, key=lambda c: (c.features()[name], c.key()))
        keep.setdefault(ordered[0].key(), ordered[0])
        keep.setdefault(ordered[-1].key(), ordered[-1])
    for cfg in sorted(configs, key=_rank):
        if len(keep) >= wanted:
            break
        keep.setdefault(cfg.key(), cfg)
    return [c for c in configs if c.key() in keep]


def enumerate_grid(kinds: tuple[str, ...], name: str = "quick") -> list[KernelConfig]:
    """All configurations of ``kinds`` in grid ``name``, kind by kind in the order given."""
    return [cfg for kind in kinds for cfg in grid(kind, name)]
