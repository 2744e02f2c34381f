"""Per-layer breakdown of a measured window: time every module, attribute the window's energy to them.

Forward pre- and post-hooks on every module keep a stack of running modules; each module is charged
its *own* time (time inside it but outside its children), so a container's own functional calls (a
ResNet block's residual addition) are charged to the container and nothing is counted twice. Every
timed segment is kept, so the window's energy can be spread over them by the power trace: a segment
gets the energy the trace shows between its edges, scaled so the whole window matches the
exact-edge figure. The rows then sum to the window's energy less the time outside any forward pass
(the loop between batches), which is reported, not hidden. On CUDA every edge synchronises the device.
:mod:`mlee.predict.tf_layers` times Keras layers into the same records and shares everything after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Summed layers must agree with the window within this fraction (issue 8).
AGREEMENT_TOLERANCE = 0.05


@dataclass
class LayerTimer:
    """Hooks that time every module of ``model`` while active (use as a context manager).

    Attributes:
        names: Module path per index (``""`` is the model itself, shown as ``(model)``).
        types: Module class name per index.
        segments: ``(index, start_s, end_s)`` on ``clock`` for every stretch of a module's own time.
        calls: Forward calls per module index.
    """

    model: Any
    sync: Callable[[], None] | None = None
    clock: Callable[[], float] = time.perf_counter
    names: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    segments: list[tuple[int, float, float]] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    _stack: list[list[float]] = field(default_factory=list)  # [index, resumed_at]
    _handles: list[Any] = field(default_factory=list)

    def __enter__(self) -> LayerTimer:
        for i, (name, module) in enumerate(self.model.named_modules()):
            self.names.append(name)
            self.types.append(type(module).__name__)
            self.calls.append(0)
            self._handles.append(module.register_forward_pre_hook(self._enter(i)))
            self._handles.append(module.register_forward_hook(self._leave))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _now(self) -> float:
        if self.sync is not None:
            self.sync()
        return self.clock()

    def _push(self, index: int) -> None:
        """Module ``index`` starts: the running parent's own stretch ends here."""
        now = self._now()
        if self._stack:
            parent = self._stack[-1]
            self.segments.append((int(parent[0]), parent[1], now))
        self._stack.append([index, now])
        self.calls[index] += 1

    def _pop(self) -> None:
        """The innermost running module ends: its own stretch is recorded and its parent resumes."""
        now = self._now()
        index, resumed = self._stack.pop()
        self.segments.append((int(index), resumed, now))
        if self._stack:
            self._stack[-1][1] = now

    def _enter(self, index: int) -> Callable[..., None]:
        def hook(module: Any, inputs: Any) -> None:
            self._push(index)

        return hook

    def _leave(self, module: Any, inputs: Any, output: Any) -> None:
        self._pop()
        # returning None keeps the module's output


@dataclass(frozen=True)
class PowerTrace:
    """Cumulative energy of the whole machine as a function of time, from the traces of a window.

    ``times_s`` ascending and ``energy_j`` non-decreasing: ``energy(t)`` interpolates linearly between
    knots (a constant power per sampling interval) and extends the first/last slope beyond them.

    Units: seconds on the session clock; joules.
    """

    times_s: tuple[float, ...]
    energy_j: tuple[float, ...]

    def energy(self, t_s: Any) -> Any:
        import numpy as np

        t = np.asarray(t_s, dtype=float)
        x = np.asarray(self.times_s)
        y = np.asarray(self.energy_j)
        out = np.interp(t, x, y)
        if len(x) >= 2:
            lo = (y[1] - y[0]) / (x[1] - x[0]) if x[1] > x[0] else 0.0
            hi = (y[-1] - y[-2]) / (x[-1] - x[-2]) if x[-1] > x[-2] else 0.0
            out = np.where(t < x[0], y[0] - (x[0] - t) * lo, out)
            out = np.where(t > x[-1], y[-1] + (t - x[-1]) * hi, out)
        return out


