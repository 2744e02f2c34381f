"""TensorFlow per-layer breakdown: every Keras layer timed on its own, wrappers restored, `mlee infer` wiring."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import UsageError
from mlee.runners.layers import AGREEMENT_TOLERANCE
from mlee.runners.options import RunOptions

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


class StepClock:
    """Each read is one second after the previous one (every layer edge gets a distinct, known time)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture(scope="module")
def tf():
    # Not pytest.importorskip("tensorflow"): importing tensorflow directly skips mlee's import order
    # (triton first), and a later torch import in the same process then crashes it.
    from mlee.errors import BackendMissing
    from mlee.runners.tf_backend import import_tf

    try:
        return import_tf()
    except BackendMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def model(tf):
    """Functional: conv -> nested Sequential (conv, relu) -> residual Add -> raw op -> pooling -> dense."""
    k = tf.keras
    inputs = k.Input((8, 8, 3), name="pixels")
    x = k.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    inner = k.Sequential([k.Input((8, 8, 4)), k.layers.Conv2D(4, 3, padding="same", name="inner_conv"),
                          k.layers.ReLU(name="inner_relu")], name="inner")
    y = k.layers.Add(name="residual")([x, inner(x)])
    y = k.ops.multiply(y, 0.5)  # a raw keras.ops call: an Operation in the graph, not a Layer
    y = k.layers.GlobalAveragePooling2D(name="pool")(y)
    return k.Model(inputs, k.layers.Dense(3, name="head")(y), name="small")


@pytest.fixture(scope="module")
def x(tf):
    return tf.random.normal((2, 8, 8, 3), seed=1)


def _call_methods():
    from keras.src.layers.layer import Layer
    from keras.src.ops.operation import Operation

    return Layer.__dict__["__call__"], Operation.__dict__["__call__"]


def _own_by_name(timer) -> dict[str, float]:
    own: dict[str, float] = {}
    for idx, a, b in timer.segments:
        assert b > a
        own[timer.names[idx]] = own.get(timer.names[idx], 0.0) + (b - a)
    return own


def test_timer_sees_every_layer_and_charges_each_its_own_time(tf, model, x):
    from mlee.runners.tf_layers import TfLayerTimer

    with TfLayerTimer(model, clock=StepClock()) as timer:
        for _ in range(3):
            model(x, training=False)
    called = {n: c for n, c in zip(timer.names, timer.calls) if c}
    expected = {"", "stem", "inner", "inner/inner_conv", "inner/inner_relu", "residual", "pool", "head"}
    assert expected <= set(called) and all(called[n] == 3 for n in expected)
    raw = [n for n, t in zip(timer.names, timer.types) if t == "Multiply"]
    assert len(raw) == 1 and called[raw[0]] == 3  # the raw op is timed too, on its own row
    never = {t for t, c in zip(timer.types, timer.calls) if c == 0}
    assert never == {"InputLayer"}  # input placeholders are never called eagerly; nothing else is missed
    own = _own_by_name(timer)
    calls_per_pass = sum(timer.calls) // 3
    # Two clock reads per layer call; own stretches tile each pass between its first and last read, so
    # a layer counted twice (Layer.__call__ inside Operation.__call__) would break this equality.
    assert sum(own.values()) == pytest.approx(3 * (2 * calls_per_pass - 1))
    assert own["inner"] > 0 and own[""] > 0  # containers keep their own work (graph walk), not their children's


def test_real_clock_own_times_fit_in_the_wall_time_and_containers_stay_small(tf, model, x):
    from mlee.runners.tf_layers import TfLayerTimer

    model(x, training=False)
    with TfLayerTimer(model) as timer:
        start = time.perf_counter()
        for _ in range(5):
            model(x, training=False)
        wall_s = time.perf_counter() - start
    own = _own_by_name(timer)
    total_s = sum(own.values())
    assert total_s <= wall_s and total_s >= 0.9 * wall_s
    # Keras's per-call work is charged to each layer (wrapping __call__), so the containers' own share
    # is their graph walk only: well under the layers' share.
    assert own[""] + own["inner"] < 0.5 * total_s


def test_wrappers_and_eager_setting_restored_after_exit_and_after_an_exception(tf, model, x):
    from mlee.runners.tf_layers import TfLayerTimer

    before = _call_methods()
    assert tf.config.functions_run_eagerly() is False
    with TfLayerTimer(model) as timer:
        assert _call_methods() != before and tf.config.functions_run_eagerly() is True
        model(x, training=False)
    assert _call_methods() == before and tf.config.functions_run_eagerly() is False
    recorded = len(timer.segments)
    model(x, training=False)
    assert len(timer.segments) == recorded  # nothing is timed once the timer is gone

    with pytest.raises(ValueError):
        with TfLayerTimer(model) as failing:
            model(tf.zeros((1, 8, 8, 5)), training=False)  # wrong channel count: Keras raises inside the call
    assert _call_methods() == before and tf.config.functions_run_eagerly() is False
    assert failing.calls[0] == 1 and not failing._stack  # the raising call was entered and left
    model(x, training=False)  # the model still works unwrapped


