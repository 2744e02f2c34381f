"""Per-layer breakdown of a TensorFlow (Keras) model: the Keras counterpart of :mod:`mlee.runners.layers`.

Keras has no forward hooks, so while a :class:`TfLayerTimer` is active the ``__call__`` of the classes
the model's layers come from (``keras.layers.Layer``, and ``keras.ops.Operation`` for the raw operations
a functional graph holds, such as the adds of MobileNetV3's hard-sigmoid) is replaced by a wrapper that
keeps the same stack of running layers as the PyTorch timer. Wrapping ``__call__`` rather than a
layer's ``call`` charges Keras's own per-call work (argument conversion, name and autocast scopes) to
the layer it serves instead of to its container. Calls on objects outside the model, or from another
thread, pass straight through; the classes are restored on exit, exceptions included.

The segments, names, types and calls have the PyTorch timer's format, so :func:`attribute`, the
window handling and the table are shared. On a GPU every layer edge synchronises the device.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlee.errors import MleeError, UsageError
from mlee.runners.layers import LayerTimer, batch_list, timed_window


def model_operations(model: Any) -> list[tuple[str, Any]]:
    """Every layer of a Keras model, nested ones included, with its path; the model itself first as ``""``.

    Paths join layer names with ``/`` (``inner/conv2d``), Keras's own naming. A functional model's
    raw operations (``keras.ops`` calls on its symbolic tensors, not layers) are listed too. A layer
    shared by several parents appears once, under the first path found.

    Raises:
        UsageError: ``model`` is not a Keras layer or model.
    """
    if not callable(getattr(model, "_flatten_layers", None)):
        raise UsageError(f"the per-layer breakdown needs a Keras model, not {type(model).__name__}",
                         fix="pass a tf.keras.Model (or layer)")
    found: list[tuple[str, Any]] = [("", model)]
    seen = {id(model)}

    def visit(parent: Any, path: str) -> None:
        children = list(parent._flatten_layers(include_self=False, recursive=False))
        # `operations` exists on functional models only (Sequential raises AttributeError: default).
        children += list(getattr(parent, "operations", None) or ())
        for child in children:
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = f"{path}/{child.name}" if path else str(child.name)
            found.append((child_path, child))
            if callable(getattr(child, "_flatten_layers", None)):
                visit(child, child_path)

    visit(model, "")
    return found


def _call_owner(obj: Any) -> type:
    """The class whose ``__call__`` runs for ``obj`` (the first in its MRO that defines one)."""
    return next(cls for cls in type(obj).__mro__ if "__call__" in cls.__dict__)


@dataclass
class TfLayerTimer(LayerTimer):
    """Times every layer of a Keras ``model`` while active (use as a context manager).

    The same records as :class:`LayerTimer`: ``names`` (layer paths, ``""`` the model), ``types``,
    ``segments`` ``(index, start_s, end_s)`` of own time on ``clock`` and ``calls`` per index.
    While active, ``tf.function``\\ s run eagerly (see :meth:`__enter__`).
    """

    _ids: dict[int, int] = field(default_factory=dict)
    _patched: list[tuple[type, Any]] = field(default_factory=list)
    _eager_before: bool | None = None
    _owner: int = 0

    def __enter__(self) -> TfLayerTimer:
        from mlee.runners.tf_backend import import_tf

        tf = import_tf()
        if not tf.executing_eagerly():
            raise UsageError("the per-layer breakdown cannot time layers inside a tf.function",
                             fix="call it from ordinary (eager) Python code")
        operations = model_operations(self.model)
        for i, (path, op) in enumerate(operations):
            self._ids[id(op)] = i
            self.names.append(path)
            self.types.append(type(op).__name__)
            self.calls.append(0)
        self._owner = threading.get_ident()
        owners = list(dict.fromkeys(_call_owner(op) for _, op in operations))
        try:
            for cls in owners:
                original = cls.__dict__["__call__"]
                setattr(cls, "__call__", self._wrap(original))
                self._patched.append((cls, original))
            # A compiled (tf.function) call traces the layers once and then runs a graph: no layer's
            # Python runs again, so nothing could be timed. Eager execution runs every layer's Python
            # and its ops one by one, including inside any tf.function a custom layer uses.
            self._eager_before = bool(tf.config.functions_run_eagerly())
            tf.config.run_functions_eagerly(True)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        for cls, original in reversed(self._patched):
            setattr(cls, "__call__", original)
        self._patched.clear()
        if self._eager_before is not None:
            from mlee.runners.tf_backend import import_tf

            import_tf().config.run_functions_eagerly(self._eager_before)
            self._eager_before = None
        self._stack.clear()

    def reset(self) -> None:
        """Forget what was timed so far (after a warm-up pass), keeping the wrappers in place."""
        self.segments.clear()
        self.calls[:] = [0] * len(self.calls)

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        ids, stack, owner = self._ids, self._stack, self._owner
        push, pop = self._push, self._pop

        @functools.wraps(original)
        def __call__(op: Any, *args: Any, **kwargs: Any) -> Any:
            index = ids.get(id(op))
            # Layer.__call__ runs Operation.__call__ of the same object: that inner call is the same
            # layer, already running, and must not count twice.
            if index is None or (stack and stack[-1][0] == index) or threading.get_ident() != owner:
                return original(op, *args, **kwargs)
            push(index)
            try:
                return original(op, *args, **kwargs)
            finally:
                pop()

        return __call__


def device_sync(tf: Any) -> Callable[[], None]:
    """TensorFlow's wait-for-all-devices function.

    Raises:
        MleeError: this TensorFlow has none (layer times on a GPU would be launch times only).
    """
    sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
    if sync is None:
        raise MleeError(f"TensorFlow {tf.__version__} has no tf.test.experimental.sync_devices, so layer times "
                        "on a GPU cannot be measured", fix="upgrade tensorflow, or use --device cpu")
    return sync


def _first_input(batch: Any) -> Any:
    return batch if not isinstance(batch, (tuple, list)) else batch[0]


def profile_tf_layers(model: Any, batches: Sequence[Any], session: Any, window_name: str = "per-layer",
                      measured: bool = False, device: str | None = None, warmup: bool = True) -> dict:
    """Run ``batches`` through a Keras ``model`` eagerly in one window of ``session``, broken down by layer.

    Args:
        model: A Keras model (called with ``training=False``).
        batches: Inputs, one forward pass each: a tensor, or a tuple/list of tensors for a model
            with several inputs (passed to it as one list).
        session: An open :class:`mlee.Measurement`.
        window_name: Name of the window in ``results.json``.
        measured: Whether the window counts for per-sample figures; eager execution and the wrappers
            cost time, so by default it does not.
        device: Recorded as ``device``; ``cuda...``/``gpu...`` (or a GPU input) synchronises the device
            at every layer edge. Default: the first input's TensorFlow device.
        warmup: Run the first batch once through the timed path before the window: the measured runs
            used the compiled graph, so the eager path's first-call costs are not paid yet.

    Returns:
        The breakdown of :func:`mlee.runners.layers.attribute` plus ``device``, ``backend``
        (``tensorflow``) and ``execution`` (``eager``); store it with ``session.add_results(per_layer=...)``.
    """
    from mlee.runners.tf_backend import import_tf

    tf = import_tf()
    batches = batch_list(batches)
    placement = str(getattr(_first_input(batches[0]), "device", "") or "")
    device = device or placement or "cpu"
    on_gpu = "GPU" in placement.upper() or device.lower().startswith(("cuda", "gpu"))
    sync = device_sync(tf) if on_gpu else None
    n_samples = sum(int(_first_input(b).shape[0]) for b in batches)

    def forward(batch: Any) -> None:
        model(list(batch) if isinstance(batch, (tuple, list)) else batch, training=False)

    def run() -> None:
        for batch in batches:
            forward(batch)

    # Ops go where the engine put the inputs (and the weights), as in the measured runs.
    scope = tf.device(placement) if placement else contextlib.nullcontext()
    with scope, TfLayerTimer(model, sync=sync) as timer:
        if warmup:
            forward(batches[0])
            if sync is not None:
                sync()
            timer.reset()
        breakdown = timed_window(timer, run, session, window_name, measured, n_samples)
    breakdown["device"] = device
    breakdown["backend"] = "tensorflow"
    # The measured repeats ran the compiled graph; these times are eager ones (far longer per sample).
    breakdown["execution"] = "eager"
    return breakdown
