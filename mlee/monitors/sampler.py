"""The background sampler: reads every source on a schedule and at exact edges, streams traces to CSV.

Energy is accumulated per source in a :class:`Track`: counter and estimate sources by differences
of their cumulative readings, power-only sources by the trapezoid rule between consecutive
readings. A failed read opens a gap; the energy from the last good reading to the next good one is
not counted and the gap is recorded as an invalid interval (never a zero, never a guess).

The thread uses the wall clock only to decide *when* to sample; every reading carries the time of
its source's clock, so tests with a fake clock integrate exactly.

Trace rows go to a :class:`TraceSink` the caller hands over (the experiment folder's, or none); the sampler
knows nothing of files or folders. A ``checkpoint`` callback, called from the sampling thread at least every
``checkpoint_s``, lets the session rewrite its running record with the energy so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlee.errors import SourceReadError
from mlee.monitors.base import PowerSource, Reading
from mlee.monitors.host import HostMonitor
from mlee.monitors.integrate import trapezoid_j
from mlee.vocabulary import Method

DEFAULT_INTERVAL_S = 0.1
#: Shortest interval mlee will sample at, whatever a counter's wrap period asks: below this the
#: sampler would cost more than it measures. Units: seconds.
MIN_INTERVAL_S = 0.005
#: Host traces (psutil walks /proc) are sampled at most this often. Units: seconds.
HOST_MIN_INTERVAL_S = 0.5
#: Trace rows reach the operating system at least this often, so ``kill -9`` loses less than a
#: second of samples. Units: seconds.
FLUSH_S = 0.5
#: Default longest time between two calls of the sampler's ``checkpoint``. Units: seconds.
CHECKPOINT_S = 5.0
#: Columns of a source's trace rows, in the order the sampler writes them.
POWER_ROW = ("t_s", "energy_j", "power_w", "valid")


class TraceSink(Protocol):
    """Where the sampler's rows go: channel (a source name or ``host``) and one row of numbers."""

    def write(self, channel: str, row: Sequence[Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Track:
    """Energy accumulated from one source's readings.

    Units: joules and seconds (``t_s`` on the source's clock).
    """

    method: Method
    energy_j: float = 0.0
    n_samples: int = 0
    n_errors: int = 0
    last: Reading | None = None
    gap_start_s: float | None = None
    invalid_intervals: list[tuple[float, float]] = field(default_factory=list)
    last_error: str = ""

    def add(self, reading: Reading) -> bool:
        """Add a good reading; returns False when it cannot be used (no energy and no power)."""
        if reading.energy_j is None and reading.power_w is None:
            self.fail(reading.t_s, "reading carried neither energy nor power")
            return False
        self.n_samples += 1
        last, self.last = self.last, reading
        if self.gap_start_s is not None:
            self.invalid_intervals.append((self.gap_start_s, reading.t_s))
            self.gap_start_s = None
            return True
        if last is None:
            return True
        if reading.energy_j is not None and last.energy_j is not None:
            delta_j = reading.energy_j - last.energy_j
            if delta_j < 0:  # a source bug; refuse to subtract energy
                self.invalid_intervals.append((last.t_s, reading.t_s))
                return True
            self.energy_j += delta_j
        elif reading.power_w is not None and last.power_w is not None:
            self.energy_j += trapezoid_j(last.t_s, last.power_w, reading.t_s, reading.power_w)
        else:
            self.invalid_intervals.append((last.t_s, reading.t_s))
        return True

    def fail(self, t_s: float, why: str) -> None:
        """Record a failed read at ``t_s``: the interval since the last good reading becomes invalid."""
        self.n_errors += 1
        self.last_error = why
        if self.gap_start_s is None:
            self.gap_start_s = self.last.t_s if self.last is not None else t_s

    def invalid_until(self, t_s: float) -> list[tuple[float, float]]:
        """The invalid intervals, with an open gap closed at ``t_s``."""
        open_gap = [(self.gap_start_s, t_s)] if self.gap_start_s is not None else []
        return self.invalid_intervals + open_gap


@dataclass(frozen=True)
class Snapshot:
    """Cumulative energy of every source at one sampling sweep.

    Units: ``t_s`` seconds since the session start (the session clock); ``energy_j`` joules.
    """

    t_s: float
    energy_j: dict[str, float]
    failures: dict[str, int]
    open_gaps: frozenset[str]

    def valid_since(self, earlier: Snapshot, name: str) -> bool:
        """True when source ``name`` read cleanly from ``earlier`` to this snapshot."""
        return (self.failures[name] == earlier.failures[name] and name not in self.open_gaps
                and name not in earlier.open_gaps)


class Sampler:
    """Reads a set of opened sources in a background thread and at edges the caller asks for.

    Args:
        sources: Opened sources.
        first: Their ``open()`` readings, in the same order.
        t0_s: Session start on the clock; CSV times are relative to it.
        interval_s: Background interval. Units: seconds.
        sink: Where trace rows go: channel = source name (columns :data:`POWER_ROW`) or ``host``
            (``HOST_COLUMNS``); None keeps nothing.
        clock: The session clock.
        host: psutil monitor for the ``host`` channel (None: no host trace).
        checkpoint: Called from the background thread with a fresh snapshot at least every ``checkpoint_s``;
            its exceptions are counted as loop errors, never raised.
        checkpoint_s: See ``checkpoint``. Units: seconds.
    """

    def __init__(self, sources: Sequence[PowerSource], first: Sequence[Reading], t0_s: float,
                 interval_s: float = DEFAULT_INTERVAL_S, sink: TraceSink | None = None,
                 clock: Callable[[], float] = time.monotonic, host: HostMonitor | None = None,
                 checkpoint: Callable[[Snapshot], None] | None = None, checkpoint_s: float = CHECKPOINT_S) -> None:
        self.sources = list(sources)
        self.interval_s = interval_s
        self.t0_s = t0_s
        self._clock = clock
        self._host = host
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tracks = {s.name: Track(Method(s.method)) for s in self.sources}
        self._last_read_wall: dict[str, float] = {}
        self._host_last_wall = float("-inf")
        self._sink = sink
        self._checkpoint = checkpoint
        self._checkpoint_s = checkpoint_s
        self.thread_cpu_s = 0.0
        self.overruns = 0
        self.loop_errors = 0
        self.last_loop_error = ""
        self._last_flush_wall = time.monotonic()
        now_wall = time.monotonic()
        for source, reading in zip(self.sources, first):
            self._record(source, reading)
            self._last_read_wall[source.name] = now_wall
        self._sample_host(force=True)

    # -- reading ---------------------------------------------------------------------------------
    def _record(self, source: PowerSource, reading: Reading) -> None:
        track = self.tracks[source.name]
        ok = track.add(reading)
        if self._sink is not None:
            self._sink.write(source.name, (reading.t_s - self.t0_s, reading.energy_j, reading.power_w, ok))

    def _record_failure(self, source: PowerSource, t_s: float, why: str) -> None:
        self.tracks[source.name].fail(t_s, why)
        if self._sink is not None:
            self._sink.write(source.name, (t_s - self.t0_s, None, None, False))

    def _read_one(self, source: PowerSource, final: bool = False) -> None:
        try:
            reading = source.close() if final else source.read()
        except SourceReadError as exc:
            self._record_failure(source, self._clock(), str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a broken read must not end the run; it is recorded
            self._record_failure(source, self._clock(), f"{type(exc).__name__}: {exc}")
            return
        self._record(source, reading)

    def _sample_host(self, force: bool) -> None:
        if self._host is None:
            return
        now_wall = time.monotonic()
        if not force and now_wall - self._host_last_wall < max(self.interval_s, HOST_MIN_INTERVAL_S):
            return
        self._host_last_wall = now_wall
        try:
            sample = self._host.sample()
        except Exception:  # noqa: BLE001 - host traces explain energy; a gap there is harmless
            return
        if self._sink is not None:
            self._sink.write("host", (sample.t_s - self.t0_s, sample.proc_cpu_percent, sample.proc_rss_bytes,
                                     sample.sys_cpu_percent, sample.sys_mem_used_bytes))

    def sample(self, force: bool = True) -> Snapshot:
        """Read the sources now and return the cumulative energies.

        Args:
            force: Read every source (an edge). Otherwise sources whose ``min_interval_s`` has not
                passed since their last read are skipped (codecarbon's estimate is read once a second).
        """
        with self._lock:
            now_wall = time.monotonic()
            for source in self.sources:
                min_s = getattr(source, "min_interval_s", 0.0) or 0.0
                if not force and now_wall - self._last_read_wall.get(source.name, float("-inf")) < min_s * 0.95:
                    continue
                self._read_one(source)
                self._last_read_wall[source.name] = now_wall
            self._sample_host(force=force)
            if now_wall - self._last_flush_wall >= FLUSH_S:
                self._flush_all()
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        return Snapshot(self._clock() - self.t0_s,
                        {name: t.energy_j for name, t in self.tracks.items()},
                        {name: len(t.invalid_intervals) + t.n_errors for name, t in self.tracks.items()},
                        frozenset(name for name, t in self.tracks.items() if t.gap_start_s is not None))

    # -- thread ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start sampling in the background."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="mlee-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        next_wall = time.monotonic() + self.interval_s
        next_checkpoint = time.monotonic() + self._checkpoint_s
        while not self._stop.wait(max(0.0, min(next_wall, next_checkpoint) - time.monotonic())):
            now = time.monotonic()
            try:
                snap = self.sample(force=False) if now >= next_wall - 1e-4 else None
                if self._checkpoint is not None and now >= next_checkpoint:
                    next_checkpoint = now + self._checkpoint_s
                    self._checkpoint(snap or self.sample(force=False))
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk: keep sampling, say so at the end
                self.loop_errors += 1
                self.last_loop_error = f"{type(exc).__name__}: {exc}"
            if now < next_wall - 1e-4:
                continue
            now = time.monotonic()
            next_wall += self.interval_s
            if next_wall < now:  # we fell behind (a stalled machine): skip, do not burst
                self.overruns += 1
                next_wall = now + self.interval_s
            self.thread_cpu_s = time.thread_time() - cpu0
        self.thread_cpu_s = time.thread_time() - cpu0

    def stop(self) -> Snapshot:
        """Stop the thread, take every source's final reading (``close()``), close the traces."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            for source in self.sources:
                self._read_one(source, final=True)
            self._sample_host(force=True)
            snap = self._snapshot()
            if self._sink is not None:
                self._sink.close()
            return snap

    def follow(self, pid: int) -> None:
        """Trace the process tree rooted at ``pid`` from now on."""
        with self._lock:
            if self._host is not None:
                self._host.set_pid(pid)

    def _flush_all(self) -> None:
        if self._sink is not None:
            self._sink.flush()
        self._last_flush_wall = time.monotonic()

    def summary(self, now_s: float | None = None) -> dict[str, dict]:
        """Per source: ``n_samples``, ``invalid_intervals`` (session seconds, an open gap closed at ``now_s``)
        and ``last_error``.

        Units: seconds since the session start.
        """
        with self._lock:
            now_s = self._clock() if now_s is None else now_s
            return {name: {"n_samples": t.n_samples, "last_error": t.last_error,
                           "invalid_intervals": [(a - self.t0_s, b - self.t0_s) for a, b in t.invalid_until(now_s)]}
                    for name, t in self.tracks.items()}

    def stats(self) -> dict:
        """The sampler's own figures: interval, CPU seconds of its thread, overruns and loop errors."""
        return {"interval_s": self.interval_s, "thread_cpu_s": self.thread_cpu_s, "overruns": self.overruns,
                "errors": self.loop_errors, "last_error": self.last_loop_error or None}

    def flush(self) -> None:
        """Push buffered trace rows to the operating system now."""
        with self._lock:
            self._flush_all()
