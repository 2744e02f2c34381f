"""The measurement session every runner uses: ``mlee.measure(...)`` (docs/design.md section 1).

```python
with mlee.measure("resnet", kind="infer", config={...}) as m:
    with m.window("repeat-0", measured=True, n_samples=64):
        ...                                   # every source is read at entry and at exit
    m.mark("epoch-3")                         # a window from here to the next mark or the end
    m.add_results(task="inference", model="ResNet50")
print(m.result.energy_j)
```

The session opens the sources first (a named source that fails stops it before anything runs),
then writes the experiment folder with ``status: running``, samples in the background, and on exit
writes ``results.json`` with ``completed``, ``failed`` (an exception, re-raised) or ``interrupted``
(KeyboardInterrupt). It installs no signal handler and prints nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import Interrupted, MleeError, UsageError
from mlee.experiment import (DEFAULT_OUTPUT_DIR, check_session_args, config_json, create_folder, store_trace_stats,
                             write_environment, write_json)
from mlee.monitors.base import Domain, Method

#: Keys of results.json the session owns; add_results() may not overwrite them.
RESERVED_KEYS = frozenset({
    "schema_version", "id", "kind", "name", "status", "error", "start_utc", "end_utc", "duration_s", "energy_j",
    "energy_method", "estimated", "sources", "skipped_sources", "baseline", "windows", "rank", "carbon", "valid",
    "interval_s",
})


@dataclass(frozen=True)
class MeasurementResult:
    """What a finished session measured (the same figures as its ``results.json``).

    Units: joules, seconds.
    """

    folder: Path
    id: str
    status: str
    energy_j: dict
    energy_method: dict
    estimated: bool
    duration_s: float
    windows: tuple
    baseline: dict | None
    sources: tuple
    results: dict


class WindowHandle:
    """Yielded by :meth:`Measurement.window`; ``record`` holds the window's figures once it has closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.record: dict | None = None


