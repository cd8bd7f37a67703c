"""The allocator settings that spare inference from re-faulting its memory, observed from outside.

A child process does what a model slice does (allocate large intermediates, fill them,
free them) through the C allocator and reports what the kernel saw: page faults
(``getrusage``) and resident memory (``/proc/self/statm``). With the settings, a
repeated slice reuses its memory without faulting and the heap keeps it until the last
inference ends; with ``APOLLO_MALLOPT=0`` (glibc's defaults) the memory goes back to the
kernel at each free and every slice faults it in again.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from typing import Any

import pytest

from helpers import TINY_MODEL

GLIBC_LINUX = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
pytestmark = pytest.mark.skipif(not GLIBC_LINUX, reason="mallopt is glibc's, /proc/self/statm Linux's")

CHILD = r"""
import ctypes, json, os, resource, sys, threading
from apollo_cli import allocator

libc = ctypes.CDLL(None)
libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: faults counted in base pages whatever the system's THP
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
MB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
SIZES = (20, 20, 20, 12, 8)  # MB, as a slice's intermediates (up to about 20 MB each)


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / MB


def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def one_slice():
    blocks = [(libc.malloc(n * MB), n * MB) for n in SIZES]
    for address, size in blocks:
        libc.memset(address, 1, size)
    for address, _ in reversed(blocks):
        libc.free(address)


def inference():
    base = rss_mb()
    with allocator.inference_heap():
        one_slice()
        before = faults()
        for _ in range(5):
            one_slice()
        refaulted = faults() - before
        kept = rss_mb() - base
    return {"applied": allocator.configure(), "refaulted_pages": refaulted,
            "touched_pages": 5 * sum(SIZES) * MB // PAGE, "kept_mb": kept, "after_mb": rss_mb() - base}


def nested():
    base = rss_mb()
    with allocator.inference_heap():
        with allocator.inference_heap():
            one_slice()
        kept = rss_mb() - base
    return {"kept_mb": kept, "after_mb": rss_mb() - base}


def concurrent():
    base = rss_mb()
    inside, leave = threading.Event(), threading.Event()

    def other_inference():
        with allocator.inference_heap():
            inside.set()
            leave.wait()

    other = threading.Thread(target=other_inference)
    other.start()
    inside.wait()
    with allocator.inference_heap():
        one_slice()
    kept = rss_mb() - base
    leave.set()
    other.join()
    return {"kept_mb": kept, "after_mb": rss_mb() - base}


def restore():
    import numpy as np
    import apollo_cli

    model = apollo_cli.load_model(sys.argv[2], device="cpu")
    audio = np.zeros((1, 10000), np.float32)
    apollo_cli.restore(model, audio, 44100)
    base = rss_mb()
    one_slice()  # outside inference: the settings stay, so the heap keeps this
    kept = rss_mb() - base
    apollo_cli.restore(model, audio, 44100)
    return {"kept_mb": kept, "after_mb": rss_mb() - base}


print(json.dumps({name: globals()[name]() for name in sys.argv[1].split(",")}))
"""

SLICE_MB = 80  # what one slice of the child allocates


def measure(scenarios: str, **env: str) -> dict[str, Any]:
    """Run the child's ``scenarios`` (comma-separated) in a fresh process; their measurements."""
    command = [sys.executable, "-c", CHILD, scenarios, str(TINY_MODEL)]
    env = {**os.environ, **env}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def default() -> dict[str, Any]:
    """Every scenario with the settings on (the default), in one process: one import of torch."""
    return measure("inference,nested,concurrent,restore")


def test_inference_reuses_its_memory_without_faulting(default: dict[str, Any]) -> None:
    seen = default["inference"]
    assert seen["applied"]
    assert seen["refaulted_pages"] < seen["touched_pages"] / 20, seen
    assert seen["kept_mb"] > 0.75 * SLICE_MB, seen  # freed, but kept in the heap for the next slice
    assert seen["after_mb"] < 0.25 * SLICE_MB, seen  # given back when inference ends


def test_apollo_mallopt_0_turns_the_settings_off() -> None:
    seen = measure("inference", APOLLO_MALLOPT="0")["inference"]
    assert not seen["applied"]
    assert seen["refaulted_pages"] > seen["touched_pages"] / 2, seen  # glibc's defaults: every slice faults
    assert seen["kept_mb"] < 0.25 * SLICE_MB, seen


def test_the_heap_is_given_back_when_the_last_inference_ends(default: dict[str, Any]) -> None:
    for scenario in ("nested", "concurrent"):  # an inner block, or another thread's inference, ends first
        seen = default[scenario]
        assert seen["kept_mb"] > 0.75 * SLICE_MB, (scenario, seen)
        assert seen["after_mb"] < 0.25 * SLICE_MB, (scenario, seen)


def test_restore_gives_the_heap_back_when_it_ends(default: dict[str, Any]) -> None:
    """The settings stay for the process (documented); each restore trims the heap as it ends."""
    seen = default["restore"]
    assert seen["kept_mb"] > 0.75 * SLICE_MB, seen
    assert seen["after_mb"] < 0.25 * SLICE_MB, seen
