"""Streaming: any length in bounded memory, with the same output as in-memory restoring."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import apollo_cli
from apollo_cli import audio, batch
from apollo_cli.errors import InputError, OutputError
from apollo_cli.inference import restore_stream, restore_waveform
from apollo_cli.options import RestoreOptions
from helpers import TINY_MODEL, assert_one_line_error, make_music, run_cli

RATE = 44100


@pytest.fixture(scope="module")
def model() -> apollo_cli.Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


def _ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


# ------------------------------------------------------------------------------ inference


@pytest.mark.parametrize("block", [997, 4096, 30000])
def test_stream_equals_whole_waveform(model: apollo_cli.Apollo, block: int) -> None:
    wave = torch.from_numpy(make_music(2.3, channels=2))
    expected = restore_waveform(model, wave, options=RestoreOptions(chunk_seconds=0.4))
    pieces: list[torch.Tensor] = []
    blocks = [wave[:, i : i + block] for i in range(0, wave.shape[1], block)]
    count = restore_stream(
        model, blocks, pieces.append, channels=2, options=RestoreOptions(chunk_seconds=0.4)
    )
    assert count == wave.shape[1]
    torch.testing.assert_close(torch.cat(pieces, dim=1), expected, rtol=0, atol=0)


@pytest.mark.parametrize("streams", [1, 2])
def test_stream_hands_on_output_before_the_input_ends(model: apollo_cli.Apollo, streams: int) -> None:
    """The first restored chunk arrives while most of the input is still unread: memory stays bounded.

    With parallel streams a window per stream and one more are read ahead.
    """
    wave = torch.from_numpy(make_music(8.0, channels=1))
    read = 0
    read_when_first_output: list[int] = []

    def blocks():  # type: ignore[no-untyped-def]
        nonlocal read
        for i in range(0, wave.shape[1], 4410):
            read += 4410
            yield wave[:, i : i + 4410]

    def sink(core: torch.Tensor) -> None:
        if not read_when_first_output:
            read_when_first_output.append(read)

    restore_stream(
        model, blocks(), sink, channels=1, options=RestoreOptions(chunk_seconds=0.5, streams=streams)
    )
    assert read_when_first_output[0] < wave.shape[1] / 3


def test_stream_too_short_names_the_audio(model: apollo_cli.Apollo) -> None:
    with pytest.raises(InputError, match=r"tiny\.wav is too short to restore"):
        restore_stream(model, [torch.zeros(1, 100)], lambda core: None, channels=1, name="tiny.wav")


# ------------------------------------------------------------------------------ files


def test_restore_file_equals_in_memory_restore_with_resampling(
    model: apollo_cli.Apollo, tmp_path: Path
) -> None:
    """Streamed decode, soxr stream resampling, inference and block writing give today's output exactly."""
    source = tmp_path / "in.flac"
    sf.write(source, make_music(3.1, sample_rate=48000).T, 48000, subtype="PCM_24")
    decoded = audio.load_audio(source)
    expected = apollo_cli.restore(
        model, decoded.samples, decoded.sample_rate, options=RestoreOptions(chunk_seconds=0.7)
    )
    out = tmp_path / "out.wav"
    calls: list[tuple[int, int]] = []
    apollo_cli.restore_file(
        model,
        source,
        out,
        progress=lambda d, t: calls.append((d, t)),
        options=RestoreOptions(chunk_seconds=0.7),
    )
    written, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == RATE
    np.testing.assert_array_equal(written.T, expected)
    # The total is known from the first report on: the bar is sized from the first second.
    assert calls[0][1] == expected.shape[1] and calls[-1] == (expected.shape[1], expected.shape[1])


def test_resampled_stream_equals_whole_resample() -> None:
    music = make_music(1.3, sample_rate=22050)
    blocks = [music[:, i : i + 5000] for i in range(0, music.shape[1], 5000)]
    streamed = np.concatenate(list(audio.resampled(blocks, 22050, RATE, 2)), axis=1)
    np.testing.assert_array_equal(streamed, audio.resample(music, 22050, RATE))


