"""FLOPs and MACs of a keras model, counted on its frozen graph with TensorFlow's flops statistics.

TensorFlow's profiler registry counts convolutions and matrix products (2 FLOPs per multiply-add)
but has no statistic for depthwise convolutions; those are added here from the graph's shapes,
so that MobileNets and EfficientNets are not under-counted.
"""

from __future__ import annotations

from typing import Any

from mlee.errors import MleeError

#: Op types whose profiler FLOPs are multiply-adds x 2; elementwise ops (BiasAdd, Add, Mul) are not
#: counted, matching ``torch.utils.flop_counter``.
MAC_OPS = ("Conv2D", "Conv3D", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
DEPTHWISE_OPS = ("DepthwiseConv2dNative",)


def frozen_graph(model: Any, input_size: int) -> Any:
    """The model's forward pass for one sample as a graph with its variables folded into constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, input_size, input_size, 3], tf.float32))
    return convert_variables_to_constants_v2(concrete).graph


def registry_flops(graph: Any) -> dict[str, int]:
    """FLOPs per op type from TensorFlow's own flops statistics (the registry its profiler reads).

    Summed op by op: the profiler's ``cmd="op"`` total was seen to disagree with its own per-node
    figures on keras graphs, while the per-node statistics match the layer arithmetic exactly.
    """
    from tensorflow.python.framework import ops

    totals: dict[str, int] = {}
    for op in graph.get_operations():
        if op.type not in MAC_OPS:
            continue
        value = ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        if value is None:
            raise MleeError(f"TensorFlow could not count the FLOPs of {op.type} op {op.name} (unknown shape)")
        totals[op.type] = totals.get(op.type, 0) + int(value)
    return totals


def depthwise_macs(graph: Any) -> int:
    """Multiply-adds of the depthwise convolutions of ``graph``: kh x kw per output element."""
    total = 0
    for op in graph.get_operations():
        if op.type not in DEPTHWISE_OPS:
            continue
        out_shape = op.outputs[0].shape.as_list()
        kh, kw = op.inputs[1].shape.as_list()[:2]
        count = 1
        for dim in out_shape:
            count *= int(dim)
        total += int(kh) * int(kw) * count
    return total


def count_flops(model: Any, input_size: int) -> tuple[float, float]:
    """FLOPs and MACs of one forward pass of ``model`` on one sample.

    Units: floating-point operations; flops = 2 x macs.
    """
    graph = frozen_graph(model, input_size)
    by_op = registry_flops(graph)
    macs = sum(by_op.get(name, 0) for name in MAC_OPS) / 2 + depthwise_macs(graph)
    return 2.0 * macs, float(macs)