def attribute(timer: LayerTimer, window: dict, offset_s: float, trace: PowerTrace | None,
              n_samples: int) -> dict:
    """The per-layer breakdown of one window.

    Args:
        timer: The timer that ran during the window.
        window: The window record (``start_s``, ``end_s``, ``duration_s``, ``energy_j``, ``energy_method``).
        offset_s: Added to the timer's clock to get session time (``window start_s - clock at entry``).
        trace: Cumulative energy over the window; None attributes by time alone (constant power).
        n_samples: Samples processed in the window (for per-sample figures).

    Returns:
        A JSON-ready dict (rows in first-call order); energies are None when the window has none.

    Units: seconds, joules, milliseconds for ``time_ms``.
    """
    import numpy as np

    start_s, end_s = float(window["start_s"]), float(window["end_s"])
    duration_s = max(end_s - start_s, 1e-12)
    total_j = (window.get("energy_j") or {}).get("total")
    seg = np.asarray(timer.segments, dtype=float).reshape(-1, 3)
    idx = seg[:, 0].astype(int)
    t0, t1 = seg[:, 1] + offset_s, seg[:, 2] + offset_s
    own_s = np.bincount(idx, weights=t1 - t0, minlength=len(timer.names))
    attribution = "time"
    weight = own_s / duration_s
    if trace is not None and total_j is not None:
        span = float(trace.energy(end_s) - trace.energy(start_s))
        if span > 0:
            seg_j = trace.energy(t1) - trace.energy(t0)
            weight = np.bincount(idx, weights=seg_j, minlength=len(timer.names)) / span
            attribution = "power trace"
    first_seen = {}
    for i in idx:
        first_seen.setdefault(int(i), len(first_seen))
    rows = []
    for i in sorted(first_seen, key=first_seen.get):
        if own_s[i] <= 0:
            continue
        energy_j = float(total_j * weight[i]) if total_j is not None else None
        rows.append({
            "name": timer.names[i] or "(model)",
            "type": timer.types[i],
            "calls": timer.calls[i],
            "time_s": float(own_s[i]),
            "time_share": float(own_s[i] / duration_s),
            "energy_j": energy_j,
            "per_sample": {"time_ms": float(own_s[i] * 1e3 / n_samples) if n_samples else None,
                           "energy_j": energy_j / n_samples if energy_j is not None and n_samples else None},
        })
    sum_s = float(sum(r["time_s"] for r in rows))
    sum_j = float(sum(r["energy_j"] for r in rows)) if total_j is not None else None
    agreement = (sum_j / total_j) if sum_j is not None and total_j else sum_s / duration_s
    return {
        "window": window.get("name"),
        "attribution": attribution,
        "duration_s": duration_s,
        "energy_j": total_j,
        "energy_method": (window.get("energy_method") or {}).get("total"),
        "n_samples": n_samples,
        "layers": rows,
        "layers_sum": {"time_s": sum_s, "energy_j": sum_j},
        "outside_layers": {"time_s": duration_s - sum_s,
                           "energy_j": (total_j - sum_j) if sum_j is not None else None},
        "agreement": agreement,
        "within_tolerance": abs(1.0 - agreement) <= AGREEMENT_TOLERANCE,
        "tolerance": AGREEMENT_TOLERANCE,
    }


