"""apollo_cli.analysis: bandwidth estimates, codec facts, verdicts, metrics, spectrograms."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apollo_cli import analysis
from apollo_cli.analysis import (
    MP3_LOWPASS_HZ,
    Bandwidth,
    CodecInfo,
    estimate_bandwidth,
    judge,
    log_spectral_distance,
    sdr,
    si_snr,
)
from apollo_cli.audio import DecodedAudio, load_audio, resample
from apollo_cli.errors import InputError
from helpers import make_music

RATE = 44100


def lowpass(x: np.ndarray, rate: int, cutoff: float) -> np.ndarray:
    """A brick-wall lowpass: every FFT bin above ``cutoff`` set to zero."""
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum[..., np.fft.rfftfreq(x.shape[-1], 1 / rate) > cutoff] = 0
    return np.fft.irfft(spectrum, n=x.shape[-1], axis=-1)


def noise(seconds: float = 2.0, rate: int = RATE, channels: int = 2, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal((channels, round(seconds * rate)))


def with_floor(x: np.ndarray, db: float = -90.0, seed: int = 1) -> np.ndarray:
    """Add white noise at ``db`` dBFS (a dither-like floor)."""
    return x + 10 ** (db / 20) * np.random.default_rng(seed).standard_normal(x.shape)


def encode_mp3(path: Path, samples: np.ndarray, kbps: int, rate: int = RATE) -> Path:
    """CBR MP3 by libsndfile's LAME; compression level 0 is 320 kbps, 1 would be 32."""
    sf.write(
        path, samples.T, rate, format="MP3", compression_level=(320 - kbps) / 288, bitrate_mode="CONSTANT"
    )
    return path


# ---------------------------------------------------------------------------- bandwidth


@pytest.mark.parametrize("cutoff", [11000, 16000, 19000])
@pytest.mark.parametrize("kind", ["noise", "music"])
@pytest.mark.parametrize("floor_db", [-90.0, -140.0])
def test_bandwidth_of_lowpassed_signals(kind: str, cutoff: float, floor_db: float) -> None:
    source = noise() if kind == "noise" else make_music(2.0).astype(np.float64)
    bw = estimate_bandwidth(with_floor(lowpass(source, RATE, cutoff), floor_db), RATE)
    assert abs(bw.hz - cutoff) <= 500, bw
    assert bw.sharp and not bw.full_band and not bw.silent


@pytest.mark.parametrize("rate, cutoff", [(48000, 16000), (22050, 8000), (96000, 20000)])
def test_bandwidth_at_other_rates(rate: int, cutoff: float) -> None:
    bw = estimate_bandwidth(with_floor(lowpass(noise(1.0, rate), rate, cutoff)), rate)
    assert abs(bw.hz - cutoff) <= 500, bw
    assert bw.sample_rate == rate


def test_a_notch_below_the_cutoff_does_not_fool_it() -> None:
    x = lowpass(noise(), RATE, 16000)
    spectrum = np.fft.rfft(x, axis=-1)
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / RATE)
    spectrum[..., (freqs > 9000) & (freqs < 12000)] *= 1e-5  # a 100 dB deep, 3 kHz wide hole
    notched = with_floor(np.fft.irfft(spectrum, n=x.shape[-1], axis=-1))
    bw = estimate_bandwidth(notched, RATE)
    assert abs(bw.hz - 16000) <= 500, bw


def test_a_tone_above_the_cutoff_does_not_count() -> None:
    x = lowpass(noise(), RATE, 16000)
    t = np.arange(x.shape[-1]) / RATE
    x = with_floor(x + 0.01 * np.sin(2 * np.pi * 19000 * t))  # a pilot-tone-like spur
    assert abs(estimate_bandwidth(x, RATE).hz - 16000) <= 500


def test_full_band_and_silence() -> None:
    white = estimate_bandwidth(noise(), RATE)
    assert white.full_band and white.hz == RATE / 2
    # Content that falls towards the highs but reaches Nyquist is full band too.
    spectrum = np.fft.rfft(noise(), axis=-1)
    freqs = np.maximum(np.fft.rfftfreq(spectrum.shape[-1] * 2 - 2, 1 / RATE), 20.0)
    tilted = np.fft.irfft(spectrum * (freqs / 1000) ** -0.75, axis=-1)
    assert estimate_bandwidth(tilted, RATE).full_band
    silent = estimate_bandwidth(np.zeros((2, RATE)), RATE)
    assert silent.silent and silent.hz == 0 and not silent.full_band
    # Mono, and shorter than one analysis frame.
    assert estimate_bandwidth(noise(0.01, channels=1)[0], RATE).hz == RATE / 2


