"""Keep the C allocator from handing memory back to the OS in the middle of inference.

The model's slices allocate and free the same large intermediates (up to about
20 MB each) tens of thousands of times per minute of audio. With glibc's default
settings, freed memory at the top of the heap is returned to the kernel and
blocks above the dynamic mmap threshold are mapped afresh, so the next slice
page-faults and zeroes it all again: measured 3.8 million page faults and 12 %
of the run time for 10 s of stereo on 2 cores (float32), against 150 thousand
faults with the settings below. Inference therefore runs with a fixed mmap
threshold of 32 MB (glibc's maximum; the residual stream, far larger, is still
mapped, once per chunk) and no automatic trimming, and gives the freed memory
back with one ``malloc_trim`` when it ends.

The settings are made on the first inference and stay for the rest of the process
(glibc cannot report the previous values, so they cannot be put back): a program
that imports apollo_cli and frees large blocks after a restore keeps that memory in its
heap until the next restore ends or it calls ``malloc_trim`` itself. glibc only;
elsewhere (musl, macOS, Windows) this does nothing. ``APOLLO_MALLOPT=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc refuses larger mmap thresholds on 64-bit systems (HEAP_MAX_SIZE / 2).
MMAP_THRESHOLD = 32 * 1024 * 1024
_lock = threading.Lock()
_active = 0
_configured = False


def _libc() -> ctypes.CDLL | None:
    if os.environ.get("APOLLO_MALLOPT", "1") == "0":
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        # gnu_get_libc_version exists only in glibc: mallopt's parameters are its own.
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def configure() -> bool:
    """Apply the settings (once per process); return whether they are in effect."""
    global _configured
    if _LIBC is None:
        return False
    if not _configured:
        ok = _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        # The largest value a C int holds: glibc never trims by itself; we trim
        # explicitly when inference ends.
        ok &= _LIBC.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        _configured = bool(ok)
    return _configured


@contextlib.contextmanager
def inference_heap() -> Iterator[None]:
    """Run the body with the allocator settings above; trim the heap when the last user leaves.

    Safe to nest and to use from several threads (``batch`` runs one inference
    per device): memory is trimmed only when no inference is running.
    """
    global _active
    with _lock:
        configure()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _LIBC is not None and _configured:
                _LIBC.malloc_trim(0)
