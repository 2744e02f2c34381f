"""A clock tests step by hand, so that integration is exact."""

from __future__ import annotations


class FakeClock:
    """Monotonic clock that only moves when told to.

    ``sleep`` advances it (a session's idle baseline "sleeps" instantly). Listeners run after every
    advance, e.g. to move a fake counter forward with time.

    Units: seconds.
    """

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s
        self.listeners: list = []

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> float:
        self.now_s += seconds
        for listener in self.listeners:
            listener(self.now_s)
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
