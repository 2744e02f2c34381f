"""What a session hands back: its result, its window handles, and how its end maps to a status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import Interrupted, MleeError

#: Keys of results.json the session owns; add_results() may not overwrite them.
RESERVED_KEYS = frozenset({
    "schema_version", "id", "kind", "name", "status", "error", "start_utc", "end_utc", "duration_s", "energy_j",
    "energy_method", "estimated", "sources", "skipped_sources", "baseline", "windows", "rank", "carbon", "valid",
    "carbon_reason", "interval_s", "process", "updated_utc", "truncated_traces", "notes", "sampler", "workload_start_s",
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


def status_of(exc_type: Any, exc: BaseException | None) -> tuple[str, str | None]:
    """The ``status`` and ``error`` of a session that ended with ``exc`` (None: normally)."""
    if exc_type is None or (issubclass(exc_type, SystemExit) and getattr(exc, "code", 1) in (None, 0)):
        return "completed", None
    if issubclass(exc_type, (KeyboardInterrupt, Interrupted)):
        return "interrupted", str(exc) or "interrupted"
    return "failed", str(exc) if isinstance(exc, MleeError) else f"{exc_type.__name__}: {exc}"
