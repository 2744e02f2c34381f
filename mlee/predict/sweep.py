"""BUTTER-E style sweeps: fully connected networks over shapes, sizes and depths, trained under measurement.

A network is given by its *shape* (how widths change with depth), its *size* (target parameter count)
and its *depth* (hidden layers). Widths are the shape's relative widths scaled until the parameter
count is as close to the size as integer widths allow:

- ``rectangle``: every hidden layer equally wide;
- ``trapezoid``: widths fall linearly from the first hidden layer to 1/depth of it;
- ``exponential``: each hidden layer half as wide as the one before;
- ``wide_first``: the first hidden layer twice as wide as the others;
- ``residual``: a rectangle whose hidden layers after the first add their input to their output (BUTTER's
  residual shape; the additions' FLOPs are left out beside the products').

Every network trains in its own window of one ``sweep`` session (at least ``epochs`` epochs and at
least ``min_window_s`` seconds, so short runs are not lost in sampling noise); results are added to
``results.json`` as each network finishes::

    "sweep": {"dataset": "digits", "batch_size": 32, "cache_bytes": {...}, "networks": [
        {"name": "rectangle-s10000-d2", "shape", "size", "depth", "widths": [...], "parameters",
         "flops_per_sample", "working_set_bytes", "cache_level", "epochs", "n_samples", "time_s",
         "energy_j", "energy_method", "per_sample": {"energy_j", "time_ms"}, "test_top1", "window"}],
        "fit": {...}}
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlee.errors import BackendMissing, UsageError

SHAPES = ("rectangle", "trapezoid", "exponential", "wide_first", "residual")
DATASETS = ("digits", "synthetic")
#: Bytes per float32 value; weights, gradients and Adam's two moments are kept per parameter.
FLOAT_BYTES = 4
COPIES_PER_PARAMETER = 4


def relative_widths(shape: str, depth: int) -> list[float]:
    """The shape's widths relative to its first hidden layer."""
    if shape in ("rectangle", "residual"):
        return [1.0] * depth
    if shape == "trapezoid":
        return [1.0 - (1.0 - 1.0 / depth) * i / max(depth - 1, 1) for i in range(depth)]
    if shape == "exponential":
        return [0.5 ** i for i in range(depth)]
    if shape == "wide_first":
        return [2.0] + [1.0] * (depth - 1)
    raise UsageError(f"unknown shape {shape!r}", f"use {', '.join(SHAPES)}")


def parameter_count(n_in: int, widths: Sequence[int], n_out: int) -> int:
    """Weights and biases of a fully connected network with these hidden widths."""
    sizes = [n_in, *widths, n_out]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def widths_for(shape: str, size: int, depth: int, n_in: int, n_out: int) -> list[int] | None:
    """Integer hidden widths of ``shape`` whose parameter count is closest to ``size`` (None: cannot reach it).

    A network reaches ``size`` only if even all-1 widths stay at or below it.
    """
    rel = relative_widths(shape, depth)

    def widths(scale: float) -> list[int]:
        return [max(1, round(scale * r)) for r in rel]

    if parameter_count(n_in, widths(0.0), n_out) > size:
        return None
    lo, hi = 0.0, 1.0
    while parameter_count(n_in, widths(hi), n_out) < size:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if parameter_count(n_in, widths(mid), n_out) < size else (lo, mid)
    best = min((widths(lo), widths(hi)), key=lambda w: abs(parameter_count(n_in, w, n_out) - size))
    return best


def parse_sizes(text: str) -> list[int]:
    """``"1e3,10k,1M"`` -> ``[1000, 10000, 1000000]`` (sorted, unique).

    Raises:
        UsageError: a part that is not a positive number.
    """
    out = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        powers = re.fullmatch(r"2\^(\d+)(?:\.\.2\^(\d+))?", part)
        if powers:  # BUTTER's sizes: 2^5..2^24, every power of two between
            lo, hi = int(powers.group(1)), int(powers.group(2) or powers.group(1))
            if hi < lo or hi > 40:
                raise UsageError(f"size range {part!r} is empty or too large", "use e.g. --sizes 2^5..2^24")
            out.update(2 ** k for k in range(lo, hi + 1))
            continue
        m = re.fullmatch(r"([\d.]+(?:e\d+)?)\s*([kKmM]?)", part)
        try:
            value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()] if m else -1.0
        except ValueError:
            value = -1.0
        if not value >= 1:
            raise UsageError(f"size {part!r} is not a positive parameter count", "use e.g. --sizes 1e3,1e4,100k,1M")
        out.add(int(round(value)))
    if not out:
        raise UsageError("no sizes given", "use e.g. --sizes 1e3,1e4,1e5")
    return sorted(out)


