"""Errors raised by the mlee library.

Library code raises these; only :mod:`mlee.cli` turns them into messages. Each class carries the exit code the
command line ends with (``exit_code``), so commands never ask the CLI for one.
Every message names the problem and, where there is one, the fix.
"""

from __future__ import annotations


class MleeError(Exception):
    """Base class of every error mlee raises on purpose.

    Args:
        message: What went wrong, one line.
        fix: What the user can do about it, one line (optional).

    Attributes:
        exit_code: The documented exit code of this kind of error (1: failure).
    """

    exit_code: int = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


class UsageError(MleeError):
    """The user asked for something that cannot be done as asked (bad option value, bad spec)."""

    exit_code = 2


class SourceUnavailable(MleeError):
    """A power source the user asked for cannot be used (no hardware, no driver, no library)."""

    exit_code = 3


class SourcePermissionError(SourceUnavailable):
    """A power source exists but may not be read by this user."""

    exit_code = 4


class SourceReadError(MleeError):
    """One read of a power source failed (counter unreadable, GPU lost). Marks an interval invalid."""


class ResultFormatError(MleeError):
    """An experiment folder, database or spec file cannot be read: truncated, wrong types, newer schema."""


class DataError(MleeError):
    """Input data for a model run is missing, empty or corrupt."""


class BackendMissing(MleeError):
    """A framework (torch, tensorflow, onnxruntime) is not installed; the fix names the extra."""


class DeviceUnavailable(SourceUnavailable):
    """A compute device (``cuda``) was requested but is not present."""


class CommandNotFound(MleeError):
    """The command given to ``mlee run`` does not exist or is not executable."""

    exit_code = 127


class Interrupted(MleeError):
    """The user interrupted the run (Ctrl-C, SIGTERM, SIGHUP); what was measured has been written.

    Args:
        signum: The signal that interrupted it (the exit code is 128 + it); None: SIGINT (exit code 130).
    """

    exit_code = 130

    def __init__(self, message: str, fix: str | None = None, signum: int | None = None) -> None:
        super().__init__(message, fix)
        self.signum = signum
        if signum is not None:
            self.exit_code = 128 + int(signum)


class OutputError(MleeError):
    """An output cannot be written (read-only location, disk full, locked); what existed before is unchanged."""


class RatingError(MleeError):
    """A database cannot be rated as asked: nothing to rate, or a group lacks the spec's reference model."""


class RecordNotWritten(OutputError):
    """A finished session's ``results.json`` could not be written (even its reserved room was not enough).

    Args:
        results: The record that could not be written; the CLI prints it to stderr so nothing measured is lost.
    """

    def __init__(self, message: str, fix: str | None = None, results: dict | None = None) -> None:
        super().__init__(message, fix)
        self.results = results
