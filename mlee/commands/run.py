"""CLI: ``mlee run [options] -- CMD ...``: run a command under measurement.

The command's stdout and stderr go to the terminal and to ``log.txt``; its exit code is passed on
(a signal death becomes 128 + the signal number). SIGINT, SIGTERM and SIGHUP are forwarded to the
command's process group (the third signal sends SIGKILL), the run is recorded as ``interrupted`` and mlee
exits 130, 143 or 129 after the first signal; no later signal can cut the record short. A command that
does not exist still leaves a complete folder (``status: failed``) and exits 127. A full disk stops the
traces and the log, not the run: the code is still passed on, with one warning line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

import typer

from mlee.errors import CommandNotFound, UsageError
from mlee.signals import SignalGuard

#: How long output may keep arriving after the command exited (from its background children). Units: seconds.
TEE_DRAIN_S = 2.0


class _Tee:
    """Copies one pipe of the child to a terminal stream and to the shared log file."""

    def __init__(self, pipe: BinaryIO, stream: Any, log: BinaryIO, lock: threading.Lock) -> None:
        self._pipe, self._stream, self._log, self._lock = pipe, stream, log, lock
        self.log_error = ""  # why log.txt stopped early (a full disk), or empty
        self.thread = threading.Thread(target=self._pump, name="mlee-tee", daemon=True)
        self.thread.start()

    def _write_stream(self, chunk: bytes) -> None:
        try:
            buffer = getattr(self._stream, "buffer", None)
            if buffer is not None:
                buffer.write(chunk)
            else:
                self._stream.write(chunk.decode("utf-8", "replace"))
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not stop the log or the measurement

    def _pump(self) -> None:
        fd = self._pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if not self.log_error:
                with self._lock:
                    try:
                        self._log.write(chunk)
                        self._log.flush()
                    except ValueError:  # the run is over and the log closed; a leftover grandchild talks on
                        break
                    except OSError as exc:  # a full disk: the terminal still gets everything
                        self.log_error = f"log.txt stopped early: {exc.strerror or exc}"
            self._write_stream(chunk)
        self._pipe.close()


def _spawn(cmd: list[str]) -> subprocess.Popen:
    """Start the command in its own process group (so a forwarded Ctrl-C reaches it exactly once).

    Its stdin is the terminal's only when that is not a terminal: a background process group that
    reads the terminal would be stopped by the kernel (SIGTTIN) and hang the run.
    """
    stdin: Any = None
    try:
        if sys.stdin is None or sys.stdin.isatty():
            stdin = subprocess.DEVNULL
    except (AttributeError, ValueError):
        stdin = subprocess.DEVNULL
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0)


class _Child:
    """The wrapped command's process, once spawned; signals received by mlee are forwarded to its group."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def forward(self, signum: int, count: int) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            # A command that ignores two signals is stopped for good on the third.
            try:
                os.killpg(proc.pid, signal.SIGKILL if count >= 3 else signum)
            except (ProcessLookupError, PermissionError):
                pass


def run_command(cmd: list[str], m: Any, log_path: Path, guard: SignalGuard, child: _Child) -> int:
    """Run ``cmd`` inside the started measurement ``m`` (signals are recorded by ``guard``, forwarded by ``child``).

    Returns:
        The command's exit code (128 + N when signal N killed it).

    Raises:
        CommandNotFound: the command does not exist or cannot be executed.
    """
    lock = threading.Lock()
    with open(log_path, "ab") as log, m.window("command", measured=True):
        try:
            child.proc = proc = _spawn(cmd)
        except FileNotFoundError as exc:
            raise CommandNotFound(f"command not found: {cmd[0]}",
                                  fix="check the name and PATH, or give the full path") from exc
        except PermissionError as exc:
            raise CommandNotFound(f"command is not executable: {cmd[0]}",
                                  fix=f"chmod +x {cmd[0]}, or run it through its interpreter") from exc
        if guard.received:  # a signal came while it was being started
            child.forward(guard.received[0], len(guard.received))
        m.follow_process(proc.pid)
        tees = [_Tee(proc.stdout, sys.stdout, log, lock), _Tee(proc.stderr, sys.stderr, log, lock)]
        code = proc.wait()
        for tee in tees:
            # A background grandchild may hold the pipe open long after the command ended.
            tee.thread.join(timeout=TEE_DRAIN_S)
        notes = [tee.log_error for tee in tees if tee.log_error]
        if notes:
            m.add_results(log_truncated=notes[0])
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def _summary(result: Any) -> str:
    from mlee.monitors.accounting import missing_energy_text, partial_text

    energy = result.energy_j.get("total")
    missing = missing_energy_text(result.results.get("sources") or [])  # issue 14: never a silent zero
    if missing:
        return f"{missing}; results in {result.folder}"
    if energy is None:
        return f"results in {result.folder}"
    method = result.energy_method.get("total")
    tag = " (ESTIMATE)" if result.estimated else f" ({method})"
    partial = partial_text(result.results.get("energy_coverage") or {})  # issue 14: never a silent part
    return (f"{energy:.3f} J{tag}{f' {partial}' if partial else ''} in {result.duration_s:.2f} s; "
            f"results in {result.folder}")


