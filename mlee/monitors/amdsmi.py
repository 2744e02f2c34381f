"""AMD GPUs through AMD SMI (the ``amdsmi`` Python package of ROCm, extra ``amd``), imported only when probed.

The library is an object passed in (``amdsmi=``): the real module by default, a fake in tests. Every
``AmdSmiException`` becomes an mlee error in :func:`_translate`, and nowhere else.

The energy counter (``amdsmi_get_energy_count``: ``energy_accumulator`` x ``counter_resolution``
micro-joules) is checked at open against the power reading over :data:`COUNTER_CHECK_S`: before
ROCm 6.3 it could stay still or run off while the GPU worked. A counter that fails the check (or
cannot be read) is replaced by integrating ``amdsmi_get_power_info`` readings, and the reason is
recorded in the source's detail.

Visible GPUs: ``ROCR_VISIBLE_DEVICES`` (indices or UUIDs) chooses among all GPUs first, then
``HIP_VISIBLE_DEVICES`` (indices) among those, as the ROCm runtime does.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from mlee.errors import MleeError, SourcePermissionError, SourceReadError, SourceUnavailable
from mlee.monitors.base import Detected, Probe, Reading, open_gpus
from mlee.vocabulary import Domain, Method

INSTALL_FIX = ("install ROCm (libamd_smi.so) and the amdsmi package: pip install 'mlee[amd]' "
               "(ROCm 6.3 or newer for trustworthy energy counters)")
#: How long the energy counter is compared with the power reading at open. Units: seconds.
COUNTER_CHECK_S = 0.5
#: The counter's mean power over the check must lie within this factor of the power readings.
COUNTER_TOLERANCE = 2.0
#: Below this power the check cannot tell a stale counter from an idle GPU. Units: watts.
STALE_POWER_W = 1.0
#: AMD SMI status codes (amdsmi_wrapper) that mean "not allowed".
_NO_PERMISSION = 10


def load_amdsmi(amdsmi: Any = None) -> Any:
    """The AMD SMI module: ``amdsmi`` when given, else ``import amdsmi`` now.

    Raises:
        SourceUnavailable: the package is missing or cannot load ``libamd_smi.so``.
    """
    if amdsmi is not None:
        return amdsmi
    # The package print()s its loader errors to stdout on import; stdout carries
    # mlee's data (``doctor --json``), so the text is caught and put in the reason.
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            import amdsmi as module
    except ImportError as exc:
        raise SourceUnavailable("the amdsmi package is not installed", fix=INSTALL_FIX) from exc
    except Exception as exc:  # noqa: BLE001 - the package raises KeyError when libamd_smi.so is missing
        said = " ".join(printed.getvalue().split())
        raise SourceUnavailable(f"amdsmi cannot load the ROCm library: {type(exc).__name__}: {exc}"
                                + (f" ({said})" if said else ""), fix=INSTALL_FIX) from exc
    return module


def _translate(amdsmi: Any, exc: BaseException, what: str, reading: bool) -> MleeError:
    """The one place where an ``AmdSmiException`` becomes an mlee error."""
    text = f"AMD SMI: {what}: {exc}".replace("\n", " ").replace("\t", "")
    code = exc.get_error_code() if hasattr(exc, "get_error_code") else None
    if code == _NO_PERMISSION:
        return SourcePermissionError(text, fix="run as a user in the render and video groups, or as root")
    if reading:
        return SourceReadError(text)
    return SourceUnavailable(text, fix="check `amd-smi list` works on this machine")


@contextlib.contextmanager
def _errors(amdsmi: Any, what: str, reading: bool) -> Iterator[None]:
    try:
        yield
    except MleeError:
        raise
    except Exception as exc:
        if isinstance(exc, getattr(amdsmi, "AmdSmiException", ())):
            raise _translate(amdsmi, exc, what, reading) from exc
        raise


class _Library:
    """Reference-counted ``amdsmi_init``/``amdsmi_shut_down`` per module: no init at import time."""

    _lock = threading.Lock()
    _counts: dict[int, int] = {}

    @classmethod
    def acquire(cls, amdsmi: Any) -> None:
        with cls._lock:
            if cls._counts.get(id(amdsmi), 0) == 0:
                with _errors(amdsmi, "amdsmi_init", reading=False):
                    amdsmi.amdsmi_init()
            cls._counts[id(amdsmi)] = cls._counts.get(id(amdsmi), 0) + 1

    @classmethod
    def release(cls, amdsmi: Any) -> None:
        with cls._lock:
            count = cls._counts.get(id(amdsmi), 0) - 1
            if count <= 0:
                cls._counts.pop(id(amdsmi), None)
                with contextlib.suppress(Exception):  # shutting down; nothing left to measure
                    amdsmi.amdsmi_shut_down()
            else:
                cls._counts[id(amdsmi)] = count


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):  # "N/A"
        return None
    return number


def visible_gpus(amdsmi: Any, env: dict[str, str] | None = None) -> tuple[list[int], str]:
    """AMD SMI indices of the GPUs this process may use (``ROCR_VISIBLE_DEVICES``, then ``HIP_VISIBLE_DEVICES``).

    Entries are indices or UUID prefixes; the list stops at the first entry that names no device.
    """
    env = os.environ if env is None else env
    with _errors(amdsmi, "amdsmi_get_processor_handles", reading=False):
        count = len(amdsmi.amdsmi_get_processor_handles())
    visible = list(range(count))
    notes = []
    for var in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"):
        raw = env.get(var)
        if raw is None:
            continue
        notes.append(f"{var}={raw!r}")
        chosen: list[int] = []
        for entry in [e.strip() for e in raw.split(",")]:
            index: int | None = None
            if entry.isdigit():
                index = visible[int(entry)] if int(entry) < len(visible) else None
            elif entry and var == "ROCR_VISIBLE_DEVICES":
                hits = [i for i in visible if _uuid(amdsmi, i).upper().startswith(entry.upper())]
                index = hits[0] if len(hits) == 1 else None
            if index is None or index in chosen:
                break
            chosen.append(index)
        visible = chosen
    return visible, "; ".join(notes) or f"all {count} GPUs (ROCR/HIP_VISIBLE_DEVICES unset)"


def _uuid(amdsmi: Any, index: int) -> str:
    with _errors(amdsmi, "amdsmi_get_gpu_device_uuid", reading=False):
        return str(amdsmi.amdsmi_get_gpu_device_uuid(amdsmi.amdsmi_get_processor_handles()[index]))


class AmdSmiSource:
    """One AMD GPU's energy: the AMD SMI energy counter when it passes the check, else integrated power.

    Units: joules, watts (AMD SMI reports micro-joule ticks and watts).
    """

    domain = Domain.gpu
    min_interval_s = 0.02
    max_interval_s = None

    def __init__(self, index: int, amdsmi: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.index = index
        self.name = f"amdsmi:{index}"
        self.method = Method.counter
        self.fallback_reason = ""
        self._amdsmi_arg, self._amdsmi = amdsmi, None
        self._clock = clock
        self._handle: Any = None
        self._start_j: float | None = None
        self._check: tuple[float, float, float] | None = None  # (t_s, energy_j, power_w) at open
        self._info: dict = {"index": index}
        self._open = False
        self.first_reading: Reading | None = None

    @property
    def detail(self) -> dict:
        mode = ("amdsmi_get_energy_count" if self.method is Method.counter
                else "amdsmi_get_power_info (trapezoid)")
        extra = {"counter_unusable": self.fallback_reason} if self.fallback_reason else {}
        return {**self._info, "amdsmi_function": mode, **extra}

    def _energy_j(self) -> float:
        count = self._amdsmi.amdsmi_get_energy_count(self._handle)
        ticks = count.get("energy_accumulator", count.get("power"))  # "power" before amdsmi 6.2.1
        return float(ticks) * float(count["counter_resolution"]) / 1e6

    def _power_w(self) -> float:
        info = self._amdsmi.amdsmi_get_power_info(self._handle)
        for key in ("current_socket_power", "average_socket_power", "socket_power"):
            value = _number(info.get(key))
            if value is not None:
                return value
        raise SourceReadError(f"{self.name}: AMD SMI reports no power (N/A)")

    def open(self) -> Reading:
        """Initialise AMD SMI, describe the GPU and read the counter (or the power)."""
        self._amdsmi = amdsmi = load_amdsmi(self._amdsmi_arg)
        _Library.acquire(amdsmi)
        try:
            with _errors(amdsmi, f"GPU {self.index}", reading=False):
                self._handle = amdsmi.amdsmi_get_processor_handles()[self.index]
                self._info = {"index": self.index, "uuid": str(amdsmi.amdsmi_get_gpu_device_uuid(self._handle)),
                              "name": str(amdsmi.amdsmi_get_gpu_asic_info(self._handle).get("market_name", ""))}
            power_w: float | None = None
            with contextlib.suppress(SourceReadError, getattr(amdsmi, "AmdSmiException", ())):
                power_w = self._power_w()
            try:
                self._start_j = self._energy_j()
            except getattr(amdsmi, "AmdSmiException", ()) as exc:
                self._use_power(f"amdsmi_get_energy_count failed: {str(exc).strip()}")
            t_s = self._clock()
            if self.method is Method.power_integration:
                if power_w is None:
                    raise SourceUnavailable(f"AMD SMI: GPU {self.index} has neither a usable energy counter "
                                            f"({self.fallback_reason}) nor a power reading",
                                            fix="update ROCm (6.3 or newer) and the GPU driver")
                self.first_reading = Reading(t_s, None, power_w)
            else:
                self._check = (t_s, 0.0, power_w) if power_w is not None else None
                self.first_reading = Reading(t_s, 0.0, None)
            self._open = True
            return self.first_reading
        except BaseException:
            _Library.release(amdsmi)
            raise

    def _use_power(self, reason: str) -> None:
        self.method = Method.power_integration
        self.fallback_reason = reason
        self._start_j = None

    def check_counter(self) -> None:
        """Compare the counter's mean power since open with the power readings; switch to power integration
        (re-anchored now) when the counter is stale or runs off."""
        if self.method is not Method.counter or self._check is None or self._check[2] < STALE_POWER_W:
            return
        t0_s, _, power0_w = self._check
        with _errors(self._amdsmi, f"energy counter of GPU {self.index}", reading=False):
            moved_j = self._energy_j() - (self._start_j or 0.0)
            power1_w = self._power_w()
        t1_s = self._clock()
        expected_w = (power0_w + power1_w) / 2.0
        counter_w = moved_j / (t1_s - t0_s) if t1_s > t0_s else 0.0
        if counter_w <= 0 or not expected_w / COUNTER_TOLERANCE <= counter_w <= expected_w * COUNTER_TOLERANCE:
            self._use_power(f"energy counter gave {counter_w:.1f} W over {t1_s - t0_s:g} s while power read "
                            f"{expected_w:.1f} W (stale counter; ROCm before 6.3?)")
            self.first_reading = Reading(t1_s, None, power1_w)

    def read(self) -> Reading:
        """Read the GPU; a failure raises :class:`SourceReadError` (the interval becomes invalid)."""
        t_s = self._clock()
        with _errors(self._amdsmi, f"read GPU {self.index}", reading=True):
            if self.method is Method.power_integration:
                return Reading(t_s, None, self._power_w())
            energy_j = self._energy_j() - (self._start_j or 0.0)
        if energy_j < 0:  # a driver reset: start a fresh segment rather than go negative
            self._start_j = (self._start_j or 0.0) + energy_j
            raise SourceReadError(f"{self.name}: energy counter went backwards (driver reset?); interval dropped")
        return Reading(t_s, energy_j, None)

    def close(self) -> Reading:
        """Take the final reading and release AMD SMI (even when that reading fails)."""
        try:
            return self.read()
        finally:
            if self._open:
                self._open = False
                _Library.release(self._amdsmi)


def detect_amdsmi(amdsmi: Any = None, *, clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep, env: dict[str, str] | None = None,
                  indices: list[int] | None = None, strict: bool = False) -> Detected:
    """Open the visible AMD GPUs (or ``indices``): the one decision ``mlee doctor`` and a run share.

    Raises:
        SourceUnavailable: ``strict`` and no GPU, or one that cannot be used.
    """
    def unavailable(exc: MleeError) -> Detected:
        if strict:
            raise exc
        return Detected([], [Probe("amdsmi", Domain.gpu, None, False, exc.message, exc.fix or "")])

    try:
        amdsmi = load_amdsmi(amdsmi)
        _Library.acquire(amdsmi)
    except SourceUnavailable as exc:
        return unavailable(exc)
    try:
        try:
            visible, note = visible_gpus(amdsmi, env)
        except SourceUnavailable as exc:
            return unavailable(exc)
        chosen = indices if indices is not None else visible
        if not chosen:
            return unavailable(SourceUnavailable(f"no AMD GPU visible ({note})",
                                                 fix="check `amd-smi list`, ROCR_VISIBLE_DEVICES and HIP_VISIBLE_DEVICES"))
        return open_gpus(chosen, lambda i: AmdSmiSource(i, amdsmi=amdsmi, clock=clock), note=note, strict=strict,
                         sleep=sleep, wait_s=COUNTER_CHECK_S,
                         needs_check=lambda s: s.method is Method.counter and s._check is not None)
    finally:
        _Library.release(amdsmi)


def open_amdsmi(amdsmi: Any = None, clock: Callable[[], float] = time.monotonic, indices: list[int] | None = None,
                env: dict[str, str] | None = None, sleep: Callable[[float], None] = time.sleep) -> list[AmdSmiSource]:
    """Open every visible AMD GPU (or the given indices); every one must open."""
    return detect_amdsmi(amdsmi, clock=clock, sleep=sleep, env=env, indices=indices, strict=True).sources
