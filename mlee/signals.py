"""Signals during a measured run (CLI layer only; library code never installs a handler).

While a :class:`SignalGuard` is entered, SIGINT, SIGTERM and SIGHUP never kill mlee mid-write: each is recorded
(the first one decides the exit code: 128 + its number, so 130, 143 or 129) and handed to ``on_signal``. With
``raise_first`` the first one also raises :class:`~mlee.errors.Interrupted` in the main thread, to stop an
in-process workload; later ones only are recorded, so a second Ctrl-C cannot cut the record short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from mlee.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_code_of(signum: int) -> int:
    """The shell's exit code for a run ended by ``signum``: 128 + its number."""
    return 128 + int(signum)


class SignalGuard:
    """Records SIGINT/SIGTERM/SIGHUP while entered (in the main thread; elsewhere it does nothing).

    Args:
        on_signal: Called with the signal number and how many signals came so far (``mlee run`` forwards them).
        raise_first: Raise :class:`Interrupted` for the first signal.
    """

    def __init__(self, on_signal: Callable[[int, int], None] | None = None, raise_first: bool = False) -> None:
        self.on_signal = on_signal
        self.raise_first = raise_first
        self.received: list[int] = []
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        self._event.set()
        if self.on_signal is not None:
            self.on_signal(signum, len(self.received))
        if self.raise_first and len(self.received) == 1:
            raise Interrupted(f"interrupted by {signal.Signals(signum).name}", signum=signum)

    @property
    def first(self) -> int | None:
        """The first signal received, or None."""
        return self.received[0] if self.received else None

    def exit_code(self) -> int | None:
        """128 + the first signal's number, or None when none came."""
        return exit_code_of(self.first) if self.first is not None else None

    def sleep(self, seconds: float) -> None:
        """Sleep that a signal cuts short (for an idle baseline). Units: seconds."""
        self._event.wait(seconds)