def test_a_compiled_call_still_runs_every_layer_while_timed(tf, model, x):
    from mlee.runners.tf_layers import TfLayerTimer

    compiled = tf.function(lambda t: model(t, training=False))
    compiled(x)
    with TfLayerTimer(model) as timer:
        compiled(x)  # would replay a graph and time nothing, were functions not run eagerly
    assert timer.calls[timer.names.index("inner/inner_conv")] == 1


def test_not_a_keras_model_is_a_usage_error(tf):
    from mlee.runners.tf_layers import TfLayerTimer

    with pytest.raises(UsageError, match="needs a Keras model"):
        with TfLayerTimer(object()):
            pass


def test_profile_tf_layers_in_a_real_session_sums_to_the_window(tf, model, tmp_path):
    from fakes.estimator import FakeEstimator

    import mlee
    from mlee.runners.tf_layers import profile_tf_layers

    batch = tf.random.normal((4, 8, 8, 3), seed=2)
    with mlee.measure("tf-layers", kind="infer", output_dir=tmp_path, sources="estimate",
                      estimator=FakeEstimator(time.monotonic, cpu_w=10.0, ram_w=3.0)) as m:
        breakdown = profile_tf_layers(model, [batch] * 6, m, "per-layer")
        m.add_results(per_layer=breakdown)
    assert breakdown["backend"] == "tensorflow" and breakdown["execution"] == "eager"
    assert "CPU" in breakdown["device"]
    assert breakdown["n_samples"] == 24 and breakdown["energy_method"] == "estimate"
    assert abs(1 - breakdown["agreement"]) <= AGREEMENT_TOLERANCE and breakdown["within_tolerance"] is True
    rows = {r["name"]: r for r in breakdown["layers"]}
    assert rows["inner/inner_conv"]["calls"] == 6  # the warm-up pass is not counted
    assert breakdown["layers"][0]["name"] == "(model)" and rows["head"]["energy_j"] > 0
    total = breakdown["layers_sum"]["energy_j"] + breakdown["outside_layers"]["energy_j"]
    assert total == pytest.approx(breakdown["energy_j"])
    saved = json.loads((m.result.folder / "results.json").read_text())
    window = next(w for w in saved["windows"] if w["name"] == "per-layer")
    assert window["measured"] is False and breakdown["energy_j"] == window["energy_j"]["total"] > 0
    assert saved["per_layer"]["backend"] == "tensorflow"


@pytest.mark.slow
def test_cli_infer_tensorflow_per_layer_stores_and_shows_the_breakdown(tf, tmp_path):
    res = CliRunner().invoke(app, ["infer", "-m", "MobileNetV3Small", "--backend", "tensorflow", "--per-layer",
                                   "--batch-size", "2", "--n-batches", "2", "--input-size", "32",
                                   "--warmup-batches", "1", "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 0, res.output
    results = json.loads(next(tmp_path.glob("infer-*/results.json")).read_text())
    breakdown = results["per_layer"]
    assert breakdown["backend"] == "tensorflow" and breakdown["n_samples"] == 4
    assert [w["name"] for w in results["windows"] if w["measured"]] == ["repeat-0"]
    assert len(breakdown["layers"]) > 100  # MobileNetV3Small: every layer and raw op has its row
    assert abs(1 - breakdown["agreement"]) <= AGREEMENT_TOLERANCE
    assert breakdown["layers_sum"]["energy_j"] + breakdown["outside_layers"]["energy_j"] == pytest.approx(
        breakdown["energy_j"], rel=1e-6)
    assert "Per-layer breakdown" in res.stdout and "tensorflow, eager" in res.stdout
    assert "ran eagerly" in res.output  # the note on stderr: eager times are not the measured ones


def test_per_layer_refuses_onnx_in_one_line(tmp_path):
    res = CliRunner().invoke(app, ["infer", "-m", "MobileNetV3Small", "--backend", "onnx", "--onnx-source",
                                   "tensorflow", "--per-layer", "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "--per-layer" in lines[0] and "onnx" in lines[0]
    assert "--backend pytorch or tensorflow" in lines[0]  # the fix


def test_per_layer_refuses_training_in_one_line(tmp_path):
    with pytest.raises(UsageError) as caught:
        RunOptions(task="training", backend="tensorflow", per_layer=True).validate()
    assert "inference only" in str(caught.value) and "\n" not in str(caught.value)
    assert RunOptions(backend="tensorflow", per_layer=True).validate() is not None  # inference: allowed
    res = CliRunner().invoke(app, ["train", "-m", "MobileNetV3Small", "--per-layer", "-o", str(tmp_path)], env=ENV)
    assert res.exit_code == 2 and "--per-layer" in res.output  # `mlee train` has no such option
