"""Terminal output: data to stdout, messages and progress to stderr, progress only on a terminal.

Consoles are made per call (cheap) so that they follow whatever ``sys.stdout``/``sys.stderr``
are at that moment (test runners swap them); there is no module-level console.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

#: Characters a terminal acts on instead of showing: C0 (tab and newline included: a name is one line), DEL,
#: C1 (ESC's 8-bit twins), and the bidirectional marks, embeddings, overrides and isolates that reorder text.
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: Any) -> str:
    """``text`` as a string a terminal shows as it is: control and bidi characters written as ``\\x1b``/``\\u202e``.

    Every name that came from a file or the command line goes through this before it reaches a table or a
    message, so a model called ``\\x1b]0;T\\x07`` cannot set the window title or clear the screen.
    A backslash is left alone: the escapes only need to be told apart from the characters themselves, and
    names with backslashes are rare and harmless.
    """
    return _UNSAFE_CHARS.sub(_escaped, str(text))


def close_matches(wanted: str, names: Iterable[str], limit: int = 5) -> list[str]:
    """Up to ``limit`` of ``names`` closest to ``wanted`` (substring matches first), escaped for the terminal.

    Used wherever a message would otherwise list every name a database holds.
    """
    pool = sorted(set(names))
    low = wanted.lower()
    picked = [n for n in pool if low and low in n.lower()][:limit]
    if len(picked) < limit:
        folded = {n.casefold(): n for n in reversed(pool)}
        for near in difflib.get_close_matches(wanted.casefold(), list(folded), n=limit, cutoff=0.5):
            if folded[near] not in picked and len(picked) < limit:
                picked.append(folded[near])
    return [escape(n) for n in picked]


def name_list(wanted: str, names: Iterable[str], limit: int = 5) -> str:
    """Names for a message, never more than ``limit``: all of few names (``"a; b"``), else the closest to
    ``wanted`` (``"a; b (closest of 5000)"``), else the first ones and a count (``"a; b and 4998 more"``)."""
    pool = sorted(set(names))
    if len(pool) <= limit:
        return "; ".join(escape(n) for n in pool) or "none"
    near = close_matches(wanted, pool, limit)
    if near:
        return "; ".join(near) + f" (closest of {len(pool)})"
    return "; ".join(escape(n) for n in pool[:limit]) + f" and {len(pool) - limit} more"


def names_hint(wanted: str, names: Iterable[str], what: str = "names", limit: int = 5) -> str:
    """The fix of a not-found message: ``"it has: a; b"`` or ``"closest models: a; b (of 5000)"``."""
    pool = sorted(set(names))
    near = close_matches(wanted, pool, limit) if len(pool) > limit else []
    if near:
        return f"closest {what}: " + "; ".join(near) + f" (of {len(pool)})"
    return "it has: " + name_list(wanted, pool, limit)


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


def write_data(text: str) -> None:
    """Machine-readable text (JSON, CSV) to stdout, byte for byte: never wrapped, highlighted or marked up.

    Straight to the file: rich would split megabytes of JSON into styled segments (300x slower).
    """
    sys.stdout.write(text)
    sys.stdout.flush()


def print_json(data: Any) -> None:
    """``data`` as deterministic JSON on stdout (:func:`mlee.fsutil.canonical_json`: sorted keys, indent 2, UTF-8,
    no NaN), the one JSON printer of the commands.

    Raises:
        ValueError: when ``data`` holds NaN or an infinity (not JSON).
    """
    from mlee.fsutil import canonical_json

    write_data(canonical_json(data))


def message(text: str, style: str | None = None) -> None:
    """Print a message to stderr: markup disabled (user strings may hold brackets), control characters escaped
    (line breaks excepted: a message may span lines)."""
    safe = "\n".join(escape(line) for line in str(text).split("\n"))
    err().print(safe, style=style, markup=False, highlight=False)


def error(text: str) -> None:
    """Print ``error: text`` to stderr, as one line with every control character escaped."""
    c = err()
    c.print("error: ", style="bold red", end="", markup=False, highlight=False)
    c.print(escape(text), markup=False, highlight=False)


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
