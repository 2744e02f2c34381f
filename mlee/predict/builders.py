"""Runnable PyTorch modules for kernel configurations: what ``mlee profile`` measures.

Each builder returns a module in eval mode and the inputs of one call, built the way torchvision
builds the same layers (convolutions without bias before batch norm, ReLU in place, out-of-place add).
torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mlee.errors import UsageError
from mlee.predict.kernels import KernelConfig
from mlee.runners.torch_backend import import_torch


def build_kernel(cfg: KernelConfig, device: str = "cpu", seed: int = 0) -> tuple[Any, tuple[Any, ...]]:
    """A module computing ``cfg`` and the inputs of one call (random, fixed by ``seed``).

    On ``meta`` nothing is allocated or initialised (shape checks of whole grids stay fast).

    Returns:
        ``(module, inputs)``: call ``module(*inputs)``.
    """
    torch = import_torch()
    if device == "meta":
        with torch.device("meta"):
            return _build(torch, cfg, device, seed)
    return _build(torch, cfg, device, seed)


def _build(torch: Any, cfg: KernelConfig, device: str, seed: int) -> tuple[Any, tuple[Any, ...]]:
    nn = torch.nn
    d = cfg.as_dict()
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> Any:
        if device == "meta":  # shapes only: nothing to fill
            return torch.empty(*shape, device="meta")
        return torch.randn(*shape, generator=gen).to(device)

    kind = cfg.kind
    if kind in ("conv-bn-relu", "dwconv-bn-relu"):
        cin = d["cin"] if kind == "conv-bn-relu" else d["c"]
        cout = d["cout"] if kind == "conv-bn-relu" else d["c"] * d["mult"]
        groups = 1 if kind == "conv-bn-relu" else d["c"]
        module = nn.Sequential(
            nn.Conv2d(cin, cout, (d["kh"], d["kw"]), stride=d["stride"], padding=(d["ph"], d["pw"]),
                      groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )
        inputs: tuple[Any, ...] = (rand(d["batch"], cin, d["h"], d["w"]),)
    elif kind == "bn-relu":
        module = nn.Sequential(nn.BatchNorm2d(d["c"]), nn.ReLU(inplace=True))
        inputs = (rand(d["batch"], d["c"], d["h"], d["w"]),)
    elif kind == "relu":
        module = nn.ReLU(inplace=True)
        inputs = (rand(d["batch"], d["c"], d["h"], d["w"]),)
    elif kind == "add":
        module = _helper_modules()["add"]()
        inputs = (rand(d["batch"], d["c"], d["h"], d["w"]), rand(d["batch"], d["c"], d["h"], d["w"]))
    elif kind in ("avgpool", "maxpool"):
        pool = nn.AvgPool2d if kind == "avgpool" else nn.MaxPool2d
        module = pool((d["kh"], d["kw"]), stride=d["stride"], padding=(d["ph"], d["pw"]), ceil_mode=bool(d["ceil"]))
        inputs = (rand(d["batch"], d["c"], d["h"], d["w"]),)
    elif kind == "fc":
        module = nn.Linear(d["fin"], d["fout"])
        inputs = (rand(d["batch"], d["fin"]),)
    elif kind == "concat":
        n, c = d["n"], d["c"]
        parts = [c // n + (1 if i < c % n else 0) for i in range(n)]
        module = _helper_modules()["cat"]()
        inputs = tuple(rand(d["batch"], p, d["h"], d["w"]) for p in parts)
    else:  # pragma: no cover - KernelConfig.make only admits known kinds
        raise AssertionError(kind)
    return module.to(device).eval(), inputs


_HELPERS: dict[str, Any] = {}


def _helper_modules() -> dict[str, Any]:
    """The two small modules torch.nn lacks, defined on first use so that importing this file stays light."""
    if _HELPERS:
        return _HELPERS
    torch = import_torch()

    class Add(torch.nn.Module):
        """Elementwise addition of two tensors (a residual connection)."""

        def forward(self, a: Any, b: Any) -> Any:
            return a + b

    class Cat(torch.nn.Module):
        """Concatenation along channels (DenseNet, Inception, SqueezeNet)."""

        def forward(self, *xs: Any) -> Any:
            return torch.cat(xs, 1)

    _HELPERS.update(add=Add, cat=Cat)
    return _HELPERS


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads (None: torch's default), restoring the setting after.

    On a machine shared with other processes, more threads than free cores make every parallel region
    wait for a descheduled thread: a 20 microsecond convolution then takes a scheduler time slice.

    Raises:
        UsageError: ``threads`` below 1.
    """
    torch = import_torch()
    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads} is not a positive number of threads", "use e.g. --threads 1")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
