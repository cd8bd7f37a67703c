"""Chunked inference equals whole-file inference, with bounded work per call."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import apollo_cli
from apollo_cli import InputError, OptionError, RestoreOptions, batch
from helpers import snr_db

FIXTURES = Path(__file__).parent / "fixtures"
#: Whether this CPU runs bfloat16 products (AVX-512 BF16 or AMX); CI machines vary.
BF16_CPU = torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.fixture(scope="module")
def model() -> apollo_cli.Apollo:
    return apollo_cli.load_model(FIXTURES / "tiny_official_format.bin", device="cpu")


@pytest.mark.parametrize("samples", [442, 441 * 3 + 1, 22050, 44100 * 2 + 123, 44100 * 6])
@pytest.mark.parametrize("chunk_seconds, batch_size", [(0.05, 1), (0.5, 3), (1.0, 1), (2.3, 2), (30.0, 4)])
def test_chunked_equals_whole_file(
    model: apollo_cli.Apollo, samples: int, chunk_seconds: float, batch_size: int
) -> None:
    rng = np.random.default_rng(samples)
    audio = (0.1 * rng.standard_normal((2, samples))).astype(np.float32)
    with torch.inference_mode():
        whole = model(torch.from_numpy(audio)[None])[0].numpy()
    chunked = apollo_cli.restore(
        model, audio, 44100, options=RestoreOptions(chunk_seconds=chunk_seconds, batch_size=batch_size)
    )
    assert chunked.shape == whole.shape
    assert snr_db(whole, chunked) >= 100


def test_work_per_call_is_bounded_by_the_chunk(model: apollo_cli.Apollo) -> None:
    seen: list[tuple[int, ...]] = []
    hook = model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    try:
        apollo_cli.restore(
            model,
            np.zeros((2, 44100 * 20), np.float32),
            44100,
            options=RestoreOptions(chunk_seconds=1.0, batch_size=2),
        )
    finally:
        hook.remove()
    hop = model.config.hop
    context = apollo_cli.inference.context_frames(model)
    longest = round(44100 / hop) * hop + 2 * context * hop
    assert len(seen) >= 10
    assert all(shape[0] <= 2 and shape[-1] <= longest for shape in seen)


def test_progress_reports_every_sample_once(model: apollo_cli.Apollo) -> None:
    calls: list[tuple[int, int]] = []
    apollo_cli.restore(
        model,
        np.zeros(44100 * 3, np.float32),
        44100,
        progress=lambda done, total: calls.append((done, total)),
        options=RestoreOptions(chunk_seconds=0.5),
    )
    assert calls[-1] == (44100 * 3, 44100 * 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize("channels, streams", [(1, 1), (2, 2)])
def test_progress_moves_within_a_chunk(model: apollo_cli.Apollo, channels: int, streams: int) -> None:
    """One chunk: progress is reported as its blocks pass, from the calling thread, before it is delivered."""
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((channels, 44100 * 2), np.float32) * 0.1)
    calls: list[tuple[int, int, int]] = []
    delivered: list[int] = []
    apollo_cli.inference.restore_stream(
        model,
        [wave],
        lambda core: delivered.append(len(calls)),
        RestoreOptions(chunk_seconds=60, streams=streams),
        channels=channels,
        total=wave.shape[1],
        progress=lambda done, total: calls.append((done, total, threading.get_ident())),
    )
    total = wave.shape[1]
    assert delivered[0] >= 3  # progress reports before the one chunk was handed on
    assert [c[:2] for c in calls[-1:]] == [(total, total)]
    done = [d for d, _, _ in calls]
    assert done == sorted(set(done)) and all(0 < d < total for d in done[:-1])
    assert {ident for _, _, ident in calls} == {threading.get_ident()}


@pytest.mark.parametrize("streams", [1, 2])
def test_a_progress_callback_that_raises_stops_the_chunk_it_is_in(
    model: apollo_cli.Apollo, streams: int
) -> None:
    """Abandoning from progress (what ``apollo batch`` does on stop) takes effect within a chunk."""
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 44100 * 2), np.float32) * 0.1)
    delivered: list[int] = []

    def progress(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apollo_cli.inference.restore_stream(
            model,
            [wave],
            lambda core: delivered.append(core.shape[1]),
            RestoreOptions(chunk_seconds=60, streams=streams),
            channels=2,
            total=wave.shape[1],
            progress=progress,
        )
    assert delivered == []


def test_mono_vector_and_tensor_inputs(model: apollo_cli.Apollo) -> None:
    audio = (0.1 * np.random.default_rng(0).standard_normal(30000)).astype(np.float32)
    from_array = apollo_cli.restore(model, audio, 44100)
    from_tensor = apollo_cli.restore(model, torch.from_numpy(audio), 44100)
    assert from_array.shape == (30000,)
    np.testing.assert_array_equal(from_array, from_tensor)


def test_other_rates_are_resampled_to_the_model_rate(model: apollo_cli.Apollo) -> None:
    audio = np.zeros((2, 48000), np.float32)
    out = apollo_cli.restore(model, audio, 48000)
    assert out.shape == (2, 44100)


def test_many_channels_are_independent(model: apollo_cli.Apollo) -> None:
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal((3, 20000))).astype(np.float32)
    together = apollo_cli.restore(model, audio, 44100)
    alone = apollo_cli.restore(model, audio[1], 44100)
    assert snr_db(alone, together[1]) >= 100


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_refused(model: apollo_cli.Apollo, bad: float) -> None:
    audio = np.zeros((1, 44100), np.float32)
    audio[0, 100] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        apollo_cli.restore(model, audio, 44100)


def test_too_short(model: apollo_cli.Apollo) -> None:
    with pytest.raises(InputError, match="too short"):
        apollo_cli.restore(model, np.zeros(100, np.float32), 44100)


def test_bad_options_are_refused_when_made() -> None:
    with pytest.raises(OptionError, match="chunk length"):
        RestoreOptions(chunk_seconds=0)
    with pytest.raises(OptionError, match="chunk length"):
        RestoreOptions(chunk_seconds=float("nan"))
    with pytest.raises(OptionError, match="batch size"):
        RestoreOptions(batch_size=0)
    with pytest.raises(OptionError, match="unknown precision"):
        RestoreOptions(precision="int8")
    base = RestoreOptions(chunk_seconds=2.0)
    with pytest.raises(OptionError, match="batch size"):
        dataclasses.replace(base, batch_size=-1)  # replace re-checks
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.precision = "bf16"  # type: ignore[misc]


def test_one_options_value_reaches_every_layer(model: apollo_cli.Apollo, tmp_path: Path) -> None:
    """The same options give the same audio through restore, restore_file and the batch runner."""
    options = RestoreOptions(chunk_seconds=0.3, batch_size=2)
    audio = (0.1 * np.random.default_rng(5).standard_normal((2, 44100))).astype(np.float32)
    source = tmp_path / "in" / "a.wav"
    source.parent.mkdir()
    sf.write(source, audio.T, 44100, subtype="FLOAT")
    in_memory = apollo_cli.restore(model, audio, 44100, options)
    apollo_cli.restore_file(model, source, tmp_path / "one.wav", options, bit_depth=32)
    summary = batch.run_batch(batch.plan_batch(source.parent, tmp_path / "out", fmt="wav"), model, bit_depth=32,
                              options=options)  # fmt: skip
    assert summary.ok
    for written in (tmp_path / "one.wav", tmp_path / "out" / "a.wav"):
        np.testing.assert_array_equal(sf.read(written, dtype="float32", always_2d=True)[0].T, in_memory)


def test_keep_returns_exactly_that_part_of_the_output(model: apollo_cli.Apollo) -> None:
    x = torch.from_numpy((0.1 * np.random.default_rng(3).standard_normal((2, 2, 30000))).astype(np.float32))
    with torch.inference_mode():
        full = model(x)
        for start, stop in [(0, 441), (12345, 23456), (29000, 30000)]:
            part = model(x, keep=(start, stop))
            assert part.shape == (2, 2, stop - start)
            assert snr_db(full[..., start:stop].numpy(), part.numpy()) >= 100


def test_fallback_products_match_onednn(model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch) -> None:
    audio = (0.1 * np.random.default_rng(4).standard_normal((2, 20000))).astype(np.float32)
    default = apollo_cli.restore(model, audio, 44100)
    monkeypatch.setattr(apollo_cli.model, "USE_ONEDNN", not apollo_cli.model.USE_ONEDNN)
    other = apollo_cli.restore(model, audio, 44100)
    assert snr_db(default, other) >= 100


@pytest.mark.skipif(not BF16_CPU, reason="this CPU has no bfloat16 support")
def test_bf16_stays_close_to_fp32(model: apollo_cli.Apollo) -> None:
    with np.load(FIXTURES / "tiny_parity_io.npz") as data:
        audio, reference = data["stereo_input"], data["stereo_output"]
    reduced = apollo_cli.restore(
        model, audio, 44100, options=RestoreOptions(precision="bf16", chunk_seconds=0.5)
    )
    assert reduced.dtype == np.float32
    assert 35 <= snr_db(reference, reduced) < 100  # reduced precision, within the target


@pytest.mark.skipif(not BF16_CPU, reason="this CPU has no bfloat16 support")
def test_bf16_runs_attention_in_float32_on_the_cpu(model: apollo_cli.Apollo) -> None:
    """Autocast would run attention in bfloat16, slower on CPUs than float32: the model keeps it out."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: set[tuple[str, torch.dtype]] = set()

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if "scaled_dot_product" in func.name():
                seen.update((func.name(), a.dtype) for a in args[:3])
            return func(*args, **(kwargs or {}))

    audio = (0.1 * np.random.default_rng(7).standard_normal((1, 8000))).astype(np.float32)
    with Record():  # one stream: a dispatch mode belongs to the thread that set it
        apollo_cli.restore(model, audio, 44100, options=RestoreOptions(precision="bf16", streams=1))
    assert seen and {dtype for _, dtype in seen} == {torch.float32}, seen


