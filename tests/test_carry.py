"""Consecutive chunks share their context (apollo_cli.carry): each frame computed once, same output."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

import apollo_cli
from apollo_cli.carry import Carry
from apollo_cli.options import RestoreOptions
from helpers import TINY_MODEL, make_music, snr_db


@pytest.fixture
def model() -> apollo_cli.Apollo:
    # Not module-scoped: some tests patch the instance's forward.
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


def frame_rows(model: apollo_cli.Apollo, run: Any) -> int:
    """Frames times batch rows that the model's first time block computes while ``run()`` runs."""
    counted = 0
    lock = threading.Lock()

    def count(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        nonlocal counted
        x, lo, hi = args[0], args[1], args[2]
        with lock:
            counted += (hi - lo) * x.shape[1]

    hook = model.net[0].seq_net.blocks[0].register_forward_pre_hook(count)
    try:
        run()
    finally:
        hook.remove()
    return counted


@pytest.mark.parametrize("channels, streams", [(2, 1), (2, 2), (1, 1), (3, 2)])
def test_consecutive_chunks_compute_each_frame_once(
    model: apollo_cli.Apollo, channels: int, streams: int
) -> None:
    """One stream for all channels, a stream per channel, channels sharing streams: the whole file's work."""
    audio = make_music(3.0, channels=channels)
    whole: list[np.ndarray] = []

    def at_once() -> None:
        with torch.inference_mode():
            whole.append(model(torch.from_numpy(audio)[None])[0].numpy())

    chunked: list[np.ndarray] = []
    options = RestoreOptions(chunk_seconds=0.4, streams=streams)
    work = frame_rows(model, lambda: chunked.append(apollo_cli.restore(model, audio, 44100, options=options)))
    assert work == frame_rows(model, at_once)
    assert snr_db(whole[0], chunked[0]) >= 100


def test_more_streams_than_channels_recompute_the_context(model: apollo_cli.Apollo) -> None:
    """Windows side by side cannot wait for each other: each computes its context again, same output."""
    audio = make_music(3.0, channels=1)
    in_order: list[np.ndarray] = []
    side_by_side: list[np.ndarray] = []

    def run(streams: int, into: list[np.ndarray]) -> None:
        options = RestoreOptions(chunk_seconds=0.4, streams=streams)
        into.append(apollo_cli.restore(model, audio, 44100, options=options))

    once = frame_rows(model, lambda: run(1, in_order))
    again = frame_rows(model, lambda: run(2, side_by_side))
    assert again > once * 1.5  # 0.4 s cores with 0.59 s of context each side
    assert snr_db(in_order[0], side_by_side[0]) >= 100


def test_each_channel_keeps_its_stream(model: apollo_cli.Apollo) -> None:
    """With a stream per channel, each channel's windows run on one stream, one after another."""
    seen: list[tuple[int, str]] = []
    real = model.forward

    def spy(wav: torch.Tensor, keep: Any = None, **kwargs: Any) -> torch.Tensor:
        seen.append((id(kwargs["carry"]), threading.current_thread().name))
        return real(wav, keep=keep, **kwargs)

    model.forward = spy  # type: ignore[method-assign]
    apollo_cli.restore(model, make_music(2.0), 44100, options=RestoreOptions(chunk_seconds=0.4, streams=2))
    threads = {carry: {name for c, name in seen if c == carry} for carry, _ in seen}
    assert len(threads) == 2 and all(len(names) == 1 for names in threads.values())
    assert len({name for names in threads.values() for name in names}) == 2


def test_the_model_takes_a_carry_only_from_a_window_that_fits(model: apollo_cli.Apollo) -> None:
    """Called directly: windows in order share their context; a carry of another shape is left alone."""
    hop = model.config.hop
    audio = torch.from_numpy(make_music(2.0, channels=1))[None]
    core, margin = 40 * hop, apollo_cli.inference.context_frames(model) * hop
    carry = Carry()
    with torch.inference_mode():
        whole = model(audio)
        pieces = []
        for start in range(0, audio.shape[-1], core):
            stop = min(start + core, audio.shape[-1])
            a, b = max(0, start - margin), min(audio.shape[-1], stop + margin)
            pieces.append(model(audio[..., a:b], keep=(start - a, stop - a), carry=carry))
        assert len(carry.levels) == model.config.layers * 3 + 1
        assert snr_db(whole.numpy(), torch.cat(pieces, dim=-1).numpy()) >= 100

        stereo = torch.from_numpy(make_music(2.0, channels=2))[None]
        window = stereo[..., : core + 2 * margin]
        keep = (margin, margin + core)
        alone = model(window, keep=keep)
        # The carry holds mono frames: a stereo window cannot use them, and computes its own.
        np.testing.assert_array_equal(model(window, keep=keep, carry=carry).numpy(), alone.numpy())
        assert carry.levels[0][1].shape[1] == 2  # what it leaves is its own
