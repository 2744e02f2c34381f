"""PyTorch backend: torchvision models, checkpoints, devices (DataParallel over visible GPUs), the timed loops.

torch and torchvision are imported inside the functions; importing this module is light.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlee.errors import BackendMissing, DeviceUnavailable, MleeError
from mlee.runners.engine import (
    BatchCallback,
    CountingSink,
    EpochStats,
    ModelInfo,
    WeightsChoice,
    parse_device,
    pretrained_download,
)
from mlee.runners.registry import TorchEntry

WEIGHTS_HOST = "download.pytorch.org"


def import_torch() -> Any:
    """The ``torch`` module, or BackendMissing naming the extra to install."""
    try:
        import torch
    except ImportError as exc:
        raise BackendMissing("PyTorch is not installed", fix='pip install "mlee[torch]"') from exc
    return torch


def import_torchvision() -> Any:
    """The ``torchvision`` module (torch with it), or BackendMissing naming the extra to install."""
    try:
        import torch  # noqa: F401 - torchvision needs it; a missing torch is named as such
        import torchvision
    except ImportError as exc:
        raise BackendMissing(f"the pytorch backend needs torch and torchvision ({exc.name} is not installed)",
                             fix='pip install "mlee[torch]"') from exc
    return torchvision


def torch_device(device: str) -> tuple[Any, list[int]]:
    """The torch device for ``--device`` and the GPU indices a DataParallel model spreads over.

    Raises:
        DeviceUnavailable: CUDA asked for but absent, or an index beyond the visible GPUs.
    """
    torch = import_torch()
    kind, index = parse_device(device)
    if kind == "cpu":
        return torch.device("cpu"), []
    if not torch.cuda.is_available():
        raise DeviceUnavailable(f"--device {device}: no CUDA GPU is visible to PyTorch",
                                fix="use --device cpu, or check the driver and CUDA_VISIBLE_DEVICES")
    count = torch.cuda.device_count()
    if index is not None:
        if index >= count:
            raise DeviceUnavailable(f"--device {device}: only {count} GPU(s) visible (cuda:0..cuda:{count - 1})",
                                    fix="choose a visible GPU index")
        return torch.device(f"cuda:{index}"), [index]
    return torch.device("cuda:0"), list(range(count))


def _last_linear(model: Any) -> tuple[str, Any]:
    torch = import_torch()
    found = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            found = (name, module)
    if found is None:
        raise MleeError(f"{type(model).__name__} has no linear classifier to resize")
    return found


def _set_module(model: Any, dotted: str, new: Any) -> None:
    parent = model
    parts = dotted.split(".")
    for part in parts[:-1]:
        parent = getattr(parent, part)
    setattr(parent, parts[-1], new)


def _build(entry: TorchEntry, weights: str | None, num_classes: int, input_size: int) -> Any:
    torchvision = import_torchvision()
    kwargs: dict[str, Any] = {}
    if entry.builder == "vit_b_16" and input_size != entry.input_size:
        kwargs["image_size"] = input_size  # ViT's position embeddings fix the input size
    if entry.builder == "inception_v3" and weights is None:
        kwargs["init_weights"] = True  # torchvision warns unless the choice is explicit
    if weights is None:
        return torchvision.models.get_model(entry.builder, weights=None, num_classes=num_classes, **kwargs)
    model = torchvision.models.get_model(entry.builder, weights=weights, **kwargs)
    if num_classes != 1000:  # fine-tuning: a fresh head of the right width on the pretrained body
        torch = import_torch()
        name, head = _last_linear(model)
        _set_module(model, name, torch.nn.Linear(head.in_features, num_classes))
    return model


def _pretrained_path(entry: TorchEntry) -> Path:
    """Where torch caches the default weights of ``entry``."""
    torch, torchvision = import_torch(), import_torchvision()
    url = torchvision.models.get_model_weights(entry.builder).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


#: The fix for any checkpoint mlee cannot use. Never the advice to load with ``weights_only=False``: that runs
#: whatever code the file holds.
CHECKPOINT_FIX = "pass a state_dict saved with torch.save(model.state_dict(), PATH)"


_KINDS = {"empty": "empty", "zip": "a zip archive but not a PyTorch checkpoint",
          "numpy": "a NumPy array file, not a PyTorch checkpoint",
          "hdf5": "an HDF5 file (Keras weights?), not a PyTorch checkpoint", "other": "not a PyTorch checkpoint"}


def _file_kind(path: Path) -> str:
    """``torch`` (a torch.save zip), ``pickle``, or a key of :data:`_KINDS`, from the file's first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return "other"
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                return "torch" if any(n.endswith("/data.pkl") for n in archive.namelist()) else "zip"
        except (zipfile.BadZipFile, OSError):
            return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head.startswith(b"\x89HDF"):
        return "hdf5"
    return "empty" if not head else "other"


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Make every ``torch.load`` in the block use ``weights_only=True``, also where a library passes False.

    torchvision loads its pretrained weights through ``torch.hub.load_state_dict_from_url``, which passes
    ``weights_only=False``; torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` overrides that. The environment is
    restored afterwards (a user's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set aside for the block).
    """
    saved = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_checkpoint(path: Path) -> dict:
    """A state_dict from a checkpoint file, loaded with ``weights_only=True`` (always: no code in the file runs).

    Raises:
        MleeError: a file with objects other than tensors (named, with the blocked name when torch gives it),
            a file that is no checkpoint at all, or one without a state_dict.
    """
    import pickle
    import warnings

    torch = import_torch()
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on the way to refusing a file
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch fails in many ways on a file that is not a checkpoint
        kind = _file_kind(path)
        if isinstance(exc, pickle.UnpicklingError) and kind in ("torch", "pickle"):
            blocked = re.search(r"GLOBAL ([\w.]+)", str(exc))
            what = f" (it asks for {blocked.group(1)})" if blocked else ""
            raise MleeError(f"checkpoint {path} holds more than tensors{what}: mlee loads checkpoints with "
                            "weights_only=True and never runs code from a file", CHECKPOINT_FIX) from None
        shown = _KINDS.get(kind, "a damaged PyTorch checkpoint")
        raise MleeError(f"cannot read checkpoint {path}: the file is {shown} ({exc.__class__.__name__})",
                        CHECKPOINT_FIX) from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise MleeError(f"checkpoint {path} holds no state_dict",
                        fix="save it with torch.save(model.state_dict(), PATH)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def build_model(entry: TorchEntry, weights: WeightsChoice, num_classes: int, input_size: int,
                model_name: str) -> Any:
    """A torchvision model with ``weights``, ``num_classes`` outputs, on the CPU.

    A checkpoint whose classifier has another width than ``num_classes`` sets the width.

    Raises:
        MleeError: pretrained weights unreachable, or a checkpoint that does not fit the model.
    """
    if weights.kind == "none":
        return _build(entry, None, num_classes, input_size)
    if weights.kind == "pretrained":
        cached = _pretrained_path(entry)
        with pretrained_download(model_name, WEIGHTS_HOST, cached.is_file()), weights_only_loads():
            try:
                return _build(entry, "DEFAULT", num_classes, input_size)
            except OSError:
                raise  # the download failed: pretrained_download says so
            except Exception as exc:  # noqa: BLE001 - a truncated or corrupt cached file fails in many ways
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if "weights_only" in first:  # torch's text would advise turning the check off
                    first = "it holds more than tensors and is not loaded (weights_only=True)"
                raise MleeError(f"pretrained weights of {model_name} in {cached} cannot be loaded: {first}",
                                fix="delete that file to download it again, or use --weights none") from exc
    assert weights.path is not None
    state = load_checkpoint(weights.path)
    model = _build(entry, None, num_classes, input_size)
    head_name, head = _last_linear(model)
    ckpt_head = state.get(f"{head_name}.weight")
    if ckpt_head is not None and ckpt_head.shape[0] != head.out_features:
        model = _build(entry, None, int(ckpt_head.shape[0]), input_size)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:2]
        raise MleeError(f"checkpoint {weights.path} does not fit {model_name}: {' '.join(first)}",
                        fix="pass a checkpoint of this model, or --weights none") from exc
    return model


def count_flops(model: Any, input_size: int, device: Any) -> tuple[float, float]:
    """FLOPs and MACs of one forward pass on one sample, counted by ``torch.utils.flop_counter``.

    Units: floating-point operations; flops = 2 x macs (convolutions and matrix products).
    """
    torch = import_torch()
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, input_size, input_size, device=device))
        flops = float(counter.get_total_flops())
    finally:
        model.train(was_training)
    return flops, flops / 2.0


class TorchEngine:
    """A torchvision model on a device, with the timed inference and training loops."""

    def __init__(self, model: Any, device: str, input_size: int, threads: int | None = None) -> None:
        torch = import_torch()
        self._torch = torch
        if threads is not None:
            torch.set_num_threads(threads)
        self.torch_device, self.gpus = torch_device(device)
        self.module = model.to(self.torch_device)
        # Several visible GPUs and no index chosen: data parallel over all of them.
        self.model = torch.nn.DataParallel(self.module, device_ids=self.gpus) if len(self.gpus) > 1 else self.module
        self.device = str(self.torch_device) if len(self.gpus) <= 1 else f"cuda:{','.join(map(str, self.gpus))}"
        self.input_size = input_size
        self.backend = {"name": "pytorch", "version": torch.__version__}
        self.optimizer: Any = None
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def model_info(self) -> ModelInfo:
        """Parameters, FLOPs/MACs and serialized weight size (``torch.save`` of the state_dict)."""
        params = sum(p.numel() for p in self.module.parameters())
        flops, macs = count_flops(self.module, self.input_size, self.torch_device)
        sink = CountingSink()
        self._torch.save(self.module.state_dict(), sink)
        return ModelInfo(int(params), flops, macs, sink.n_bytes, "torch.utils.flop_counter")

    def inputs(self, batch: Any) -> Any:
        """numpy float32 NCHW -> tensor on the device."""
        return self._torch.from_numpy(batch).to(self.torch_device)

    def labels(self, labels: Any) -> Any:
        """numpy int64 -> tensor on the device."""
        return self._torch.from_numpy(labels).to(self.torch_device)

    def infer(self, batches: Sequence[Any], on_batch: BatchCallback | None = None) -> list[Any]:
        """Forward every batch under ``inference_mode``; the model object is ``self.model`` (hookable)."""
        model = self.model
        model.eval()
        outputs = []
        with self._torch.inference_mode():
            for i, x in enumerate(batches):
                outputs.append(model(x))
                if on_batch is not None:
                    on_batch(i, x.shape[0])
        return outputs

    def synchronize(self) -> None:
        """Wait for queued CUDA kernels (no-op on the CPU)."""
        if self.torch_device.type == "cuda":
            for index in self.gpus or [self.torch_device.index or 0]:
                self._torch.cuda.synchronize(index)

    def to_numpy(self, outputs: Sequence[Any]) -> Any:
        """Concatenated outputs as a float32 numpy array."""
        return self._torch.cat([o.float().cpu() for o in outputs]).numpy()

    def set_optimizer(self, name: str, lr: float) -> None:
        """``sgd`` (momentum 0.9) or ``adam`` over every parameter."""
        params = self.module.parameters()
        if name == "adam":
            self.optimizer = self._torch.optim.Adam(params, lr=lr)
        else:
            self.optimizer = self._torch.optim.SGD(params, lr=lr, momentum=0.9)

    def train_epoch(self, batches: Sequence[tuple[Any, Any]], deadline_s: float | None,
                    on_batch: BatchCallback | None = None) -> EpochStats:
        """One pass of SGD/Adam steps; Inception's auxiliary head adds 0.4 x its loss, as torchvision trains it."""
        torch = self._torch
        model = self.model
        model.train()
        loss_sum = torch.zeros((), device=self.torch_device)
        correct = torch.zeros((), device=self.torch_device, dtype=torch.long)
        seen = 0
        for i, (x, y) in enumerate(batches):
            if deadline_s is not None and time.monotonic() >= deadline_s:
                break
            self.optimizer.zero_grad(set_to_none=True)
            out = model(x)
            if hasattr(out, "logits"):
                logits = out.logits
                loss = self.loss_fn(logits, y)
                if getattr(out, "aux_logits", None) is not None:
                    loss = loss + 0.4 * self.loss_fn(out.aux_logits, y)
            else:
                logits = out
                loss = self.loss_fn(logits, y)
            loss.backward()
            self.optimizer.step()
            # Accumulate on the device: a .item() per step would synchronise the GPU every batch.
            loss_sum += loss.detach() * x.shape[0]
            correct += (logits.detach().argmax(1) == y).sum()
            seen += int(x.shape[0])
            if on_batch is not None:
                on_batch(i, int(x.shape[0]))
        if seen == 0:
            return EpochStats(0, float("nan"), float("nan"))
        return EpochStats(seen, float(loss_sum.item()) / seen, float(correct.item()) / seen)

    def save_weights(self, path: Path) -> None:
        """Write the state_dict (loadable again with ``--weights PATH``)."""
        self._torch.save(self.module.state_dict(), path)


def make_engine(entry: TorchEntry, weights: WeightsChoice, num_classes: int, input_size: int,
                model_name: str, device: str, threads: int | None, seed: int) -> TorchEngine:
    """Build the model and move it to its device (the build is outside every measured window)."""
    torch = import_torch()
    torch_device(device)  # an unusable device fails before the (slow) build
    torch.manual_seed(seed)
    model = build_model(entry, weights, num_classes, input_size, model_name)
    return TorchEngine(model, device, input_size, threads)
