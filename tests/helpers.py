"""Plain helpers the tests import (``from helpers import ...``); fixtures live in conftest.py.

pyproject's ``[tool.pytest.ini_options] pythonpath = ["tests"]`` puts this folder on
``sys.path``, so the import works whatever the import mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from typer.testing import CliRunner, Result

FIXTURES = Path(__file__).parent / "fixtures"
#: The tiny (N=32, L=2) checkpoint in the official format; loads in milliseconds.
TINY_MODEL = FIXTURES / "tiny_official_format.bin"


def make_music(seconds: float, sample_rate: int = 44100, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A synthetic stand-in for music: a few harmonic tones plus a little noise.

    Returns float32 shaped (channels, frames), peaking at about -12 dBFS. Each channel
    gets slightly different partials, phases and noise, so channels are distinguishable.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    out = np.empty((channels, t.size), dtype=np.float64)
    for ch in range(channels):
        signal = np.zeros_like(t)
        for fundamental in (220.0 * (1 + 0.01 * ch), 277.2, 329.6):
            for harmonic in range(1, 5):
                phase = rng.uniform(0, 2 * np.pi)
                signal += np.sin(2 * np.pi * fundamental * harmonic * t + phase) / harmonic
        signal += 0.05 * rng.standard_normal(t.size)
        out[ch] = signal
    out *= 10 ** (-12 / 20) / np.abs(out).max()
    return out.astype(np.float32)


runner = CliRunner()


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference``, in dB (``inf`` when equal)."""
    noise = float(np.sum((reference.astype(np.float64) - estimate) ** 2))
    return (
        float("inf")
        if noise == 0
        else float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise))
    )


def run_cli(*args: str | os.PathLike[str]) -> Result:
    """``apollo ARGS...`` in-process, stdout and stderr captured separately."""
    from apollo_cli.cli import app

    return runner.invoke(app, [os.fspath(a) for a in args])


def assert_one_line_error(result: Result, match: str) -> str:
    """Exit status 1, one ``error:`` line on stderr that contains ``match``, no traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    assert match in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


# --- another process holding a claim (apollo_cli.locks) ------------------------------------------

HOLDER = """
import sys
from apollo_cli import locks
claim = locks.claim(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
claim.release()
"""


@contextmanager
def held_elsewhere(output: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the claim on ``output`` while the block runs.

    The child claims, says so on stdout, and keeps the claim until its stdin is closed
    (or it is killed).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(output)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


# --- a CLI run that is certainly still at work -----------------------------------------------------

#: ``python -c HELD_RESTORE N ARGS...``: ``apollo ARGS...`` whose restore number N + 1 (of
#: ``apollo_cli.api.restore``, counted over the process) prints ``holding`` on stdout and waits
#: for a line (or the end) on stdin before it runs. A test can then act while the run is
#: certainly at work (the file is claimed, the batch cannot have finished), and let it go on.
#: After two minutes without a word it goes on by itself, so a failing test cannot hang.
HELD_RESTORE = """
import select, sys
from apollo_cli import api
from apollo_cli.cli import run

free = int(sys.argv.pop(1))
real, calls = api.restore, []


def restore(*args, **kwargs):
    calls.append(None)
    if len(calls) == free + 1:
        print("holding", flush=True)
        if select.select([sys.stdin], [], [], 120)[0]:
            sys.stdin.readline()
    return real(*args, **kwargs)


api.restore = restore
sys.argv[0] = "apollo"
run()
"""


def held(command: list[str], free: int) -> list[str]:
    """``command`` (``python -m apollo_cli ...``) through :data:`HELD_RESTORE`: restore ``free + 1`` waits."""
    assert command[1:3] == ["-m", "apollo_cli"], command
    return [command[0], "-c", HELD_RESTORE, str(free), *command[3:]]
