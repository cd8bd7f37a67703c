"""Shared fixtures; the plain helpers the tests import are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from helpers import make_music


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
