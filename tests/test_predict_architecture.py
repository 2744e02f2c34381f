"""`mlee predict` from architecture files: an ONNX graph written by the test, a whole PyTorch model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import UsageError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ENV = {"NO_COLOR": "1", "COLUMNS": "200"}


def _w(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def write_graph(path):
    """conv-bn-relu, depthwise conv-bn-relu6, residual add, maxpool, concat, global pool, flatten, dropout,
    gemm, softmax, and an attention-like MatMul of two activations (no kernel)."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], name="conv1"),
        n("BatchNormalization", ["c1", "s", "b", "m", "v"], ["b1"], name="bn1"),
        n("Relu", ["b1"], ["r1"], name="relu1"),
        n("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8, name="dw"),
        n("BatchNormalization", ["c2", "s", "b", "m", "v"], ["b2"], name="bn2"),
        n("Clip", ["b2", "lo", "hi"], ["r2"], name="relu6"),
        n("Add", ["r2", "r1"], ["a"], name="residual"),
        n("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        n("Concat", ["p", "p"], ["cat"], axis=1, name="cat"),
        n("MatMul", ["cat", "cat"], ["att"], name="attention"),
        n("GlobalAveragePool", ["att"], ["g"], name="gap"),
        n("Flatten", ["g"], ["f"], name="flatten"),
        n("Dropout", ["f"], ["d"], name="drop"),
        n("Gemm", ["d", "wf", "bf"], ["y0"], transB=1, name="fc"),
        n("Softmax", ["y0"], ["y"], name="softmax"),
    ]
    inits = [_w("w1", 8, 3, 3, 3), _w("w2", 8, 1, 3, 3), _w("s", 8), _w("b", 8), _w("m", 8), _w("v", 8),
             _w("wf", 10, 16), _w("bf", 10), numpy_helper.from_array(np.array(0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6, np.float32), "hi")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


def test_onnx_graph_is_decomposed_into_kernels(tmp_path):
    from mlee.predict.onnx_graph import decompose_onnx

    dec = decompose_onnx(write_graph(tmp_path / "tiny.onnx"), batch=2)
    assert dec.input_shape == (2, 3, 8, 8) and dec.model == "tiny.onnx"
    kinds = [(layer.name, layer.kind) for layer in dec.layers]
    assert kinds == [("conv1", "conv-bn-relu"), ("dw", "dwconv-bn-relu"), ("residual", "add"), ("pool", "maxpool"),
                     ("cat", "concat"), ("attention", None), ("gap", "avgpool"), ("fc", "fc"), ("softmax", "relu")]
    conv, dw = dec.layers[0], dec.layers[1]
    assert conv.config.as_dict() == {"batch": 2, "cin": 3, "h": 8, "w": 8, "cout": 8, "kh": 3, "kw": 3, "stride": 1,
                                     "ph": 1, "pw": 1}
    assert conv.has_bn and conv.has_relu and conv.variant == "" and conv.ops == ["Conv", "BatchNormalization", "Relu"]
    assert dw.config.get("c") == 8 and dw.config.get("mult") == 1 and dw.variant == ""
    assert dec.layers[4].config.as_dict() == {"batch": 2, "c": 16, "h": 4, "w": 4, "n": 2}
    att = dec.layers[5]
    assert att.approx == "no kernel for MatMul" and att.flops == 2.0 * (2 * 16 * 4 * 4) * 4
    assert dec.layers[7].config.as_dict() == {"batch": 2, "fin": 16, "fout": 10}
    assert dec.layers[8].approx == "Softmax predicted as relu"


def _predictor(tmp_path, kinds):
    from mlee.predict.kernels import KernelConfig
    from mlee.predict.layerdata import make_point
    from mlee.predict.training import fit_predictor

    pts = []
    rng = np.random.default_rng(0)
    for i in range(12):
        c, h = int(rng.integers(2, 64)), int(rng.choice([4, 8, 16]))
        cfgs = {"fc": KernelConfig.make("fc", batch=2, fin=c * 4, fout=c),
                "add": KernelConfig.make("add", batch=2, c=c, h=h, w=h),
                "relu": KernelConfig.make("relu", batch=2, c=c, h=h, w=h)}
        for kind in kinds:
            cfg = cfgs[kind]
            pts.append(make_point(cfg, 1e-6 * (1 + cfg.flops() / 1e3), 10.0, None, "counter", "cpu", "lab", f"r{i}"))
    return fit_predictor(pts).save(tmp_path / "pred.json")


def test_predict_cli_on_an_onnx_file_lists_layers_without_a_model_with_their_flops_share(tmp_path):
    graph = write_graph(tmp_path / "tiny.onnx")
    pred = _predictor(tmp_path, ("fc", "add", "relu"))
    res = CliRunner().invoke(app, ["predict", "--model", str(graph), "-p", str(pred), "--batch-size", "2", "--json"],
                             env=ENV)
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)["prediction"]
    statuses = {layer["name"]: layer["status"] for layer in body["layers"]}
    assert statuses["fc"] in ("ok", "extrapolated") and statuses["conv1"] == "no model"
    assert statuses["attention"] == "unsupported" and body["complete"] is False
    covered = sum(layer["flops"] for layer in body["layers"] if layer["time_s"] is not None)
    total = sum(layer["flops"] for layer in body["layers"] if layer["flops"] is not None)
    assert body["flops_coverage"] == pytest.approx(covered / total) and 0 < body["flops_coverage"] < 0.5
    res = CliRunner().invoke(app, ["predict", "--model", str(graph), "-p", str(pred)], env=ENV)
    assert res.exit_code == 0, res.output
    assert "% of the FLOPs" in res.stdout and "covers the predicted layers only" in res.stdout
    res = CliRunner().invoke(app, ["predict", "--model", str(graph), "-p", str(pred), "--measure"], env=ENV)
    assert res.exit_code == 2 and "architecture file is predicted only" in res.output
    (tmp_path / "bad.onnx").write_text("not a graph")
    res = CliRunner().invoke(app, ["predict", "--model", str(tmp_path / "bad.onnx"), "-p", str(pred)], env=ENV)
    assert res.exit_code == 2 and "is not an ONNX model" in res.output and "Traceback" not in res.output


def test_a_whole_pytorch_model_file_is_decomposed(tmp_path):
    torch = pytest.importorskip("torch")
    from mlee.predict.architecture import decompose_model

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Dropout(0.1),
                                torch.nn.Linear(4, 5))
    torch.save(model, tmp_path / "net.pt")
    name, dec, ref = decompose_model(str(tmp_path / "net.pt"), "pytorch", 2, 16)
    assert name == "net.pt" and ref is None and dec.input_shape == (2, 3, 16, 16)
    assert [layer.kind for layer in dec.layers] == ["conv-bn-relu", "avgpool", "fc"]
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(UsageError, match="not a model"):
        decompose_model(str(tmp_path / "weights.pt"), "pytorch", 1)


def test_a_keras_model_file_is_read_through_onnx(tmp_path):
    pytest.importorskip("tf2onnx")
    from mlee.predict.architecture import decompose_model
    from mlee.runners.tf_backend import import_tf

    import_tf()
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(5)(x)
    keras.Model(inp, out).save(tmp_path / "net.keras")
    name, dec, ref = decompose_model(str(tmp_path / "net.keras"), "pytorch", 1, 16)
    assert name == "net.keras" and ref is None
    kinds = [layer.kind for layer in dec.layers]
    assert "fc" in kinds and ("conv-bn-relu" in kinds) and ("avgpool" in kinds)
    fc = next(layer for layer in dec.layers if layer.kind == "fc")
    assert fc.config.as_dict() == {"batch": 1, "fin": 4, "fout": 5}
