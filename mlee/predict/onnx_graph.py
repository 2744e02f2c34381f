"""An ONNX graph as the kernels it runs (``mlee predict --model model.onnx``).

The graph's shapes are inferred for the batch size asked for (a symbolic batch dimension takes it), then
nodes are walked in their (topological) order and fused as :mod:`mlee.predict.decompose` fuses torch
calls: a ``Conv`` whose only consumer is a ``BatchNormalization`` whose only consumer is a ``Relu`` is one
``conv-bn-relu`` kernel. Every common node has a kernel: ``Gemm``/``MatMul`` with a weight are ``fc``,
pooling (global too) is ``avgpool``/``maxpool``, ``Add``/``Sum`` are ``add`` (``Mul``/``Sub``/``Div``
approximated by it), ``Concat`` is ``concat``, normalisations are ``bn-relu`` (approximated), other
activations are ``relu`` (approximated), and shape operations and ``Dropout`` cost nothing. Any other
node is listed as unsupported with an estimate of its FLOPs, so the total can say how much it covers.
onnx is imported inside the functions (the extra ``onnx``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, UsageError
from mlee.predict.decompose import Decomposition, Layer
from mlee.predict.kernels import KernelConfig

_RELU = {"Relu", "Clip"}
_ACTIVATIONS = {"Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "Elu", "Selu", "Gelu", "Softmax",
                "Mish", "PRelu", "Softplus", "Erf"}
_NORMS = {"BatchNormalization", "LayerNormalization", "InstanceNormalization", "LRN", "GroupNormalization"}
_FREE = {"Dropout", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Shape", "Gather",
         "Constant", "Cast", "Slice", "Split", "ConstantOfShape", "Expand", "Unsqueeze", "Range"}
_BINARY = {"Add": "", "Sum": "", "Mul": "Mul", "Sub": "Sub", "Div": "Div"}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise BackendMissing("reading an ONNX graph needs onnx, which is not installed",
                             "pip install 'mlee[onnx]'") from exc
    return onnx


def _attrs(node: Any) -> dict[str, Any]:
    onnx = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _nchw(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) == 4:
        return tuple(shape)  # type: ignore[return-value]
    n = shape[0] if shape else 1
    rest = 1
    for s in shape[1:]:
        rest *= s
    return (n, max(rest, 1), 1, 1)


def _elems(shape: tuple[int, ...]) -> float:
    out = 1.0
    for s in shape:
        out *= s
    return out


def load_graph(path: str | Path, batch: int) -> tuple[Any, dict[str, tuple[int, ...]], dict[str, Any]]:
    """The graph with inferred shapes at ``batch``, tensor shapes and initializers (weights).

    Raises:
        UsageError: not an ONNX file, or shapes that cannot be inferred.
    """
    onnx = _onnx()
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", "give an .onnx file or a model name") from None
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not a graph
        raise UsageError(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = batch  # a symbolic batch takes the batch asked for
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:
        raise UsageError(f"cannot infer the shapes of {path}: {exc}") from None
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        dims = tuple(int(d.dim_value) for d in vi.type.tensor_type.shape.dim)
        if dims and all(d > 0 for d in dims):
            shapes[vi.name] = dims
    for name, arr in inits.items():
        shapes[name] = tuple(int(s) for s in arr.shape)
    return model.graph, shapes, inits


def decompose_onnx(path: str | Path, batch: int = 1) -> Decomposition:
    """The kernels of an ONNX graph at ``batch`` (see the module docstring).

    Raises:
        UsageError: unreadable file, or an input without a known shape.
    """
    graph, shapes, inits = load_graph(path, batch)
    inputs = [i for i in graph.input if i.name not in inits]
    if not inputs or inputs[0].name not in shapes:
        raise UsageError(f"{path}: the graph input has no fixed shape", "export the model with a fixed input size")
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    walk = _Walk(shapes, inits, consumers)
    for i, node in enumerate(graph.node):
        walk.node(node, node.name or f"{node.op_type}_{i}")
    return Decomposition(Path(path).name, shapes[inputs[0].name], tuple(walk.layers))


class _Walk:
    def __init__(self, shapes: dict[str, tuple[int, ...]], inits: dict[str, Any], consumers: dict[str, int]):
        self.shapes, self.inits, self.consumers = shapes, inits, consumers
        self.layers: list[Layer] = []
        self.producer: dict[str, tuple[Layer, str]] = {}

    def _emit(self, layer: Layer, out: str, stage: str) -> None:
        self.layers.append(layer)
        self.producer[out] = (layer, stage)

    def _fusable(self, tensor: str, stages: tuple[str, ...]) -> Layer | None:
        src = self.producer.get(tensor)
        if src and src[1] in stages and self.consumers.get(tensor, 0) == 1:
            return src[0]
        return None

    def node(self, node: Any, where: str) -> None:
        op, out = node.op_type, (node.output[0] if node.output else "")
        ins = [self.shapes.get(n) for n in node.input]
        oshape = self.shapes.get(out)
        if op in _FREE:
            if node.input and node.input[0] in self.producer and op in ("Dropout", "Identity"):
                self.producer[out] = self.producer[node.input[0]]  # fusion sees through a no-op
            return
        if oshape is None or not ins or ins[0] is None:
            self._emit(Layer(where, None, None, [op], approx=f"no shape for {op}"), out, "other")
            return
        if op == "Conv":
            self._emit(self._conv(node, where, ins[0], oshape), out, "conv")
        elif op in _NORMS:
            src = self._fusable(node.input[0], ("conv",)) if op == "BatchNormalization" else None
            if src is not None:
                src.has_bn = True
                src.ops.append(op)
                self.producer[out] = (src, "bn")
            else:
                approx = "batch norm without ReLU predicted as bn-relu" if op == "BatchNormalization" else \
                    f"{op} predicted as bn-relu"
                self._emit(Layer(where, "bn-relu", _cfg("bn-relu", oshape), [op], has_relu=False, approx=approx),
                           out, "bn")
        elif op in _RELU or op in _ACTIVATIONS:
            src = self._fusable(node.input[0], ("conv", "bn"))
            note = "" if op in _RELU else f"{op} predicted as relu"
            if src is not None and not src.has_relu:
                src.has_relu = True
                src.ops.append(op)
                src.approx = "; ".join(filter(None, [src.approx if src.kind != "bn-relu" else "", note]))
                self.producer[out] = (src, "relu")
            else:
                self._emit(Layer(where, "relu", _cfg("relu", oshape), [op], approx=note), out, "relu")
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean"):
            self._emit(self._pool(node, where, ins[0], oshape), out, "pool")
        elif op in ("Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in self.inits:
            self._emit(self._fc(node, where, ins[0], oshape), out, "fc")
        elif op in _BINARY and len(node.input) >= 2 and not any(n in self.inits for n in node.input):
            approx = f"{op} predicted as add" if _BINARY[op] else ""
            self._emit(Layer(where, "add", _cfg("add", oshape), [op], approx=approx), out, "add")
        elif op in _BINARY:
            self._emit(Layer(where, "relu", _cfg("relu", oshape), [op], approx=f"{op} with a constant predicted as "
                             "relu"), out, "relu")
        elif op == "Concat":
            axis = int(_attrs(node).get("axis", 1))
            n, c, h, w = _nchw(oshape)
            cfg = KernelConfig.make("concat", batch=n, c=c, h=h, w=w, n=max(1, len(node.input)))
            exact = len(oshape) == 4 and axis in (1, -3)
            self._emit(Layer(where, "concat", cfg, [op], approx="" if exact else f"concat along axis {axis}"), out,
                       "concat")
        else:
            flops = _other_flops(op, ins, oshape)
            self._emit(Layer(where, None, None, [op], approx=f"no kernel for {op}", flops=flops), out, "other")

    def _conv(self, node: Any, where: str, x: tuple[int, ...], oshape: tuple[int, ...]) -> Layer:
        a = _attrs(node)
        n, cin, h, w = x
        cout, cin_g, kh, kw = self.shapes[node.input[1]]
        strides = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        group = int(a.get("group", 1))
        notes = []
        if strides[0] != strides[-1]:
            notes.append(f"stride {tuple(strides)} predicted as {strides[0]}")
        if list(a.get("dilations", [1, 1])) != [1, 1]:
            notes.append("dilation predicted as 1")
        if pads[:2] != pads[2:]:
            notes.append(f"asymmetric padding {tuple(pads)} predicted as {tuple(pads[:2])}")
        if group == cin and group > 1 and cout % cin == 0:
            kind, fields = "dwconv-bn-relu", dict(c=cin, mult=cout // cin)
        else:
            kind, fields = "conv-bn-relu", dict(cin=cin_g, cout=cout)
            if group > 1:
                notes.append(f"{group} groups predicted as a dense conv of {cin_g} input channels")
        cfg = KernelConfig.make(kind, batch=n, h=h, w=w, kh=kh, kw=kw, stride=int(strides[0]), ph=int(pads[0]),
                                pw=int(pads[1]), **fields)
        if tuple(cfg.output_shape()[2:]) != tuple(oshape[2:]):
            notes.append(f"output {oshape[2:]} predicted as {cfg.output_shape()[2:]}")
        return Layer(where, kind, cfg, ["Conv"], has_bn=False, has_relu=False, approx="; ".join(notes))

    def _pool(self, node: Any, where: str, x: tuple[int, ...], oshape: tuple[int, ...]) -> Layer:
        a = _attrs(node)
        op = node.op_type
        kind = "maxpool" if "Max" in op else "avgpool"
        n, c, h, w = _nchw(x)
        if op.startswith("Global") or op == "ReduceMean":
            kh, kw, stride, ph, pw, ceil = h, w, 1, 0, 0, 0
        else:
            kh, kw = (int(v) for v in a["kernel_shape"])
            stride = int(list(a.get("strides", [1, 1]))[0])
            pads = list(a.get("pads", [0, 0, 0, 0]))
            ph, pw, ceil = int(pads[0]), int(pads[1]), int(a.get("ceil_mode", 0))
        cfg = KernelConfig.make(kind, batch=n, c=c, h=h, w=w, kh=kh, kw=kw, stride=stride, ph=ph, pw=pw, ceil=ceil)
        return Layer(where, kind, cfg, [op])

    def _fc(self, node: Any, where: str, x: tuple[int, ...], oshape: tuple[int, ...]) -> Layer:
        a = _attrs(node)
        wshape = self.shapes[node.input[1]]
        fin, fout = (wshape[1], wshape[0]) if node.op_type == "Gemm" and a.get("transB", 0) else wshape[:2]
        batch = max(1, int(_elems(x) // fin))
        return Layer(where, "fc", KernelConfig.make("fc", batch=batch, fin=int(fin), fout=int(fout)), [node.op_type])


def _cfg(kind: str, shape: tuple[int, ...]) -> KernelConfig:
    n, c, h, w = _nchw(shape)
    return KernelConfig.make(kind, batch=n, c=c, h=h, w=w)


def _other_flops(op: str, ins: list[tuple[int, ...] | None], oshape: tuple[int, ...]) -> float:
    """A rough FLOP count of a node without a kernel: 2 x output x inner size for products, else the output."""
    if op in ("MatMul", "Gemm", "Einsum") and ins and ins[0]:
        return 2.0 * _elems(oshape) * ins[0][-1]
    return _elems(oshape)
