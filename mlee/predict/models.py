"""Finding and building the PyTorch models that prediction decomposes.

Names resolve through mlee's model registry first (``ResNet50``, ``MobileNetV2`` ... the names
``mlee infer`` uses), then through torchvision's classification models (``resnet18``, ``alexnet`` ...),
with case, dashes and underscores ignored.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from mlee.errors import UsageError
from mlee.runners.torch_backend import import_torch


@dataclass(frozen=True)
class ModelRef:
    """A model prediction can build.

    Attributes:
        name: The name to show (registry name when there is one).
        builder: torchvision builder name.
        input_size: Square input side the model is evaluated at.
        registered: True when the registry knows the model (``mlee infer`` can run it).

    Units: ``input_size`` in pixels.
    """

    name: str
    builder: str
    input_size: int
    registered: bool


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def resolve_model(name: str, backend: str = "pytorch") -> ModelRef:
    """The model called ``name``, for ``backend`` (prediction decomposes PyTorch models only).

    Raises:
        UsageError: unknown model (closest names listed) or a backend other than pytorch.
    """
    if backend != "pytorch":
        raise UsageError(f"prediction decomposes PyTorch models; backend {backend!r} is not supported",
                         "use --backend pytorch (kernels are profiled with PyTorch)")
    from mlee.runners import registry

    try:
        spec = registry.lookup(name)
    except UsageError:
        spec = None
    if spec is not None and spec.pytorch is not None:
        return ModelRef(spec.name, spec.pytorch.builder, spec.pytorch.input_size, True)
    import_torch()
    tv = {_norm(n): n for n in _torchvision_names()}
    if _norm(name) in tv:
        builder = tv[_norm(name)]
        size = 299 if builder == "inception_v3" else 224
        return ModelRef(builder, builder, size, False)
    if spec is not None:
        raise UsageError(f"model {spec.name} has no PyTorch version", "choose a torchvision model")
    known = sorted(set(registry.names("pytorch")) | set(tv.values()))
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown model {name!r}", f"{hint}use a name from `mlee models` or a torchvision model name")


def build_model(ref: ModelRef, device: str = "cpu") -> Any:
    """The model in eval mode with random weights (the weights do not change runtime) on ``device``.

    On ``meta`` nothing is allocated; models whose constructor needs real tensors are built on the CPU
    and moved.
    """
    torch = import_torch()
    import warnings

    import torchvision

    kwargs: dict[str, Any] = {"weights": None}
    if ref.builder in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = False  # the truncated-normal init is slow and changes nothing we measure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if device == "meta":
            try:
                with torch.device("meta"):
                    return torchvision.models.get_model(ref.builder, **kwargs).eval()
            except (NotImplementedError, RuntimeError):
                pass
        model = torchvision.models.get_model(ref.builder, **kwargs).eval()
    return model.to(device)
