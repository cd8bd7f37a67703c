"""The allocator settings that spare inference from re-faulting its memory."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading

import numpy as np
import pytest

import apollo_cli
from apollo_cli import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_settings_apply_on_glibc() -> None:
    assert allocator.configure()


def test_nested_and_concurrent_use() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with allocator.inference_heap(), allocator.inference_heap():
                assert allocator._active >= 2
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert allocator._active == 0


def test_can_be_turned_off() -> None:
    code = "from apollo_cli import allocator; print(allocator.configure())"
    env = {**os.environ, "APOLLO_MALLOPT": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_restore_leaves_no_inference_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    model = apollo_cli.load_model(Path(__file__).parent / "fixtures" / "tiny_official_format.bin", device="cpu")
    audio = np.zeros((1, 10000), np.float32)
    apollo_cli.restore(model, audio, 44100)
    assert allocator._active == 0