@pytest.mark.parametrize("kbps", [64, 96, 128])
def test_bandwidth_of_real_mp3s(tmp_path: Path, kbps: int) -> None:
    path = encode_mp3(tmp_path / f"{kbps}.mp3", noise(2.0), kbps)
    codec = analysis.probe_codec(path)
    # libsndfile's LAME applies its default lowpass for the bitrate and records it.
    assert (codec.codec, codec.bitrate_kbps, codec.bitrate_mode) == ("MP3", kbps, "CBR")
    assert codec.lowpass_hz == MP3_LOWPASS_HZ[kbps]
    decoded = load_audio(path)
    bw = estimate_bandwidth(decoded.samples, decoded.sample_rate)
    assert abs(bw.hz - MP3_LOWPASS_HZ[kbps]) <= 500, bw
    assert bw.sharp


def test_music_mp3_and_its_lossless_transcode(tmp_path: Path) -> None:
    music = make_music(3.0)
    mp3 = encode_mp3(tmp_path / "song.mp3", music, 128)
    report = analysis.inspect_file(mp3)
    assert abs(report.bandwidth.hz - 17000) <= 500
    assert report.verdict.helps is True
    assert report.verdict.message.startswith("restoration likely to help: bandwidth 16.")
    assert "MP3 128 kbps CBR (encoder lowpass 17.0 kHz)" in report.verdict.message

    flac = tmp_path / "transcoded.flac"
    sf.write(flac, load_audio(mp3).samples.T, RATE, subtype="PCM_16")
    report = analysis.inspect_file(flac)
    assert report.codec.lossless and report.codec.label == "FLAC 16-bit"
    assert report.verdict.helps is True
    assert "lossless container but bandwidth 16." in report.verdict.message
    assert "probably transcoded from a lossy source" in report.verdict.message

    original = tmp_path / "original.flac"
    sf.write(original, music.T, RATE, subtype="PCM_24")
    report = analysis.inspect_file(original)
    assert report.bandwidth.full_band
    assert report.verdict.helps is False
    assert report.verdict.message.startswith("already full band")
    assert report.to_dict()["bandwidth_hz"] == RATE / 2


def test_codec_of_other_containers(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, noise(0.5).T, RATE, subtype="FLOAT")
    info = analysis.probe_codec(wav)
    assert (info.container, info.codec, info.lossless, info.sample_format) == (
        "WAV",
        "PCM",
        True,
        "32-bit float",
    )
    ogg = tmp_path / "a.ogg"
    sf.write(ogg, noise(0.5).T, RATE, format="OGG", subtype="VORBIS")
    assert analysis.probe_codec(ogg).codec == "Vorbis" and analysis.probe_codec(ogg).lossless is False
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"nothing to see")
    assert analysis.probe_codec(junk) == CodecInfo(None, None, None)
    if shutil.which("ffmpeg"):
        m4a = tmp_path / "a.m4a"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(m4a)], check=True
        )
        info = analysis.probe_codec(m4a)
        assert (info.container, info.codec, info.lossless) == ("MP4", "AAC", False)
        assert info.bitrate_kbps is not None and 60 < info.bitrate_kbps < 130


# ------------------------------------------------------------------------------ verdicts


def _bw(hz: float, sharp: bool = True, rate: int = RATE) -> Bandwidth:
    return Bandwidth(hz, rate, sharp, -150.0, -60.0)


