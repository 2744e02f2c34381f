"""The steady allocator for profiles and model checks: glibc set up through mallopt, others left alone."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mlee.cli import app
from mlee.errors import UsageError
from mlee.predict.allocator import M_MMAP_MAX, M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES, steady_allocator


class FakeGlibc:
    """The two glibc functions the allocator calls, as ctypes presents them (mallopt returns 1 on success)."""

    def __init__(self, accept: bool = True) -> None:
        self.calls: list[tuple[int, int]] = []
        self.accept = accept
        self.gnu_get_libc_version = lambda: b"2.36"

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1 if self.accept else 0


class FakeMusl:
    """A C library without glibc's version call (musl): nothing to tune."""

    def mallopt(self, param: int, value: int) -> int:  # pragma: no cover - must not be called
        raise AssertionError("mallopt called on a C library that is not glibc")


def test_steady_sets_glibc_to_reuse_its_heap():
    libc = FakeGlibc()
    got = steady_allocator("steady", libc=libc, preload="")
    assert libc.calls == [(M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)]
    assert got == {"mode": "steady", "allocator": "glibc 2.36", "tuned": True, "mmap_max": 0,
                   "trim_threshold_bytes": 1 << 30}


@pytest.mark.parametrize("libc, preload, mode, reason", [
    (FakeGlibc(), "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "steady", "jemalloc is preloaded"),
    (FakeGlibc(), "libtcmalloc_minimal.so.4", "system", "tcmalloc is preloaded"),
    (FakeGlibc(), "", "system", "left as it is"),
    (FakeMusl(), "", "steady", "not glibc"),
    (FakeGlibc(accept=False), "", "steady", "mallopt refused"),
])
def test_other_allocators_and_system_mode_are_left_alone(libc, preload, mode, reason):
    got = steady_allocator(mode, libc=libc, preload=preload)
    assert got["tuned"] is False and reason in got["reason"] and got["mode"] == mode
    if isinstance(libc, FakeGlibc) and libc.accept:
        assert libc.calls == []


def test_unknown_mode_is_a_usage_error_in_the_library_and_the_cli():
    with pytest.raises(UsageError, match="unknown allocator mode 'fast'"):
        steady_allocator("fast", libc=FakeGlibc(), preload="")
    res = CliRunner().invoke(app, ["profile", "-k", "fc", "--limit", "1", "--allocator", "fast"],
                             env={"NO_COLOR": "1", "COLUMNS": "120"})
    assert res.exit_code == 2 and "unknown allocator mode 'fast'" in res.output and "--allocator steady" in res.output


CHILD = r"""
import ctypes, ctypes.util, resource, sys
from mlee.predict.allocator import steady_allocator
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 40 << 20  # above glibc's largest mmap threshold: without tuning, fresh pages every time

def faults_per_round():
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        p = libc.malloc(size)
        ctypes.memset(p, 1, size)
        libc.free(p)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 3

before = faults_per_round()
record = steady_allocator("steady")
faults_per_round()  # the heap grows once
after = faults_per_round()
print(before, after, record["tuned"])
"""


@pytest.mark.skipif(sys.platform != "linux" or not ctypes.util.find_library("c"), reason="needs Linux")
def test_on_real_glibc_freed_blocks_are_reused_without_page_faults():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    before, after, tuned = out.stdout.split()
    if tuned != "True":
        pytest.skip("this C library is not glibc")
    pages = (40 << 20) // 4096
    assert float(before) > 0.5 * pages  # every block faulted in afresh
    assert float(after) < 0.01 * pages  # the same block reused from the heap


def test_a_model_check_runs_under_the_allocator_its_predictor_was_profiled_under():
    """`predict --measure` and the benchmark take the allocator (and clock) from the predictor's profiles:
    `--allocator system` profiles are checked under glibc as it is, older ones (none recorded) too."""
    from types import SimpleNamespace

    from mlee.predict.measure import MODEL_SETTINGS, settings_for
    from mlee.predict.predictor import profile_fingerprint

    env = {"cpu": {"model": "AMD EPYC"}, "mlee_version": "1.0"}
    header = {"device": "cpu", "torch_threads": 1, "torch_version": "2.4"}
    modes = {}
    for label, allocator in (("steady", {"mode": "steady", "tuned": True}), ("system", {"mode": "system"}),
                             ("old", None), ("garbage", "steady"), ("unknown", {"mode": "jemalloc"})):
        fp = profile_fingerprint({**header, **({"allocator": allocator} if allocator is not None else {})}, env)
        assert fp["cpu_model"] == "AMD EPYC" and fp["torch_threads"] == 1
        predictor = SimpleNamespace(fingerprint=fp, basis={"clock": "cpu"})
        settings = settings_for(predictor)
        assert settings.clock == "cpu" and settings.min_window_s == MODEL_SETTINGS.min_window_s
        modes[label] = settings.allocator
    assert modes == {"steady": "steady", "system": "system", "old": "system", "garbage": "system",
                     "unknown": "system"}
    imported = SimpleNamespace(fingerprint={"device": "Jetson"}, basis={})  # layer data: no allocator, no clock
    assert (settings_for(imported).allocator, settings_for(imported).clock) == ("system", "wall")
