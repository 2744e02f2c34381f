"""The ``mlee`` command line: every command registered explicitly, and the one crash handler.

Each command lives in a module of :mod:`mlee.commands` named after it (``mlee infer`` is
``mlee.commands.infer.infer``) and is added here by hand, in the order ``mlee --help`` lists them. The exit
code of an error comes from its class (:attr:`mlee.errors.MleeError.exit_code`).

Exit codes:
  0 ok; 1 failure; 2 usage; 3 no usable power source (or device) the user asked for;
  4 permission denied on a power source; 127 command not found (``mlee run``);
  130 interrupted (SIGINT), 143 (SIGTERM), 129 (SIGHUP); ``mlee run`` otherwise passes on the wrapped
  command's own code.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup


from mlee import __version__
from mlee.commands import calibrate, card, check, demo, doctor, evaluate, export, fit, infer, label, merge, models
from mlee.commands import predict, profile, rate, report, run, sweep, train
from mlee.console import error, message
from mlee.errors import Interrupted, MleeError

try:  # typer >= 0.26 vendors click as typer._click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _cx

_EXIT = tuple({typer.Exit, getattr(_cx, "Exit", typer.Exit)})
_ABORT = tuple({typer.Abort, getattr(_cx, "Abort", typer.Abort), KeyboardInterrupt, Interrupted})

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 no usable power source or device, 4 permission denied, "
    "127 command not found, 130 interrupted (143 by SIGTERM, 129 by SIGHUP); `mlee run` passes on the wrapped "
    "command's code. "
    "Set MLEE_DEBUG=1 to see tracebacks."
)


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of an exception: an :class:`~mlee.errors.MleeError` carries its own, an interrupt
    is 130, anything else 1."""
    if isinstance(exc, MleeError):
        return exc.exit_code
    if isinstance(exc, _ABORT):
        return EXIT_INTERRUPTED
    return EXIT_FAILURE


def _debug() -> bool:
    return os.environ.get("MLEE_DEBUG", "") not in ("", "0")


class MleeGroup(TyperGroup):
    """Typer's group with one crash handler: every exit path goes through :func:`exit_code_for`."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        code = self._guarded(args, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _guarded(self, args: Any, prog_name: str | None, complete_var: Any, **extra: Any) -> int:
        try:
            rv = super().main(args=args, prog_name=prog_name or "mlee", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except _EXIT as exc:
            return int(getattr(exc, "exit_code", 0) or 0)
        except _cx.ClickException as exc:
            _show_click_error(exc)
            return EXIT_USAGE if isinstance(exc, _cx.UsageError) else EXIT_FAILURE
        except _ABORT as exc:
            if isinstance(exc, Interrupted):
                error(str(exc))
            else:
                message("interrupted")
            return exit_code_for(exc)
        except MleeError as exc:
            if _debug():
                traceback.print_exc()
            _show_unwritten_record(exc)
            error(str(exc))
            return exit_code_for(exc)
        except MemoryError:
            if _debug():
                traceback.print_exc()
            error("out of memory: the input needs more memory than this machine has free "
                  "(close other programs or split the input; outputs are written atomically, none is half-written)")
            return EXIT_FAILURE
        except Exception as exc:  # noqa: BLE001 - the one crash handler
            if _debug():
                traceback.print_exc()
            text = str(exc) or "(no message)"
            error(f"internal error: {type(exc).__name__}: {text} (set MLEE_DEBUG=1 for a traceback and report it)")
            return EXIT_FAILURE
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK


def _show_unwritten_record(exc: MleeError) -> None:
    """A record that could not be written (a full disk) goes to stderr, so nothing measured is lost."""
    record = getattr(exc, "results", None)
    if isinstance(record, dict):
        import json

        sys.stderr.write(json.dumps(record, sort_keys=True, indent=2, allow_nan=False, default=str) + "\n")


def _show_click_error(exc: _cx.ClickException) -> None:
    """Show a parsing error as the README promises: ``error: ...`` and ``try: ...``, one line each (both
    escaped by :func:`~mlee.console.error` and :func:`~mlee.console.message`)."""
    text = " ".join(exc.format_message().split())
    if text[1:2].islower():  # "No such option" -> "no such option"; "DB ..." stays
        text = text[:1].lower() + text[1:]
    error(text)
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _cx.UsageError):
        path = ctx.command_path if ctx is not None else "mlee"
        message(f"try: {path} --help")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mlee {__version__}")
        raise typer.Exit(0)


def build_app() -> typer.Typer:
    """Make the typer app with every command registered."""
    app = typer.Typer(
        cls=MleeGroup,
        name="mlee",
        help="Measure the energy of ML inference and training, and rate it with A-E energy labels.\n\n"
        + EXIT_CODES_HELP,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode="rich",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(False, "--version", "-V", callback=_version_callback, is_eager=True,
                                     help="Print the version and exit."),
    ) -> None:
        """Measure the energy of ML inference and training, and rate it with A-E energy labels."""

    register_commands(app)
    return app


def register_commands(app: typer.Typer) -> None:
    """Add every command to ``app``, in the order ``mlee --help`` lists them."""
    app.command("doctor")(doctor.doctor)
    app.command("run", context_settings={"allow_interspersed_args": False})(run.run)
    app.command("infer")(infer.infer)
    app.command("train")(train.train)
    app.command("models")(models.models)
    app.command("merge")(merge.merge)
    app.command("rate")(rate.rate)
    app.command("calibrate")(calibrate.calibrate)
    app.command("label")(label.label)
    app.command("report")(report.report)
    app.command("check")(check.check)
    app.command("profile")(profile.profile)
    app.command("predict")(predict.predict)
    app.command("fit")(fit.fit)
    app.command("evaluate")(evaluate.evaluate)
    app.command("sweep")(sweep.sweep)
    app.command("demo")(demo.demo)
    app.command("export")(export.export)
    app.command("card")(card.card)


app = build_app()


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    return typer.main.get_command(app).main(args=argv, prog_name="mlee", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    main()
