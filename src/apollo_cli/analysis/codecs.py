"""What a file's headers say about its encoding, and what each lossy codec is known to do.

:func:`probe_codec` reads codec, bitrate and encoder facts (mutagen, libsndfile)
without decoding audio. The tables say where MP3, AAC and Opus encoders cut the band
at a given bitrate; :func:`expected_lowpass_hz`, :func:`aac_lowpass_range` and
:func:`typical_mp3_bitrates` read them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    "FDK AAC": {24: 6400, 32: 8020, 40: 9640, 48: 11345, 56: 13050, 64: 13453, 80: 14260, 96: 14880,
                112: 15500, 128: 15810, 144: 16120, 160: 16413, 192: 17000, 256: 17000, 320: 17000},
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


# ------------------------------------------------------------------------------ probing


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
# ffprobe's codec names, for containers only ffmpeg reads (Matroska, WebM, ...):
# (codec name, lossless?). Names not here are shown as ffprobe gives them.
_FFPROBE_CODECS = {
    "mp3": ("MP3", False),
    "mp2": ("MP2", False),
    "aac": ("AAC", False),
    "opus": ("Opus", False),
    "vorbis": ("Vorbis", False),
    "ac3": ("AC-3", False),
    "eac3": ("E-AC-3", False),
    "dts": ("DTS", False),
    "wmav1": ("WMA", False),
    "wmav2": ("WMA", False),
    "speex": ("Speex", False),
    "flac": ("FLAC", True),
    "alac": ("ALAC", True),
    "wavpack": ("WavPack", True),
    "tta": ("TTA", True),
    "ape": ("Monkey's Audio", True),
    "truehd": ("TrueHD", True),
    "mlp": ("MLP", True),
}
#: ffprobe's names of the AAC profiles that rebuild the top octave (spectral band
#: replication), which are also the codec names here.
_FFPROBE_SBR_PROFILES = ("HE-AAC", "HE-AACv2")


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
        if (
            self.codec in ("AAC", "HE-AAC", "HE-AACv2", "ALAC")
            and self.container
            and self.container != self.codec
        ):
            parts = [f"{self.codec} ({self.container})"]
        if self.sample_format:
            parts.append(self.sample_format)
        elif self.bitrate_kbps:
            parts.append(f"{self.bitrate_kbps:.0f} kbps")
        if self.bitrate_mode and not self.lossless:
            parts.append(self.bitrate_mode)
        return " ".join(parts)


def probe_codec(path: str | os.PathLike[str]) -> CodecInfo:
    """Read codec, bitrate and encoder facts from a file's headers (libsndfile, mutagen, ffprobe).

    ffprobe is asked only about files the other two cannot read (Matroska, WebM, ...),
    and only when it is installed. Never decodes audio and never fails on an unknown
    format: fields it cannot find are None.
    """
    import soundfile as sf

    p = Path(path)
    container = codec = sample_format = None
    lossless: bool | None = None
    try:
        info = sf.info(os.fspath(p))
    except Exception:  # noqa: BLE001 - libsndfile does not know the format; mutagen may
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
        from ..tags import open_by_content

        tagged = open_by_content(p)  # by content: a FLAC named .mp3 is a FLAC
    except Exception:  # noqa: BLE001 - mutagen raises its own errors, and OSError, on foreign files
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
    elif info is None:
        return _ffprobe_codec(p)
    return CodecInfo(container, codec, lossless, sample_format=sample_format, **facts)


def _ffprobe_codec(p: Path) -> CodecInfo:
    """What ffprobe says of a file neither libsndfile nor mutagen reads (all None without it)."""
    from ..ffprobe import counted_bitrate_kbps, probe_audio

    probed = probe_audio(p)
    if probed is None:
        return CodecInfo(None, None, None)
    name = probed.codec or ""
    codec, lossless = _FFPROBE_CODECS.get(name, (name or None, None))
    if name.startswith("pcm_"):
        codec, lossless = "PCM", True
    if codec == "AAC" and probed.profile in _FFPROBE_SBR_PROFILES:
        codec = probed.profile
    bitrate = None
    if lossless is False:
        bitrate = probed.bitrate_kbps
        if bitrate is None and probed.duration:
            bitrate = counted_bitrate_kbps(p, probed.duration)
    return CodecInfo(probed.container, codec, lossless, bitrate_kbps=bitrate)


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
    except Exception:  # noqa: BLE001, S110 - only a hint: without a readable LAME header there is none
        pass
    return facts


# ------------------------------------------------------------------ known encoder cuts


def typical_mp3_bitrates(hz: float, tolerance: float = 600.0) -> list[int]:
    """MP3 bitrates (kbps) whose LAME default lowpass is within ``tolerance`` Hz of ``hz``.

    The nearest one when none is that close.
    """
    close = [kbps for kbps, lowpass in MP3_LOWPASS_HZ.items() if abs(lowpass - hz) <= tolerance]
    return close or [min(MP3_LOWPASS_HZ, key=lambda kbps: abs(MP3_LOWPASS_HZ[kbps] - hz))]


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
