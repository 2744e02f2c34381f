"""Kernel profiling: each kernel kind over its grid, under measurement, repeated until stable.

One experiment folder (kind ``profile``) per kernel kind; every configuration is measured in windows
named ``<config key>#<repeat>``, in rounds (one window of every configuration per round, see
:func:`profile_kind`). Before its first window a configuration is warmed up and calibrated so one window
runs at least ``min_window_s`` (runtimes shorter than the timer's and the sampler's resolution would be
noise). Windows repeat until the coefficient of variation of the per-call runtime over the repeats (its
robust form, see :func:`stats`) falls under ``cv_threshold`` (at least ``min_repeats``, at most
``max_repeats``); a point that never settles is kept and marked ``stable: false``. Points are added to
``results.json`` as they are measured, so an interrupted profile keeps everything it measured::

    "profile": {"kernel": "fc", "grid": "quick", "device": "cpu", "torch_version": "...", "torch_threads": 2,
                "cpu_model": "...", "settings": {...}, "clock": "wall", "probe_s": [0.11, ...],
                "points": [{"config": "fc[...]", "batch": 1, "features": {...}, "calls_per_window": 40,
                            "repeats": 3, "stable": true, "finished": true, "windows": ["fc[...]#0", ...],
                            "time_s": {"mean", "median", "std", "cv", "robust_cv"}, "cpu_time_s": {...},
                            "times_s": [...], "cpu_times_s": [...], "probe_s": [...],
                            "energy_j": {...same...} | null, "power_w": 30.1 | null,
                            "energy_method": "estimate" | null}]}

``time_s`` (wall), ``cpu_time_s`` (CPU time of the calling thread) and ``energy_j`` are per call of the
kernel on its whole batch; ``power_w`` is the median window power; ``times_s``/``cpu_times_s`` list the
repeats and ``probe_s`` the speed probe of each repeat's round (the mean of the probes before and after
it). Predictors are fit on the medians (robust to a window another process slowed down), normalised to
the profile's median probe speed when probes were taken (see :mod:`mlee.predict.training`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlee.errors import UsageError
from mlee.predict.allocator import check_mode, steady_allocator
from mlee.predict.builders import build_kernel, torch_threads
from mlee.predict.kernels import KernelConfig
from mlee.runners.torch_backend import import_torch


CLOCKS = ("wall", "cpu")


def check_clock_threads(clock: str, threads: int | None) -> None:
    """The cpu clock measures one thread: refuse it with more (UsageError naming the fix)."""
    if clock == "cpu" and threads != 1:
        raise UsageError("--clock cpu needs --threads 1 (with more threads, CPU time is not runtime)",
                         "add --threads 1, or use --clock wall")


@dataclass(frozen=True)
class ProfileSettings:
    """How hard to try for a stable figure, and on which clock.

    ``clock``: ``wall`` judges stability (and, by default, fits runtimes) on the windows' wall time;
    ``cpu`` on the CPU time of the thread running the kernels, which on a machine shared with other
    work leaves out the time the scheduler gave to others (it needs one torch thread: with more, CPU
    time is not runtime). Both are always recorded.

    ``probe`` runs the speed probe (:mod:`mlee.predict.probe`) between rounds; ``cold_weights`` cycles
    through copies of a kernel's weights so they are read from memory as in a network (:func:`_rotation`);
    ``allocator`` ``steady`` has glibc reuse freed memory instead of faulting in fresh pages at random
    (:mod:`mlee.predict.allocator`), ``system`` leaves the allocator as it is.

    Units: ``min_window_s`` seconds; ``cv_threshold`` a fraction (0.05 = 5 %).
    """

    cv_threshold: float = 0.05
    min_repeats: int = 3
    max_repeats: int = 8
    min_window_s: float = 0.1
    warmup_calls: int = 2
    clock: str = "wall"
    probe: bool = True
    cold_weights: bool = True
    allocator: str = "steady"

    def check(self) -> ProfileSettings:
        """Return self if sensible, else raise UsageError naming the bad value."""
        if self.clock not in CLOCKS:
            raise UsageError(f"unknown clock {self.clock!r}", f"use --clock {' or --clock '.join(CLOCKS)}")
        if not (0 < self.cv_threshold < 1):
            raise UsageError(f"CV threshold {self.cv_threshold} is not between 0 and 1", "use e.g. --cv 0.05")
        if not (2 <= self.min_repeats <= self.max_repeats):
            raise UsageError(f"repeats {self.min_repeats}..{self.max_repeats} are not a range of at least 2",
                             "use e.g. --min-repeats 3 --max-repeats 8")
        check_mode(self.allocator)
        if not self.min_window_s > 0:
            raise UsageError(f"window length {self.min_window_s} s is not positive", "use e.g. --window-s 0.1")
        return self


#: Settings per grid: quick keeps to 10 minutes on a 2-core machine; full measures longer windows.
GRID_SETTINGS = {
    "quick": ProfileSettings(cv_threshold=0.05, min_repeats=3, max_repeats=6, min_window_s=0.1),
    "full": ProfileSettings(cv_threshold=0.03, min_repeats=3, max_repeats=10, min_window_s=0.3),
}


def stats(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, median, sample standard deviation, CV (std/mean) and robust CV of ``values``.

    The robust CV is 1.4826 x the median absolute deviation over the median: on a shared machine the
    noise is one-sided (another process steals the CPU for a while), and one stolen window should not
    make an otherwise steady figure look unstable.
    """
    n = len(values)
    mean = math.fsum(values) / n
    ordered = sorted(values)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    cv = std / mean if std is not None and mean else None
    mad = sorted(abs(v - median) for v in values)
    mad_median = mad[n // 2] if n % 2 else (mad[n // 2 - 1] + mad[n // 2]) / 2
    robust_cv = 1.4826 * mad_median / median if n > 1 and median else None
    return {"mean": mean, "median": median, "std": std, "cv": cv, "robust_cv": robust_cv}


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        torch = import_torch()
        return torch.cuda.synchronize
    return lambda: None


def _calibrate(module: Any, inputs: tuple, sync: Callable[[], None], settings: ProfileSettings,
               clock: Callable[[], float]) -> int:
    """Warm up, then find how many calls fill ``min_window_s`` (doubling until half of it is filled)."""
    t0 = clock()
    done = 0
    while done < settings.warmup_calls or clock() - t0 < settings.min_window_s / 4:
        module(*inputs)
        done += 1
    sync()
    calls = 1
    while True:
        t0 = clock()
        for _ in range(calls):
            module(*inputs)
        sync()
        elapsed = clock() - t0
        if elapsed >= settings.min_window_s / 2 or calls >= 1 << 20:
            return max(1, math.ceil(calls * settings.min_window_s / max(elapsed, 1e-9)))
        calls *= 2


class _Point:
    """One configuration's repeats so far."""

    def __init__(self, cfg: KernelConfig) -> None:
        self.cfg = cfg
        self.calls = 0
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        self.energies: list[float | None] = []
        self.powers: list[float | None] = []
        self.names: list[str] = []
        self.probes: list[float | None] = []  # the speed probe around each repeat's round
        self.replicas = 1
        self.method: str | None = None
        self.stable: bool | None = None  # None while still repeating

    def add(self, rec: dict, calls: int, cpu_s: float) -> None:
        duration = rec["duration_s"]
        self.names.append(rec["name"])
        self.times.append(duration / calls)
        self.cpu_times.append(cpu_s / calls)
        total = (rec.get("energy_j") or {}).get("total") if rec.get("valid", True) else None
        self.energies.append(total / calls if total is not None else None)
        self.powers.append(total / duration if total is not None and duration > 0 else None)
        self.method = (rec.get("energy_method") or {}).get("total") or self.method

    def settle(self, settings: ProfileSettings) -> bool:
        """Decide whether this point is done; True when it is."""
        n = len(self.times)
        rcv = stats(self.cpu_times if settings.clock == "cpu" else self.times)["robust_cv"] if n > 1 else None
        if n >= settings.min_repeats and rcv is not None and rcv <= settings.cv_threshold:
            self.stable = True
        elif n >= settings.max_repeats:
            self.stable = False
        return self.stable is not None

    def to_json(self) -> dict:
        known = [e for e in self.energies if e is not None]
        complete = len(known) == len(self.energies)
        return {
            "config": self.cfg.key(), "batch": self.cfg.get("batch"), "features": self.cfg.features(),
            "calls_per_window": self.calls, "weight_replicas": self.replicas, "repeats": len(self.times), "stable": bool(self.stable),
            "finished": self.stable is not None, "windows": list(self.names), "time_s": stats(self.times),
            "cpu_time_s": stats(self.cpu_times), "times_s": list(self.times), "cpu_times_s": list(self.cpu_times),
            "probe_s": self.probes + [None] * (len(self.times) - len(self.probes)),
            "energy_j": stats(known) if complete else None,
            "power_w": stats([p for p in self.powers if p is not None])["median"] if complete else None,
            "energy_method": self.method if complete else None,
        }


#: At most this many copies of a kernel's weights are cycled through (see :func:`_rotation`).
MAX_REPLICAS = 64


def _rotation(module: Any, cold_bytes: int | None) -> tuple[Callable[..., Any], int]:
    """A callable that cycles through copies of ``module`` so its weights come from memory, not cache.

    In a network, a layer's weights were last read a whole forward pass ago and have usually left the
    caches; a kernel called again and again on the same weights would find them in L2/L3 (a 16 MB fully
    connected layer runs twice as fast from L3 as from DRAM). Enough copies to fill ``cold_bytes``
    (1.5 x the last-level cache) make every call read its weights cold, as in a network.

    Returns:
        ``(call, replicas)``.
    """
    import copy

    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    replicas = 1
    if cold_bytes and weight_bytes:
        replicas = max(1, min(MAX_REPLICAS, math.ceil(cold_bytes / weight_bytes)))
    modules = [module] + [copy.deepcopy(module) for _ in range(replicas - 1)]
    state = {"i": 0}

    def call(*inputs: Any) -> Any:
        state["i"] += 1
        return modules[state["i"] % replicas](*inputs)

    return call, replicas


def _one_window(session: Any, point: _Point, settings: ProfileSettings, device: str,
                clock: Callable[[], float], cold_bytes: int | None = None) -> None:
    torch = import_torch()
    built, inputs = build_kernel(point.cfg, device=device)
    module, point.replicas = _rotation(built, cold_bytes if settings.cold_weights else None)
    sync = _sync(device)
    with torch.inference_mode():
        if point.calls == 0:
            point.calls = _calibrate(module, inputs, sync, settings, clock)
        else:  # a fresh module: warm it up (allocator, primitive caches) outside the window
            for _ in range(settings.warmup_calls):
                module(*inputs)
            sync()
        calls = point.calls
        name = f"{point.cfg.key()}#{len(point.times)}"
        with session.window(name, measured=True, n_samples=calls * point.cfg.get("batch")) as handle:
            cpu0 = time.thread_time()
            for _ in range(calls):
                module(*inputs)
            sync()
            cpu_s = time.thread_time() - cpu0
    point.add(handle.record, calls, cpu_s)
    duration = handle.record["duration_s"]
    if duration < 0.7 * settings.min_window_s:  # calibrated while the machine was slower: lengthen
        point.calls = max(calls + 1, math.ceil(calls * settings.min_window_s / max(duration, 1e-9)))


def _cold_bytes() -> int | None:
    """1.5 x the last-level cache of this machine, or None when its size cannot be read."""
    from mlee.errors import MleeError
    from mlee.predict.cache import read_cache_sizes

    try:
        known = read_cache_sizes().known()
    except MleeError:
        return None
    return int(1.5 * known[-1][1]) if known else None


def profile_kind(session: Any, kind: str, configs: Sequence[KernelConfig], settings: ProfileSettings,
                 grid_name: str, device: str = "cpu",
                 on_point: Callable[[KernelConfig, dict], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter, allocator: dict | None = None) -> list[dict]:
    """Measure every configuration of one kind in ``session``, in rounds, adding points to ``results.json``.

    Each round measures one window of every configuration still repeating, so a burst of load from
    another process lands on one repeat of several configurations instead of on every repeat of one
    (where no median could remove it). A configuration leaves the rounds once stable or at
    ``max_repeats``. If the profile is interrupted, the configurations measured so far are written with
    ``finished: false``. The speed probe (:mod:`mlee.predict.probe`) runs before the first round and after
    every round, outside any window; its times are kept as ``probe_s``. ``allocator`` is what
    :func:`mlee.predict.allocator.steady_allocator` set up, kept in the header.
    """
    from mlee.predict.predictor import machine_fingerprint
    from mlee.predict.probe import speed_probe

    torch = import_torch()
    fp = machine_fingerprint(device)
    header = {"kernel": kind, "grid": grid_name, "device": device, "torch_version": torch.__version__,
              "torch_threads": int(torch.get_num_threads()), "cpu_model": fp["cpu_model"],
              "settings": asdict(settings), "clock": settings.clock, "n_configs": len(configs)}
    state = [_Point(cfg) for cfg in configs]
    probes = [speed_probe(settings.clock, device)] if settings.probe else []
    cold_bytes = _cold_bytes() if settings.cold_weights else None
    header["cold_bytes"] = cold_bytes
    header["allocator"] = allocator

    def write() -> list[dict]:
        points = [p.to_json() for p in state if p.times]
        session.add_results(profile={**header, "probe_s": list(probes), "points": points})
        return points

    session.add_results(model=kind, device=device, dataset="synthetic",
                        backend={"name": "pytorch", "version": torch.__version__}, profile={**header, "points": []})
    try:
        pending = list(state)
        while pending:
            for point in pending:
                _one_window(session, point, settings, device, clock, cold_bytes)
                if point.settle(settings) and on_point is not None:
                    on_point(point.cfg, point.to_json())
            if settings.probe:
                probes.append(speed_probe(settings.clock, device))
                around = (probes[-2] + probes[-1]) / 2  # the machine's speed during this round
                for point in pending:
                    point.probes.append(around)
            pending = [p for p in pending if p.stable is None]
            write()
    finally:
        points = write()
    return points


def profile_kernels(kinds: Sequence[str], configs: dict[str, list[KernelConfig]], grid_name: str,
                    settings: ProfileSettings, output_dir: str = "results", sources: Any = None,
                    interval_s: float = 0.1, device: str = "cpu",
                    on_point: Callable[[KernelConfig, dict], None] | None = None,
                    on_folder: Callable[[Any], None] | None = None, threads: int | None = None,
                    session_kwargs: dict | None = None) -> list[Any]:
    """Profile ``kinds`` (one experiment folder each) and return the sessions' results.

    ``on_folder`` is told each experiment folder as soon as it exists (so an interrupted profile can
    say where its points are); ``threads`` sets torch's intra-op threads (None: its default);
    ``session_kwargs`` pass hardware stand-ins to :class:`mlee.Measurement`. With ``settings.allocator``
    ``steady`` (the default) glibc's malloc is set up for the rest of the process
    (:mod:`mlee.predict.allocator`).

    Raises:
        SourceUnavailable, SourcePermissionError: a requested power source cannot be used (before any work).
    """
    from mlee.measure.session import Measurement

    settings.check()
    check_clock_threads(settings.clock, threads)
    allocator = steady_allocator(settings.allocator)
    results = []
    with torch_threads(threads) as n_threads:
        for kind in kinds:
            config = {"command": "profile", "kernel": kind, "grid": grid_name, "device": device,
                      "n_configs": len(configs[kind]), "settings": asdict(settings), "threads": n_threads,
                      "allocator": allocator}
            with Measurement(f"kernels-{kind}", kind="profile", output_dir=output_dir, interval_s=interval_s,
                             sources=sources, config=config, **(session_kwargs or {})) as m:
                if on_folder is not None:
                    on_folder(m.folder)
                profile_kind(m, kind, configs[kind], settings, grid_name, device, on_point, allocator=allocator)
            results.append(m.result)
    return results
