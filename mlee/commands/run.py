"""CLI: ``mlee run [options] -- CMD ...``: run a command under measurement.

The command's stdout and stderr go to the terminal and to ``log.txt``; its exit code is passed on
(a signal death becomes 128 + the signal number). Ctrl-C (SIGINT) and SIGTERM are forwarded to the
command's process group, the run is recorded as ``interrupted`` and mlee exits 130. A command that
does not exist still leaves a complete folder (``status: failed``) and exits 127.
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

EXIT_INTERRUPTED = 130
EXIT_NOT_FOUND = 127
#: How long output may keep arriving after the command exited (from its background children). Units: seconds.
TEE_DRAIN_S = 2.0


class _Tee:
    """Copies one pipe of the child to a terminal stream and to the shared log file."""

    def __init__(self, pipe: BinaryIO, stream: Any, log: BinaryIO, lock: threading.Lock) -> None:
        self._pipe, self._stream, self._log, self._lock = pipe, stream, log, lock
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
            with self._lock:
                try:
                    self._log.write(chunk)
                    self._log.flush()
                except ValueError:  # the run is over and the log closed; a leftover grandchild talks on
                    break
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


def run_command(cmd: list[str], m: Any, log_path: Path) -> tuple[int, bool]:
    """Run ``cmd`` inside the started measurement ``m``.

    Returns:
        The exit code to pass on, and whether the run was interrupted.

    Raises:
        CommandNotFound: the command does not exist or cannot be executed.
    """
    interrupted = threading.Event()
    proc: subprocess.Popen | None = None

    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        interrupted.set()
        received.append(signum)
        if proc is not None and proc.poll() is None:
            # A command that ignores two Ctrl-C is stopped for good on the third.
            sig = signal.SIGKILL if len(received) >= 3 else signum
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    in_main = threading.current_thread() is threading.main_thread()
    lock = threading.Lock()
    with open(log_path, "ab") as log:
        try:
            if in_main:
                for sig in previous:
                    signal.signal(sig, forward)
            with m.window("command", measured=True):
                try:
                    proc = _spawn(cmd)
                except FileNotFoundError as exc:
                    raise CommandNotFound(f"command not found: {cmd[0]}",
                                          fix="check the name and PATH, or give the full path") from exc
                except PermissionError as exc:
                    raise CommandNotFound(f"command is not executable: {cmd[0]}",
                                          fix=f"chmod +x {cmd[0]}, or run it through its interpreter") from exc
                m.follow_process(proc.pid)
                tees = [_Tee(proc.stdout, sys.stdout, log, lock), _Tee(proc.stderr, sys.stderr, log, lock)]
                code = proc.wait()
                for tee in tees:
                    # A background grandchild may hold the pipe open long after the command ended.
                    tee.thread.join(timeout=TEE_DRAIN_S)
        finally:
            if in_main:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
    if code < 0:
        code = 128 - code  # killed by a signal: the shell's convention
    return (EXIT_INTERRUPTED if interrupted.is_set() else code), interrupted.is_set()


def _summary(result: Any) -> str:
    energy = result.energy_j.get("total")
    if energy is None:
        return f"results in {result.folder}"
    method = result.energy_method.get("total")
    tag = " (ESTIMATE)" if result.estimated else f" ({method})"
    return f"{energy:.3f} J{tag} in {result.duration_s:.2f} s; results in {result.folder}"


def register(app: typer.Typer) -> None:
    """Register ``mlee run``."""

    @app.command("run", context_settings={"allow_interspersed_args": False})
    def run(
        cmd: list[str] = typer.Argument(None, help="The command to measure, after `--`.", show_default=False),
        name: str = typer.Option(None, "--name", "-n", help="Experiment name (default: the command's name)."),
        output_dir: Path = typer.Option(Path("results"), "--output-dir", "-o", help="Where the experiment folder goes."),
        interval: float = typer.Option(0.1, "--interval", help="Sampling interval in seconds."),
        baseline_s: float = typer.Option(0.0, "--baseline-s", help="Idle baseline before the command, in seconds."),
        source: list[str] = typer.Option(None, "--source", "-s",
                                         help="rapl, nvml or estimate (repeatable; default: auto-detect)."),
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
        not exist; 130 when interrupted; 3/4 when a requested power source is unavailable/not permitted.
        """
        from mlee.console import message
        from mlee.session import Measurement

        if not cmd:
            raise UsageError("no command given", fix="put it after `--`, e.g. mlee run -- python train.py")
        if interval <= 0:
            raise UsageError(f"interval {interval:g} s is not positive", fix="use e.g. --interval 0.1")
        if baseline_s < 0:
            raise UsageError(f"baseline {baseline_s:g} s is negative", fix="use --baseline-s 0 or more")
        run_name = name or Path(cmd[0]).name
        m = Measurement(run_name, kind="run", output_dir=output_dir, interval_s=interval, sources=source or None,
                        baseline_s=baseline_s, country=country, config={"command": list(cmd)}, write_log=False,
                        pue=pue)
        if baseline_s > 0:
            message(f"mlee: measuring the idle baseline for {baseline_s:g} s")
        m.start()
        log_path = m.folder / "log.txt"
        try:
            code, interrupted = run_command(list(cmd), m, log_path)
        except CommandNotFound as exc:
            m.add_results(exit_code=EXIT_NOT_FOUND, command=list(cmd))
            m.finish("failed", str(exc))
            raise CommandNotFound(exc.message, fix=f"{exc.fix}; the failed run is recorded in {m.folder}") from exc
        except BaseException as exc:
            m.add_results(exit_code=None, command=list(cmd))
            interrupted_exc = isinstance(exc, KeyboardInterrupt)
            m.finish("interrupted" if interrupted_exc else "failed", f"{type(exc).__name__}: {exc}")
            raise
        m.add_results(exit_code=code, command=list(cmd))
        if interrupted:
            result = m.finish("interrupted", "interrupted by a signal (forwarded to the command)")
        elif code == 0:
            result = m.finish("completed")
        else:
            result = m.finish("failed", f"command exited with code {code}")
        message(f"mlee: {result.status}: {_summary(result)}")
        if mlflow or mlflow_uri:
            from mlee.export.tracking import log_finished

            message(log_finished([result.folder], mlflow_uri))
        return code
