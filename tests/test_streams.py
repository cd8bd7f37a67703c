"""Parallel single-thread streams on the CPU: same output, same order, bounded, threads put back."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch

import apollo_cli
from apollo_cli.errors import OptionError
from apollo_cli.inference import restore_stream, restore_waveform
from apollo_cli.options import RestoreOptions
from apollo_cli.streams import MAX_AUTO_STREAMS, StreamPlan, plan_streams, windows_in
from helpers import TINY_MODEL, make_music

CPU = torch.device("cpu")


@pytest.fixture
def model() -> apollo_cli.Apollo:
    # Not module-scoped: some tests patch the instance's forward.
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("streams", [None, 2, 3])
def test_streams_give_the_one_stream_output_exactly(
    model: apollo_cli.Apollo, channels: int, streams: int | None
) -> None:
    wave = torch.from_numpy(make_music(2.9, channels=channels))
    expected = restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.4, streams=1))
    got = restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.4, streams=streams))
    assert torch.equal(got, expected)


def test_streams_chunked_equals_whole_file(model: apollo_cli.Apollo) -> None:
    wave = torch.from_numpy(make_music(2.3, channels=2))
    whole = restore_waveform(model, wave, RestoreOptions(chunk_seconds=60, streams=1))
    chunked = restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.3, streams=2))
    assert torch.equal(chunked, whole)


def test_streams_deliver_in_order_when_a_later_window_finishes_first(model: apollo_cli.Apollo) -> None:
    """The first window waits until a later one has finished, yet sink() sees them in order."""
    wave = torch.from_numpy(make_music(1.5, channels=2))
    expected = restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.4, streams=1))
    real = model.forward
    finished: list[int] = []
    later_done = threading.Event()

    def slow_first(wav: torch.Tensor, keep: Any = None, **kwargs: Any) -> torch.Tensor:
        first = keep is None or keep[0] == 0
        # Two streams hold the first window's channels; the third runs a later window meanwhile.
        if first:
            assert later_done.wait(timeout=120), "no later window finished while the first waited"
        out = real(wav, keep=keep, **kwargs)
        finished.append(0 if first else keep[0])
        if not first:
            later_done.set()
        return out

    model.forward = slow_first  # type: ignore[method-assign]
    pieces: list[torch.Tensor] = []
    restore_stream(model, [wave], pieces.append, RestoreOptions(chunk_seconds=0.4, streams=3), channels=2)
    assert finished[0] != 0  # a later window did finish first
    assert torch.equal(torch.cat(pieces, dim=1), expected)


def test_stream_workers_run_one_thread_each_in_inference_mode(model: apollo_cli.Apollo) -> None:
    seen: list[tuple[str, int, bool]] = []
    real = model.forward

    def spy(wav: torch.Tensor, keep: Any = None, **kwargs: Any) -> torch.Tensor:
        seen.append(
            (threading.current_thread().name, torch.get_num_threads(), torch.is_inference_mode_enabled())
        )
        return real(wav, keep=keep, **kwargs)

    model.forward = spy  # type: ignore[method-assign]
    before = torch.get_num_threads()
    wave = torch.from_numpy(make_music(1.5, channels=2))
    restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.4, streams=2))
    assert seen and all(
        name.startswith("apollo-stream-") and n == max(1, before // 2) and inference
        for name, n, inference in seen
    )
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="needs a CPU with bfloat16")
def test_stream_workers_run_under_the_precision(model: apollo_cli.Apollo) -> None:
    dtypes: list[torch.dtype] = []
    real = model.forward

    def spy(wav: torch.Tensor, keep: Any = None, **kwargs: Any) -> torch.Tensor:
        dtypes.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else torch.float32)
        return real(wav, keep=keep, **kwargs)

    model.forward = spy  # type: ignore[method-assign]
    wave = torch.from_numpy(make_music(1.5, channels=2))
    one = restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.4, precision="bf16", streams=1))
    many = restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.4, precision="bf16", streams=2))
    assert set(dtypes) == {torch.bfloat16}
    # Not promised in bf16, but a large difference would mean the streams lost the autocast.
    assert torch.allclose(one, many, atol=1e-2)


def test_a_failing_window_raises_and_puts_the_threads_back(model: apollo_cli.Apollo) -> None:
    calls = 0
    real = model.forward

    def fails_third(wav: torch.Tensor, keep: Any = None, **kwargs: Any) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("boom in a stream")
        return real(wav, keep=keep, **kwargs)

    model.forward = fails_third  # type: ignore[method-assign]
    before = torch.get_num_threads()
    wave = torch.from_numpy(make_music(3.0, channels=2))
    with pytest.raises(RuntimeError, match="boom in a stream"):
        restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.4, streams=2))
    assert torch.get_num_threads() == before
    _streams_end()


def test_a_failing_sink_stops_the_streams(model: apollo_cli.Apollo) -> None:
    delivered = 0

    def sink(core: torch.Tensor) -> None:
        nonlocal delivered
        delivered += 1
        if delivered == 2:
            raise OSError("disk full")

    wave = torch.from_numpy(make_music(4.0, channels=2))
    with pytest.raises(OSError, match="disk full"):
        restore_stream(model, [wave], sink, RestoreOptions(chunk_seconds=0.3, streams=2), channels=2)
    _streams_end()


def test_an_abandoned_restore_stops_its_streams_at_their_next_block(model: apollo_cli.Apollo) -> None:
    """Ctrl-C (here from the progress callback, as ``apollo batch`` abandons a file): no stream starts
    another model block after it, queued windows are dropped, and no stream outlives the restore."""
    abandoned = threading.Event()
    late_blocks = 0
    windows = 0
    for layer in model.net:
        for block in layer.seq_net.blocks:
            real = block.forward

            def spy(*args: Any, real: Any = real, **kwargs: Any) -> Any:
                nonlocal late_blocks
                late_blocks += abandoned.is_set()
                return real(*args, **kwargs)

            block.forward = spy  # type: ignore[method-assign]

    def progress(done: int, total: int) -> None:
        nonlocal windows
        windows += 1
        abandoned.set()
        raise KeyboardInterrupt

    wave = torch.from_numpy(make_music(6.0, channels=2))
    with pytest.raises(KeyboardInterrupt):
        restore_waveform(model, wave, RestoreOptions(chunk_seconds=0.3, streams=2), progress=progress)
    # At most one block per stream can have passed its check before the pool was told.
    assert windows == 1 and late_blocks <= 2
    _streams_end()


def _streams_end() -> None:
    """The workers of an abandoned restore have ended by the time it raises (none left inside torch)."""
    assert not any(t.name.startswith("apollo-stream-") for t in threading.enumerate())


# ----------------------------------------------------------------------------- the plan


def test_plan_picks_one_stream_per_thread_on_the_cpu() -> None:
    assert plan_streams(None, CPU, items=None, threads=2) == StreamPlan(2, 1)
    assert plan_streams(None, CPU, items=100, threads=64) == StreamPlan(MAX_AUTO_STREAMS, 8)
    assert plan_streams(None, CPU, items=None, threads=1) == StreamPlan(1, 1)


def test_plan_gives_a_short_file_all_threads() -> None:
    """One window (a mono file shorter than a chunk) runs on every thread; two share them."""
    assert plan_streams(None, CPU, items=1, threads=2) == StreamPlan(1, 2)
    assert plan_streams(None, CPU, items=2, threads=4) == StreamPlan(2, 2)
    assert windows_in(44100 * 25, 44100 * 10, 2) == 6 and windows_in(None, 441, 2) is None


def test_plan_keeps_one_stream_off_the_cpu() -> None:
    assert plan_streams(None, torch.device("cuda"), items=None, threads=8) == StreamPlan(1, 8)


def test_plan_takes_an_explicit_count() -> None:
    assert plan_streams(1, CPU, items=None, threads=2) == StreamPlan(1, 2)
    assert plan_streams(4, CPU, items=None, threads=2) == StreamPlan(4, 1)
    assert plan_streams(4, CPU, items=2, threads=2) == StreamPlan(2, 1)


@pytest.mark.parametrize("value", [0, -1, True])
def test_streams_option_is_checked(value: int) -> None:
    with pytest.raises(OptionError, match="streams must be at least 1"):
        RestoreOptions(streams=value)


def test_streams_refused_off_the_cpu() -> None:
    with pytest.raises(OptionError, match="parallel streams are for CPUs, not cuda"):
        RestoreOptions(streams=2).check(torch.device("cuda"))
    RestoreOptions(streams=2).check(CPU)


def _chunk_cores(
    model: apollo_cli.Apollo, wave: torch.Tensor, options: RestoreOptions, total: bool = True
) -> list[int]:
    """The cores' lengths in samples, in order, as the sink receives them."""
    cores: list[int] = []
    restore_stream(
        model,
        [wave],
        lambda core: cores.append(core.shape[1]),
        options,
        channels=wave.shape[0],
        total=wave.shape[1] if total else None,
    )
    return cores