def test_verdicts() -> None:
    mp3 = CodecInfo("MP3", "MP3", False, bitrate_kbps=128, bitrate_mode="CBR")
    assert judge(mp3, _bw(16000)).message == (
        "restoration likely to help: bandwidth 16.0 kHz, MP3 128 kbps CBR "
        "(LAME's usual lowpass at that bitrate: 17.0 kHz)"
    )
    flac = CodecInfo("FLAC", "FLAC", True, sample_format="16-bit")
    transcoded = judge(flac, _bw(16000))
    assert transcoded.helps is True
    assert transcoded.message.startswith("lossless container but bandwidth 16.0 kHz: probably transcoded")
    assert "typical of a 112 kbps MP3" in transcoded.message
    assert judge(flac, _bw(21500)).message == "already full band (21.5 kHz): little to gain"
    dull = judge(flac, _bw(15000, sharp=False))
    assert dull.helps is False and "gradual roll-off" in dull.message
    assert judge(flac, Bandwidth(0.0, RATE, False, -200, -200, silent=True)).helps is None
    limited = judge(CodecInfo("WAV", "PCM", True), _bw(11025, sharp=False, rate=22050))
    assert limited.helps is True and "limited by the 22.05 kHz sample rate" in limited.message
    aac = judge(CodecInfo("MP4", "AAC", False, bitrate_kbps=96), _bw(15900))
    assert aac.message == (
        "restoration likely to help: bandwidth 15.9 kHz, AAC 96 kbps (AAC encoders cut at 14.9–15.9 kHz at that bitrate)"
    )


def test_mp3_lowpass_table() -> None:
    assert MP3_LOWPASS_HZ[128] == 17000 and MP3_LOWPASS_HZ[320] == 20500
    assert list(MP3_LOWPASS_HZ.values()) == sorted(MP3_LOWPASS_HZ.values())
    assert analysis.typical_mp3_bitrates(17000) == [128, 160]
    assert analysis.typical_mp3_bitrates(11000) == [64]
    assert analysis.typical_mp3_bitrates(1000) == [8]  # nothing close: the nearest


# ------------------------------------------------------------------------------- metrics


def test_si_snr_hand_computed() -> None:
    s = np.array([1.0, -1.0, 1.0, -1.0])
    e = np.array([2.0, -1.0, 1.0, -2.0])
    # a = <e,s>/|s|^2 = 6/4; target = 1.5 s (energy 9); noise = e - target = ±0.5 (energy 1)
    assert si_snr(s, e) == pytest.approx(10 * math.log10(9))
    assert si_snr(s, 3 * e) == pytest.approx(10 * math.log10(9))  # scale-invariant
    assert si_snr(s, e + 0.7) == pytest.approx(10 * math.log10(9))  # zero-mean
    t = np.arange(4410) / RATE
    clean = np.sin(2 * np.pi * 100 * t)  # 10 whole periods: orthogonal to the cosine
    assert si_snr(clean, clean + 0.1 * np.cos(2 * np.pi * 100 * t)) == pytest.approx(20.0, abs=1e-6)
    assert si_snr(clean, 0.5 * clean) == math.inf
    assert si_snr(clean, np.zeros_like(clean)) == -math.inf


def test_sdr_hand_computed() -> None:
    assert sdr(np.array([3.0, 4.0]), np.array([3.0, 3.0])) == pytest.approx(10 * math.log10(25))
    x = noise(0.5)
    assert sdr(x, 0.5 * x) == pytest.approx(10 * math.log10(4))  # gain is distortion for SDR
    assert sdr(x, x) == math.inf
    # Channels are one signal: energies summed over both.
    s = np.array([[3.0, 4.0], [0.0, 5.0]])
    e = np.array([[3.0, 4.0], [1.0, 5.0]])
    assert sdr(s, e) == pytest.approx(10 * math.log10(50 / 1))


def test_log_spectral_distance() -> None:
    x = noise(1.0)
    assert log_spectral_distance(x, x) == 0.0
    # Power x4 in every bin is 6.02 dB everywhere; the -100 dB floor barely matters for noise.
    assert log_spectral_distance(x, 2 * x) == pytest.approx(20 * math.log10(2), abs=0.01)
    assert log_spectral_distance(x, 10 * x) == pytest.approx(20.0, abs=0.01)
    # Silence against silence is no distance; noise against silence is its level above -100 dB.
    assert log_spectral_distance(np.zeros(4096), np.zeros(4096)) == 0.0
    assert log_spectral_distance(x, np.zeros_like(x)) > 40
    # Losing the band above 16 kHz costs distance; keeping it costs none.
    cut = lowpass(x, RATE, 16000)
    assert log_spectral_distance(x, cut) > 10 * log_spectral_distance(x, x + 1e-6)


def test_metrics_reject_mismatched_or_silent_input() -> None:
    with pytest.raises(InputError, match="same shape"):
        sdr(np.ones(10), np.ones(11))
    with pytest.raises(InputError, match="silent"):
        si_snr(np.zeros(100), np.ones(100))


