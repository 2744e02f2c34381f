"""The measurement session every runner uses: ``mlee.measure(...)`` (docs/design.md section 1).

```python
with mlee.measure("resnet", kind="infer", config={...}) as m:
    with m.window("repeat-0", measured=True, n_samples=64):
        ...                                   # every source is read at entry and at exit
    m.mark("epoch-3")                         # a window from here to the next mark or the end
    m.add_results(task="inference", model="ResNet50")
print(m.result.energy_j)
```

The session opens the sources first (a named source that fails stops it before anything is written), then
writes the experiment folder with ``status: running`` (rewritten with the energy so far at least every
``CHECKPOINT_S`` while it samples in the background), and on exit writes ``results.json`` with ``completed``,
``failed`` (an exception, re-raised) or ``interrupted`` (KeyboardInterrupt). A full disk stops the traces, never
the measurement. It installs no signal handler and prints nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlee.errors import MleeError, OutputError, RecordNotWritten, UsageError
from mlee.measure.record import (Ending, EnvironmentWriter, SessionState, SourceInfo, build_results, config_json,
                                 running_results, window_record)
from mlee.measure.result import RESERVED_KEYS, MeasurementResult, WindowHandle, status_of
from mlee.measure.sampling import finish_traces, open_for_session, prestart, start_sampling
from mlee.measure.settings import MIN_INTERVAL_S, SessionSettings
from mlee.results.layout import DEFAULT_OUTPUT_DIR, create_folder, remove_folder, write_final_json, write_json
from mlee.vocabulary import Domain, Method

#: Longest time between two rewrites of the running results.json. Units: seconds.
CHECKPOINT_S = 5.0


class Measurement:
    """One measured session; see the module docstring. Settings are recorded in ``config.json``.

    Args:
        name: Experiment name (any text; made filesystem-safe for the folder).
        kind, output_dir, interval_s, sources, baseline_s, country, config, pue: The session's settings (see
            :class:`SessionSettings`); ignored when ``settings`` is given.
        settings: All of them at once, already validated.
        powercap_root, nvml, amdsmi, clock, estimator, sleep: Hardware and time edges, injectable for tests.
        host_pid: Root of the process tree traced in ``host.csv`` (default: this process).
        write_log: Write session events to ``log.txt`` (``mlee run`` writes the command's output there).
        background: Sample in a background thread (tests driving a fake clock turn it off).

    Raises:
        UsageError: a setting no measurement can use (nothing is opened or written).

    Units: seconds.
    """

    def __init__(self, name: str, kind: str = "measure", output_dir: str | Path = DEFAULT_OUTPUT_DIR,
                 interval_s: float = 0.1, sources: list[str] | str | None = None, baseline_s: float = 0.0,
                 country: str | None = None, config: dict | None = None, *, pue: float = 1.0,
                 settings: SessionSettings | None = None, powercap_root: Any = None,
                 nvml: Any = None, clock: Callable[[], float] | None = None, estimator: Any = None,
                 sleep: Callable[[float], None] | None = None, host_pid: int | None = None,
                 write_log: bool = True, background: bool = True, amdsmi: Any = None) -> None:
        if settings is None:
            settings = SessionSettings(kind=kind, output_dir=Path(output_dir), interval_s=interval_s,
                                       sources=sources, baseline_s=baseline_s, country=country, pue=pue,
                                       config=dict(config or {}))
        self.name = str(name)
        self.settings = settings
        self.interval_s = settings.interval_s
        self._edges = {"powercap_root": powercap_root, "nvml": nvml, "clock": clock, "estimator": estimator,
                       "sleep": sleep, "host_pid": host_pid, "write_log": write_log, "background": background,
                       "amdsmi": amdsmi}
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self.folder: Path | None = None
        self.id: str | None = None
        self._state = "new"
        self._extra: dict = {}
        self._windows: list[dict] = []
        self._mark: tuple[str, Any] | None = None
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._result: MeasurementResult | None = None
        self._sampler: Any = None
        self._sink: Any = None
        self._proxy: Any = None
        self._opened: Any = None
        self._log_fh: Any = None
        self._env: EnvironmentWriter | None = None
        self._notes: list[str] = []
        self._workload_start: Any = None
        self._baseline: tuple | None = None
        prestart(self._edges)  # the sampler process boots while the caller gets ready

    kind = property(lambda self: self.settings.kind, doc="The experiment kind (``run``, ``infer``...).")

    @property
    def requested_interval_s(self) -> float:
        """The interval asked for (``interval_s`` may be shorter, see the module docstring). Units: seconds."""
        return self.settings.interval_s

    # -- decorator -------------------------------------------------------------------------------
    def __call__(self, func: Callable) -> Callable:
        """``@mlee.measure("name")``: every call of ``func`` is one measured session."""

        @functools.wraps(func)
        def wrapper(*args: Any, **kw: Any) -> Any:
            with Measurement(self.name, settings=self.settings, **self._edges) as m:
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
        if self._state != "new":
            raise MleeError("a measurement session runs once", fix="make a new mlee.measure(...) for each run")
        self._state = "starting"
        self._opened, self._proxy = open_for_session(self.settings, self._edges, self._clock)
        # The session starts at its first reading (opening codecarbon alone takes seconds).
        now_s, now_wall = self._clock(), dt.datetime.now(dt.timezone.utc)
        self._t0_s = min([r.t_s for r in self._opened.first] + [now_s])
        self._start_wall = now_wall - dt.timedelta(seconds=now_s - self._t0_s)
        try:
            self._open_folder()
        except OSError as exc:  # a full or read-only disk before anything was measured: nothing is kept
            self._abort_start()
            raise OutputError(f"cannot write an experiment folder in {self.settings.output_dir}: "
                              f"{exc.strerror or exc}", fix="free disk space or choose another --output-dir") from exc
        except BaseException:
            self._abort_start()
            raise
        self._workload_start = self._sampler.sample()
        self._state = "running"
        self._publish()
        if self.settings.baseline_s > 0:
            try:
                self.log(f"idle baseline: {self.settings.baseline_s:g} s")
                self._sleep(self.settings.baseline_s)
                end = self._sampler.sample()
            except BaseException as exc:  # Ctrl-C during the baseline: keep what was measured
                self.finish(*status_of(type(exc), exc))
                raise
            self._baseline = (self._workload_start, end)
            self._workload_start = end
            with contextlib.suppress(OSError):
                self._write_running(end)  # a killed run's energy starts here, after the baseline
        return self

    def _open_folder(self) -> None:
        from mlee.results.liveness import process_identity

        limits = [s.max_interval_s for s in self._opened.sources if getattr(s, "max_interval_s", None)]
        if limits and min(limits) < self.interval_s:
            self.interval_s = max(MIN_INTERVAL_S, min(limits))  # read every counter 4x per wrap period
        self.folder = create_folder(self.settings.output_dir, self.kind, self.name, self._start_wall)
        self.id = self.folder.name
        self._process = process_identity()
        write_json(self.folder, "config.json", config_json(self.name, self.settings, self.interval_s))
        if self._proxy is None:  # a sampler process writes environment.json itself, off this interpreter
            self._env = EnvironmentWriter(self.folder, self._opened.sources, self._opened.skipped, self._edges["nvml"])
        if self._edges["write_log"]:
            self._log_fh = open(self.folder / "log.txt", "a", encoding="utf-8")
        self._sampler, self._sink = start_sampling(self._opened, self._proxy, self.folder, self._t0_s, self.interval_s,
                                                   self._edges, self._clock, self._checkpoint, CHECKPOINT_S)
        self._write_running()
        where = "a sampler process" if self._proxy is not None else "a thread"
        self.log(f"sources: {', '.join(s.name for s in self._opened.sources)}; interval {self.interval_s:g} s "
                 f"({where})")
        for skipped in self._opened.skipped:
            self.log(f"skipped {skipped['name']}: {skipped['reason']}")

    def _join_environment(self) -> None:
        if self._env is not None:
            error, self._env = self._env.join(), None
            if error:
                self.log(f"environment.json not written: {error}")

    def _abort_start(self) -> None:
        """Undo a start that failed before anything was measured: close the sources, remove the folder."""
        self._join_environment()
        if self._sampler is not None:
            with contextlib.suppress(Exception):
                self._sampler.stop()
        else:
            self._opened.close_all()
            if self._sink is not None:
                self._sink.close()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        if self.folder is not None:
            remove_folder(self.folder)
            self.folder = self.id = None
        self._state = "done"

    def log(self, line: str) -> None:
        """Append one line to ``log.txt`` with the session time (no-op without a log; a full disk ends the log)."""
        if self._log_fh is not None and self._sampler is not None:
            t_s = self._clock() - self._t0_s
            try:
                self._log_fh.write(f"[mlee {t_s:9.3f} s] {line}\n")
                self._log_fh.flush()
            except OSError as exc:
                self._note_once(f"log.txt stopped early: {exc.strerror or exc}")
                with contextlib.suppress(OSError):
                    self._log_fh.close()
                self._log_fh = None

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
            handle.record = window_record(self._state_now(), name, start, end, measured, n_samples, complete)
            with self._lock:
                self._windows.append(handle.record)
            self._publish()

    def mark(self, name: str) -> None:
        """Start a named window that runs until the next mark or the end of the session."""
        self._require_running("mark()")
        snap = self._sampler.sample()
        self._close_mark(snap)
        self._mark = (name, snap)

    def _close_mark(self, snap: Any) -> None:
        if self._mark is not None:
            name, start = self._mark
            record = window_record(self._state_now(), name, start, snap, False, None, True)
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
            try:
                self._write_running()
            except OSError as exc:  # a full disk: the values are kept for the final record
                self._note_once(f"running results.json not rewritten: {exc.strerror or exc}")

    def _note_once(self, note: str) -> None:
        with self._lock:
            if note not in self._notes:
                self._notes.append(note)

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
        self.finish(*status_of(exc_type, exc))
        return False

    def finish(self, status: str = "completed", error: str | None = None) -> MeasurementResult:
        """Take the final readings and write ``results.json`` (the ``with`` block calls this).

        Raises:
            RecordNotWritten: not even the reserved room held ``results.json``; it carries the figures.
        """
        if self._state == "done" and self._result is not None:
            return self._result
        if self._state != "running":
            raise MleeError("the measurement was not started", fix="use `with mlee.measure(...)`")
        self._state = "stopping"
        end = self._sampler.stop()
        self._join_environment()
        self._close_mark(end)
        for line in finish_traces(self._proxy, self.folder):
            self.log(line)
        truncated = self._sink.truncated()
        for channel, info in sorted(truncated.items()):
            self._note_once(f"trace of {channel} truncated after {info['rows_written']} of {info['rows']} rows: "
                               f"{info['reason']}; the energy figures are complete")
        self.log(f"status: {status}" + (f" ({error})" if error else ""))
        ending = Ending(end=end, end_wall=dt.datetime.now(dt.timezone.utc), status=status, error=error,
                        baseline=self._baseline, per_source=self._sampler.summary(), sampler=self._sampler.stats(),
                        truncated_traces=truncated, notes=tuple(self._notes))
        results = build_results(self._state_now(), ending)
        if self._log_fh is not None:
            with contextlib.suppress(OSError):
                self._log_fh.close()
            self._log_fh = None
        self._state = "done"
        self._result = MeasurementResult(
            folder=self.folder, id=results["id"], status=status, energy_j=results["energy_j"],
            energy_method=results["energy_method"], estimated=results["estimated"],
            duration_s=results["duration_s"], windows=tuple(results["windows"]), baseline=results["baseline"],
            sources=tuple(results["sources"]), results=results)
        try:
            with self._write_lock:
                write_final_json(self.folder, "results.json", results)
        except OSError as exc:
            raise RecordNotWritten(f"cannot write {self.folder / 'results.json'}: {exc.strerror or exc}",
                                   fix="free space on that disk; the figures follow on stderr",
                                   results=results) from exc
        return self._result

    # -- results.json ----------------------------------------------------------------------------
    def _state_now(self, now: Any = None) -> SessionState:
        with self._lock:
            return SessionState(
                id=self.id or "", name=self.name, settings=self.settings, interval_s=self.interval_s,
                start_wall=self._start_wall,
                sources=tuple(SourceInfo(s.name, Domain(s.domain), Method(s.method), s.detail) for s in self.sources),
                skipped=tuple(self._opened.skipped) if self._opened else (), windows=tuple(self.windows),
                extra=dict(self._extra), process=self._process, workload_start=self._workload_start, now=now)

    def _write_running(self, now: Any = None) -> None:
        with self._write_lock:
            if self._state in ("running", "starting"):
                write_json(self.folder, "results.json", running_results(self._state_now(now)))
        self._publish()

    def _publish(self) -> None:
        """Hand the sampler process the state it rewrites the running results.json from."""
        if self._proxy is not None and self._state in ("running", "starting"):
            self._proxy.publish(self._state_now())

    def _checkpoint(self, snap: Any) -> None:
        """From the sampling thread: the running record with the energy so far (a full disk just skips one)."""
        if self._state == "running" and self._workload_start is not None:
            try:
                self._write_running(snap)
            except OSError as exc:
                self._note_once(f"running results.json not rewritten: {exc.strerror or exc}")


def measure(name: Any = "measure", **kwargs: Any) -> Measurement:
    """Make a :class:`Measurement`: a context manager, and a decorator (``@mlee.measure`` or ``@mlee.measure("x")``)."""
    if callable(name):  # bare @mlee.measure
        return Measurement(name.__name__, **kwargs)(name)  # type: ignore[return-value]
    return Measurement(name, **kwargs)