def run(
    cmd: list[str] = typer.Argument(None, help="The command to measure, after `--`.", show_default=False),
    name: str = typer.Option(None, "--name", "-n", help="Experiment name (default: the command's name)."),
    output_dir: Path = typer.Option(Path("results"), "--output-dir", "-o", help="Where the experiment folder goes."),
    interval: float = typer.Option(0.1, "--interval", help="Sampling interval in seconds."),
    baseline_s: float = typer.Option(0.0, "--baseline-s", help="Idle baseline before the command, in seconds."),
    source: list[str] = typer.Option(None, "--source", "-s",
                                     help="rapl, nvml, amdsmi or estimate (repeatable; default: auto-detect)."),
    country: str = typer.Option(None, "--country", help="ISO alpha-3 country for the estimate and carbon "
                                "figures (default: MLEE_COUNTRY or DEU)."),
    pue: float = typer.Option(1.0, "--pue", help="Power usage effectiveness of the facility for the carbon "
                              "figure (1.0: no overhead)."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Also log the run to MLflow (see --mlflow-uri)."),
    mlflow_uri: str = typer.Option(None, "--mlflow-uri", metavar="URI", help="MLflow tracking URI; implies "
                                   "--mlflow (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)."),
) -> int:
    """Run CMD under measurement: `mlee run -- python train.py`.

    Writes <output-dir>/run-<name>-<UTC time>-<id>/ with config.json, environment.json, power/*.csv,
    log.txt (the command's output) and results.json. Exit code: the command's own; 127 when it does
    not exist; 130/143/129 when interrupted by SIGINT/SIGTERM/SIGHUP; 3/4 when a requested power source
    is unavailable/not permitted; 1 when not even results.json could be written (figures on stderr).
    """
    from mlee.measure.settings import SessionSettings, check_baseline, check_interval, check_pue

    if not cmd:
        raise UsageError("no command given", fix="put it after `--`, e.g. mlee run -- python train.py")
    settings = SessionSettings(kind="run", output_dir=output_dir, interval_s=check_interval(interval),
                               sources=tuple(source) if source else None, baseline_s=check_baseline(baseline_s),
                               country=country, pue=check_pue(pue), config={"command": list(cmd)})
    child = _Child()
    with SignalGuard(on_signal=child.forward) as guard:
        code, result = _measure_command(list(cmd), name or Path(cmd[0]).name, settings, guard, child)
        return _finish_message(code, result, guard, mlflow_uri if (mlflow or mlflow_uri) else False)


def _measure_command(cmd: list[str], run_name: str, settings: Any, guard: SignalGuard,
                     child: _Child) -> tuple[int, Any]:
    """Start the session, run the command, write the record; returns the command's code and the result."""
    from mlee.console import message
    from mlee.measure.session import Measurement

    m = Measurement(run_name, settings=settings, write_log=False, sleep=guard.sleep)
    if settings.baseline_s > 0:
        message(f"mlee: measuring the idle baseline for {settings.baseline_s:g} s")
    m.start()
    code = None
    try:
        if not guard.received:
            code = run_command(cmd, m, m.folder / "log.txt", guard, child)
    except CommandNotFound as exc:
        m.add_results(exit_code=exc.exit_code, command=cmd)
        m.finish("failed", str(exc))
        raise CommandNotFound(exc.message, fix=f"{exc.fix}; the failed run is recorded in {m.folder}") from exc
    except BaseException as exc:
        m.add_results(exit_code=None, command=cmd)
        interrupted_exc = isinstance(exc, KeyboardInterrupt)
        m.finish("interrupted" if interrupted_exc else "failed", f"{type(exc).__name__}: {exc}")
        raise
    m.add_results(exit_code=code, command=cmd)
    if guard.received:
        name = signal.Signals(guard.received[0]).name
        how = "forwarded to the command" if code is not None else "before the command started"
        result = m.finish("interrupted", f"interrupted by {name} ({how})")
    elif code == 0:
        result = m.finish("completed")
    else:
        result = m.finish("failed", f"command exited with code {code}")
    return (code if code is not None else 0), result


def _finish_message(code: int, result: Any, guard: SignalGuard, mlflow: str | None | bool = False) -> int:
    """Say how the run ended (and log it to MLflow when ``mlflow`` is a URI or None); returns the exit code."""
    from mlee.console import message

    notes = sorted(result.results.get("notes") or [], key=lambda n: not n.startswith("trace of"))
    if notes:  # a full disk or an I/O error on the side: measuring went on, the record says what was lost
        message(f"mlee: warning: {notes[0]}" + (f" (+{len(notes) - 1} more in results.json)" if len(notes) > 1 else ""))
    message(f"mlee: {result.status}: {_summary(result)}")
    if mlflow is not False:
        from mlee.export.tracking import log_finished

        message(log_finished([result.folder], mlflow))
    interrupted = guard.exit_code()
    return interrupted if interrupted is not None else code