def test_measure_aligns_rates_lengths_and_channels() -> None:
    # Below 18 kHz, so that resampling to 48 kHz and back is transparent.
    music = lowpass(make_music(1.0), RATE, 18000).astype(np.float32)
    reference = DecodedAudio(music, RATE)
    # The same audio at 48 kHz and 0.2 s longer, as the estimate: resampled, trimmed, equal.
    longer = np.concatenate([music, np.zeros((2, 8820), np.float32)], axis=1)
    estimate = DecodedAudio(resample(longer, RATE, 48000), 48000)
    metrics = analysis.measure(reference, estimate)
    assert metrics.seconds == pytest.approx(1.0)
    assert metrics.si_snr > 60 and metrics.sdr > 60 and metrics.lsd < 0.5, metrics
    # Misaligned by 1 ms, the same audio is a poor estimate: nothing is aligned but the start.
    late = DecodedAudio(np.concatenate([np.zeros((2, 44), np.float32), music], axis=1), RATE)
    assert analysis.measure(reference, late).si_snr < 10
    # Mono against stereo: both mixed down.
    mono = DecodedAudio(music.mean(axis=0, keepdims=True), RATE)
    same = analysis.measure(reference, mono)
    assert same.si_snr == same.sdr == math.inf and same.lsd == 0.0
    assert same.to_dict() == {
        "si_snr_db": None,
        "sdr_db": None,
        "lsd_db": 0.0,
        "seconds": 1.0,
    }  # JSON has no inf


# --------------------------------------------------------------------------- spectrogram


def test_spectrogram_grid() -> None:
    x = lowpass(noise(3.0), RATE, 8000)
    spec = analysis.spectrogram(x, RATE, max_columns=100, rows=120)
    assert spec.db.shape[0] == 120 and 50 <= spec.db.shape[1] <= 100
    assert spec.freq_edges[0] == pytest.approx(50) and spec.freq_edges[-1] == pytest.approx(RATE / 2)
    assert np.diff(np.log(spec.freq_edges)) == pytest.approx(np.full(120, np.log(RATE / 2 / 50) / 120))
    assert spec.duration == pytest.approx(3.0)
    below = spec.db[spec.freq_edges[1:] < 7000].mean()
    above = spec.db[spec.freq_edges[:-1] > 9000].mean()
    assert below - above > 100  # the lowpass shows


# ------------------------------------------------------------------------------ framing