def test_ffmpeg_input_streams_like_soundfile(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, make_music(1.5).T, RATE, subtype="FLOAT")
    mka = tmp_path / "a.mka"
    _ffmpeg("-i", str(wav), "-c:a", "pcm_f32le", str(mka))
    with audio.open_audio(mka) as source:
        assert (source.channels, source.sample_rate) == (2, RATE)
        # Matroska states a length that mutagen does not read; ffprobe does (for progress).
        assert source.frames is not None and abs(source.frames - round(1.5 * RATE)) < RATE // 10
        assert not source.frames_exact
        blocks = list(source.blocks(1000))
    assert len(blocks) > 10
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), audio.load_audio(wav).samples)


# -------------------------------------------------------------------------- truncation


def _cut(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut" + path.suffix)
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


@pytest.mark.parametrize(("suffix", "fmt"), [(".wav", "WAV"), (".aiff", "AIFF")])
def test_truncated_wav_and_aiff_are_refused(tmp_path: Path, suffix: str, fmt: str) -> None:
    whole = tmp_path / f"whole{suffix}"
    sf.write(whole, make_music(2.0).T, RATE, format=fmt, subtype="PCM_16")
    cut = _cut(whole)
    with pytest.raises(InputError, match=r"cut\.\w+ is truncated or corrupt: .*bytes .*announces"):
        audio.open_audio(cut)


def test_truncated_opus_is_refused(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, make_music(3.0, sample_rate=48000).T, 48000)
    opus = tmp_path / "a.opus"
    _ffmpeg("-i", str(wav), "-c:a", "libopus", "-b:a", "64k", str(opus))
    with audio.open_audio(opus):
        pass  # the whole file is fine
    with pytest.raises(InputError, match=r"cut\.opus is truncated or corrupt: its Ogg stream stops"):
        audio.open_audio(_cut(opus))


def test_truncated_input_fails_before_the_model_is_loaded(tmp_path: Path) -> None:
    whole = tmp_path / "whole.wav"
    sf.write(whole, make_music(2.0).T, RATE)
    cut = _cut(whole)
    # An unknown model would be a different error: the input is judged first.
    result = run_cli("restore", cut, "-o", tmp_path / "o.wav", "--model", "no-such-model", "--offline")
    assert_one_line_error(result, "cut.wav is truncated or corrupt")
    assert not (tmp_path / "o.wav").exists()


def test_mp3_with_tags_but_no_audio(tmp_path: Path) -> None:
    from mutagen.id3 import ID3, TIT2

    path = tmp_path / "empty.mp3"
    tag = ID3()
    tag.add(TIT2(encoding=3, text="nothing here"))
    tag.save(path)
    result = run_cli("restore", path, "-o", tmp_path / "o.wav", "--model", TINY_MODEL)
    line = assert_one_line_error(result, "empty.mp3")
    assert "no audio" in line


def test_too_many_channels_for_flac_fails_before_the_model(tmp_path: Path) -> None:
    path = tmp_path / "ten.wav"
    sf.write(path, np.zeros((RATE, 10), np.float32), RATE)
    result = run_cli("restore", path, "-o", tmp_path / "o.flac", "--model", "no-such-model", "--offline")
    assert_one_line_error(result, "FLAC holds at most 8 channels")


# ---------------------------------------------------------------------------- WAV size


def test_wav_beyond_the_4gib_header_limit_is_rf64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Data that a WAV header cannot state goes to RF64, never to a WAV that reads back short."""
    music = make_music(1.0)
    monkeypatch.setattr(audio, "_WAV_DATA_LIMIT", 8 * RATE // 2)  # half a second of stereo float
    out = tmp_path / "big.wav"
    audio.write_audio(out, music, RATE)
    # Written through libsndfile's RF64 writer; since the real data is far below 4 GiB it
    # downgrades the header to WAVE_FORMAT_EXTENSIBLE (a plain WAV would say "WAV").
    assert sf.info(out).format == "WAVEX"
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0].T, music)


def test_unknown_length_that_fits_is_a_plain_wav(tmp_path: Path) -> None:
    music = make_music(0.5)
    out = tmp_path / "small.wav"
    with audio.open_output(out, 2, RATE) as writer:  # length unknown
        writer.write(music)
        writer.commit()
    assert out.read_bytes()[:4] == b"RIFF"
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0].T, music)


def test_plain_wav_refuses_data_beyond_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "_WAV_DATA_LIMIT", 8 * RATE // 2)
    out = tmp_path / "o.wav"
    with (
        pytest.raises(OutputError, match="longer than a WAV file can hold"),
        audio.open_output(out, 2, RATE, expected_frames=100) as writer,
    ):
        writer.write(make_music(1.0))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ standard streams


def test_stdin_to_stdout_pipeline(tmp_path: Path) -> None:
    source = tmp_path / "in.flac"
    sf.write(source, make_music(1.2).T, RATE)
    with source.open("rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "apollo_cli", "restore", "-", "-o", "-", "--format", "flac",
             "--model", str(TINY_MODEL), "--chunk-seconds", "0.5"],
            stdin=stdin, capture_output=True, timeout=300, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout[:4] == b"fLaC"
    (tmp_path / "piped.flac").write_bytes(proc.stdout)
    expected = tmp_path / "direct.flac"
    assert (
        run_cli("restore", source, "-o", expected, "--model", TINY_MODEL, "--chunk-seconds", "0.5").exit_code
        == 0
    )
    np.testing.assert_array_equal(sf.read(tmp_path / "piped.flac")[0], sf.read(expected)[0])
    assert b"wrote standard output" in proc.stderr
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("apollo-stdin-*"))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("-", "-o", "-"), "needs --format flac or --format wav"),
        (("-",), "needs an output"),
    ],
)
def test_stdio_needs_its_options(args: tuple[str, ...], match: str) -> None:
    assert_one_line_error(run_cli("restore", *args, "--model", TINY_MODEL), match)


# ------------------------------------------------------------------------------- batch


def test_batch_streams_long_files_with_the_same_output(
    tmp_path: Path, model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    for i, seconds in enumerate((0.6, 1.7, 2.4)):
        sf.write(library / f"{i}.wav", make_music(seconds, seed=i).T, RATE)
    plan = batch.plan_batch(library, tmp_path / "in-memory")
    assert batch.run_batch(plan, model, options=RestoreOptions(chunk_seconds=0.5)).ok
    monkeypatch.setattr(batch.runner, "PREFETCH_SECONDS", 1.0)  # the two longer files are streamed
    streamed: list[str] = []
    real = apollo_cli.api.restore_source

    def spy(model, source, target, *args, **kwargs):  # type: ignore[no-untyped-def]
        streamed.append(target.name)
        return real(model, source, target, *args, **kwargs)

    monkeypatch.setattr(apollo_cli.api, "restore_source", spy)
    plan = batch.plan_batch(library, tmp_path / "streamed")
    summary = batch.run_batch(plan, model, options=RestoreOptions(chunk_seconds=0.5))
    assert summary.ok and len(summary.done) == 3
    assert sorted(streamed) == ["1.flac", "2.flac"]
    for i in range(3):
        a, _ = sf.read(tmp_path / "in-memory" / f"{i}.flac")
        b, _ = sf.read(tmp_path / "streamed" / f"{i}.flac")
        np.testing.assert_array_equal(a, b)


def test_riff_header_parsing_ignores_rf64(tmp_path: Path) -> None:
    """RF64 states its sizes in a ds64 chunk; the RIFF check must not misread it as truncated."""
    out = tmp_path / "r.wav"
    with sf.SoundFile(out, "w", RATE, 1, "FLOAT", format="RF64") as handle:
        handle.write(np.zeros(RATE, np.float32))
    assert out.read_bytes()[:4] == b"RF64"
    with audio.open_audio(out) as source:
        assert source.frames == RATE
    assert struct.unpack("<4s", out.read_bytes()[:4])[0] == b"RF64"
