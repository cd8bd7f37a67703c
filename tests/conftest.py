"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import Result
from typer.testing import CliRunner

FIXTURES = Path(__file__).parent / "fixtures"
#: The tiny (N=32, L=2) checkpoint in the official format; loads in milliseconds.
TINY_MODEL = FIXTURES / "tiny_official_format.bin"


def make_music(
    seconds: float, sample_rate: int = 44100, channels: int = 2, seed: int = 0
) -> np.ndarray:
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


@pytest.fixture
def music_mp3(tmp_path: Path) -> Path:
    """Two seconds of synthetic stereo music, MP3-encoded by libsndfile."""
    path = tmp_path / "song.mp3"
    sf.write(path, make_music(2.0).T, 44100, format="MP3")
    return path


# --- fake Hugging Face Hub (tests/hub_server.py) ------------------------------------------------


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running FakeHub that huggingface_hub (already imported) talks to by default.

    huggingface_hub 2.4 reads HF_ENDPOINT / HF_HUB_OFFLINE / HF_HOME at import time, so besides
    setting the env vars (for subprocesses) this patches constants.ENDPOINT,
    constants.HUGGINGFACE_CO_URL_TEMPLATE, huggingface_hub.hf_api.api.endpoint,
    constants.HF_HUB_OFFLINE=False and the cache/token paths (HF_HOME=tmp_path/'hf',
    HF_HUB_CACHE=tmp_path/'hf'/'hub'). See tests/hub_server.py.
    """
    try:
        from hub_server import FakeHub, point_hf_at
    except ImportError:  # tests/ imported as a package
        from tests.hub_server import FakeHub, point_hf_at

    hub = FakeHub().start()
    try:
        point_hf_at(monkeypatch, hub, hf_home=tmp_path / "hf")
        yield hub
    finally:
        hub.stop()
