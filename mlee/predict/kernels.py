"""Kernel kinds, their configurations, the cost features models are fit on, and the profiling grids.

A *kernel* is the unit a network is decomposed into and a predictor is fit on (DeepEn2023): a
convolution with its batch norm and ReLU, a depthwise convolution with them, batch norm + ReLU, ReLU,
average and max pooling, a fully connected layer, a channel concatenation, and (beyond the paper's
eight, as nn-Meter does) an elementwise addition for residual connections.

Pure Python: no torch, no numpy. Everything here is deterministic. The profiling grids over these
configurations are in :mod:`mlee.predict.grids`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from mlee.errors import UsageError

#: Kernel kinds in profiling order. ``add`` is the residual addition (not in DeepEn2023's eight).
KERNEL_KINDS: tuple[str, ...] = (
    "conv-bn-relu", "dwconv-bn-relu", "bn-relu", "relu", "avgpool", "maxpool", "fc", "concat", "add",
)

_POOL_FIELDS = ("batch", "c", "h", "w", "kh", "kw", "stride", "ph", "pw", "ceil")
_ELEMENTWISE_FIELDS = ("batch", "c", "h", "w")

#: The integer fields that make up each kind's configuration, in display order.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "conv-bn-relu": ("batch", "cin", "h", "w", "cout", "kh", "kw", "stride", "ph", "pw"),
    "dwconv-bn-relu": ("batch", "c", "h", "w", "mult", "kh", "kw", "stride", "ph", "pw"),
    "bn-relu": _ELEMENTWISE_FIELDS,
    "relu": _ELEMENTWISE_FIELDS,
    "avgpool": _POOL_FIELDS,
    "maxpool": _POOL_FIELDS,
    "fc": ("batch", "fin", "fout"),
    "concat": ("batch", "c", "h", "w", "n"),
    "add": _ELEMENTWISE_FIELDS,
}

#: The cost features each kind's models are fit on (computed by :meth:`KernelConfig.features`).
KIND_FEATURES: dict[str, tuple[str, ...]] = {
    # MACs split by kernel class: a 1x1 convolution is a plain matrix product, a strided one gathers its
    # input first, 3x3 and larger kernels use other algorithms; each runs at its own rate.
    "conv-bn-relu": ("macs_k1", "macs_k1_strided", "macs_k3", "macs_k5plus", "in_elems", "out_elems", "params"),
    "dwconv-bn-relu": ("macs", "in_elems", "out_elems"),
    "bn-relu": ("elems",),
    "relu": ("elems",),
    "avgpool": ("in_elems", "out_elems", "window_ops"),
    "maxpool": ("in_elems", "out_elems", "window_ops"),
    "fc": ("macs", "params"),  # compute, and the weights every call reads (activations are tiny beside them)
    "concat": ("elems", "n"),
    "add": ("elems",),
}


#: Cache features: the bytes of a kernel's working set (float32 input, output and weights) beyond one
#: core's L2 and beyond the L3. A kernel that outgrows a cache level streams from the next one at a lower
#: rate; on this project's machine (1 MiB L2 per core, 32 MiB L3) they took the held-out runtime MAPE of
#: convolutions from 12-13 % to 9-11 % and of fully connected layers from 15-17 % to 12-15 % over four
#: profiles. ``mlee fit`` adds them for :data:`CACHE_KINDS` when the profiles name the machine's caches.
CACHE_FEATURES: tuple[str, ...] = ("ws_beyond_l2", "ws_beyond_l3")
CACHE_KINDS: tuple[str, ...] = ("conv-bn-relu", "dwconv-bn-relu", "fc")


def kind_features(kind: str, cache_bytes: tuple[int, int] | None = None) -> tuple[str, ...]:
    """The features a model of ``kind`` is fit on: :data:`KIND_FEATURES`, plus :data:`CACHE_FEATURES` for
    :data:`CACHE_KINDS` when the caches (``(l2, l3)`` bytes) are known."""
    extra = CACHE_FEATURES if cache_bytes is not None and kind in CACHE_KINDS else ()
    return KIND_FEATURES[kind] + extra


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a known kernel kind, else raise naming the closest ones.

    Raises:
        UsageError: unknown kind.
    """
    if kind in KIND_FIELDS:
        return kind
    low = kind.strip().lower()
    close = [k for k in KERNEL_KINDS if low and low in k]  # "conv" -> the conv kernels first
    close += [k for k in difflib.get_close_matches(low, KERNEL_KINDS, n=3, cutoff=0.4) if k not in close]
    close = close[:3]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown kernel kind {kind!r}", f"{hint}known kinds: {', '.join(KERNEL_KINDS)}")


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """Parse a comma-separated ``--kernels`` value (None or empty: every kind), in profiling order.

    Raises:
        UsageError: an unknown kind (the message names the closest known ones).
    """
    if not text or not text.strip():
        return KERNEL_KINDS
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    for kind in wanted:
        check_kind(kind)
    return tuple(k for k in KERNEL_KINDS if k in wanted)