class Measurement:
    """One measured session; see the module docstring. Arguments are recorded in ``config.json``.

    Args:
        name: Experiment name (any text; made filesystem-safe for the folder).
        kind: ``run``, ``infer``, ``train``, ``measure``, ``profile`` or ``sweep``.
        output_dir: Where the experiment folder is made.
        interval_s: Background sampling interval (shortened when a counter could wrap faster).
        sources: Source names (``rapl``, ``nvml``, ``estimate``, ``rapl:psys``...) or None to auto-detect.
        baseline_s: Idle baseline measured before the workload (0: none).
        country: ISO alpha-3 country for the codecarbon estimate and the carbon figure.
        pue: Power usage effectiveness of the facility (>= 1.0; default 1.0, no overhead) for the carbon figure.
        config: Extra run arguments for ``config.json``.
        powercap_root, nvml, amdsmi, clock, estimator, sleep: Hardware and time edges, injectable for tests.
        host_pid: Root of the process tree traced in ``host.csv`` (default: this process).
        write_log: Write session events to ``log.txt`` (``mlee run`` writes the command's output there).
        background: Sample in a background thread (tests driving a fake clock turn it off).

    Units: seconds.
    """

    def __init__(self, name: str, kind: str = "measure", output_dir: str | Path = DEFAULT_OUTPUT_DIR,
                 interval_s: float = 0.1, sources: list[str] | str | None = None, baseline_s: float = 0.0,
                 country: str | None = None, config: dict | None = None, *, pue: float = 1.0,
                 powercap_root: Any = None,
                 nvml: Any = None, clock: Callable[[], float] | None = None, estimator: Any = None,
                 sleep: Callable[[float], None] | None = None, host_pid: int | None = None,
                 write_log: bool = True, background: bool = True, amdsmi: Any = None) -> None:
        from mlee.monitors.estimate import check_country, resolve_country

        check_session_args(kind, interval_s, baseline_s, pue)
        self.name = str(name)
        self.kind = kind
        self.output_dir = Path(output_dir)
        self.requested_interval_s = float(interval_s)
        self.interval_s = float(interval_s)
        self.requested_sources = [sources] if isinstance(sources, str) else (list(sources) if sources else None)
        self.baseline_s = float(baseline_s)
        self.country = resolve_country(country)
        check_country(self.country)
        self.pue = float(pue)
        self.config = dict(config or {})
        self._powercap_root, self._nvml, self._estimator = powercap_root, nvml, estimator
        self._amdsmi = amdsmi  # issue 14: AMD SMI module, injectable like nvml
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._host_pid, self._write_log, self._background = host_pid, write_log, background
        self._kwargs = {"kind": kind, "output_dir": output_dir, "interval_s": interval_s, "sources": sources,
                        "baseline_s": baseline_s, "country": country, "config": config, "pue": pue,
                        "powercap_root": powercap_root, "nvml": nvml, "clock": clock, "estimator": estimator,
                        "sleep": sleep, "host_pid": host_pid, "write_log": write_log, "background": background,
                        "amdsmi": amdsmi}
        self.folder: Path | None = None
        self.id: str | None = None
        self._state = "new"
        self._extra: dict = {}
        self._windows: list[dict] = []
        self._mark: tuple[str, Any] | None = None
        self._lock = threading.RLock()
        self._result: MeasurementResult | None = None
        self._sampler: Any = None
        self._opened: Any = None
        self._log_fh: Any = None
        self._env_thread: threading.Thread | None = None
        self._env_error = ""

    # -- decorator -------------------------------------------------------------------------------
    def __call__(self, func: Callable) -> Callable:
        """``@mlee.measure("name")``: every call of ``func`` is one measured session."""
        kwargs = dict(self._kwargs)

        @functools.wraps(func)
        def wrapper(*args: Any, **kw: Any) -> Any:
            with Measurement(self.name, **kwargs) as m:
                wrapper.last_measurement = m  # type: ignore[attr-defined]
                return func(*args, **kw)

        wrapper.last_measurement = None  # type: ignore[attr-defined]
        return wrapper

    # -- start -----------------------------------------------------------------------------------
    def __enter__(self) -> Measurement:
        self.start()
        return self

    def start(self) -> Measurement:
        """Open the sources, write the folder with ``status: running`` and start sampling."""
        from mlee.monitors.detect import open_sources
        from mlee.monitors.host import HostMonitor
        from mlee.monitors.sampler import MIN_INTERVAL_S, Sampler

        if self._state != "new":
            raise MleeError("a measurement session runs once", fix="make a new mlee.measure(...) for each run")
        self._state = "starting"
        self._opened = open_sources(self.requested_sources, powercap_root=self._powercap_root, nvml=self._nvml,
                                    clock=self._clock, country=self.country, estimator=self._estimator,
                                    sleep=self._sleep, amdsmi=self._amdsmi)  # issue 14: checks wait on sleep
        # The session starts at its first reading (opening codecarbon alone takes seconds).
        now_s, now_wall = self._clock(), dt.datetime.now(dt.timezone.utc)
        self._t0_s = min([r.t_s for r in self._opened.first] + [now_s])
        self._start_wall = now_wall - dt.timedelta(seconds=now_s - self._t0_s)
        try:
            limits = [s.max_interval_s for s in self._opened.sources if getattr(s, "max_interval_s", None)]
            if limits and min(limits) < self.interval_s:
                self.interval_s = max(MIN_INTERVAL_S, min(limits))  # read every counter 4x per wrap period
            self.folder = create_folder(self.output_dir, self.kind, self.name, self._start_wall)
            self.id = self.folder.name
            write_json(self.folder, "config.json", config_json(self))
            self._env_thread = threading.Thread(target=self._write_environment, name="mlee-environment", daemon=True)
            self._env_thread.start()
            if self._write_log:
                self._log_fh = open(self.folder / "log.txt", "a", encoding="utf-8")
            host = HostMonitor(self._host_pid, clock=self._clock)
            self._sampler = Sampler(self._opened.sources, self._opened.first, self._t0_s, self.interval_s,
                                    self.folder / "power", clock=self._clock, host=host)
            self._write_running()
            self.log(f"sources: {', '.join(s.name for s in self._opened.sources)}; interval {self.interval_s:g} s")
            for skipped in self._opened.skipped:
                self.log(f"skipped {skipped['name']}: {skipped['reason']}")
            if self._background:
                self._sampler.start()
        except BaseException:
            self._abort_start()
            raise
        self._baseline_snaps = None
        self._workload_start = self._sampler.sample()
        self._state = "running"
        if self.baseline_s > 0:
            try:
                self.log(f"idle baseline: {self.baseline_s:g} s")
                self._sleep(self.baseline_s)
                end = self._sampler.sample()
            except BaseException as exc:  # Ctrl-C during the baseline: keep what was measured
                self.finish(*_status_of(type(exc), exc))
                raise
            self._baseline_snaps = (self._workload_start, end)
            self._workload_start = end
        return self

    def _write_environment(self) -> None:
        """Write environment.json off the start path (package metadata and NVML take ~100 ms)."""
        gpus = [s.detail for s in self._opened.sources if s.domain is Domain.gpu]
        nvml_tried = any(s["name"] == "nvml" for s in self._opened.skipped)
        self._env_error = write_environment(self.folder, gpus if (gpus or nvml_tried) else None, self._nvml) or ""

    def _join_environment(self) -> None:
        if self._env_thread is not None:
            self._env_thread.join()
            self._env_thread = None
        if self._env_error:
            self.log(f"environment.json not written: {self._env_error}")

    def _abort_start(self) -> None:
        self._join_environment()
        if self._sampler is not None:
            with contextlib.suppress(Exception):
                self._sampler.stop()
        else:
            self._opened.close_all()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self._state = "done"

    def log(self, line: str) -> None:
        """Append one line to ``log.txt`` with the session time (no-op without a log)."""
        if self._log_fh is not None and self._sampler is not None:
            t_s = self._clock() - self._t0_s
            self._log_fh.write(f"[mlee {t_s:9.3f} s] {line}\n")
            self._log_fh.flush()

    # -- during ----------------------------------------------------------------------------------
    def _require_running(self, what: str) -> None:
        if self._state not in ("running",):
            raise MleeError(f"{what} needs a running session", fix="call it inside `with mlee.measure(...) as m:`")

    @contextlib.contextmanager
    def window(self, name: str, measured: bool = True, n_samples: int | None = None) -> Iterator[WindowHandle]:
        """A named window with exact edges: every source is read at entry and at exit.

        Args:
            name: Window name (``repeat-0``).
            measured: Counts for per-sample figures (False for warm-up).
            n_samples: Samples processed inside, recorded for per-sample figures.
        """
        self._require_running("window()")
        handle = WindowHandle(name)
        start = self._sampler.sample()
        complete = False
        try:
            yield handle
            complete = True
        finally:
            end = self._sampler.sample()
            handle.record = self._window_record(name, start, end, measured, n_samples, complete)
            with self._lock:
                self._windows.append(handle.record)

    def mark(self, name: str) -> None:
        """Start a named window that runs until the next mark or the end of the session."""
        self._require_running("mark()")
        snap = self._sampler.sample()
        self._close_mark(snap)
        self._mark = (name, snap)

    def _close_mark(self, snap: Any) -> None:
        if self._mark is not None:
            name, start = self._mark
            record = self._window_record(name, start, snap, False, None, True)
            record["mark"] = True
            with self._lock:
                self._windows.append(record)
            self._mark = None

    def add_results(self, **values: Any) -> None:
        """Merge extra keys into ``results.json`` (written now, and again at the end)."""
        clash = sorted(set(values) & RESERVED_KEYS)
        if clash:
            raise UsageError(f"add_results() cannot set {', '.join(clash)}: the session owns them",
                             fix="use other key names")
        with self._lock:
            self._extra.update(values)
        if self._state == "running":
            self._write_running()

    def flush(self) -> None:
        """Push the trace rows buffered so far to disk (to read ``power/*.csv`` while the session runs)."""
        self._require_running("flush()")
        self._sampler.flush()

    def follow_process(self, pid: int) -> None:
        """Trace this process tree in ``host.csv`` from now on (``mlee run`` passes its child)."""
        self._require_running("follow_process()")
        self._sampler.follow(pid)

    @property
    def windows(self) -> list[dict]:
        """The windows closed so far (copies)."""
        with self._lock:
            return [dict(w) for w in self._windows]

    @property
    def sources(self) -> list[Any]:
        """The opened sources (after start)."""
        return list(self._opened.sources) if self._opened else []

    @property
    def result(self) -> MeasurementResult:
        """The figures of the finished session.

        Raises:
            MleeError: the session has not finished.
        """
        if self._result is None:
            raise MleeError("the measurement has not finished yet", fix="read m.result after the `with` block")
        return self._result

    # -- end -------------------------------------------------------------------------------------
    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.finish(*_status_of(exc_type, exc))
        return False

    def finish(self, status: str = "completed", error: str | None = None) -> MeasurementResult:
        """Take the final readings and write ``results.json`` (the ``with`` block calls this)."""
        from mlee.experiment import build_results

        if self._state == "done" and self._result is not None:
            return self._result
        if self._state != "running":
            raise MleeError("the measurement was not started", fix="use `with mlee.measure(...)`")
        self._state = "stopping"
        end = self._sampler.stop()
        self._join_environment()
        self._close_mark(end)
        for line in store_trace_stats(self.folder):
            self.log(line)
        end_wall = dt.datetime.now(dt.timezone.utc)
        self.log(f"status: {status}" + (f" ({error})" if error else ""))
        results = build_results(self, end, end_wall, status, error)
        write_json(self.folder, "results.json", results)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self._state = "done"
        self._result = MeasurementResult(
            folder=self.folder, id=results["id"], status=status, energy_j=results["energy_j"],
            energy_method=results["energy_method"], estimated=results["estimated"],
            duration_s=results["duration_s"], windows=tuple(results["windows"]), baseline=results["baseline"],
            sources=tuple(results["sources"]), results=results)
        return self._result

    # -- results.json ----------------------------------------------------------------------------
    def _write_running(self) -> None:
        from mlee.experiment import running_results

        write_json(self.folder, "results.json", running_results(self))

    def _window_record(self, name: str, start: Any, end: Any, measured: bool, n_samples: int | None,
                       complete: bool) -> dict:
        from mlee.experiment import window_record

        return window_record(self, name, start, end, measured, n_samples, complete)

    def _source_meta(self) -> tuple[dict[str, Domain], dict[str, Method]]:
        sources = self._opened.sources
        return {s.name: s.domain for s in sources}, {s.name: Method(s.method) for s in sources}


def _status_of(exc_type: Any, exc: BaseException | None) -> tuple[str, str | None]:
    """The ``status`` and ``error`` of a session that ended with ``exc`` (None: normally)."""
    if exc_type is None or (issubclass(exc_type, SystemExit) and getattr(exc, "code", 1) in (None, 0)):
        return "completed", None
    if issubclass(exc_type, (KeyboardInterrupt, Interrupted)):
        return "interrupted", str(exc) or "interrupted"
    return "failed", str(exc) if isinstance(exc, MleeError) else f"{exc_type.__name__}: {exc}"


def measure(name: Any = "measure", **kwargs: Any) -> Measurement:
    """Make a :class:`Measurement`: a context manager, and a decorator (``@mlee.measure`` or ``@mlee.measure("x")``)."""
    if callable(name):  # bare @mlee.measure
        return Measurement(name.__name__, **kwargs)(name)  # type: ignore[return-value]
    return Measurement(name, **kwargs)