def parse_ints(text: str, what: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``; ``"2..20"`` is every integer from 2 to 20 (positive, sorted, unique);
    UsageError otherwise."""
    values_set: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, sep, hi = part.partition("..")
            values_set.update(range(int(lo), int(hi) + 1) if sep else [int(part)])
        values = sorted(values_set)
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise UsageError(f"{what} {text!r} are not positive integers", f"use e.g. --{what} 1,2,4")
    return values


def parse_shapes(text: str) -> list[str]:
    """Comma-separated shapes, checked against :data:`SHAPES` (closest names on a typo)."""
    shapes = [p.strip() for p in text.split(",") if p.strip()]
    for s in shapes:
        if s not in SHAPES:
            close = difflib.get_close_matches(s, SHAPES, n=2, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UsageError(f"unknown shape {s!r}", f"{hint}shapes: {', '.join(SHAPES)}")
    if not shapes:
        raise UsageError("no shapes given", f"use e.g. --shapes {','.join(SHAPES)}")
    return list(dict.fromkeys(shapes))


@dataclass(frozen=True)
class Network:
    """One network of the sweep.

    Units: ``flops_per_sample`` for one training step on one sample (forward and backward, 6 per
    weight); ``working_set_bytes`` bytes of parameters, gradients, optimizer state and one batch of
    activations and their gradients.
    """

    shape: str
    size: int
    depth: int
    widths: tuple[int, ...]
    n_in: int
    n_out: int
    batch_size: int

    @property
    def name(self) -> str:
        return f"{self.shape}-s{self.size}-d{self.depth}"

    @property
    def parameters(self) -> int:
        return parameter_count(self.n_in, self.widths, self.n_out)

    @property
    def flops_per_sample(self) -> float:
        sizes = [self.n_in, *self.widths, self.n_out]
        macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
        return 6.0 * macs

    @property
    def working_set_bytes(self) -> int:
        activations = self.batch_size * (self.n_in + sum(self.widths) + self.n_out) * 2
        return FLOAT_BYTES * (COPIES_PER_PARAMETER * self.parameters + activations)


def plan(shapes: Sequence[str], sizes: Sequence[int], depths: Sequence[int], n_in: int, n_out: int,
         batch_size: int) -> tuple[list[Network], list[str]]:
    """The networks of the grid, and notes on combinations no integer widths can reach."""
    nets, notes = [], []
    for shape in shapes:
        for size in sizes:
            for depth in depths:
                w = widths_for(shape, size, depth, n_in, n_out)
                if w is None:
                    notes.append(f"{shape}-s{size}-d{depth}: {size} parameters are too few for {depth} hidden "
                                 f"layers on {n_in} inputs")
                    continue
                nets.append(Network(shape, size, depth, tuple(w), n_in, n_out, batch_size))
    return nets, notes


def load_dataset(name: str, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """``(x_train, y_train, x_test, y_test)`` as float32/int64 numpy arrays (80/20 split, fixed seed).

    Raises:
        UsageError: unknown dataset.
        BackendMissing: ``digits`` without scikit-learn (names the extra).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise BackendMissing("the digits dataset needs scikit-learn, which is not installed",
                                 "pip install 'mlee[data]' (the extra 'data'), or use --dataset synthetic") from exc
        data = load_digits()
        x = (data.data / 16.0).astype(np.float32)
        y = data.target.astype(np.int64)
    elif name == "synthetic":
        x = rng.standard_normal((2000, 64)).astype(np.float32)
        y = (x[:, :10].argmax(axis=1)).astype(np.int64)  # learnable, so the loss means something
    else:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"unknown sweep dataset {name!r}", f"{hint}use {' or '.join(DATASETS)}")
    order = rng.permutation(len(x))
    cut = int(0.8 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def build_mlp(net: Network) -> Any:
    """The torch module of ``net``: Linear+ReLU per hidden layer (with skips for ``residual``), then the output."""
    from mlee.runners.torch_backend import import_torch

    torch = import_torch()
    sizes = [net.n_in, *net.widths]
    hidden = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    skip = net.shape == "residual"

    class Mlp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.ModuleList(hidden)
            self.out = torch.nn.Linear(sizes[-1], net.n_out)

        def forward(self, x: Any) -> Any:
            for i, layer in enumerate(self.hidden):
                y = torch.relu(layer(x))
                x = x + y if skip and i > 0 and y.shape == x.shape else y
            return self.out(x)

    return Mlp()


def train_network(session: Any, net: Network, data: tuple, epochs: int, min_window_s: float, lr: float = 1e-3,
                  seed: int = 0, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Train ``net`` in one window of ``session``; returns its entry of ``sweep.networks``."""
    from mlee.runners.torch_backend import import_torch

    torch = import_torch()
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in data)
    model = build_mlp(net)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = len(x_train)
    done_epochs = 0
    gen = torch.Generator().manual_seed(seed)
    with session.window(net.name, measured=True) as handle:
        t0 = clock()
        while done_epochs < epochs or clock() - t0 < min_window_s:
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, net.batch_size):
                idx = order[i:i + net.batch_size]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x_train[idx]), y_train[idx]).backward()
                opt.step()
            done_epochs += 1
    with torch.no_grad():
        top1 = float((model(x_test).argmax(dim=1) == y_test).float().mean())
    rec = handle.record
    samples = done_epochs * n
    energy = (rec.get("energy_j") or {}).get("total") if rec.get("valid", True) else None
    return {
        "name": net.name, "shape": net.shape, "size": net.size, "depth": net.depth, "widths": list(net.widths),
        "parameters": net.parameters, "flops_per_sample": net.flops_per_sample,
        "working_set_bytes": net.working_set_bytes, "epochs": done_epochs, "n_samples": samples,
        "time_s": rec["duration_s"], "energy_j": energy, "energy_method": (rec.get("energy_method") or {}).get("total"),
        "per_sample": {"energy_j": energy / samples if energy is not None else None,
                       "time_ms": rec["duration_s"] * 1e3 / samples},
        "test_top1": top1, "window": net.name,
    }


def resumable_entries(record: dict, dataset: str, epochs: int, batch_size: int) -> list[dict]:
    """The trained networks of a previous sweep record, checked to match this sweep's settings.

    Raises:
        UsageError: not a sweep, or a different data set, epochs or batch size.
    """
    sweep = record.get("sweep") if isinstance(record.get("sweep"), dict) else None
    if record.get("kind") != "sweep" or sweep is None:
        raise UsageError(f"{record.get('id')} is not a sweep experiment", "give the folder of an interrupted sweep")
    theirs = (sweep.get("dataset"), sweep.get("epochs"), sweep.get("batch_size"))
    if theirs != (dataset, epochs, batch_size) and sweep.get("networks"):
        raise UsageError(f"{record.get('id')} trained on {theirs[0]} for {theirs[1]} epochs at batch {theirs[2]}; "
                         f"this sweep uses {dataset}, {epochs}, {batch_size}", "resume with the same settings")
    return [{**e, "resumed_from": e.get("resumed_from") or str(record.get("id"))} for e in sweep.get("networks") or []
            if isinstance(e, dict) and e.get("name")]


def run_sweep(networks: Sequence[Network], dataset: str, epochs: int, min_window_s: float, cache: Any,
              output_dir: str = "results", sources: Any = None, interval_s: float = 0.1,
              on_network: Callable[[dict], None] | None = None, on_folder: Callable[[Any], None] | None = None,
              session_kwargs: dict | None = None, previous: Sequence[dict] = ()) -> tuple[Any, dict]:
    """Train every network in one ``sweep`` session, fit the energy model, return ``(result, sweep)``.

    ``previous``: network entries of an interrupted sweep (``mlee sweep --resume``); they are kept (marked
    ``resumed_from``) and their networks are not trained again.
    """
    from mlee.measure.session import Measurement
    from mlee.predict.sweepfit import fit_sweep

    if epochs < 1 or not min_window_s >= 0:
        raise UsageError("epochs must be at least 1 and the window length not negative", "use e.g. --epochs 2")
    data = load_dataset(dataset)
    done = {e["name"] for e in previous}
    batch = networks[0].batch_size if networks else None
    networks = [n for n in networks if n.name not in done]
    config = {"command": "sweep", "dataset": dataset, "epochs": epochs, "min_window_s": min_window_s,
              "networks": [n.name for n in networks], "resumed": sorted(done)}
    sweep: dict[str, Any] = {"dataset": dataset, "epochs": epochs, "min_window_s": min_window_s,
                             "batch_size": batch,
                             "cache_bytes": cache.to_json(), "networks": [dict(e) for e in previous], "fit": None}
    with Measurement(f"mlp-{dataset}", kind="sweep", output_dir=output_dir, interval_s=interval_s, sources=sources,
                     config=config, **(session_kwargs or {})) as m:
        if on_folder is not None:
            on_folder(m.folder)
        m.add_results(dataset=dataset, sweep=sweep)
        for net in networks:
            entry = train_network(m, net, data, epochs, min_window_s)
            entry["cache_level"] = cache.level_of(entry["working_set_bytes"])
            sweep["networks"].append(entry)
            m.add_results(sweep=sweep)
            if on_network is not None:
                on_network(entry)
        sweep["fit"] = fit_sweep(sweep["networks"], cache)
        m.add_results(sweep=sweep)
    return m.result, sweep
