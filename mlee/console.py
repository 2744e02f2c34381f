"""Terminal output: data to stdout, messages and progress to stderr, progress only on a terminal.

Consoles are made per call (cheap) so that they follow whatever ``sys.stdout``/``sys.stderr``
are at that moment (test runners swap them); there is no module-level console.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


def _width() -> int | None:
    cols = os.environ.get("COLUMNS")
    return int(cols) if cols and cols.isdigit() else None


def out() -> Any:
    """A rich Console writing data (tables, JSON) to stdout."""
    from rich.console import Console

    return Console(file=sys.stdout, width=_width(), soft_wrap=False)


def err() -> Any:
    """A rich Console writing messages to stderr."""
    from rich.console import Console

    return Console(file=sys.stderr, width=_width(), stderr=True, soft_wrap=True)


def message(text: str, style: str | None = None) -> None:
    """Print one message line to stderr (markup disabled: user strings may hold brackets)."""
    err().print(text, style=style, markup=False, highlight=False)


def error(text: str) -> None:
    """Print ``error: text`` to stderr."""
    c = err()
    c.print("error: ", style="bold red", end="", markup=False, highlight=False)
    c.print(text, markup=False, highlight=False)


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def progress(enabled: bool | None = None) -> Iterator[Any]:
    """A rich Progress on stderr when stderr is a terminal; otherwise a silent stand-in.

    Yields an object with rich Progress's ``add_task``/``update``/``advance`` methods.
    """
    if enabled is None:
        enabled = stderr_is_tty() and not os.environ.get("CI")
    if not enabled:
        yield _SilentProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
        transient=False,
    ) as bar:
        yield bar


class _SilentProgress:
    """Progress with the same methods that shows nothing (stderr is not a terminal)."""

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        return 0

    def update(self, task_id: int, **_: Any) -> None:
        return None

    def advance(self, task_id: int, advance: float = 1) -> None:
        return None