def trace_from_csvs(paths: Sequence[Any]) -> PowerTrace | None:
    """The summed cumulative energy of the power CSVs of an experiment folder (``t_s,energy_j,power_w,valid``).

    Counter and estimate sources give cumulative energy directly; power-only sources are integrated by
    the trapezoid rule. Rows marked invalid are left out. None when no file has two usable rows.
    """
    import csv

    import numpy as np

    curves = []
    for path in paths:
        t, e, p = [], [], []
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("valid", "1") not in ("1", "true", "True"):
                    continue
                try:
                    t.append(float(row["t_s"]))
                    e.append(float(row["energy_j"]) if row.get("energy_j") else None)
                    p.append(float(row["power_w"]) if row.get("power_w") else None)
                except (KeyError, ValueError):
                    continue
        if len(t) < 2:
            continue
        if all(v is not None for v in e):
            curves.append((np.asarray(t), np.asarray(e, dtype=float)))
        elif all(v is not None for v in p):
            tt, pp = np.asarray(t), np.asarray(p, dtype=float)
            cum = np.concatenate([[0.0], np.cumsum((pp[1:] + pp[:-1]) / 2 * np.diff(tt))])
            curves.append((tt, cum))
    if not curves:
        return None
    knots = np.unique(np.concatenate([c[0] for c in curves]))
    total = sum(PowerTrace(tuple(c[0]), tuple(c[1])).energy(knots) for c in curves)
    total = np.maximum.accumulate(total)  # rounding in a CSV must never make energy run backwards
    return PowerTrace(tuple(float(v) for v in knots), tuple(float(v) for v in total))


def _session_trace(session: Any) -> PowerTrace | None:
    """The power trace written so far by an open session (its buffered rows flushed first)."""
    session.flush()
    folder = getattr(session, "folder", None)
    if folder is None:
        return None
    from pathlib import Path

    paths = sorted(p for p in (Path(folder) / "power").glob("*.csv") if p.name != "host.csv")
    return trace_from_csvs(paths) if paths else None


def batch_list(batches: Sequence[Any]) -> list[Any]:
    """``batches`` as a list; a per-layer breakdown of no batch is a usage error.

    Raises:
        UsageError: no batch.
    """
    batches = list(batches)
    if not batches:
        from mlee.errors import UsageError

        raise UsageError("no input batches for the per-layer breakdown",
                         fix="pass at least one batch (--n-batches 1 or more)")
    return batches


def timed_window(timer: LayerTimer, run: Callable[[], None], session: Any, window_name: str, measured: bool,
                 n_samples: int) -> dict:
    """Call ``run`` (every batch through the timed model) in one window of ``session``, then break it down.

    The framework-neutral part of a per-layer breakdown: ``timer`` must be active (its hooks installed)
    for the whole call. The device is synchronised with ``timer.sync`` before the window closes, so
    queued work is inside it.

    Returns:
        The breakdown of :func:`attribute`.
    """
    with session.window(window_name, measured=measured, n_samples=n_samples) as handle:
        entered = timer.clock()
        run()
        if timer.sync is not None:
            timer.sync()
    record = dict(handle.record)
    return attribute(timer, record, record["start_s"] - entered, _session_trace(session), n_samples)


def profile_layers(model: Any, batches: Sequence[Any], session: Any, window_name: str = "per-layer",
                   measured: bool = False, device: str | None = None) -> dict:
    """Run ``batches`` through ``model`` in one window of ``session`` and break the window down by layer.

    Args:
        model: A torch module (eval mode is the caller's choice).
        batches: Inputs, one forward pass each: a tensor or a tuple of tensors.
        session: An open :class:`mlee.Measurement`.
        window_name: Name of the window in ``results.json``.
        measured: Whether the window counts for per-sample figures; the hooks cost time, so by default
            it does not.
        device: ``cuda...`` synchronises the device at every layer edge; default: the first input's device.

    Returns:
        The breakdown of :func:`attribute` plus ``device`` and ``backend`` (``pytorch``); store it with
        ``session.add_results(per_layer=...)``.
    """
    from mlee.predict.builders import import_torch

    torch = import_torch()
    batches = batch_list(batches)
    first = batches[0] if isinstance(batches[0], torch.Tensor) else batches[0][0]
    device = device or str(first.device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    n_samples = sum(int((b if isinstance(b, torch.Tensor) else b[0]).shape[0]) for b in batches)

    def run() -> None:
        for batch in batches:
            model(batch) if isinstance(batch, torch.Tensor) else model(*batch)

    with LayerTimer(model, sync=sync) as timer, torch.inference_mode():
        breakdown = timed_window(timer, run, session, window_name, measured, n_samples)
    breakdown["device"] = device
    breakdown["backend"] = "pytorch"
    return breakdown
