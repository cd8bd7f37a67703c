"""Whether restoration is likely to help a file: its measured bandwidth read against its codec."""

from __future__ import annotations

from dataclasses import dataclass

from .bandwidth import FULL_BAND_HZ, Bandwidth
from .codecs import (
    MP3_LOWPASS_HZ,
    OPUS_BANDWIDTH_HZ,
    OPUS_TRANSPARENT_KBPS_PER_CHANNEL,
    CodecInfo,
    aac_lowpass_range,
    expected_lowpass_hz,
    typical_mp3_bitrates,
)


@dataclass(frozen=True)
class Verdict:
    """Whether restoration is likely to help a file, and why, in one sentence."""

    #: True: likely to help; False: little to gain; None: cannot tell (silence).
    helps: bool | None
    message: str


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
                f"restoration likely to help: {_codec_phrase(codec)} cuts at about "
                f"{expected / 1000:.1f} kHz, "
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
        source = (
            f"{_codec_phrase(codec)} (LAME's usual lowpass at that bitrate: {lame_default / 1000:.1f} kHz)"
        )
    elif aac is not None:
        low, high = (f"{hz / 1000:.1f}" for hz in aac)
        span = low if low == high else f"{low}–{high}"
        source = f"{_codec_phrase(codec)} (AAC encoders cut at {span} kHz at that bitrate)"
    elif codec.codec == "Opus" and opus_mode is not None and opus_mode != "FB":
        mode_khz = OPUS_BANDWIDTH_HZ[opus_mode] / 1000
        source = f"{_codec_phrase(codec)} (coded in Opus's {opus_mode} mode, {mode_khz:g} kHz)"
    elif codec.codec == "Opus":
        source = (
            f"{_codec_phrase(codec)} (Opus itself reaches 20 kHz: an earlier lossy source, "
            f"{_typical(bandwidth.hz)})"
        )
    elif codec.codec:
        source = f"{_codec_phrase(codec)} ({_typical(bandwidth.hz)})"
    else:
        source = _typical(bandwidth.hz)
    return Verdict(True, f"restoration likely to help: bandwidth {bw}, {source}")


def _codec_phrase(codec: CodecInfo) -> str:
    text = codec.codec or codec.container or "unknown codec"
    if codec.bitrate_kbps:
        text += f" {codec.bitrate_kbps:.0f} kbps"
    if codec.bitrate_mode:
        text += f" {codec.bitrate_mode}"
    return text
