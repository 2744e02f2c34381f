"""A PyTorch model as the kernels it runs: one forward pass on the ``meta`` device, recorded.

A ``TorchFunctionMode`` records every top-level torch call (``conv2d``, ``batch_norm``, ``relu``,
``cat``, ``add`` ... including the functional ones a module's forward calls directly, like a residual
addition), and forward hooks name each call after the innermost module running it. Calls are then
fused along the data flow: a convolution whose output feeds a batch norm whose output feeds a ReLU is
one ``conv-bn-relu`` kernel, whatever modules they live in. On ``meta`` nothing is computed, so a
ResNet-50 decomposes in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlee.predict.kernels import KernelConfig
from mlee.runners.torch_backend import import_torch

_RELU = {"relu", "relu_", "hardtanh", "hardtanh_", "relu6"}
#: Unary elementwise activations predicted as a ReLU of the same size (memory-bound, one pass).
_UNARY_APPROX = {"hardswish", "hardswish_", "silu", "silu_", "gelu", "sigmoid", "sigmoid_", "hardsigmoid",
                 "tanh", "tanh_", "elu", "leaky_relu", "mish", "contiguous"}
_BINARY = {"add", "add_", "__add__", "__iadd__", "__radd__"}
#: Binary elementwise operations predicted as an addition of the same size.
_BINARY_APPROX = {"mul", "mul_", "__mul__", "__imul__", "__rmul__", "sub", "__sub__", "div", "__truediv__"}
_POOLS = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d",
          "adaptive_max_pool2d", "mean"}
#: Calls that cost (next to) nothing: shape queries, views, eval-mode dropout.
_FREE = {"dim", "size", "flatten", "view", "reshape", "dropout", "transpose", "chunk", "split", "squeeze",
         "unsqueeze", "permute", "__getitem__", "__get__", "numel", "t", "dropout2d", "alpha_dropout",
         "identity", "is_contiguous", "stride"}


@dataclass
class Layer:
    """One kernel of a decomposed model.

    Attributes:
        name: Module path of the first call (``layer1.0.conv1``; ``(model)`` for the top level).
        kind: Kernel kind, or None when no kernel covers the calls (``unsupported``).
        config: Configuration for ``kind`` (None when unsupported).
        ops: The torch calls fused into this kernel, in order.
        has_bn / has_relu: For convolutions, whether the batch norm / activation was present.
        approx: Why the kernel only approximates the calls ("" when exact).
        flops: Estimated FLOPs of an unsupported call (None when unknown).
    """

    name: str
    kind: str | None
    config: KernelConfig | None
    ops: list[str] = field(default_factory=list)
    has_bn: bool = True
    has_relu: bool = True
    approx: str = ""
    #: FLOPs of a call without a kernel, where the reader can estimate them (else from ``config``).
    flops: float | None = None

    @property
    def total_flops(self) -> float | None:
        """FLOPs of the call on its whole batch: the kernel's, or the estimate of an unsupported call."""
        return self.config.flops() if self.config is not None else self.flops

    @property
    def variant(self) -> str:
        """``conv``, ``conv-bn``, ``conv-relu`` or ``""`` (the full fused kernel) for convolutions."""
        if self.kind not in ("conv-bn-relu", "dwconv-bn-relu") or (self.has_bn and self.has_relu):
            return ""
        return "conv" + ("-bn" if self.has_bn else "") + ("-relu" if self.has_relu else "")

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "config": self.config.key() if self.config else None,
                "ops": list(self.ops), "variant": self.variant, "approx": self.approx}


