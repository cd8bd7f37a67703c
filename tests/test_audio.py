"""Tests for apollo_cli.audio: decoding, resampling and atomic writing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import apollo_cli
from apollo_cli import audio
from apollo_cli.audio import (
    MODEL_SAMPLE_RATE,
    DecodedAudio,
    WriteResult,
    default_bit_depth,
    load_audio,
    output_format,
    resample,
    write_audio,
)
from apollo_cli.errors import InputError, MissingDependencyError, OptionError, OutputError
from helpers import make_music

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(
    FFMPEG is None,
    reason="ffmpeg is not installed; it makes the M4A, MKA and headerless-MP3 test files",
)


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return make_music(2.0)


def _write(path: Path, samples: np.ndarray, rate: int = 44100, **kwargs: object) -> Path:
    """Write (C, S) audio with soundfile, format from the extension."""
    sf.write(path, samples.T, rate, **kwargs)
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", *args], check=True)


def _lag(reference: np.ndarray, decoded: np.ndarray) -> int:
    """Lag (in samples) of the cross-correlation peak of decoded against reference."""
    n = len(reference) + len(decoded)
    corr = np.fft.irfft(np.fft.rfft(decoded, n) * np.conj(np.fft.rfft(reference, n)), n)
    lag = int(np.argmax(corr))
    return lag - n if lag > n // 2 else lag


def _no_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apollo_cli.decoding, "find_ffmpeg", lambda: None)


def _raises_one_line(exc_type: type[Exception], match: str):
    """pytest.raises that also checks the message is a single line."""

    class _Checker:
        def __enter__(self):
            self._ctx = pytest.raises(exc_type, match=match)
            self.info = self._ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self._ctx.__exit__(*exc)
            assert "\n" not in str(self.info.value)
            return handled

    return _Checker()


# ----------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("suffix", "subtype", "tolerance"),
    [
        (".wav", "FLOAT", 0.0),
        (".wav", "PCM_16", 2**-15),
        (".flac", "PCM_24", 2**-23),
        (".aiff", "PCM_24", 2**-23),
    ],
)
def test_lossless_formats_decode_exactly(
    tmp_path: Path, music: np.ndarray, suffix: str, subtype: str, tolerance: float
) -> None:
    decoded = load_audio(_write(tmp_path / f"m{suffix}", music, subtype=subtype))
    assert isinstance(decoded, DecodedAudio)
    assert decoded.samples.dtype == np.float32 and decoded.samples.flags.c_contiguous
    assert decoded.samples.shape == music.shape
    assert (decoded.channels, decoded.sample_rate) == (2, 44100)
    assert decoded.duration == pytest.approx(2.0)
    np.testing.assert_allclose(decoded.samples, music, atol=tolerance)


@pytest.mark.parametrize("suffix", [".ogg", ".mp3"])
def test_lossy_formats_keep_length_and_alignment(tmp_path: Path, music: np.ndarray, suffix: str) -> None:
    # libsndfile trims the MP3 encoder delay and padding (LAME gapless info), so the
    # decoded file must line up sample for sample with the source.
    decoded = load_audio(_write(tmp_path / f"m{suffix}", music))
    assert decoded.samples.shape == music.shape
    assert decoded.samples.dtype == np.float32
    for ch in range(2):
        assert _lag(music[ch], decoded.samples[ch]) == 0
        assert np.corrcoef(music[ch], decoded.samples[ch])[0, 1] > 0.95


@pytest.mark.parametrize("channels", [1, 3, 6])
def test_any_channel_count(tmp_path: Path, channels: int) -> None:
    source = make_music(0.5, channels=channels)
    decoded = load_audio(_write(tmp_path / "m.flac", source))
    assert decoded.samples.shape == source.shape


@needs_ffmpeg
def test_m4a_decodes_through_ffmpeg(tmp_path: Path) -> None:
    source = make_music(2.0, sample_rate=48000)
    wav = _write(tmp_path / "src.wav", source, 48000, subtype="FLOAT")
    m4a = tmp_path / "m.m4a"
    _ffmpeg("-i", str(wav), "-c:a", "aac", "-b:a", "192k", str(m4a))

    decoded = load_audio(m4a)
    assert (decoded.channels, decoded.sample_rate) == (2, 48000)
    assert decoded.samples.dtype == np.float32 and decoded.samples.flags.c_contiguous
    assert abs(decoded.samples.shape[1] - source.shape[1]) <= 2048  # AAC frame granularity
    n = min(decoded.samples.shape[1], source.shape[1])
    assert abs(_lag(source[0, :n], decoded.samples[0, :n])) <= 1
    assert np.corrcoef(source[0, :n], decoded.samples[0, :n])[0, 1] > 0.95


@needs_ffmpeg
def test_ffmpeg_path_keeps_full_precision(tmp_path: Path) -> None:
    # 24-bit ALAC in an M4A: only ffmpeg reads it, and it must come back bit-exact,
    # not squeezed through 16-bit integers.
    wav = _write(tmp_path / "src.wav", make_music(0.5), subtype="PCM_24")
    m4a = tmp_path / "m.m4a"
    _ffmpeg("-i", str(wav), "-c:a", "alac", "-sample_fmt", "s32p", str(m4a))
    np.testing.assert_array_equal(load_audio(m4a).samples, load_audio(wav).samples)


@needs_ffmpeg
def test_a_file_without_sound_says_so(tmp_path: Path) -> None:
    # ffmpeg's own last line here is a hint about its map syntax, not what is wrong.
    video = tmp_path / "clip.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=d=0.5:s=32x32", "-c:v", "mpeg4", str(video))
    with pytest.raises(
        InputError, match=r"^.*clip\.mkv has no audio stream; choose a file with sound in it$"
    ):
        load_audio(video)


@needs_ffmpeg
def test_ffmpeg_path_keeps_channels_and_float_samples(tmp_path: Path) -> None:
    source = make_music(0.5, sample_rate=32000, channels=3) * 3  # beyond full scale on purpose
    wav = _write(tmp_path / "src.wav", source, 32000, subtype="FLOAT")
    mka = tmp_path / "m.mka"
    _ffmpeg("-i", str(wav), "-c:a", "pcm_f32le", str(mka))
    decoded = load_audio(mka)
    assert decoded.sample_rate == 32000
    np.testing.assert_array_equal(decoded.samples, source)


@needs_ffmpeg
def test_mp3_without_length_header_is_decoded_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libsndfile estimates a headerless VBR MP3's length from its first frame and stops
    # there (about a quarter of this file); ffmpeg decodes it to the end.
    wav = _write(tmp_path / "src.wav", make_music(3.0))
    mp3 = tmp_path / "vbr.mp3"
    _ffmpeg("-i", str(wav), "-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0", str(mp3))

    decoded = load_audio(mp3)
    assert decoded.duration == pytest.approx(3.0, abs=0.1)

    _no_ffmpeg(monkeypatch)
    match = "ffmpeg is needed.*length header.*apt-get install ffmpeg"
    with _raises_one_line(MissingDependencyError, match):
        load_audio(mp3)


def test_missing_ffmpeg_raises_missing_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m4a = tmp_path / "song.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(4000))
    _no_ffmpeg(monkeypatch)
    match = r"ffmpeg is needed to decode .*song\.m4a.*brew install ffmpeg.*ffmpeg\.org"
    with _raises_one_line(MissingDependencyError, match):
        load_audio(m4a)


def test_missing_file(tmp_path: Path) -> None:
    with _raises_one_line(InputError, "does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    with _raises_one_line(InputError, "is a directory"):
        load_audio(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp3").touch()
    with _raises_one_line(InputError, r"empty \(0 bytes\)"):
        load_audio(tmp_path / "empty.mp3")


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".m4a"])
@pytest.mark.parametrize("with_ffmpeg", [True, False])
def test_text_file_is_not_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, with_ffmpeg: bool
) -> None:
    if with_ffmpeg and FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    if not with_ffmpeg:
        _no_ffmpeg(monkeypatch)
    fake = tmp_path / f"notes{suffix}"
    fake.write_text("these are my shopping notes, not a song\n" * 100)
    if suffix == ".m4a" and not with_ffmpeg:
        # Unknown container and no ffmpeg: we cannot tell it is not audio.
        with _raises_one_line(MissingDependencyError, "ffmpeg is needed"):
            load_audio(fake)
    else:
        with _raises_one_line(InputError, f"notes\\{suffix}.*(not a valid audio file|not audio)"):
            load_audio(fake)


def test_truncated_mp3(tmp_path: Path, music: np.ndarray, capfd: pytest.CaptureFixture[str]) -> None:
    # A cut MP3 still announces its full length (Xing header) and libsndfile decodes
    # what is there without any error; the short read is what gives it away.
    full = _write(tmp_path / "full.mp3", music).read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full[: len(full) // 2])
    with sf.SoundFile(cut) as f:  # the premise, as observed with libsndfile 1.2.2
        assert f.frames == music.shape[1]
        assert len(f.read()) < music.shape[1]
    capfd.readouterr()

    with _raises_one_line(InputError, r"cut\.mp3 is truncated or corrupt.*of the 2\.00 s"):
        load_audio(cut)
    # libmpg123's own resync chatter on fd 2 is silenced; the error says it all.
    assert capfd.readouterr().err == ""


def test_mp3_cut_inside_its_first_frames(
    tmp_path: Path, music: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _write(tmp_path / "full.mp3", music).read_bytes()
    cut = tmp_path / "stub.mp3"
    cut.write_bytes(full[:150])
    _no_ffmpeg(monkeypatch)
    with _raises_one_line(InputError, r"stub\.mp3"):
        load_audio(cut)


def test_truncated_flac(tmp_path: Path, music: np.ndarray) -> None:
    full = _write(tmp_path / "full.flac", music).read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full[: len(full) // 2])
    with _raises_one_line(InputError, r"cut\.flac is (corrupt or truncated|truncated or corrupt)"):
        load_audio(cut)


def test_zero_frames(tmp_path: Path) -> None:
    silent = _write(tmp_path / "none.wav", np.zeros((2, 0), np.float32))
    with _raises_one_line(InputError, r"no audio \(0 frames\)"):
        load_audio(silent)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path: Path, bad: float) -> None:
    samples = make_music(0.1)
    samples[1, 100] = bad
    path = _write(tmp_path / "bad.wav", samples, subtype="FLOAT")
    with _raises_one_line(InputError, r"bad\.wav contains 1 NaN or infinite"):
        load_audio(path)


# --------------------------------------------------------------------- resampling


def test_resample_identity_returns_input() -> None:
    x = make_music(0.1)
    assert resample(x, 44100, 44100) is x


@pytest.mark.parametrize(
    ("src", "dst"), [(48000, 44100), (22050, 44100), (44100, 32000), (96000, MODEL_SAMPLE_RATE)]
)
def test_resample_lengths(src: int, dst: int) -> None:
    x = make_music(1.01, sample_rate=src, channels=3)
    y = resample(x, src, dst)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    assert y.shape[0] == 3
    assert abs(y.shape[1] - x.shape[1] * dst / src) <= 1


def test_resample_keeps_tone_frequency() -> None:
    t = np.arange(48000) / 48000
    tone = np.stack([np.sin(2 * np.pi * 1000 * t)] * 2).astype(np.float32)
    y = resample(tone, 48000, 44100)
    spectrum = np.abs(np.fft.rfft(y[0] * np.hanning(y.shape[1])))
    peak_hz = np.argmax(spectrum) * 44100 / y.shape[1]
    assert peak_hz == pytest.approx(1000, abs=2)
    assert np.abs(y[:, 2000:-2000]).max() == pytest.approx(1.0, abs=0.01)


# ------------------------------------------------------------------------ writing


def test_output_format_and_default_depths(tmp_path: Path) -> None:
    assert output_format("a.wav") == "WAV"
    assert output_format(Path("B.FLAC")) == "FLAC"
    assert output_format("c.Wav") == "WAV"
    for bad in ("x.mp3", "x.wav.tmp", "noext"):
        with _raises_one_line(OutputError, r"\.wav or \.flac"):
            output_format(bad)
    assert default_bit_depth("FLAC") == 24
    assert default_bit_depth("WAV") == 32


@pytest.mark.parametrize(("name", "bits"), [("o.wav", 16), ("o.wav", 24), ("o.flac", 16), ("o.flac", 24)])
def test_integer_round_trip(tmp_path: Path, music: np.ndarray, name: str, bits: int) -> None:
    result = write_audio(tmp_path / name, music, 44100, bit_depth=bits)
    fmt = output_format(name)
    assert result == WriteResult(tmp_path / name, 0, music.shape[1], 44100, bits, fmt)
    info = sf.info(tmp_path / name)
    assert info.subtype == f"PCM_{bits}"
    back = load_audio(tmp_path / name).samples
    scale = 2 ** (bits - 1)
    # Exact quantisation to the nearest step, with the same scale for write and read.
    np.testing.assert_array_equal(back, np.rint(music.astype(np.float64) * scale) / scale)


def test_float_wav_round_trip_is_exact_and_unclipped(tmp_path: Path) -> None:
    loud = make_music(0.5) * 6  # well beyond full scale
    result = write_audio(tmp_path / "f.wav", loud, 44100)
    assert (result.bit_depth, result.clipped_samples, result.format) == (32, 0, "WAV")
    assert sf.info(tmp_path / "f.wav").subtype == "FLOAT"
    np.testing.assert_array_equal(load_audio(tmp_path / "f.wav").samples, loud)


def test_flac_defaults_to_24_bit(tmp_path: Path, music: np.ndarray) -> None:
    assert write_audio(tmp_path / "d.flac", music, 44100).bit_depth == 24
    assert sf.info(tmp_path / "d.flac").subtype == "PCM_24"


@pytest.mark.parametrize("bits", [16, 24])
def test_clipping_saturates_and_is_counted(tmp_path: Path, bits: int) -> None:
    loud = make_music(0.5) / 10 ** (-12 / 20) * 1.5  # peaks at 1.5
    top = 1 - 2.0 ** -(bits - 1)
    expected = int(np.count_nonzero((loud > top) | (loud < -1)))
    assert expected > 0

    result = write_audio(tmp_path / "c.wav", loud, 44100, bit_depth=bits)
    assert result.clipped_samples == expected
    back = load_audio(tmp_path / "c.wav").samples
    assert back.max() == pytest.approx(top) and back.min() == -1.0
    # Saturated, not wrapped: every over-range sample sits at the rail with its sign.
    assert np.all(back[loud > top] == np.float32(top))
    assert np.all(back[loud < -1] == -1.0)


def test_write_leaves_callers_array_alone(tmp_path: Path) -> None:
    loud = np.asfortranarray(make_music(0.2).T).T * 3  # F-ordered (C, S), already "transposed"
    before = loud.copy()
    write_audio(tmp_path / "x.wav", loud, 44100, bit_depth=16)
    np.testing.assert_array_equal(loud, before)


@pytest.mark.parametrize(
    ("name", "bits", "match"),
    [("o.flac", 32, "FLAC supports bit depth 16 or 24, not 32"), ("o.wav", 8, "16, 24 or 32")],
)
def test_unsupported_bit_depth(tmp_path: Path, music: np.ndarray, name: str, bits: int, match: str) -> None:
    with _raises_one_line(OutputError, match):
        write_audio(tmp_path / name, music, 44100, bit_depth=bits)
    assert list(tmp_path.iterdir()) == []


def test_one_bit_depth_rule_for_files_and_batches(tmp_path: Path) -> None:
    """``apollo batch`` checks a bit depth up front by the very rule that writing a file applies."""
    from apollo_cli import batch

    assert batch.OUTPUT_FORMATS == {"flac": ".flac", "wav": ".wav"}
    for suffix, fmt in audio.OUTPUT_FORMATS.items():
        target = tmp_path / f"o{suffix}"
        assert (
            batch.check_bit_depth(fmt.lower(), None) == audio.check_output(target) == default_bit_depth(fmt)
        )
        for bits in (8, 16, 24, 32):
            try:
                allowed = audio.check_output(target, bit_depth=bits)
            except OutputError as exc:
                with pytest.raises(OptionError) as refused:
                    batch.check_bit_depth(fmt, bits)
                assert str(exc) == f"cannot write {target}: {refused.value}"  # noqa: PT017 - both outcomes are checked (see else)
            else:
                assert batch.check_bit_depth(fmt, bits) == allowed == bits


def test_flac_channel_limit(tmp_path: Path) -> None:
    with _raises_one_line(OutputError, "at most 8 channels.*write a .wav"):
        write_audio(tmp_path / "o.flac", make_music(0.1, channels=9), 44100)
    assert write_audio(tmp_path / "o.wav", make_music(0.1, channels=9), 44100).frames == 4410


def test_non_finite_output_is_refused(tmp_path: Path) -> None:
    x = make_music(0.1)
    x[0, 3] = np.nan
    with _raises_one_line(OutputError, "NaN"):
        write_audio(tmp_path / "n.wav", x, 44100)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_kept_without_overwrite(tmp_path: Path, music: np.ndarray) -> None:
    target = tmp_path / "out.flac"
    target.write_bytes(b"precious")
    with _raises_one_line(OutputError, "already exists; pass --overwrite"):
        write_audio(target, music, 44100)
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.flac"]

    write_audio(target, music, 44100, overwrite=True)
    assert sf.info(target).frames == music.shape[1]


def test_missing_output_directory(tmp_path: Path, music: np.ndarray) -> None:
    with _raises_one_line(OutputError, "does not exist; create it"):
        write_audio(tmp_path / "nowhere" / "o.wav", music, 44100)


def test_unwritable_output_directory(
    tmp_path: Path, music: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Patch os.open rather than chmod, which root (as in CI containers) ignores.
    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(audio.os, "open", denied)
    with _raises_one_line(OutputError, "Permission denied; choose a writable output directory"):
        write_audio(tmp_path / "o.wav", music, 44100)


def test_output_directory_is_a_file(tmp_path: Path, music: np.ndarray) -> None:
    (tmp_path / "file").write_text("x")
    with _raises_one_line(OutputError, "file is a file, not a folder"):
        write_audio(tmp_path / "file" / "o.wav", music, 44100)


def test_output_path_is_a_directory(tmp_path: Path, music: np.ndarray) -> None:
    (tmp_path / "d.wav").mkdir()
    with _raises_one_line(OutputError, "is a directory"):
        write_audio(tmp_path / "d.wav", music, 44100, overwrite=True)


def test_write_goes_through_hidden_temp_file(
    tmp_path: Path, music: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Path] = []
    real_append = audio.AudioWriter._append

    def spying_append(writer: audio.AudioWriter, data: np.ndarray) -> None:
        seen.append(writer.tmp)
        assert not (tmp_path / "song.wav").exists()  # nothing visible until complete
        real_append(writer, data)

    monkeypatch.setattr(audio.AudioWriter, "_append", spying_append)
    write_audio(tmp_path / "song.wav", music, 44100)
    (tmp,) = set(seen)
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".song.wav.") and tmp.name.endswith(".part")
    assert [p.name for p in tmp_path.iterdir()] == ["song.wav"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "song.wav").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_leaves_nothing(
    tmp_path: Path, music: np.ndarray, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    target = tmp_path / "out.wav"
    target.write_bytes(b"old take")

    def failing_append(writer: audio.AudioWriter, data: np.ndarray) -> None:
        raise error

    monkeypatch.setattr(audio.AudioWriter, "_append", failing_append)
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else OutputError
    with pytest.raises(expected) as info:
        write_audio(target, music, 44100, overwrite=True)
    if expected is OutputError:
        assert "no space left on device" in str(info.value).lower() and "\n" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    assert target.read_bytes() == b"old take"


def test_temp_files_are_found_by_their_output(tmp_path: Path) -> None:
    """The temporary files a writer makes are the ones :func:`audio.temp_files` finds, and only those."""
    target = tmp_path / "song.flac"
    made = audio.create_temp_beside(target)
    assert audio.TEMP_PATTERN.match(made.name)
    for name in (".song.flac.0badf00d.part", ".song.flac.part", ".other.flac.0badf00d.part", "song.flac"):
        (tmp_path / name).touch()
    assert sorted(audio.temp_files(target)) == sorted([made, tmp_path / ".song.flac.0badf00d.part"])
    assert audio.temp_files(tmp_path / "none.flac") == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [(None, None), (ValueError("bad figure"), ValueError), (KeyboardInterrupt(), KeyboardInterrupt),
     (OSError(28, "No space left on device"), OutputError)],
)  # fmt: skip
def test_atomic_output(
    tmp_path: Path, error: BaseException | None, expected: type[BaseException] | None
) -> None:
    """A file written through atomic_output appears whole when the block ends, or not at all."""
    target = tmp_path / "picture.png"
    target.write_bytes(b"old")

    def write() -> None:
        with audio.atomic_output(target) as tmp:
            assert tmp.parent == tmp_path and audio.temp_files(target) == [tmp]
            tmp.write_bytes(b"new")
            assert target.read_bytes() == b"old"  # nothing visible until complete
            if error is not None:
                raise error

    if expected is None:
        write()
        assert target.read_bytes() == b"new"
    else:
        with pytest.raises(expected) as info:
            write()
        assert target.read_bytes() == b"old"
        if expected is OutputError:
            assert str(info.value) == (
                f"cannot write {target}: No space left on device; check free space and permissions"
            )
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"]
