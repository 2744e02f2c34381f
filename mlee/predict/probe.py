"""A speed probe: a fixed small workload timed when kernels are profiled and again when a model is measured.

On a machine shared with other work (or a virtual machine whose host is busy), the same kernel can run
25 % slower ten minutes later, in CPU time as well as wall time. A prediction made from a profile is a
prediction for the machine *as it was during the profile*; the probe says how fast the machine is now
relative to then, so a check of a prediction can show the raw error and the error after correcting for
the drift, side by side. The probe never changes a prediction silently: it is reported as its own figure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mlee.predict.kernels import KernelConfig

#: The probe: a 3x3 convolution, a fully connected layer and a ReLU of typical sizes, with call counts
#: that take about 0.1 s together on a small CPU core.
PROBE: tuple[tuple[str, int], ...] = (
    ("conv-bn-relu[batch=1,cin=128,h=28,w=28,cout=128,kh=3,kw=3,stride=1,ph=1,pw=1]", 20),
    ("fc[batch=1,fin=1024,fout=1024]", 100),
    ("relu[batch=1,c=256,h=28,w=28]", 200),
)


def speed_probe(clock: str = "wall", device: str = "cpu", repeats: int = 3) -> float:
    """Seconds the probe takes on ``clock`` (``wall`` or ``cpu``: this thread's CPU time); the median of ``repeats``.

    Units: seconds.
    """
    from mlee.predict.builders import build_kernel
    from mlee.runners.torch_backend import import_torch

    torch = import_torch()
    read = time.thread_time if clock == "cpu" else time.perf_counter
    built = [(build_kernel(KernelConfig.from_key(key), device=device), calls) for key, calls in PROBE]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    runs = []
    with torch.inference_mode():
        for (module, inputs), _ in built:  # warm-up
            module(*inputs)
        for _ in range(repeats):
            sync()
            t0 = read()
            for (module, inputs), calls in built:
                for _ in range(calls):
                    module(*inputs)
            sync()
            runs.append(read() - t0)
    return sorted(runs)[len(runs) // 2]


def drift(now_s: float | None, basis_s: Sequence[float] | float | None) -> float | None:
    """How much slower the machine is now than during the profile (``now / median(basis)``); None if unknown.

    ``basis_s`` is the predictor's ``probe_ref_s`` (a number) or a list of probe times.
    """
    if basis_s is None or now_s is None:
        return None
    values = [basis_s] if isinstance(basis_s, (int, float)) else list(basis_s)
    values = sorted(v for v in values if isinstance(v, (int, float)) and v > 0)
    if not values or now_s <= 0:
        return None
    return now_s / values[len(values) // 2]