def test_chunks_are_cut_equal_instead_of_leaving_a_short_tail(model: apollo_cli.Apollo) -> None:
    """3 s in chunks of at most 2 s: two of 1.5 s, not 2 s and 1 s (a stream would idle)."""
    wave = torch.from_numpy(make_music(3.0, channels=2))
    cores = _chunk_cores(model, wave, RestoreOptions(chunk_seconds=2.0, streams=1))
    assert len(cores) == 2 and abs(cores[0] - cores[1]) <= model.config.hop
    assert max(cores) <= 2.0 * 44100


def test_a_mono_file_is_cut_so_that_every_stream_has_a_window(model: apollo_cli.Apollo) -> None:
    """Mono, shorter than a chunk: one window would leave the second core idle, so two."""
    wave = torch.from_numpy(make_music(3.0, channels=1))
    assert len(_chunk_cores(model, wave, RestoreOptions(streams=1))) == 1
    cores = _chunk_cores(model, wave, RestoreOptions(streams=2))
    assert len(cores) == 2 and abs(cores[0] - cores[1]) <= model.config.hop
    # Stereo already gives each stream a channel.
    assert len(_chunk_cores(model, wave.repeat(2, 1), RestoreOptions(streams=2))) == 1
    whole = restore_waveform(model, wave, RestoreOptions(streams=1))
    assert torch.equal(restore_waveform(model, wave, RestoreOptions(streams=2)), whole)


def test_no_chunk_is_cut_shorter_than_its_context(model: apollo_cli.Apollo) -> None:
    """A file too short to give each stream a chunk of twice its context stays whole."""
    context = apollo_cli.inference.context_frames(model) * model.config.hop
    wave = torch.from_numpy(make_music(3 * context / 44100, channels=1))
    assert len(_chunk_cores(model, wave, RestoreOptions(streams=2))) == 1


def test_streamed_input_of_unknown_length_keeps_the_chunk_length(model: apollo_cli.Apollo) -> None:
    wave = torch.from_numpy(make_music(3.0, channels=1))
    cores = _chunk_cores(model, wave, RestoreOptions(chunk_seconds=2.0, streams=2), total=False)
    hop = model.config.hop
    assert cores == [round(2.0 * 44100 / hop) * hop, wave.shape[1] - round(2.0 * 44100 / hop) * hop]