def test_frame_power_scale_padding_and_blocks() -> None:
    from apollo_cli.analysis.framing import frame_count, frame_power

    n_fft, hop = 1024, 256
    t = np.arange(RATE) / RATE
    sine = np.sin(2 * np.pi * (100 * RATE / n_fft) * t)  # full scale, on bin 100
    stereo = np.stack([sine, np.zeros_like(sine)])  # the power is averaged over channels
    count = frame_count(stereo.shape[1], n_fft, hop)
    assert count == 1 + (RATE - n_fft) // hop
    starts = np.arange(count) * hop
    blocks = list(frame_power(stereo, starts, n_fft, block=7))
    assert [first for first, _ in blocks] == list(range(0, count, 7))
    power = np.concatenate([p for _, p in blocks])
    assert power.shape == (count, n_fft // 2 + 1)
    # A full-scale sine's peak bin is near -6 dB; half of it with a silent second channel.
    assert 10 * np.log10(power[:, 100]) == pytest.approx(np.full(count, -6.02 - 3.01), abs=0.01)
    # The block size bounds memory only: the same numbers, bit for bit.
    ((_, whole),) = frame_power(stereo, starts, n_fft, block=count)
    assert np.array_equal(whole, power)
    # Shorter than one frame: one frame, zero-padded at the end.
    short = sine[:300]
    assert frame_count(short.size, n_fft, hop) == 1
    ((first, padded),) = frame_power(short[None], np.zeros(1, np.int64), n_fft)
    window = np.hanning(n_fft)
    expected = np.abs(np.fft.rfft(np.pad(short, (0, n_fft - 300)) * window)) ** 2 / window.sum() ** 2
    assert first == 0 and np.array_equal(padded[0], expected)


def test_public_names_kept() -> None:
    """Every name apollo_cli.analysis had as one module is still there, from its package."""
    names = """AAC_LOWPASS_HZ FULL_BAND_HZ LSD_FLOOR LSD_HOP LSD_N_FFT MP3_LOWPASS_HZ OPUS_BANDWIDTH_HZ
        OPUS_TRANSPARENT_KBPS_PER_CHANNEL Bandwidth CodecInfo Comparison FileReport Measured Metrics
        Spectrogram Verdict aac_lowpass_range align bandwidth_fft_size compare_files estimate_bandwidth
        expected_lowpass_hz inspect_file judge log_spectral_distance long_term_spectrum measure
        probe_codec sdr si_snr spectrogram typical_mp3_bitrates""".split()  # noqa: SIM905 - a list of names reads best as words
    assert sorted(analysis.__all__) == sorted(names)
    assert all(getattr(analysis, name) is not None for name in names)
    assert callable(analysis.spectrogram)  # the function, not its module


# ------------------------------------------- bandwidth relative to the file's own level


def steep_top(seconds: float = 3.0, peak_db: float = -1.0, cut: float = 19900.0) -> np.ndarray:
    """Music-like noise (-4.5 dB/octave above 1 kHz) that falls a further 5 dB/kHz above
    15 kHz, as many masters do, and ends at a brick wall at ``cut``."""
    rng = np.random.default_rng(3)
    n = round(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal((2, n)), axis=-1)
    f = np.fft.rfftfreq(n, 1 / RATE)
    gain_db = np.where(f < 1000, 0, -4.5 * np.log2(np.maximum(f, 1) / 1000)) - np.where(
        f > 15000, 5 * (f - 15000) / 1000, 0
    )
    spectrum *= 10 ** (gain_db / 20)
    spectrum[:, f > cut] = 0
    x = np.fft.irfft(spectrum, n=n, axis=-1)
    return x * 10 ** (peak_db / 20) / np.abs(x).max()


def test_a_quiet_128_kbps_mp3_shows_its_cliff(tmp_path: Path) -> None:
    """Music at -30 dBFS: its top octave lies below -100 dB, which an absolute floor took for nothing."""
    quiet = make_music(3.0) * 10 ** (-18 / 20)  # make_music peaks at -12 dBFS
    mp3 = encode_mp3(tmp_path / "quiet.mp3", quiet, 128)
    report = analysis.inspect_file(mp3)
    assert abs(report.bandwidth.hz - 17000) <= 500 and report.bandwidth.sharp, report.bandwidth
    assert report.verdict.helps is True and "bandwidth 16." in report.verdict.message
    # and the same through ffmpeg's LAME
    if shutil.which("ffmpeg"):
        wav, other = tmp_path / "quiet.wav", tmp_path / "quiet_ffmpeg.mp3"
        sf.write(wav, quiet.T, RATE, subtype="FLOAT")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", wav, "-c:a", "libmp3lame", "-b:a", "128k", other], check=True
        )
        bw = analysis.inspect_file(other).bandwidth
        assert abs(bw.hz - 17000) <= 500 and bw.sharp, bw


@pytest.mark.parametrize("peak_db", [-1.0, -30.0])
def test_a_320_kbps_file_reaching_19_9_khz_is_full_band(tmp_path: Path, peak_db: float) -> None:
    source = steep_top(peak_db=peak_db)
    bw = estimate_bandwidth(source, RATE)
    assert abs(bw.hz - 19900) <= 300, bw
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is needed for LAME at 320 kbps with its 20 kHz lowpass")
    wav, mp3 = tmp_path / "steep.wav", tmp_path / "steep.mp3"
    sf.write(wav, source.T, RATE, subtype="FLOAT")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", wav, "-c:a", "libmp3lame", "-b:a", "320k", mp3], check=True
    )
    report = analysis.inspect_file(mp3)
    assert report.bandwidth.hz >= 19500, report.bandwidth
    assert report.verdict.helps is False and report.verdict.message.startswith("already full band (19.9 kHz")


def test_a_16_bit_transcode_of_a_quiet_mp3_is_not_full_band(tmp_path: Path) -> None:
    """16-bit noise (about -131 dB) above a quiet file's cliff is still not content."""
    quiet = make_music(3.0) * 10 ** (-18 / 20)
    decoded = load_audio(encode_mp3(tmp_path / "quiet.mp3", quiet, 128)).samples
    for rate in (RATE, 48000):  # at 48 kHz, too: a resampler's empty stopband above 22 kHz
        flac = tmp_path / f"transcoded{rate}.flac"
        sf.write(flac, resample(decoded, RATE, rate).T, rate, subtype="PCM_16")
        bw = analysis.inspect_file(flac).bandwidth
        assert abs(bw.hz - 17000) <= 500 and bw.sharp, (rate, bw)


