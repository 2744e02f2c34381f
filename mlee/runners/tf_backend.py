"""TensorFlow backend: ``tf.keras.applications`` models, checkpoints, devices, the timed loops.

tensorflow is imported inside the functions; importing this module is light.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, DeviceUnavailable, MleeError, UsageError
from mlee.runners.engine import (
    BatchCallback,
    EpochStats,
    ModelInfo,
    WeightsChoice,
    parse_device,
    pretrained_download,
)
from mlee.runners.registry import KerasEntry

WEIGHTS_HOST = "storage.googleapis.com"


def import_tf() -> Any:
    """The ``tensorflow`` module, or BackendMissing naming the extra to install."""
    # TensorFlow's C++ start-up banner would land in the user's terminal; keep errors only,
    # unless the user chose a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _load_triton_first()
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise BackendMissing(f"the tensorflow backend needs tensorflow ({exc.name} is not installed)",
                             fix='pip install "mlee[tensorflow]"') from exc
    tf.get_logger().setLevel("ERROR")
    return tf


def _load_triton_first() -> None:
    """Import triton (shipped with CUDA builds of torch) before TensorFlow when it is installed.

    Loading triton's C extension after TensorFlow crashes the process (segmentation fault, seen with
    TensorFlow 2.21 and torch 2.14's triton); a process that uses both frameworks (a test suite, a
    notebook) would die when torchvision first imports it. Loading it first costs about 0.3 s.
    """
    import importlib.util
    import sys

    if "tensorflow" in sys.modules or "triton" in sys.modules:
        return
    try:
        if importlib.util.find_spec("triton") is not None:
            importlib.import_module("triton")
    except Exception:  # noqa: BLE001 - a broken triton must not stop TensorFlow runs; torch reports it
        pass


def tf_device(device: str) -> str:
    """The TensorFlow device name for ``--device``.

    Raises:
        DeviceUnavailable: CUDA asked for but TensorFlow sees no GPU, or an index beyond them.
    """
    tf = import_tf()
    kind, index = parse_device(device)
    if kind == "cpu":
        return "/CPU:0"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise DeviceUnavailable(f"--device {device}: no GPU is visible to TensorFlow",
                                fix="use --device cpu, or install a GPU build of tensorflow")
    if index is not None and index >= len(gpus):
        raise DeviceUnavailable(f"--device {device}: only {len(gpus)} GPU(s) visible to TensorFlow",
                                fix="choose a visible GPU index")
    return f"/GPU:{index or 0}"


def set_threads(threads: int | None) -> None:
    """Intra-op threads of TensorFlow; it can be set once per process, before the first op."""
    if threads is None:
        return
    tf = import_tf()
    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError as exc:
        raise UsageError(f"--threads {threads}: TensorFlow already started with other settings in this process",
                         fix="run models that need different --threads in separate mlee calls") from exc


def _cache_has(token: str) -> bool:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    if not home.is_dir():
        return False
    return any(token.lower() in p.name.lower() for p in home.iterdir())


def build_model(entry: KerasEntry, weights: WeightsChoice, num_classes: int, input_size: int,
                model_name: str) -> Any:
    """A ``tf.keras.applications`` model returning logits (no softmax), on the current device scope.

    Raises:
        UsageError: pretrained weights at a non-standard input size.
        MleeError: pretrained weights unreachable, or a checkpoint that does not fit the model.
    """
    tf = import_tf()
    builder = getattr(tf.keras.applications, entry.builder)
    shape = (input_size, input_size, 3)
    if weights.kind == "pretrained":
        if input_size != entry.input_size:
            raise UsageError(f"pretrained keras weights of {model_name} need --input-size {entry.input_size}",
                             fix="drop --input-size, or use --weights none")
        # keras wraps network errors in plain Exception: any failure of the build is a failed download
        with pretrained_download(model_name, WEIGHTS_HOST, _cache_has(entry.cache_token), failures=(Exception,)):
            if num_classes == 1000:
                return builder(weights="imagenet", input_shape=shape, classifier_activation=None)
            body = builder(weights="imagenet", include_top=False, input_shape=shape, pooling="avg")
        head = tf.keras.layers.Dense(num_classes, name="predictions")(body.output)
        return tf.keras.Model(body.input, head, name=body.name)
    if weights.kind == "path" and weights.path is not None and weights.path.suffix == ".keras":
        try:
            # safe_mode: a lambda layer in the file is refused, never deserialised into code that runs.
            return tf.keras.models.load_model(weights.path, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad file
            raise MleeError(f"cannot load keras model {weights.path}: {exc.__class__.__name__}: {exc}",
                            fix="pass a .keras file saved by model.save(), or a .weights.h5 file") from exc
    model = builder(weights=None, classes=num_classes, input_shape=shape, classifier_activation=None)
    if weights.kind == "path" and weights.path is not None:
        try:
            model.load_weights(weights.path)
        except Exception as exc:  # noqa: BLE001 - h5py/keras raise many types for a bad file
            raise MleeError(f"checkpoint {weights.path} does not fit {model_name}: {exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0]}",
                            fix="pass weights saved from this model with model.save_weights(), or --weights none") from exc
    return model


class TfEngine:
    """A keras model on a TensorFlow device, with compiled (``tf.function``) timed loops."""

    def __init__(self, model: Any, device_name: str, device: str, input_size: int) -> None:
        tf = import_tf()
        self._tf = tf
        self.model = model
        self.device_name = device_name
        self.device = device
        self.input_size = input_size
        self.backend = {"name": "tensorflow", "version": tf.__version__}
        spec = tf.TensorSpec([None, input_size, input_size, 3], tf.float32)
        # One trace for every batch size (a short last batch must not retrace inside the window).
        self._predict = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self._train_step: Any = None
        self.optimizer: Any = None

    def model_info(self) -> ModelInfo:
        """Parameters, FLOPs/MACs (profiler) and serialized weight size (``save_weights`` .weights.h5)."""
        from mlee.runners.tf_flops import count_flops

        flops, macs = count_flops(self.model, self.input_size)
        with tempfile.TemporaryDirectory(prefix="mlee-weights-") as tmp:
            path = Path(tmp) / "model.weights.h5"
            self.model.save_weights(path)
            size = path.stat().st_size
        return ModelInfo(int(self.model.count_params()), flops, macs, size,
                         "tensorflow flops registry (+ depthwise convolutions)")

    def inputs(self, batch: Any) -> Any:
        """numpy float32 NHWC -> tensor on the device."""
        with self._tf.device(self.device_name):
            return self._tf.constant(batch)

    def labels(self, labels: Any) -> Any:
        """numpy int64 -> tensor on the device."""
        with self._tf.device(self.device_name):
            return self._tf.constant(labels)

    def infer(self, batches: Sequence[Any], on_batch: BatchCallback | None = None) -> list[Any]:
        """The compiled forward pass over every batch."""
        predict = self._predict
        outputs = []
        with self._tf.device(self.device_name):
            for i, x in enumerate(batches):
                outputs.append(predict(x))
                if on_batch is not None:
                    on_batch(i, int(x.shape[0]))
        return outputs

    def synchronize(self) -> None:
        """Wait until queued device work is done."""
        sync = getattr(getattr(self._tf.test, "experimental", None), "sync_devices", None)
        if sync is not None and self.device_name.startswith("/GPU"):
            sync()

    def to_numpy(self, outputs: Sequence[Any]) -> Any:
        """Concatenated outputs as a float32 numpy array."""
        import numpy as np

        return np.concatenate([np.asarray(o, dtype=np.float32) for o in outputs])

    def set_optimizer(self, name: str, lr: float) -> None:
        """``sgd`` (momentum 0.9) or ``adam``, and the compiled training step."""
        tf = self._tf
        self.optimizer = (tf.keras.optimizers.Adam(learning_rate=lr) if name == "adam"
                          else tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9))
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model, optimizer = self.model, self.optimizer
        spec_x = tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
        spec_y = tf.TensorSpec([None], tf.int64)

        @tf.function(input_signature=[spec_x, spec_y])
        def step(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_fn(y, logits)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), y), tf.int64))
            return loss, correct

        self._train_step = step

    def train_epoch(self, batches: Sequence[tuple[Any, Any]], deadline_s: float | None,
                    on_batch: BatchCallback | None = None) -> EpochStats:
        """One pass of compiled training steps."""
        loss_sum = 0.0
        correct = 0
        seen = 0
        with self._tf.device(self.device_name):
            pending = []
            for i, (x, y) in enumerate(batches):
                if deadline_s is not None and time.monotonic() >= deadline_s:
                    break
                pending.append((self._train_step(x, y), int(x.shape[0])))
                seen += int(x.shape[0])
                if on_batch is not None:
                    on_batch(i, int(x.shape[0]))
            # Read the step results at the end: a .numpy() per step would serialise the pipeline.
            for (loss, hits), n in pending:
                loss_sum += float(loss.numpy()) * n
                correct += int(hits.numpy())
        if seen == 0:
            return EpochStats(0, float("nan"), float("nan"))
        return EpochStats(seen, loss_sum / seen, correct / seen)

    def save_weights(self, path: Path) -> None:
        """Write the weights (``.weights.h5``) or the whole model (``.keras``)."""
        if str(path).endswith(".keras"):
            self.model.save(path)
        else:
            self.model.save_weights(path)


def make_engine(entry: KerasEntry, weights: WeightsChoice, num_classes: int, input_size: int,
                model_name: str, device: str, threads: int | None, seed: int) -> TfEngine:
    """Build the model on its device and wrap it (the build is outside every measured window)."""
    tf = import_tf()
    set_threads(threads)
    name = tf_device(device)
    tf.keras.utils.set_random_seed(seed)
    with tf.device(name):
        model = build_model(entry, weights, num_classes, input_size, model_name)
    return TfEngine(model, name, device, input_size)
