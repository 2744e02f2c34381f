"""Where a session's sources are opened and sampled: in a sampler process (the default) or in a thread.

The sampler process (:mod:`mlee.measure.worker`, started and reused by :mod:`mlee.measure.pool`) keeps periodic sampling off the measured interpreter. A
session falls back to a thread in its own process when it was handed hardware stand-ins that cannot cross a
process boundary (a fake NVML or amdsmi, an estimator, a clock or sleep: tests), when it samples in the foreground only
(``background=False``), or when ``MLEE_SAMPLER=thread`` asks for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlee.measure.settings import SessionSettings

#: Environment variable: ``thread`` samples in a thread of the measured process instead of a sampler process.
ENV_SAMPLER = "MLEE_SAMPLER"


def wants_process(edges: dict) -> bool:
    """True when this session can sample in a sampler process (see the module docstring)."""
    if os.environ.get(ENV_SAMPLER, "").strip().lower() == "thread" or not edges.get("background", True):
        return False
    return all(edges.get(k) is None for k in ("nvml", "amdsmi", "clock", "sleep", "estimator"))


def open_for_session(settings: SessionSettings, edges: dict, clock: Callable[[], float]) -> tuple[Any, Any]:
    """Open the session's sources; returns ``(opened, proxy)`` where proxy is the sampler process or None.

    Raises:
        UsageError, SourceUnavailable, SourcePermissionError: as :func:`mlee.monitors.detect.open_sources`.
    """
    requested = list(settings.sources) if settings.sources else None
    if wants_process(edges):
        from mlee.measure.pool import RemoteSampler
        from mlee.measure.worker import WorkerSpec

        root = edges.get("powercap_root")
        spec = WorkerSpec(requested, str(Path(root).resolve()) if root is not None else None, settings.country,
                          dict(os.environ))
        proxy = RemoteSampler(spec)
        try:
            _load_start_path()  # while the sampler process opens the sources
            return proxy.open(), proxy
        except BaseException:
            proxy.abort()
            raise
    from mlee.monitors.detect import open_sources

    return open_sources(requested, powercap_root=edges.get("powercap_root"), nvml=edges.get("nvml"), clock=clock,
                        country=settings.country, estimator=edges.get("estimator"), sleep=edges.get("sleep") or time.sleep,
                        amdsmi=edges.get("amdsmi")), None


def _load_start_path() -> None:
    """What the session's start needs next, loaded while a sampler process opens the sources."""
    import mlee.monitors.host
    import mlee.monitors.sampler
    import mlee.results.liveness
    import mlee.results.tracefile  # noqa: F401


def prestart(edges: dict) -> None:
    """Start the sampler process of a session that will use one, ahead of its start (no-op otherwise)."""
    if wants_process(edges):
        from mlee.measure.pool import prestart as start_process

        start_process()


def finish_traces(proxy: Any, folder: Path) -> list[str]:
    """After the sampler stopped: ``power/stats.json`` (the sampler process wrote it); lines for ``log.txt``."""
    if proxy is not None:
        return list(proxy.log_lines)
    from mlee.results.layout import store_trace_stats

    return store_trace_stats(folder)


def start_sampling(opened: Any, proxy: Any, folder: Path, t0_s: float, interval_s: float, edges: dict,
                   clock: Callable[[], float], checkpoint: Callable[[Any], None], checkpoint_s: float) -> tuple:
    """Start sampling into ``folder``; returns ``(sampler, sink)`` (both the proxy for a sampler process).

    Raises:
        OSError: the trace files cannot be created.
    """
    from mlee.monitors.host import HOST_COLUMNS, HostMonitor
    from mlee.monitors.sampler import POWER_ROW, Sampler
    from mlee.results.tracefile import TraceSink

    channels = {s.name: POWER_ROW for s in opened.sources}
    channels["host"] = HOST_COLUMNS
    host_pid = edges.get("host_pid") or os.getpid()
    if proxy is not None:
        proxy.attach(folder.resolve(), channels, t0_s, interval_s, host_pid, checkpoint_s)
        return proxy, proxy
    sink = TraceSink(folder / "power", channels)
    sampler = Sampler(opened.sources, opened.first, t0_s, interval_s, sink, clock=clock,
                      host=HostMonitor(host_pid, clock=clock), checkpoint=checkpoint, checkpoint_s=checkpoint_s)
    if edges.get("background", True):
        sampler.start()
    return sampler, sink