def test_unusable_precisions(model: apollo_cli.Apollo) -> None:
    audio = np.zeros(44100, np.float32)
    with pytest.raises(OptionError, match="fp16 is for GPUs"):
        apollo_cli.restore(model, audio, 44100, options=RestoreOptions(precision="fp16"))
    with pytest.raises(OptionError, match="unknown precision"):
        apollo_cli.restore(model, audio, 44100, options=RestoreOptions(precision="int8"))


def test_a_model_that_has_run_can_be_copied(model: apollo_cli.Apollo) -> None:
    import copy

    audio = (0.1 * np.random.default_rng(5).standard_normal((1, 20000))).astype(np.float32)
    before = apollo_cli.restore(model, audio, 44100)
    clone = copy.deepcopy(model)
    np.testing.assert_array_equal(apollo_cli.restore(clone, audio, 44100), before)


def test_a_model_that_has_run_can_be_pickled(model: apollo_cli.Apollo) -> None:
    import pickle

    audio = (0.1 * np.random.default_rng(6).standard_normal((1, 20000))).astype(np.float32)
    before = apollo_cli.restore(model, audio, 44100)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(apollo_cli.restore(clone, audio, 44100), before)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_weights_changed_after_a_run_take_effect(precision: str) -> None:
    """Folded and prepacked weights are derived data: changing a parameter rebuilds them."""
    if precision == "bf16" and not BF16_CPU:
        pytest.skip("this CPU has no bfloat16 support")
    model = apollo_cli.load_model(FIXTURES / "tiny_official_format.bin", device="cpu")
    audio = (0.1 * np.random.default_rng(7).standard_normal((2, 30000))).astype(np.float32)
    before = apollo_cli.restore(model, audio, 44100, options=RestoreOptions(precision=precision))
    with torch.no_grad():
        # A norm gain (folded into the next product), a projection and a band encoder gain.
        model.net[0].band_net.input_norm.weight.mul_(1.5)
        model.net[1].seq_net.blocks[2].conv[4].weight.mul_(-1)
        model.BN[3][0].weight.add_(0.5)
    changed = apollo_cli.restore(model, audio, 44100, options=RestoreOptions(precision=precision))
    fresh = apollo_cli.load_model(FIXTURES / "tiny_official_format.bin", device="cpu")
    fresh.load_state_dict(model.state_dict())
    assert np.abs(changed - before).max() > 1e-3
    np.testing.assert_allclose(
        changed,
        apollo_cli.restore(fresh, audio, 44100, options=RestoreOptions(precision=precision)),
        atol=1e-6,
    )
    # And loading the original weights back restores the original numbers.
    model.load_state_dict(
        apollo_cli.load_model(FIXTURES / "tiny_official_format.bin", device="cpu").state_dict()
    )
    np.testing.assert_allclose(
        apollo_cli.restore(model, audio, 44100, options=RestoreOptions(precision=precision)),
        before,
        atol=1e-6,
    )
