"""The interface every framework backend implements, and helpers they share.

A backend builds one model on one device and offers the timed loops. The orchestration in
:mod:`mlee.runners.modelrun` opens the measured windows around those loops and does the arithmetic.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlee.errors import MleeError, UsageError

#: Called after each batch of a timed loop with (batch index, samples in the batch). Kept cheap:
#: it is where the progress bar advances and where a per-layer profiler can hook in.
BatchCallback = Callable[[int, int], None]

#: How long a reachability probe for pretrained weights may take before we call the host offline.
PROBE_TIMEOUT_S = 3.0
#: Socket timeout while a framework downloads weights: a stalled download fails instead of hanging.
DOWNLOAD_TIMEOUT_S = 30.0
#: What to do when pretrained weights cannot be downloaded.
DOWNLOAD_FIX = "retry with a network, or use --weights none or --weights PATH"


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a built model.

    Units: ``flops`` and ``macs`` per sample for one forward pass (flops = 2 x macs: multiply-adds of
    convolutions and matrix products); ``weights_bytes`` size of the serialized weights in bytes.
    """

    parameters: int
    flops: float | None
    macs: float | None
    weights_bytes: int
    flops_counter: str

    def to_json(self) -> dict:
        """The ``model_info`` block of results.json."""
        return {"parameters": self.parameters, "flops": self.flops, "macs": self.macs,
                "weights_bytes": self.weights_bytes, "flops_counter": self.flops_counter}


@dataclass(frozen=True)
class EpochStats:
    """What one training epoch (or the part the time budget allowed) did.

    Units: ``loss`` mean cross-entropy in nats; ``top1`` fraction of training samples right.
    """

    n_samples: int
    loss: float
    top1: float


class Engine(Protocol):
    """One model, built on one device by one framework, ready to run."""

    backend: dict
    device: str

    def model_info(self) -> ModelInfo:
        """Parameters, FLOPs/MACs and weight size of the model (computed outside any window)."""
        ...

    def inputs(self, batch: Any) -> Any:
        """A float32 numpy batch as the framework's input on the device (outside the window)."""
        ...

    def infer(self, batches: Sequence[Any], on_batch: BatchCallback | None = None) -> list[Any]:
        """The timed loop: a forward pass per batch; returns the outputs (on the device)."""
        ...

    def synchronize(self) -> None:
        """Wait until queued device work is done (window edges)."""
        ...

    def to_numpy(self, outputs: Sequence[Any]) -> Any:
        """Concatenate the outputs of :meth:`infer` into one numpy array (n, classes)."""
        ...

    def train_epoch(self, batches: Sequence[tuple[Any, Any]], deadline_s: float | None,
                    on_batch: BatchCallback | None = None) -> EpochStats:
        """One pass over ``(inputs, labels)`` batches; stop early when ``time.monotonic()`` passes ``deadline_s``."""
        ...


@dataclass(frozen=True)
class WeightsChoice:
    """``--weights``: ``none`` (random initialisation), ``pretrained`` or a checkpoint ``path``."""

    kind: str
    path: Path | None = None

    @staticmethod
    def parse(value: str) -> WeightsChoice:
        """Parse ``--weights``; a path must exist.

        Raises:
            UsageError: empty value, or a path that does not exist.
        """
        text = (value or "").strip()
        if text.lower() in ("none", "random", ""):
            if not text:
                raise UsageError("--weights is empty", fix="use none, pretrained or a checkpoint path")
            return WeightsChoice("none")
        if text.lower() == "pretrained":
            return WeightsChoice("pretrained")
        path = Path(text).expanduser()
        if not path.is_file():
            raise UsageError(f"weights file {path} does not exist",
                             fix="use --weights none, --weights pretrained or the path of a checkpoint file")
        return WeightsChoice("path", path)

    def to_json(self) -> str:
        """The value recorded in config.json."""
        return str(self.path) if self.path is not None else self.kind


def check_reachable(host: str, port: int = 443, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast when ``host`` cannot be reached (offline machine, firewall) instead of hanging.

    Raises:
        MleeError: the host did not answer within ``timeout_s``.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except Exception as exc:  # noqa: BLE001 - whatever stops a connection (DNS, refusal, sandbox) means offline
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MleeError(
            f"pretrained weights are not cached and {host} cannot be reached within {timeout_s:g} s ({reason})",
            fix="connect to the network once to download them, or use --weights none or --weights PATH",
        ) from exc


class download_timeout:
    """Context manager: a default socket timeout while a framework downloads weights."""

    def __init__(self, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._old: float | None = None

    def __enter__(self) -> download_timeout:
        self._old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.timeout_s)
        return self

    def __exit__(self, *exc: object) -> None:
        socket.setdefaulttimeout(self._old)


@contextlib.contextmanager
def pretrained_download(model_name: str, host: str, cached: bool,
                        failures: tuple[type[BaseException], ...] = (OSError,)) -> Iterator[None]:
    """The frame every backend builds pretrained weights in: probe, timeout, one error for a failed download.

    Weights not ``cached`` yet: ``host`` is probed first, so an offline machine fails fast with the fix. The block
    runs under :class:`download_timeout`; an exception of ``failures`` raised in it becomes one MleeError.

    Raises:
        MleeError: ``host`` cannot be reached, or the download failed (the framework's error is the cause).
    """
    if not cached:
        check_reachable(host)
    try:
        with download_timeout():
            yield
    except failures as exc:
        raise MleeError(f"downloading pretrained weights of {model_name} failed: {exc}", fix=DOWNLOAD_FIX) from exc


def parse_device(device: str) -> tuple[str, int | None]:
    """``cpu`` -> ("cpu", None); ``cuda`` -> ("cuda", None) (all visible GPUs); ``cuda:N`` -> ("cuda", N).

    Raises:
        UsageError: anything else.
    """
    text = (device or "").strip().lower()
    if text == "cpu":
        return "cpu", None
    if text in ("cuda", "gpu"):
        return "cuda", None
    for prefix in ("cuda:", "gpu:"):
        if text.startswith(prefix) and text[len(prefix):].isdigit():
            return "cuda", int(text[len(prefix):])
    raise UsageError(f"unknown device {device!r}", fix="use cpu, cuda or cuda:N")


class CountingSink:
    """A write-only file object that only counts bytes (serialized size without keeping a copy)."""

    def __init__(self) -> None:
        self.n_bytes = 0

    def write(self, data: bytes) -> int:
        self.n_bytes += len(data)
        return len(data)

    def flush(self) -> None:
        return None