@dataclass(frozen=True)
class Decomposition:
    """A model as kernels, in execution order.

    Units: ``input_shape`` in elements (N, C, H, W); ``macs`` per forward pass of the batch.
    """

    model: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def unsupported(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind is None]

    @property
    def macs(self) -> float:
        return sum(layer.config.features().get("macs", 0.0) for layer in self.layers if layer.config)


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _nchw(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A 4-D view of any shape: (N, C, H, W) as is, else N x (everything else) x 1 x 1."""
    if len(shape) == 4:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    n = int(shape[0]) if shape else 1
    rest = 1
    for s in shape[1:]:
        rest *= int(s)
    return (n, max(rest, 1), 1, 1)


def _elementwise(kind: str, shape: tuple[int, ...]) -> KernelConfig:
    n, c, h, w = _nchw(shape)
    return KernelConfig.make(kind, batch=n, c=c, h=h, w=w)


class _Recorder:
    """Records calls under a TorchFunctionMode and fuses them into layers as they come."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.stack: list[str] = ["(model)"]
        self.producer: dict[int, tuple[Layer, str]] = {}  # tensor id -> (layer, stage)
        self.keep: list[Any] = []  # holds outputs alive so ids are not reused during the pass

    def record(self, fname: str, args: tuple, kwargs: dict, out: Any) -> None:
        torch = import_torch()
        is_t = lambda v: isinstance(v, torch.Tensor)  # noqa: E731
        if fname in _FREE:
            return
        self.keep.append(out)
        first = args[0] if args else None
        where = self.stack[-1]
        src = self.producer.get(id(first)) if is_t(first) else None
        oshape = tuple(out.shape) if is_t(out) else ()
        if fname == "conv2d":
            layer = self._conv(where, args, kwargs, oshape)
            self._emit(layer, out, "conv")
        elif fname == "batch_norm":
            if src and src[1] == "conv" and src[0].kind != "bn-relu":
                src[0].has_bn = True
                src[0].ops.append(fname)
                self.producer[id(out)] = (src[0], "bn")
            else:
                layer = Layer(where, "bn-relu", _elementwise("bn-relu", oshape), [fname], has_relu=False,
                              approx="batch norm without ReLU predicted as bn-relu")
                self._emit(layer, out, "bn")
        elif fname in _RELU or fname in _UNARY_APPROX:
            exact = fname in _RELU
            if src and src[1] in ("conv", "bn") and not src[0].has_relu:
                src[0].has_relu = True
                src[0].ops.append(fname)
                if not exact:
                    src[0].approx = f"{fname} predicted as relu"
                if src[0].kind == "bn-relu" and exact:
                    src[0].approx = ""
                self.producer[id(out)] = (src[0], "relu")
            else:
                layer = Layer(where, "relu", _elementwise("relu", oshape), [fname],
                              approx="" if exact else f"{fname} predicted as relu")
                self._emit(layer, out, "relu")
        elif fname in _POOLS:
            self._emit(self._pool(where, fname, args, kwargs, oshape), out, "pool")
        elif fname == "linear":
            weight = _arg(args, kwargs, 1, "weight", None)
            fout, fin = (int(s) for s in weight.shape)
            batch = max(1, int(first.numel()) // fin)
            self._emit(Layer(where, "fc", KernelConfig.make("fc", batch=batch, fin=fin, fout=fout), [fname]), out, "fc")
        elif fname in ("cat", "concat", "concatenate"):
            tensors = list(_arg(args, kwargs, 0, "tensors", []))
            dim = int(_arg(args, kwargs, 1, "dim", 0))
            n, c, h, w = _nchw(oshape)
            exact = len(oshape) == 4 and dim in (1, -3)
            cfg = KernelConfig.make("concat", batch=n, c=c, h=h, w=w, n=max(1, len(tensors)))
            self._emit(Layer(where, "concat", cfg, [fname], approx="" if exact else f"concat along dim {dim}"),
                       out, "concat")
        elif fname in _BINARY or fname in _BINARY_APPROX:
            two = sum(1 for a in args[:2] if is_t(a)) == 2
            if two:
                approx = "" if fname in _BINARY else f"{fname} predicted as add"
                self._emit(Layer(where, "add", _elementwise("add", oshape), [fname], approx=approx), out, "add")
            else:
                self._emit(Layer(where, "relu", _elementwise("relu", oshape), [fname],
                                 approx=f"{fname} with a scalar predicted as relu"), out, "relu")
        else:
            self._emit(Layer(where, None, None, [fname], approx=f"no kernel for {fname}"), out, "other")

    def _emit(self, layer: Layer, out: Any, stage: str) -> None:
        self.layers.append(layer)
        self.producer[id(out)] = (layer, stage)

    def _conv(self, where: str, args: tuple, kwargs: dict, oshape: tuple[int, ...]) -> Layer:
        x = args[0]
        weight = _arg(args, kwargs, 1, "weight", None)
        stride = _pair(_arg(args, kwargs, 3, "stride", 1))
        padding = _arg(args, kwargs, 4, "padding", 0)
        dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
        groups = int(_arg(args, kwargs, 6, "groups", 1))
        n, cin, h, w = (int(s) for s in x.shape)
        cout, cin_g, kh, kw = (int(s) for s in weight.shape)
        ho, wo = int(oshape[2]), int(oshape[3])
        ph, pw = _pads(padding, h, w, kh, kw, stride[0], ho, wo)
        notes = []
        if stride[0] != stride[1]:
            notes.append(f"stride {stride} predicted as {stride[0]}")
        if dilation != (1, 1):
            notes.append(f"dilation {dilation} predicted as 1")
        if groups == cin and cout % cin == 0 and groups > 1:
            kind, fields = "dwconv-bn-relu", dict(c=cin, mult=cout // cin)
        else:
            kind, fields = "conv-bn-relu", dict(cin=cin_g, cout=cout)
            if groups > 1:
                notes.append(f"{groups} groups predicted as a dense conv of {cin_g} input channels")
        cfg = KernelConfig.make(kind, batch=n, h=h, w=w, kh=kh, kw=kw, stride=stride[0], ph=ph, pw=pw, **fields)
        if cfg.output_shape()[2:] != (ho, wo):
            notes.append(f"output {ho}x{wo} predicted as {cfg.output_shape()[2]}x{cfg.output_shape()[3]}")
        return Layer(where, kind, cfg, ["conv2d"], has_bn=False, has_relu=False, approx="; ".join(notes))

    def _pool(self, where: str, fname: str, args: tuple, kwargs: dict, oshape: tuple[int, ...]) -> Layer:
        x = args[0]
        kind = "maxpool" if "max" in fname else "avgpool"
        n, c, h, w = (int(s) for s in x.shape) if x.dim() == 4 else _nchw(tuple(x.shape))
        ho, wo = (int(oshape[2]), int(oshape[3])) if len(oshape) == 4 else (1, 1)
        notes = []
        if fname == "mean" or fname.startswith("adaptive"):
            if (ho, wo) == (1, 1):
                kh, kw, stride = h, w, 1
            else:
                kh, kw, stride = -(-h // ho), -(-w // wo), max(1, h // ho)
                if h % ho:
                    notes.append("adaptive pooling with uneven windows")
            ph = pw = 0
        else:
            kh, kw = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
            stride = _pair(_arg(args, kwargs, 2, "stride", None) or (kh, kw))[0]
            ph, pw = _pair(_arg(args, kwargs, 3, "padding", 0))
        cfg = KernelConfig.make(kind, batch=n, c=c, h=h, w=w, kh=kh, kw=kw, stride=stride, ph=ph, pw=pw, ceil=0)
        if cfg.output_shape()[2:] != (ho, wo):
            ceil_cfg = KernelConfig.make(kind, batch=n, c=c, h=h, w=w, kh=kh, kw=kw, stride=stride, ph=ph, pw=pw,
                                         ceil=1)
            if ceil_cfg.output_shape()[2:] == (ho, wo):
                cfg = ceil_cfg
            else:
                notes.append(f"output {ho}x{wo} predicted as {cfg.output_shape()[2]}x{cfg.output_shape()[3]}")
        return Layer(where, kind, cfg, [fname], approx="; ".join(notes))


def _pads(padding: Any, h: int, w: int, kh: int, kw: int, stride: int, ho: int, wo: int) -> tuple[int, int]:
    if isinstance(padding, str):  # "same" / "valid": recover the symmetric padding from the shapes
        return (max(0, ((ho - 1) * stride + kh - h + 1) // 2), max(0, ((wo - 1) * stride + kw - w + 1) // 2))
    return _pair(padding)


def decompose(model: Any, input_shape: tuple[int, ...], name: str = "model") -> Decomposition:
    """Run ``model`` once on a ``meta`` input of ``input_shape`` and return its kernels.

    The model should be on ``meta`` (see :func:`mlee.predict.models.build_model`); a model on another
    device runs for real, which gives the same answer more slowly.
    """
    torch = import_torch()
    from torch.overrides import TorchFunctionMode

    rec = _Recorder()

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            rec.record(getattr(func, "__name__", str(func)), args, kwargs, out)
            return out

    def enter(name: str) -> Any:
        def hook(module: Any, inputs: Any) -> None:
            rec.stack.append(name)

        return hook

    def leave(module: Any, inputs: Any, output: Any) -> None:
        rec.stack.pop()  # a hook returning a value would replace the module's output

    handles = []
    for mod_name, module in model.named_modules():
        if mod_name:
            handles.append(module.register_forward_pre_hook(enter(mod_name)))
            handles.append(module.register_forward_hook(leave))
    try:
        device = next((p.device for p in model.parameters()), torch.device("meta"))
        x = torch.empty(*input_shape, device=device)
        with torch.no_grad(), Mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return Decomposition(name, tuple(int(s) for s in input_shape), tuple(rec.layers))