# --------------------------------------------------------- Opus and AAC at low bitrates


def _encode(tmp_path: Path, name: str, samples: np.ndarray, *args: str) -> Path:
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is needed to encode Opus and AAC")
    wav, out = tmp_path / f"{name}.wav", tmp_path / name
    sf.write(wav, samples.T, RATE, subtype="FLOAT")
    subprocess.run(["ffmpeg", "-v", "error", "-i", wav, *args, out], check=True)
    return out


def full_band_music(seconds: float = 3.0, peak_db: float = -1.0) -> np.ndarray:
    return steep_top(seconds, peak_db, cut=RATE / 2)


@pytest.mark.parametrize("peak_db", [-1.0, -30.0])
@pytest.mark.parametrize("kbps, helps", [(32, True), (64, True), (128, False)])
def test_opus_verdicts(tmp_path: Path, kbps: int, helps: bool, peak_db: float) -> None:
    """Opus keeps 20 kHz at every bitrate; below about 80 kbps it rebuilds the top octave."""
    opus = _encode(
        tmp_path, f"{kbps}.opus", full_band_music(peak_db=peak_db), "-c:a", "libopus", "-b:a", f"{kbps}k"
    )
    report = analysis.inspect_file(opus)
    assert report.codec.codec == "Opus"
    assert abs(report.bandwidth.hz - 20000) <= 500, report.bandwidth
    assert report.verdict.helps is helps, report.verdict.message
    if helps:
        assert report.verdict.message.startswith("restoration likely to help: full band (20.")
        assert "folds their detail from lower ones" in report.verdict.message
    else:
        assert report.verdict.message.startswith("already full band (20.")


@pytest.mark.parametrize("peak_db", [-1.0, -30.0])
@pytest.mark.parametrize("kbps, cutoff", [(48, 7640), (64, 12460), (128, 17280)])
def test_aac_verdicts(tmp_path: Path, kbps: int, cutoff: int, peak_db: float) -> None:
    m4a = _encode(
        tmp_path, f"{kbps}.m4a", full_band_music(peak_db=peak_db), "-c:a", "aac", "-b:a", f"{kbps}k"
    )
    report = analysis.inspect_file(m4a)
    assert report.codec.codec == "AAC"
    assert abs(report.bandwidth.hz - cutoff) <= 500 and report.bandwidth.sharp, report.bandwidth
    assert report.verdict.helps is True
    assert "AAC encoders cut at " in report.verdict.message


def test_codec_tables_and_facts() -> None:
    assert analysis.aac_lowpass_range(64) == (12460.0, 13453.0)
    assert analysis.aac_lowpass_range(256) == (17000.0, 17000.0)  # FFmpeg keeps the full band there
    assert analysis.aac_lowpass_range(None) is None
    assert analysis.OPUS_BANDWIDTH_HZ["FB"] == 20000 and analysis.OPUS_BANDWIDTH_HZ["SWB"] == 12000
    he = judge(CodecInfo("MP4", "HE-AAC", False, bitrate_kbps=48), _bw(20000, sharp=False))
    assert he.helps is True and "spectral band replication" in he.message
    # A file too quiet at the top to show its encoder's cut: the codec facts decide.
    flat = Bandwidth(22050.0, RATE, False, -140.0, -140.0)
    quiet = judge(CodecInfo("MP3", "MP3", False, bitrate_kbps=128, bitrate_mode="CBR"), flat)
    assert quiet.helps is True and "cuts at about 17.0 kHz" in quiet.message
    assert judge(CodecInfo("MP3", "MP3", False, bitrate_kbps=320, bitrate_mode="CBR"), flat).helps is False
    # Opus per channel: 64 kbps mono is plenty, stereo is not.
    opus = CodecInfo("OGG", "Opus", False, bitrate_kbps=64)
    assert judge(opus, _bw(20000, sharp=False), channels=1).helps is False
    assert judge(opus, _bw(20000, sharp=False), channels=2).helps is True
