"""The power-source interface every monitor implements, and the records it produces.

``Domain`` and ``Method`` live in :mod:`mlee.vocabulary` (the ground floor), beside the rest of the shared words.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mlee.errors import MleeError
from mlee.vocabulary import Domain, Method


@dataclass(frozen=True)
class Reading:
    """One read of a power source.

    Units: ``t_s`` seconds on the source's clock (monotonic); ``energy_j`` joules, cumulative
    and wrap-corrected since ``open()`` (counter sources, else None); ``power_w`` watts,
    instantaneous or averaged over the last interval (else None).
    """

    t_s: float
    energy_j: float | None = None
    power_w: float | None = None


@dataclass(frozen=True)
class Probe:
    """The outcome of probing one source without measuring: for ``mlee doctor`` and the experiment folder.

    ``reason`` says why a source is unavailable; ``fix`` what to do about it.
    ``detail`` holds facts worth recording (zone path, max range, GPU name and UUID, driver).
    """

    name: str
    domain: Domain
    method: Method | None
    available: bool
    reason: str = ""
    fix: str = ""
    detail: dict = field(default_factory=dict)


@dataclass
class Detected:
    """What auto-detection of one family decided: the sources it opened and a probe per device.

    ``mlee doctor`` closes the sources and shows the probes; a run measures with the sources and
    records the unavailable probes as ``skipped_sources``: one decision, made by one function.
    """

    sources: list = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)

    def skipped(self) -> list[dict]:
        """The devices left out, as ``skipped_sources`` entries (name, reason, fix)."""
        return [{"name": p.name, "reason": p.reason, "fix": p.fix} for p in self.probes if not p.available]


def check_gpu_counters(sources: list[Any], failed: dict[int, Probe], strict: bool, sleep: Callable[[float], None],
                       wait_s: float) -> None:
    """Wait ``wait_s``, then have every GPU source check that its energy counter moved (``check_counter()``).

    A device that failed between open and check degrades alone: it is closed, taken out of ``sources`` and
    recorded in ``failed`` under its index; with ``strict`` its error is raised instead. Shared by nvml and amdsmi.

    Raises:
        MleeError: ``strict`` and a device failed its check.
    """
    sleep(wait_s)
    for source in list(sources):
        try:
            source.check_counter()
        except MleeError as exc:
            if strict:
                raise
            sources.remove(source)
            with contextlib.suppress(MleeError):
                source.close()
            failed[source.index] = Probe(source.name, Domain.gpu, None, False, exc.message,
                                         getattr(exc, "fix", "") or "", {"index": source.index})


def open_gpus(chosen: Iterable[int], make: Callable[[int], Any], *, note: str, strict: bool,
              sleep: Callable[[float], None], wait_s: float, needs_check: Callable[[Any], bool]) -> Detected:
    """Open one GPU source per index of ``chosen`` (``make(index)``): the loop nvml and amdsmi share.

    Each device degrades alone: one that cannot be opened gets a probe saying why (``strict``: its error is
    raised); the counters that ``needs_check`` are then watched together (:func:`check_gpu_counters`). Probes
    come in the order of ``chosen``, the usable ones noting ``note`` (which GPUs were visible and why). Every
    source opened so far is closed again when anything escapes.
    """
    sources: list[Any] = []
    try:
        failed: dict[int, Probe] = {}
        for index in chosen:
            source = make(index)
            try:
                source.open()
            except MleeError as exc:
                if strict:
                    raise
                failed[index] = Probe(source.name, Domain.gpu, None, False, exc.message, exc.fix or "",
                                      {"index": index})
                continue
            sources.append(source)
        if any(needs_check(s) for s in sources):
            check_gpu_counters(sources, failed, strict, sleep, wait_s)
        by_index = {s.index: s for s in sources}
        probes = [Probe(by_index[i].name, Domain.gpu, by_index[i].method, True, "", "",
                        {**by_index[i].detail, "visible": note}) if i in by_index else failed[i] for i in chosen]
        return Detected(list(sources), probes)
    except BaseException:
        for source in sources:
            with contextlib.suppress(MleeError):
                source.close()
        raise


@runtime_checkable
class PowerSource(Protocol):
    """A readable power or energy source.

    Attributes:
        name: Stable identifier, e.g. ``"rapl:package-0"``, ``"nvml:0"``, ``"estimate:cpu"``.
        domain: What it measures.
        method: How its energy figure is obtained.
        min_interval_s: Shortest useful sampling interval (e.g. the driver's update period); the
            background sampler reads a source no more often, while window edges read every source.
        max_interval_s: Longest safe interval (e.g. a quarter of the counter's wrap period at
            the highest plausible power), or None when any interval is safe.

    Units: intervals in seconds.
    """

    name: str
    domain: Domain
    method: Method
    min_interval_s: float
    first_reading: Reading | None  # the reading open() took; the sampler starts from it

    @property
    def detail(self) -> dict:
        """Facts to record about this source (JSON-serialisable)."""
        ...

    @property
    def max_interval_s(self) -> float | None:
        ...

    def open(self) -> Reading:
        """Probe the device and take the first reading; raise SourceUnavailable/SourcePermissionError."""
        ...

    def read(self) -> Reading:
        """Read now. Raise SourceReadError when this read failed (the interval becomes invalid)."""
        ...

    def close(self) -> Reading:
        """Take the final reading and release the device."""
        ...
