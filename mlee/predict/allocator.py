"""A steady memory allocator for timing kernels and models: glibc's malloc keeps freed blocks for reuse.

Why: glibc serves a block above its mmap threshold (128 KiB at start, raised as large blocks are freed,
up to 32 MiB) with fresh pages from the kernel, and gives the top of its heap back once more than twice
the threshold lies free there. Whether a layer's output comes from reused memory or from fresh pages,
each of which faults on first touch, therefore depends on what the process happened to free before. On
this project's 2-core EPYC machine a depthwise 3 x 3 convolution with batch norm and ReLU on
8 x 576 x 14 x 14 took 7-9 ms per call in one process state and 1-2.5 ms in another: the slow state
took 2,600 minor page faults per call, the fast one none. Blocks above the threshold's 32 MiB ceiling
always come from fresh pages: the same kernel on 8 x 96 x 112 x 112 (38.5 MB outputs) took 120 ms, of
which about 95 ms were 37,600 page faults. No model of a layer's shape can say which state a run will be
in, so profiles and the model runs that check them both set glibc to serve every block from its heap
(``M_MMAP_MAX`` 0) and to give memory back to the system only when more than 1 GiB lies free at its top
(``M_TRIM_THRESHOLD``): freed tensors are reused, and the same kernel took 25 ms without a fault.

This is what PyTorch's CPU performance guides reach with jemalloc or tcmalloc (``LD_PRELOAD``); mallopt
needs no extra library. A process already running under jemalloc, tcmalloc or mimalloc is left as it is.
glibc still maps memory itself when its heap cannot grow. The setting holds for the rest of the process
(glibc cannot go back to its moving threshold): the commands that set it are short-lived, and what was set
is kept with every profile and model measurement.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

#: glibc's mallopt parameter numbers (malloc.h) and the values set.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 1 << 30

#: How the allocator may be set up for a measurement: ``steady`` (tune glibc) or ``system`` (leave it).
ALLOCATORS = ("steady", "system")

_PRELOADED = ("jemalloc", "tcmalloc", "mimalloc")


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`ALLOCATORS`, else raise UsageError naming the fix."""
    from mlee.errors import UsageError

    if mode not in ALLOCATORS:
        raise UsageError(f"unknown allocator mode {mode!r}",
                         f"use --allocator {' or --allocator '.join(ALLOCATORS)}")
    return mode


def load_libc() -> Any | None:
    """The C library, or None where it cannot be loaded (then nothing is tuned)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def steady_allocator(mode: str = "steady", libc: Any | None = None, preload: str | None = None) -> dict:
    """Set up the allocator for ``mode`` and return what was done, for the measurement's record.

    Args:
        mode: ``steady`` tunes glibc's malloc (see the module docstring); ``system`` leaves it as it is.
        libc: The C library (a ``ctypes.CDLL``); None loads this process's.
        preload: ``LD_PRELOAD`` (None: this process's); an allocator named there is left alone.

    Returns:
        ``{"mode", "allocator", "tuned", ...}``: ``tuned`` says whether glibc was set up; when it was,
        ``mmap_max`` and ``trim_threshold_bytes``; when not, ``reason``.
    """
    check_mode(mode)
    preload = os.environ.get("LD_PRELOAD", "") if preload is None else preload
    other = next((name for name in _PRELOADED if name in preload), None)
    if other is not None:
        return {"mode": mode, "allocator": other, "tuned": False, "reason": f"{other} is preloaded (LD_PRELOAD)"}
    if mode == "system":
        return {"mode": mode, "allocator": "system", "tuned": False, "reason": "left as it is (--allocator system)"}
    libc = load_libc() if libc is None else libc
    version = _glibc_version(libc)
    if version is None:
        return {"mode": mode, "allocator": "system", "tuned": False, "reason": "not glibc: mallopt is not available"}
    done = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    if not done:
        return {"mode": mode, "allocator": f"glibc {version}", "tuned": False, "reason": "mallopt refused the values"}
    return {"mode": mode, "allocator": f"glibc {version}", "tuned": True,
            "mmap_max": 0, "trim_threshold_bytes": TRIM_THRESHOLD_BYTES}


def _glibc_version(libc: Any | None) -> str | None:
    """glibc's version string, or None where ``libc`` is not glibc (or has no mallopt)."""
    if libc is None:
        return None
    try:
        get_version = libc.gnu_get_libc_version
        libc.mallopt  # noqa: B018 -- the attribute lookup is the check
    except AttributeError:
        return None
    get_version.restype = ctypes.c_char_p
    raw = get_version()
    return raw.decode() if isinstance(raw, bytes) else str(raw)