@dataclass(frozen=True)
class KernelConfig:
    """One kernel kind at one configuration.

    Attributes:
        kind: One of :data:`KERNEL_KINDS`.
        values: ``(field, value)`` pairs in the order of :data:`KIND_FIELDS` for the kind.

    Units: sizes in elements (channels, pixels, features); ``batch`` in samples.
    """

    kind: str
    values: tuple[tuple[str, int], ...]

    @classmethod
    def make(cls, kind: str, **fields: int) -> KernelConfig:
        """Build a config; every field of the kind must be given as a positive int (``ph``/``pw``/``ceil`` may be 0).

        Raises:
            UsageError: unknown kind, missing, extra or invalid fields, or an empty output.
        """
        check_kind(kind)
        names = KIND_FIELDS[kind]
        missing = [n for n in names if n not in fields]
        extra = sorted(set(fields) - set(names))
        if missing or extra:
            raise UsageError(f"{kind} configuration: missing {missing or 'nothing'}, unexpected {extra or 'nothing'}",
                             f"give exactly the fields {', '.join(names)}")
        values = []
        for n in names:
            v = fields[n]
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if n in ("ph", "pw", "ceil") else 1):
                raise UsageError(f"{kind} configuration: {n}={v!r} is not a valid size",
                                 "sizes are positive integers (padding and ceil may be 0)")
            values.append((n, int(v)))
        cfg = cls(kind, tuple(values))
        if min(cfg.output_shape()) < 1:
            raise UsageError(f"{kind} configuration {cfg.key()} has an empty output",
                             "use a larger input or a smaller kernel")
        return cfg

    def get(self, name: str) -> int:
        for n, v in self.values:
            if n == name:
                return v
        raise KeyError(name)

    def as_dict(self) -> dict[str, int]:
        return dict(self.values)

    def key(self) -> str:
        """Stable text form, e.g. ``fc[batch=1,fin=512,fout=1000]`` (also used as a window name)."""
        return f"{self.kind}[{','.join(f'{n}={v}' for n, v in self.values)}]"

    @classmethod
    def from_key(cls, text: str) -> KernelConfig:
        """Parse :meth:`key` output.

        Raises:
            UsageError: not a kernel key, or a bad kind or field.
        """
        m = re.fullmatch(r"([a-z-]+)\[([a-z0-9=,]*)\]", text.strip())
        if not m:
            raise UsageError(f"{text!r} is not a kernel configuration", "expected e.g. fc[batch=1,fin=512,fout=1000]")
        fields: dict[str, int] = {}
        for part in filter(None, m.group(2).split(",")):
            name, _, value = part.partition("=")
            if not value.isdigit():
                raise UsageError(f"{text!r}: field {part!r} is not name=integer")
            fields[name] = int(value)
        return cls.make(m.group(1), **fields)

    def output_shape(self) -> tuple[int, ...]:
        """Shape of the kernel's output for the whole batch (NCHW, or N x features for fc)."""
        d = self.as_dict()
        if self.kind == "fc":
            return (d["batch"], d["fout"])
        if self.kind in ("bn-relu", "relu", "add", "concat"):
            return (d["batch"], d["c"], d["h"], d["w"])
        ho = _out_size(d["h"], d["kh"], d["stride"], d["ph"], bool(d.get("ceil", 0)))
        wo = _out_size(d["w"], d["kw"], d["stride"], d["pw"], bool(d.get("ceil", 0)))
        if self.kind == "conv-bn-relu":
            return (d["batch"], d["cout"], ho, wo)
        if self.kind == "dwconv-bn-relu":
            return (d["batch"], d["c"] * d["mult"], ho, wo)
        return (d["batch"], d["c"], ho, wo)

    def features(self) -> dict[str, float]:
        """The cost features of one call on the whole batch (see :data:`KIND_FEATURES`).

        Units: ``macs`` multiply-accumulates (for convolutions also split by kernel class: ``macs_k1``,
        ``macs_k1_strided``, ``macs_k3`` for up to 3x3, ``macs_k5plus``; the others are 0); ``*_elems``
        tensor elements; ``params`` weights; ``window_ops`` pooling window reads; ``n`` concatenation inputs.
        """
        d = self.as_dict()
        out = 1
        for s in self.output_shape():
            out *= s
        if self.kind == "fc":
            return {"macs": float(d["batch"] * d["fin"] * d["fout"]), "in_elems": float(d["batch"] * d["fin"]),
                    "out_elems": float(out), "params": float(d["fin"] * d["fout"])}
        in_elems = float(d["batch"] * d.get("cin", d.get("c", 1)) * d["h"] * d["w"])
        if self.kind == "conv-bn-relu":
            per_out = d["cin"] * d["kh"] * d["kw"]
            macs = float(out * per_out)
            area = d["kh"] * d["kw"]
            cls = ("macs_k1" if d["stride"] == 1 else "macs_k1_strided") if area == 1 else \
                ("macs_k3" if area <= 9 else "macs_k5plus")
            split = {name: (macs if name == cls else 0.0)
                     for name in ("macs_k1", "macs_k1_strided", "macs_k3", "macs_k5plus")}
            return {"macs": macs, **split, "in_elems": in_elems, "out_elems": float(out),
                    "params": float(d["cout"] * per_out)}
        if self.kind == "dwconv-bn-relu":
            return {"macs": float(out * d["kh"] * d["kw"]), "in_elems": in_elems, "out_elems": float(out)}
        if self.kind in ("avgpool", "maxpool"):
            return {"in_elems": in_elems, "out_elems": float(out), "window_ops": float(out * d["kh"] * d["kw"])}
        if self.kind == "concat":
            return {"elems": float(out), "n": float(d["n"])}
        return {"elems": float(out)}

    def working_set_bytes(self) -> float:
        """Bytes one call touches at least once: float32 input, output and weights. Units: bytes."""
        f = self.features()
        return 4.0 * (f.get("in_elems", f.get("elems", 0.0)) + f.get("out_elems", 0.0) + f.get("params", 0.0))

    def feature_values(self, cache_bytes: tuple[int, int] | None = None) -> dict[str, float]:
        """:meth:`features`, plus the cache features when ``cache_bytes`` (``(l2, l3)``) are given.

        Units: as :meth:`features`; cache features in bytes.
        """
        f = self.features()
        if cache_bytes is not None:
            ws = self.working_set_bytes()
            f.update(ws_beyond_l2=max(0.0, ws - cache_bytes[0]), ws_beyond_l3=max(0.0, ws - cache_bytes[1]))
        return f

    def feature_vector(self, cache_bytes: tuple[int, int] | None = None) -> list[float]:
        f = self.feature_values(cache_bytes)
        return [f[name] for name in kind_features(self.kind, cache_bytes)]

    def flops(self) -> float:
        """Floating-point operations of one call on the whole batch (2 per MAC; 1 per element otherwise)."""
        f = self.features()
        if "macs" in f:
            return 2.0 * f["macs"]
        return f.get("window_ops", f.get("elems", f.get("out_elems", 0.0)))


def _out_size(size: int, k: int, stride: int, pad: int, ceil: bool) -> int:
    span = size + 2 * pad - k
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil else span // stride) + 1
    # PyTorch's ceil mode never starts a window inside the right padding.
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out
