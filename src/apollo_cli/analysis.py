"""Look at and measure a restoration: effective bandwidth, codec facts, quality metrics.

Everything here is NumPy only (matplotlib drawing lives in :mod:`apollo_cli.plot`)
and works on float ``(channels, frames)`` arrays as :func:`apollo_cli.audio.load_audio`
returns them.

Effective bandwidth
-------------------
Lossy encoders throw away everything above a lowpass frequency (LAME: about 17 kHz at
128 kbps), and a "lossless" file transcoded from such a source keeps that hole. The
*effective bandwidth* is the frequency above which a file holds nothing but its noise
floor. :func:`estimate_bandwidth` finds it from the long-term average spectrum:

1. **Spectrum.** Hann-windowed frames of ``n_fft`` samples (the power of two nearest
   ``sample_rate / 12``: 4096 at 44.1 and 48 kHz, about 11 Hz per bin), hop ``n_fft/2``;
   power averaged over channels; at most 1500 frames, evenly spread over the file.
   Frames more than 60 dB quieter than the loudest frame (silence, fades) are left out.
2. **Long-term spectrum.** Per bin, the 95th percentile over frames of the power in
   dB, so content that is present in one frame in twenty (cymbals, consonants)
   counts; then a running median over 9 bins (about 100 Hz) removes isolated tones.
3. **Noise floor, relative to the file's own level.** ``own`` is the file's own level:
   the median of that spectrum between 1 and 6 kHz, where all music has content.
   ``floor_db`` is the 10th percentile of the spectrum over the top of the band: the
   1.5 kHz (at most a tenth of the band) just below 99 % of Nyquist; but never below
   ``own - 70 dB``, capped to between -140 and -120 dB (per bin of about 11 Hz, 0 dB
   being a full-scale sine's peak bin near -6 dB). For music at a normal level that
   limit is -120 dB, about 10 dB above 16-bit quantisation noise (about -131 dB here);
   without it a resampler's stopband (a 16-bit 48 kHz file resampled to 44.1 kHz) would
   be taken for the floor, and the 16-bit noise above an MP3's cut-off for content. For
   quiet music the limit follows the music down, to at most -140 dB (still 9 dB clear of
   16-bit noise), so a quiet file's top octave, 100 dB or more below full scale, still
   counts as content and its encoder's cliff is found: an absolute limit took a
   128 kbps MP3 at -30 dBFS for full band. Audio whose spectrum never rises above
   -150 dB counts as silent.
4. **Content, with hysteresis.** A bin holds content when it is at least 20 dB above
   the floor; runs of content narrower than 300 Hz are dropped (a tone or a narrow
   spur above a lowpass does not count). Scanning from the top down, the highest
   remaining content bin ends the band, so a notch or dip *below* the cut-off cannot
   fool the estimate. The edge is then placed where the spectrum first reaches
   ``content_db - 30 dB`` (and at least 10 dB above the floor) from that bin downwards,
   where ``content_db`` is the median level 0.5 to 1.5 kHz below it; this is the
   frequency at which the encoder's filter has taken 30 dB off, independent of how
   deep the floor beneath it is (a decoded MP3's is around -150 dB, a 16-bit
   transcode's around -130 dB). The reference lies close to the edge so that music
   whose own spectrum falls steeply towards 20 kHz is not cut early: measured 1 to
   2.5 kHz below, a 320 kbps file reaching 19.9 kHz was reported cut at 18.5 kHz.
5. **Sharp or gradual.** ``sharp`` is true when the level 1 to 2 kHz above the edge is
   at least 25 dB below the level in the 1 kHz under it: the cliff an encoder's lowpass
   leaves. Without a cliff, if the floor is less than 45 dB below the median level
   between 1 and 6 kHz, the top of the band is weak content rather than a floor, and
   the audio is full band; otherwise it is a recording that rolls off into a real
   floor (tape, a dull mix), and its bandwidth is where the spectrum last rises 6 dB
   above the floor (over 300 Hz). A spectrum that never rises 20 dB above its top
   (white noise) is full band too.

On CBR LAME MP3s this lands within about 0.4 kHz of the lowpass recorded in the LAME
header (LAME's filter runs over most of a polyphase band around the nominal
frequency), and on brick-wall low-passed noise or music within a few bins. VBR and
low-bitrate encoders often leave the top of their band empty in most frames; the
estimate then says what the file holds, which can be well below the nominal lowpass.

Metrics
-------
Measured against a clean reference, as in the Apollo paper. The reference and the
estimate are brought to the reference's sample rate (:func:`apollo_cli.audio.resample`),
trimmed to the shorter length (no time alignment: both must start together) and,
if their channel counts differ, both mixed down to mono. Channels are otherwise
treated as one signal: sums run over every channel's samples.

- **SI-SNR** (scale-invariant signal-to-noise ratio): both signals made zero-mean per
  channel; ``target = a * s`` with ``a = <s_hat, s> / |s|^2`` (one scale factor for all
  channels); ``SI-SNR = 10 log10(|target|^2 / |s_hat - target|^2)`` dB. Gain changes
  of the estimate do not affect it.
- **SDR**: the plain signal-to-distortion ratio ``10 log10(|s|^2 / |s - s_hat|^2)`` dB,
  with no projection, no allowed filter and no mean removal (not BSS Eval's SDR), so
  a gain change counts as distortion.
- **LSD** (log-spectral distance), in dB: per channel, STFT with a Hann window,
  ``n_fft = 2048``, hop 512, frames wholly inside the signal (a signal shorter than one
  frame is zero-padded to one), power ``P = |X|^2 / (sum w)^2`` (a full-scale sine
  peaks near -6 dB), ``L = 10 log10(P + 1e-10)`` (a floor at -100 dB, so silence on both
  sides is no distance); per frame the RMS over frequency bins of ``L_ref - L_est``,
  then the mean over frames and channels. Papers that use ``log10`` of the power
  instead of dB report a tenth of this value.

Identical signals give ``inf`` for SI-SNR and SDR and 0 for LSD.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import audio
from .audio import DecodedAudio
from .errors import InputError

# ------------------------------------------------------------------------------ tables

#: LAME 3.100's default lowpass (Hz) per CBR/ABR bitrate (kbps): its ``optimum_bandwidth``
#: table, checked by encoding with libsndfile's LAME and reading the LAME header back.
#: Other encoders differ a little (FhG and iTunes cut 128 kbps at about 16 kHz).
MP3_LOWPASS_HZ: dict[int, int] = {
    8: 2000,
    16: 3700,
    24: 3900,
    32: 5500,
    40: 7000,
    48: 7500,
    56: 10000,
    64: 11000,
    80: 13500,
    96: 15100,
    112: 15600,
    128: 17000,
    160: 17500,
    192: 18600,
    224: 19400,
    256: 19700,
    320: 20500,
}

#: AAC-LC lowpass (Hz) by stereo bitrate (kbps) for the two encoders most files come
#: from. Fraunhofer's FDK AAC (libfdk_aac, Android): ``bandWidthTable`` in
#: libAACenc/src/bandwidth.cpp, per-channel rate -> bandwidth for two or more channels,
#: linearly interpolated there (12 kbps/ch: 6400 Hz, 20: 9640, 28: 13050, 40: 14260, 56: 15500,
#: 72: 16120, 96 and up: 17000); shown here at stereo rates. FFmpeg's own ``aac``
#: encoder (5.1): measured by encoding full-band music at 44.1 kHz stereo and reading
#: the cliff back with :func:`estimate_bandwidth` (its formula, AAC_CUTOFF_FROM_BITRATE
#: in libavcodec/psymodel.h, is then rounded up to a scale-factor band edge); from
#: 256 kbps it keeps the full band. Apple's encoder (iTunes) cuts 128 kbps at about
#: 16 kHz. HE-AAC (SBR) instead rebuilds the top octave from a few parameters: its
#: files reach 16-20 kHz at any bitrate.
AAC_LOWPASS_HZ: dict[str, dict[int, int]] = {
    "FDK AAC": {24: 6400, 32: 8020, 40: 9640, 48: 11345, 56: 13050, 64: 13453, 80: 14260, 96: 14880, 112: 15500,
                128: 15810, 144: 16120, 160: 16413, 192: 17000, 256: 17000, 320: 17000},
    "FFmpeg": {32: 3850, 48: 7640, 64: 12460, 96: 15900, 128: 17280, 160: 17970, 192: 19350},
}  # fmt: skip

#: Opus (libopus 1.x) codes one of five audio bandwidths: narrowband 4 kHz, mediumband
#: 6, wideband 8, super-wideband 12, fullband 20 kHz (RFC 6716, section 2). For music
#: the encoder switches to fullband at about 12 kbps (``stereo_music_bandwidth_thresholds``
#: in src/opus_encoder.c: SWB<->FB at 12000 bit/s, 2000 hysteresis), so an Opus file
#: reaches 20 kHz at every bitrate people use. At low bitrates CELT keeps that band by
#: coding only each band's energy and folding the fine structure from lower bands
#: ("spectral folding", RFC 6716 section 4.3.4.4): the top octave is there, but rebuilt.
OPUS_BANDWIDTH_HZ: dict[str, int] = {"NB": 4000, "MB": 6000, "WB": 8000, "SWB": 12000, "FB": 20000}

#: Below this bitrate per channel (80 kbit/s stereo) an Opus file's high bands are
#: mostly rebuilt rather than coded: Xiph recommends 64-128 kbit/s for stereo music and
#: finds 96-128 kbit/s transparent for most listeners
#: (https://wiki.xiph.org/Opus_Recommended_Settings). The bitrate compared is the
#: file's average, which libopus VBR keeps a little under the one asked for.
OPUS_TRANSPARENT_KBPS_PER_CHANNEL = 40

#: A bandwidth at or above this is "full band" for music: nothing much for Apollo to add.
FULL_BAND_HZ = 19500.0

# Bandwidth estimator settings (see the module docstring).
_PERCENTILE = 95.0
_MAX_FRAMES = 1500
_QUIET_FRAME_DB = 60.0
_MEDIAN_HZ = 100.0
_FLOOR_BAND_HZ = 1500.0
_CONTENT_DB = 20.0
_MIN_RUN_HZ = 300.0
_EDGE_DROP_DB = 30.0
_CLIFF_DB = 25.0
_GRADUAL_DB = 6.0
_DEEP_FLOOR_DB = 45.0
_LOWEST_FLOOR_DB = -120.0  # the floor's lower limit for music at a normal level
_FLOOR_BELOW_OWN_DB = 70.0  # ... which follows quieter music down, this far below its own level
_QUIET_FLOOR_DB = -140.0  # ... but no further: 16-bit noise sits near -131 dB
_SILENT_DB = -150.0
_REFERENCE_FAR_HZ = 1500.0  # content_db is measured this far to this near below the last content
_REFERENCE_NEAR_HZ = 500.0
_TINY = 1e-20  # power floor before taking dB: -200 dB

# Metric settings.
LSD_N_FFT = 2048
LSD_HOP = 512
LSD_FLOOR = 1e-10


# -------------------------------------------------------------------------- bandwidth


@dataclass(frozen=True)
class Bandwidth:
    """The effective bandwidth of some audio, from :func:`estimate_bandwidth`."""

    #: Frequency (Hz) above which there is nothing but the noise floor.
    hz: float
    sample_rate: int
    #: Whether the band ends in a cliff (an encoder's lowpass) rather than a roll-off.
    sharp: bool
    #: The noise floor at the top of the band, dB (see the module docstring).
    floor_db: float
    #: The level just below the edge, dB; equal to ``floor_db`` when there is no edge.
    content_db: float
    #: The audio is digital silence (``hz`` is 0).
    silent: bool = False

    @property
    def nyquist(self) -> float:
        """Half the sample rate: the most bandwidth this sample rate can hold."""
        return self.sample_rate / 2

    @property
    def full_band(self) -> bool:
        """At least :data:`FULL_BAND_HZ`: nothing much for Apollo to add."""
        return not self.silent and self.hz >= FULL_BAND_HZ

    @property
    def rate_limited(self) -> bool:
        """The band reaches Nyquist, and Nyquist is below :data:`FULL_BAND_HZ`."""
        return not self.silent and self.nyquist < FULL_BAND_HZ and self.hz >= 0.98 * self.nyquist


def bandwidth_fft_size(sample_rate: int) -> int:
    """The analysis frame length: the power of two nearest ``sample_rate / 12`` (4096 at 44.1 kHz)."""
    return int(2 ** round(math.log2(max(sample_rate, 256) / 12)))


def long_term_spectrum(
    samples: np.ndarray, sample_rate: int, *, n_fft: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The long-term spectrum the bandwidth estimate reads: ``(freqs_hz, level_db)``.

    Steps 1 and 2 of the method in the module docstring: per bin, the 95th percentile
    over (non-silent) frames of the channel-averaged power in dB, median-smoothed over
    about 100 Hz. ``samples`` is ``(frames,)`` or ``(channels, frames)``.
    """
    x = _as_2d(samples)
    n = n_fft or bandwidth_fft_size(sample_rate)
    hop = n // 2
    if x.shape[1] < n:
        x = np.pad(x, ((0, 0), (0, n - x.shape[1])))
    count = 1 + (x.shape[1] - n) // hop
    starts = np.linspace(0, (count - 1) * hop, min(count, _MAX_FRAMES)).round().astype(np.int64)
    window = np.hanning(n).astype(np.float64)
    norm = window.sum() ** 2
    power = np.zeros((starts.size, n // 2 + 1))
    for block in range(0, starts.size, 256):
        idx = starts[block : block + 256, None] + np.arange(n)  # (frames, n)
        frames = x[:, idx] * window  # (channels, frames, n)
        power[block : block + 256] = (np.abs(np.fft.rfft(frames, axis=-1)) ** 2).mean(axis=0) / norm
    loudness = power.sum(axis=1)
    keep = loudness >= loudness.max() * 10 ** (-_QUIET_FRAME_DB / 10)
    level = np.percentile(10 * np.log10(power[keep] + _TINY), _PERCENTILE, axis=0)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    width = max(1, int(round(_MEDIAN_HZ / (sample_rate / n)))) | 1  # odd
    return freqs, _running_median(level, width)


def estimate_bandwidth(samples: np.ndarray, sample_rate: int) -> Bandwidth:
    """Estimate the effective bandwidth of ``(channels, frames)`` (or ``(frames,)``) audio.

    The frequency above which the audio holds nothing but noise floor; the method is
    described in the module docstring.
    """
    freqs, level = long_term_spectrum(samples, sample_rate)
    bin_hz = freqs[1]
    nyquist = sample_rate / 2
    peak = float(level.max())
    if peak < _SILENT_DB:
        return Bandwidth(0.0, sample_rate, False, peak, peak, silent=True)

    mid = (freqs >= 1000) & (freqs <= min(6000.0, nyquist / 2))
    own_db = float(np.median(level[mid]))  # the file's own level
    top = 0.99 * nyquist
    region = (freqs >= top - min(_FLOOR_BAND_HZ, 0.1 * nyquist)) & (freqs <= top)
    lowest = min(_LOWEST_FLOOR_DB, max(own_db - _FLOOR_BELOW_OWN_DB, _QUIET_FLOOR_DB))
    floor = max(float(np.percentile(level[region], 10)), lowest)

    content = _drop_short_runs(level >= floor + _CONTENT_DB, int(round(_MIN_RUN_HZ / bin_hz)))
    if not content.any():
        # Nothing stands out from the top of the band: flat to Nyquist.
        return Bandwidth(float(nyquist), sample_rate, False, floor, floor)
    last = int(np.flatnonzero(content)[-1])

    below = (freqs >= freqs[last] - _REFERENCE_FAR_HZ) & (freqs <= freqs[last] - _REFERENCE_NEAR_HZ)
    reference = level[below] if below.any() else level[: last + 1]
    content_db = float(np.median(reference))
    threshold = max(content_db - _EDGE_DROP_DB, floor + _CONTENT_DB / 2)
    edge = last
    while edge > 0 and level[edge] < threshold:
        edge -= 1
    # Interpolate between the edge bin and the next one for sub-bin placement.
    hz = float(freqs[edge])
    if edge + 1 < level.size and level[edge] > level[edge + 1]:
        hz += bin_hz * float(np.clip((level[edge] - threshold) / (level[edge] - level[edge + 1]), 0, 1))

    under = (freqs >= hz - 1000) & (freqs <= hz)
    over = (freqs >= hz + 1000) & (freqs <= min(hz + 2000, top))
    above_level = float(np.median(level[over])) if over.sum() >= 3 else floor
    sharp = hz < top - 1000 and float(np.median(level[under])) - above_level >= _CLIFF_DB
    if not sharp:
        if own_db - floor < _DEEP_FLOOR_DB:
            # The top of the band is weak content, not a floor: full band.
            return Bandwidth(float(nyquist), sample_rate, False, floor, floor)
        # A roll-off into a real floor: the band ends where the spectrum last clears it.
        clear = _drop_short_runs(level >= floor + _GRADUAL_DB, int(round(_MIN_RUN_HZ / bin_hz)))
        hz = float(freqs[np.flatnonzero(clear)[-1]]) if clear.any() else float(nyquist)
    return Bandwidth(float(min(hz, nyquist)), sample_rate, bool(sharp), floor, content_db)


def _as_2d(samples: np.ndarray) -> np.ndarray:
    """``(channels, frames)`` floats, without copying float audio (songs are large)."""
    x = np.asarray(samples)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise InputError(f"expected audio shaped (frames,) or (channels, frames), got {x.shape}")
    return x


def _running_median(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return values
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=-1)


def _drop_short_runs(mask: np.ndarray, min_length: int) -> np.ndarray:
    """``mask`` without its runs of True shorter than ``min_length``."""
    out = mask.copy()
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start < min_length:
            out[start:stop] = False
    return out


# ---------------------------------------------------------------------- codec facts


_LOSSLESS_SUBTYPES = ("PCM_", "FLOAT", "DOUBLE", "ALAC_", "DPCM_", "DWVW_")
_LOSSY_SUBTYPES = {
    "MPEG_LAYER_I": "MP1",
    "MPEG_LAYER_II": "MP2",
    "MPEG_LAYER_III": "MP3",
    "VORBIS": "Vorbis",
    "OPUS": "Opus",
    "ULAW": "μ-law",
    "ALAW": "A-law",
    "IMA_ADPCM": "IMA ADPCM",
    "MS_ADPCM": "MS ADPCM",
    "GSM610": "GSM 6.10",
    "VOX_ADPCM": "VOX ADPCM",
    "G721_32": "G.721",
    "G723_24": "G.723",
    "G723_40": "G.723",
}
# mutagen file types: (codec name, lossless?)
_MUTAGEN_KINDS = {
    "MP3": ("MP3", False),
    "EasyMP3": ("MP3", False),
    "OggVorbis": ("Vorbis", False),
    "OggOpus": ("Opus", False),
    "OggSpeex": ("Speex", False),
    "OggFLAC": ("FLAC", True),
    "FLAC": ("FLAC", True),
    "WAVE": ("PCM", True),
    "AIFF": ("PCM", True),
    "AAC": ("AAC", False),
    "AC3": ("AC-3", False),
    "Musepack": ("Musepack", False),
    "MonkeysAudio": ("Monkey's Audio", True),
    "WavPack": ("WavPack", True),
    "TrueAudio": ("TTA", True),
    "OptimFROG": ("OptimFROG", True),
    "DSF": ("DSD", True),
    "DSDIFF": ("DSD", True),
}


@dataclass(frozen=True)
class CodecInfo:
    """What a file's headers say about how it was encoded. Unknown fields are None."""

    #: Container or file format: "MP3", "FLAC", "WAV", "OGG", "MP4", "ASF", ...
    container: str | None
    #: The audio codec: "MP3", "AAC", "Opus", "Vorbis", "FLAC", "PCM", "ALAC", ...
    codec: str | None
    #: True for lossless codecs (PCM, FLAC, ALAC, ...), False for lossy ones.
    lossless: bool | None
    bitrate_kbps: float | None = None
    #: "CBR", "VBR" or "ABR" (MP3 only).
    bitrate_mode: str | None = None
    #: The encoder, e.g. "LAME 3.100.0+", and its settings, e.g. "-b 128" (MP3 only).
    encoder: str | None = None
    encoder_settings: str | None = None
    #: The lowpass the encoder recorded (LAME header), Hz.
    lowpass_hz: float | None = None
    #: Stored sample format: "16-bit", "24-bit", "32-bit float" (PCM-like codecs).
    sample_format: str | None = None

    @property
    def label(self) -> str:
        """A short description for a table cell, e.g. ``MP3 128 kbps CBR`` or ``FLAC 16-bit``."""
        parts = [self.codec or self.container or "unknown"]
        if self.codec == "PCM" and self.container:
            parts = [self.container]
        if self.codec in ("AAC", "HE-AAC", "HE-AACv2", "ALAC") and self.container and self.container != self.codec:
            parts = [f"{self.codec} ({self.container})"]
        if self.sample_format:
            parts.append(self.sample_format)
        elif self.bitrate_kbps:
            parts.append(f"{self.bitrate_kbps:.0f} kbps")
        if self.bitrate_mode and not self.lossless:
            parts.append(self.bitrate_mode)
        return " ".join(parts)


def probe_codec(path: str | os.PathLike[str]) -> CodecInfo:
    """Read codec, bitrate and encoder facts from a file's headers (mutagen, libsndfile).

    Never decodes audio and never fails on an unknown format: fields it cannot find
    are None.
    """
    import soundfile as sf

    p = Path(path)
    container = codec = sample_format = None
    lossless: bool | None = None
    try:
        info = sf.info(os.fspath(p))
    except Exception:  # libsndfile does not know the format; mutagen may
        info = None
    if info is not None:
        container = info.format
        subtype = info.subtype
        if subtype.startswith(_LOSSLESS_SUBTYPES):
            codec, lossless = ("ALAC" if subtype.startswith("ALAC_") else _pcm_codec(info.format)), True
            sample_format = _sample_format(subtype)
        elif subtype in _LOSSY_SUBTYPES:
            codec, lossless = _LOSSY_SUBTYPES[subtype], False

    facts: dict[str, Any] = {}
    try:
        from .tags import open_by_content

        tagged = open_by_content(p)  # by content: a FLAC named .mp3 is a FLAC
    except Exception:  # mutagen raises its own errors, and OSError, on foreign files
        tagged = None
    if tagged is not None:
        kind = type(tagged).__name__
        minfo = tagged.info
        if kind in _MUTAGEN_KINDS and codec is None:
            codec, lossless = _MUTAGEN_KINDS[kind]
        if kind in ("MP4", "EasyMP4"):
            container = "MP4"
            name = str(getattr(minfo, "codec", "") or "")
            if name.startswith("mp4a"):
                # Object types 5 (SBR) and 29 (SBR + parametric stereo) are HE-AAC.
                profile = name.rpartition(".")[2]
                codec = {"5": "HE-AAC", "29": "HE-AACv2"}.get(profile, "AAC")
                lossless = False
            elif name == "alac":
                codec, lossless = "ALAC", True
                bits = getattr(minfo, "bits_per_sample", 0)
                sample_format = f"{bits}-bit" if bits else None
            elif name:
                codec = name
        elif kind == "ASF":
            container = "ASF"
            name = str(getattr(minfo, "codec_type", "") or getattr(minfo, "codec_name", "") or "WMA")
            codec, lossless = ("WMA Lossless", True) if "lossless" in name.lower() else ("WMA", False)
        elif container is None:
            container = {"WAVE": "WAV", "EasyMP3": "MP3"}.get(kind, kind)
        bitrate = getattr(minfo, "bitrate", 0) or 0
        if bitrate and lossless is False:
            facts["bitrate_kbps"] = round(bitrate / 1000, 1)
        if kind in ("MP3", "EasyMP3"):
            facts.update(_mp3_facts(p, minfo))
    return CodecInfo(container, codec, lossless, sample_format=sample_format, **facts)


def _pcm_codec(fmt: str) -> str:
    return {"FLAC": "FLAC", "WAVEX": "PCM", "WAV": "PCM", "AIFF": "PCM", "W64": "PCM", "RF64": "PCM"}.get(
        fmt, "PCM"
    )


def _sample_format(subtype: str) -> str | None:
    if subtype == "FLOAT":
        return "32-bit float"
    if subtype == "DOUBLE":
        return "64-bit float"
    digits = "".join(ch for ch in subtype if ch.isdigit())
    return f"{digits}-bit" if digits else None


def _mp3_facts(p: Path, info: Any) -> dict[str, Any]:
    """Bitrate mode, encoder and the LAME header's lowpass of an MP3."""
    facts: dict[str, Any] = {}
    mode = str(getattr(info, "bitrate_mode", "")).rpartition(".")[2]  # "BitrateMode.CBR"
    if mode in ("CBR", "VBR", "ABR"):
        facts["bitrate_mode"] = mode
    if getattr(info, "encoder_info", ""):
        facts["encoder"] = info.encoder_info
    if getattr(info, "encoder_settings", ""):
        facts["encoder_settings"] = info.encoder_settings
    try:  # mutagen parses the LAME header but keeps it private; it is only a hint
        from mutagen.mp3._util import XingHeader

        with p.open("rb") as fh:
            fh.seek(info.frame_offset + XingHeader.get_offset(info))
            lame = XingHeader(fh).lame_header
        if lame is not None and lame.lowpass_filter:
            facts["lowpass_hz"] = float(lame.lowpass_filter)
    except Exception:
        pass
    return facts


# -------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    """Whether restoration is likely to help a file, and why, in one sentence."""

    #: True: likely to help; False: little to gain; None: cannot tell (silence).
    helps: bool | None
    message: str


def typical_mp3_bitrates(hz: float, tolerance: float = 600.0) -> list[int]:
    """MP3 bitrates (kbps) whose LAME default lowpass is within ``tolerance`` Hz of ``hz``.

    The nearest one when none is that close.
    """
    close = [kbps for kbps, lowpass in MP3_LOWPASS_HZ.items() if abs(lowpass - hz) <= tolerance]
    return close or [min(MP3_LOWPASS_HZ, key=lambda kbps: abs(MP3_LOWPASS_HZ[kbps] - hz))]


def _typical(hz: float) -> str:
    rates = typical_mp3_bitrates(hz)
    span = f"{rates[0]}" if len(rates) == 1 else f"{rates[0]}–{rates[-1]}"
    return f"typical of a {span} kbps MP3"


def judge(codec: CodecInfo, bandwidth: Bandwidth, channels: int = 2) -> Verdict:
    """The verdict ``apollo inspect`` prints for a file with these codec facts and bandwidth.

    The measured bandwidth decides, read against what the codec is known to do at its
    bitrate (:data:`MP3_LOWPASS_HZ`, :data:`AAC_LOWPASS_HZ`, :data:`OPUS_BANDWIDTH_HZ`):
    a low-bitrate Opus or HE-AAC file reaches 20 kHz with a rebuilt top octave, and a
    file too quiet at the top to show its encoder's cut is judged by that encoder's
    known cut. ``channels`` turns an Opus bitrate into a bitrate per channel.
    """
    bw = f"{bandwidth.hz / 1000:.1f} kHz"
    if bandwidth.silent:
        return Verdict(None, "silent: nothing to restore")
    if bandwidth.rate_limited:
        return Verdict(
            True,
            f"restoration likely to help: bandwidth {bw}, limited by the "
            f"{bandwidth.sample_rate / 1000:g} kHz sample rate",
        )
    if bandwidth.full_band:
        kbps = codec.bitrate_kbps or 0.0
        if codec.codec == "Opus" and 0 < kbps / max(channels, 1) < OPUS_TRANSPARENT_KBPS_PER_CHANNEL:
            return Verdict(
                True,
                f"restoration likely to help: full band ({bw}), but {_codec_phrase(codec)} codes little "
                "more than the energy of its highest bands and folds their detail from lower ones",
            )
        if codec.codec in ("HE-AAC", "HE-AACv2"):
            return Verdict(
                True,
                f"restoration likely to help: full band ({bw}), but {_codec_phrase(codec)} rebuilds "
                "its top octave from a few parameters (spectral band replication)",
            )
        expected = expected_lowpass_hz(codec)
        if expected is not None and expected < FULL_BAND_HZ - 500 and not bandwidth.sharp:
            # No cliff in sight, yet this encoder cuts well below: the top of the file is
            # too quiet to show it. The codec facts are the better guide.
            return Verdict(
                True,
                f"restoration likely to help: {_codec_phrase(codec)} cuts at about {expected / 1000:.1f} kHz, "
                f"though this file is too quiet at the top to show it ({bw} measured)",
            )
        extra = "" if codec.lossless is not False else f", {_codec_phrase(codec)}"
        return Verdict(False, f"already full band ({bw}{extra}): little to gain")
    if codec.lossless:
        if bandwidth.sharp:
            return Verdict(
                True,
                f"lossless container but bandwidth {bw}: probably transcoded from a lossy "
                f"source ({_typical(bandwidth.hz)}); restoration likely to help",
            )
        return Verdict(
            False,
            f"bandwidth {bw} with a gradual roll-off, no encoder cut-off: probably the "
            "recording itself rather than a transcode; restoration may add little",
        )
    lame_default = MP3_LOWPASS_HZ.get(round(codec.bitrate_kbps or 0))
    aac = aac_lowpass_range(codec.bitrate_kbps) if codec.codec == "AAC" else None
    opus_mode = next((name for name, hz in OPUS_BANDWIDTH_HZ.items() if abs(hz - bandwidth.hz) <= 600), None)
    if codec.codec == "MP3" and codec.lowpass_hz:
        source = f"{_codec_phrase(codec)} (encoder lowpass {codec.lowpass_hz / 1000:.1f} kHz)"
    elif codec.codec == "MP3" and lame_default and codec.bitrate_mode in (None, "CBR"):
        source = f"{_codec_phrase(codec)} (LAME's usual lowpass at that bitrate: {lame_default / 1000:.1f} kHz)"
    elif aac is not None:
        low, high = (f"{hz / 1000:.1f}" for hz in aac)
        span = low if low == high else f"{low}–{high}"
        source = f"{_codec_phrase(codec)} (AAC encoders cut at {span} kHz at that bitrate)"
    elif codec.codec == "Opus" and opus_mode is not None and opus_mode != "FB":
        source = f"{_codec_phrase(codec)} (coded in Opus's {opus_mode} mode, {OPUS_BANDWIDTH_HZ[opus_mode] / 1000:g} kHz)"
    elif codec.codec == "Opus":
        source = f"{_codec_phrase(codec)} (Opus itself reaches 20 kHz: an earlier lossy source, {_typical(bandwidth.hz)})"
    elif codec.codec:
        source = f"{_codec_phrase(codec)} ({_typical(bandwidth.hz)})"
    else:
        source = _typical(bandwidth.hz)
    return Verdict(True, f"restoration likely to help: bandwidth {bw}, {source}")


def aac_lowpass_range(kbps: float | None) -> tuple[float, float] | None:
    """The lowest and highest AAC-LC lowpass (Hz) of :data:`AAC_LOWPASS_HZ`'s encoders at ``kbps`` (stereo).

    Each encoder's table is interpolated linearly; an encoder whose table ends below
    ``kbps`` keeps the full band there and is left out. None without a bitrate, or
    when no encoder cuts at that bitrate.
    """
    if not kbps:
        return None
    cuts = []
    for table in AAC_LOWPASS_HZ.values():
        rates = sorted(table)
        if kbps > rates[-1] * 1.1:
            continue  # this encoder keeps the full band at such rates
        cuts.append(float(np.interp(kbps, rates, [table[r] for r in rates])))
    return (min(cuts), max(cuts)) if cuts else None


def expected_lowpass_hz(codec: CodecInfo) -> float | None:
    """The lowpass this file's encoder is known to apply at its bitrate, if the facts say."""
    if codec.codec == "MP3":
        if codec.lowpass_hz:
            return codec.lowpass_hz
        if codec.bitrate_mode in (None, "CBR") and codec.bitrate_kbps:
            return MP3_LOWPASS_HZ.get(round(codec.bitrate_kbps))
        return None
    if codec.codec == "AAC":
        found = aac_lowpass_range(codec.bitrate_kbps)
        return found[1] if found else None
    return None


def _codec_phrase(codec: CodecInfo) -> str:
    text = codec.codec or codec.container or "unknown codec"
    if codec.bitrate_kbps:
        text += f" {codec.bitrate_kbps:.0f} kbps"
    if codec.bitrate_mode:
        text += f" {codec.bitrate_mode}"
    return text


# ---------------------------------------------------------------------- file report


@dataclass(frozen=True)
class FileReport:
    """Everything ``apollo inspect`` says about one file."""

    path: Path
    codec: CodecInfo
    sample_rate: int
    channels: int
    duration: float
    bandwidth: Bandwidth
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``--json`` output)."""
        return {
            "path": str(self.path),
            "container": self.codec.container,
            "codec": self.codec.codec,
            "lossless": self.codec.lossless,
            "bitrate_kbps": self.codec.bitrate_kbps,
            "bitrate_mode": self.codec.bitrate_mode,
            "encoder": self.codec.encoder,
            "encoder_settings": self.codec.encoder_settings,
            "encoder_lowpass_hz": self.codec.lowpass_hz,
            "sample_format": self.codec.sample_format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration": round(self.duration, 3),
            "bandwidth_hz": round(self.bandwidth.hz, 1),
            "bandwidth_sharp": self.bandwidth.sharp,
            "full_band": self.bandwidth.full_band,
            "noise_floor_db": round(self.bandwidth.floor_db, 1),
            "restoration_likely_to_help": self.verdict.helps,
            "verdict": self.verdict.message,
        }


def inspect_file(path: str | os.PathLike[str]) -> FileReport:
    """Decode a file, estimate its bandwidth and read its codec facts.

    Raises the same :class:`~apollo_cli.errors.InputError` (and
    :class:`~apollo_cli.errors.MissingDependencyError`) as :func:`apollo_cli.audio.load_audio`.
    """
    p = Path(path)
    decoded = audio.load_audio(p)
    codec = probe_codec(p)
    bandwidth = estimate_bandwidth(decoded.samples, decoded.sample_rate)
    return FileReport(
        path=p,
        codec=codec,
        sample_rate=decoded.sample_rate,
        channels=decoded.channels,
        duration=decoded.duration,
        bandwidth=bandwidth,
        verdict=judge(codec, bandwidth, decoded.channels),
    )


# -------------------------------------------------------------------------- metrics


def si_snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SNR of ``estimate`` against ``reference``, in dB.

    Both same-shaped ``(frames,)`` or ``(channels, frames)``; made zero-mean per channel,
    one scale factor over all channels (see the module docstring). ``inf`` for an
    estimate that is the reference up to gain, ``-inf`` for a silent estimate.
    """
    s, e = _pair(reference, estimate)
    s_mean = s.mean(axis=-1, dtype=np.float64, keepdims=True)
    e_mean = e.mean(axis=-1, dtype=np.float64, keepdims=True)
    energy = cross = estimate_energy = 0.0
    for part in _blocks(s.shape[-1]):
        sb, eb = s[:, part] - s_mean, e[:, part] - e_mean
        energy += float(np.sum(sb * sb))
        cross += float(np.sum(eb * sb))
        estimate_energy += float(np.sum(eb * eb))
    if energy == 0.0:
        raise InputError("the reference is silent (or constant); SI-SNR needs a reference with sound in it")
    if estimate_energy == 0.0:
        return -math.inf
    scale = cross / energy
    noise = 0.0
    for part in _blocks(s.shape[-1]):
        noise += float(np.sum((e[:, part] - e_mean - scale * (s[:, part] - s_mean)) ** 2))
    return _ratio_db(scale * scale * energy, noise)


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Plain signal-to-distortion ratio ``10 log10(|s|^2 / |s - s_hat|^2)`` in dB.

    No projection, filter or mean removal: a gain change is distortion. ``inf`` for
    identical signals.
    """
    s, e = _pair(reference, estimate)
    energy = distortion = 0.0
    for part in _blocks(s.shape[-1]):
        sb = s[:, part].astype(np.float64)
        energy += float(np.sum(sb * sb))
        distortion += float(np.sum((sb - e[:, part]) ** 2))
    if energy == 0.0:
        raise InputError("the reference is silent; SDR needs a reference with sound in it")
    return _ratio_db(energy, distortion)


def log_spectral_distance(
    reference: np.ndarray, estimate: np.ndarray, *, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP
) -> float:
    """Log-spectral distance in dB (definition in the module docstring).

    Per channel: Hann STFT (``n_fft`` 2048, hop 512), power in dB with a -100 dB floor,
    RMS over frequency per frame, then the mean over frames and channels.
    """
    s, e = _pair(reference, estimate)
    return float(np.mean(np.concatenate([_lsd_frames(a, b, n_fft, hop) for a, b in zip(s, e)])))


def _lsd_frames(s: np.ndarray, e: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    if s.size < n_fft:
        s, e = np.pad(s, (0, n_fft - s.size)), np.pad(e, (0, n_fft - e.size))
    window = np.hanning(n_fft)
    norm = window.sum() ** 2
    count = 1 + (s.size - n_fft) // hop
    out = np.empty(count)
    for block in range(0, count, 512):
        idx = (np.arange(block, min(block + 512, count)) * hop)[:, None] + np.arange(n_fft)
        ls = 10 * np.log10(np.abs(np.fft.rfft(s[idx] * window)) ** 2 / norm + LSD_FLOOR)
        le = 10 * np.log10(np.abs(np.fft.rfft(e[idx] * window)) ** 2 / norm + LSD_FLOOR)
        out[block : block + idx.shape[0]] = np.sqrt(np.mean((ls - le) ** 2, axis=-1))
    return out


def _blocks(length: int, size: int = 1 << 18) -> list[slice]:
    """Slices covering ``range(length)``: sums in float64 without whole-song copies."""
    return [slice(start, start + size) for start in range(0, max(length, 1), size)]


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, e = _as_2d(reference), _as_2d(estimate)
    if s.shape != e.shape:
        raise InputError(
            f"reference and estimate must have the same shape, got {s.shape} and {e.shape}; "
            "use apollo_cli.analysis.measure to align them"
        )
    return s, e


def _ratio_db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10 * math.log10(signal / noise)


@dataclass(frozen=True)
class Metrics:
    """An estimate measured against a clean reference (dB; see the module docstring)."""

    si_snr: float
    sdr: float
    lsd: float
    #: Seconds compared: the shorter of the two lengths.
    seconds: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready; infinite values (identical signals) become None."""
        return {k: (round(v, 4) if math.isfinite(v) else None) for k, v in
                {"si_snr_db": self.si_snr, "sdr_db": self.sdr, "lsd_db": self.lsd,
                 "seconds": self.seconds}.items()}  # fmt: skip


def align(reference: DecodedAudio, estimate: DecodedAudio) -> tuple[np.ndarray, np.ndarray, int]:
    """Bring ``estimate`` to ``reference``'s rate, trim both to the shorter, match channels.

    Returns ``(reference_samples, estimate_samples, sample_rate)``, float arrays of
    equal shape. Different channel counts are mixed down to mono on both sides.
    """
    rate = reference.sample_rate
    est = audio.resample(estimate.samples, estimate.sample_rate, rate)
    ref = reference.samples
    if ref.shape[0] != est.shape[0]:
        ref, est = ref.mean(axis=0, keepdims=True), est.mean(axis=0, keepdims=True)
    frames = min(ref.shape[1], est.shape[1])
    return ref[:, :frames], est[:, :frames], rate


def measure(reference: DecodedAudio, estimate: DecodedAudio) -> Metrics:
    """SI-SNR, SDR and LSD of ``estimate`` against ``reference``, after :func:`align`."""
    ref, est, rate = align(reference, estimate)
    return Metrics(
        si_snr=si_snr(ref, est),
        sdr=sdr(ref, est),
        lsd=log_spectral_distance(ref, est),
        seconds=ref.shape[1] / rate,
    )


# ------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Measured:
    """One decoded file of a comparison with its bandwidth."""

    role: str
    path: Path
    audio: DecodedAudio = field(repr=False)
    bandwidth: Bandwidth


@dataclass(frozen=True)
class Comparison:
    """``apollo compare``'s findings: bandwidths, and metrics when there is a reference."""

    files: list[Measured]
    #: role ("before", "after") -> metrics against the reference; empty without one.
    metrics: dict[str, Metrics]

    def get(self, role: str) -> Measured | None:
        """The file with this role ("before", "after", "reference"), if any."""
        return next((m for m in self.files if m.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``--json`` output)."""
        return {
            m.role: {
                "path": str(m.path),
                "sample_rate": m.audio.sample_rate,
                "channels": m.audio.channels,
                "duration": round(m.audio.duration, 3),
                "bandwidth_hz": round(m.bandwidth.hz, 1),
                "bandwidth_sharp": m.bandwidth.sharp,
                **({"metrics": self.metrics[m.role].to_dict()} if m.role in self.metrics else {}),
            }
            for m in self.files
        }


def compare_files(
    before: str | os.PathLike[str],
    after: str | os.PathLike[str],
    reference: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Decode two (or three) files, estimate their bandwidths and, with a reference, the metrics."""
    roles: Sequence[tuple[str, str | os.PathLike[str] | None]] = (
        ("before", before), ("after", after), ("reference", reference)
    )  # fmt: skip
    files = []
    for role, path in roles:
        if path is None:
            continue
        decoded = audio.load_audio(path)
        files.append(Measured(role, Path(path), decoded, estimate_bandwidth(decoded.samples, decoded.sample_rate)))
    metrics: dict[str, Metrics] = {}
    if reference is not None:
        ref = files[-1].audio
        metrics = {m.role: measure(ref, m.audio) for m in files[:2]}
    return Comparison(files, metrics)


# --------------------------------------------------------------------- spectrogram


@dataclass(frozen=True)
class Spectrogram:
    """A log-frequency power spectrogram ready to draw (see :func:`spectrogram`)."""

    #: Power in dB (0 dB: a full-scale sine's peak bin is near -6 dB), shaped (rows, columns).
    db: np.ndarray
    #: Row edges in Hz, geometrically spaced: ``rows + 1`` values.
    freq_edges: np.ndarray
    duration: float
    sample_rate: int


def spectrogram(
    samples: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 2048,
    hop: int = 512,
    max_columns: int = 1200,
    rows: int = 360,
    fmin: float = 50.0,
) -> Spectrogram:
    """A channel-averaged power spectrogram on a log-frequency grid.

    Hann STFT (``n_fft``, ``hop``; a longer hop for long files, so that at most four
    frames go into a column), power normalised by the window's sum squared and
    averaged over channels; consecutive frames are averaged into at most
    ``max_columns`` columns, and bins into ``rows`` geometrically spaced rows from
    ``fmin`` to Nyquist (rows narrower than a bin are interpolated).
    """
    x = _as_2d(samples)
    duration = x.shape[1] / sample_rate
    if x.shape[1] < n_fft:
        x = np.pad(x, ((0, 0), (0, n_fft - x.shape[1])))
    # Long files: at most four frames per column (frames may then no longer overlap).
    hop = max(hop, math.ceil((x.shape[1] - n_fft) / (4 * max_columns)))
    count = 1 + (x.shape[1] - n_fft) // hop
    group = max(1, math.ceil(count / max_columns))
    columns = math.ceil(count / group)
    window = np.hanning(n_fft)
    norm = window.sum() ** 2
    power = np.zeros((columns, n_fft // 2 + 1))
    step = max(group, (1024 // group) * group)
    for block in range(0, count, step):
        starts = np.arange(block, min(block + step, count)) * hop
        frames = x[:, starts[:, None] + np.arange(n_fft)] * window
        p = (np.abs(np.fft.rfft(frames, axis=-1)) ** 2).mean(axis=0) / norm
        np.add.at(power, np.arange(block, block + starts.size) // group, p)
    power /= np.bincount(np.arange(count) // group, minlength=columns)[:, None]

    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    edges = np.geomspace(fmin, sample_rate / 2, rows + 1)
    lo = np.searchsorted(freqs, edges[:-1], side="left")
    hi = np.searchsorted(freqs, edges[1:], side="left")
    cumulative = np.concatenate([np.zeros((columns, 1)), np.cumsum(power, axis=1)], axis=1)
    wide = hi > lo
    out = np.empty((rows, columns))
    out[wide] = ((cumulative[:, hi[wide]] - cumulative[:, lo[wide]]) / (hi[wide] - lo[wide])).T
    centres = np.sqrt(edges[:-1] * edges[1:])[~wide]
    if centres.size:
        # Interpolate between bins, leaving out the DC bin (an offset is not a low tone).
        out[~wide] = np.stack([np.interp(centres, freqs[1:], column[1:]) for column in power], axis=1)
    return Spectrogram(10 * np.log10(out + _TINY), edges, duration, sample_rate)
