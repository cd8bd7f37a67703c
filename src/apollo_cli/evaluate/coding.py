"""Encode a segment with a real lossy encoder at a bitrate, and decode it again.

Every codec goes through ffmpeg, which asks its encoder for the exact bitrate: LAME
(``libmp3lame``) for MP3 at constant bitrate, FFmpeg's own ``aac`` encoder for AAC-LC
in M4A, ``libopus`` for Opus in Ogg. The decoders (libsndfile's mpg123, ffmpeg) drop
each encoder's priming samples, so the decoded audio starts with the clean segment;
:mod:`.alignment` checks that.

MP3 at 44.1 kHz (MPEG-1 Layer III) has no bitrate under 32 kbps: lower bitrates are
encoded at 22.05 kHz (MPEG-2), as LAME itself would resample. Opus works at 48 kHz.
Decoded audio is brought back to 44.1 kHz.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import audio
from ..decoding import FFMPEG_INSTALL_HINT, find_ffmpeg, one_line
from ..errors import InputError, MissingDependencyError, OptionError

#: MPEG-1 Layer III bitrates (kbps), for 32, 44.1 and 48 kHz.
MP3_MPEG1_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
#: MPEG-2 Layer III bitrates (kbps), for 16, 22.05 and 24 kHz.
MP3_MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)


@dataclass(frozen=True)
class Codec:
    """A lossy codec as ffmpeg runs it."""

    name: str
    #: ffmpeg's encoder.
    encoder: str
    #: ffmpeg's muxer, and the file extension (decoders look at it).
    muxer: str
    extension: str
    #: Bitrates (kbps) the encoder takes, inclusive.
    lowest: int
    highest: int
    #: Extra ffmpeg output arguments.
    arguments: tuple[str, ...] = ()

    def sample_rate(self, kbps: int) -> int:
        """The rate the encoder is fed at ``kbps``."""
        if self.name == "opus":
            return 48000
        if self.name == "mp3" and kbps not in MP3_MPEG1_KBPS:
            return 22050
        return audio.MODEL_SAMPLE_RATE


CODECS: dict[str, Codec] = {
    "mp3": Codec("mp3", "libmp3lame", "mp3", ".mp3", 8, 320),
    "aac": Codec("aac", "aac", "ipod", ".m4a", 16, 512),
    "opus": Codec("opus", "libopus", "ogg", ".opus", 6, 510),
}
#: What the README's bitrate analysis uses (the Apollo paper's MP3 bitrates).
DEFAULT_BITRATES = (24, 32, 48, 64, 96, 128)


def get_codec(name: str) -> Codec:
    """The codec called ``name`` (``mp3``, ``aac``, ``opus``; any case), or OptionError."""
    try:
        return CODECS[name.strip().lower()]
    except KeyError:
        raise OptionError(f"unknown codec '{name}'; use {', '.join(CODECS)}") from None


def check_bitrates(codec: Codec, bitrates: Sequence[int]) -> tuple[int, ...]:
    """The bitrates (kbps) sorted and without repeats, each one the codec can encode, or OptionError."""
    if not bitrates:
        raise OptionError("no bitrate given; pass --bitrates such as 24,32,48,64,96,128")
    for kbps in bitrates:
        if not codec.lowest <= kbps <= codec.highest:
            raise OptionError(
                f"{codec.name} has no {kbps} kbps; use bitrates from {codec.lowest} to {codec.highest}"
            )
        if codec.name == "mp3" and kbps not in MP3_MPEG1_KBPS + MP3_MPEG2_KBPS:
            valid = ", ".join(str(b) for b in sorted(set(MP3_MPEG1_KBPS + MP3_MPEG2_KBPS)))
            raise OptionError(f"MP3 has no {kbps} kbps; use one of {valid}")
    return tuple(sorted(set(bitrates)))


def parse_bitrates(text: str) -> tuple[int, ...]:
    """``24,32,48`` (``k`` or ``kbps`` after a number is allowed) as kbps, or OptionError."""
    values = []
    for word in text.replace(" ", "").split(","):
        digits = word.lower().removesuffix("kbps").removesuffix("k")
        if not digits.isdigit() or int(digits) == 0:
            raise OptionError(f"--bitrates must be numbers of kbps such as 24,32,64, not '{text}'")
        values.append(int(digits))
    return tuple(values)


def require_encoder(codec: Codec) -> str:
    """The ffmpeg executable, after checking it has ``codec``'s encoder; else one line on what to install."""
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        raise MissingDependencyError(
            f"encoding {codec.name.upper()} needs ffmpeg (with {codec.encoder}); {FFMPEG_INSTALL_HINT}"
        )
    try:
        listing = subprocess.run(
            [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except OSError as exc:
        raise MissingDependencyError(f"cannot run {ffmpeg} ({exc}); {FFMPEG_INSTALL_HINT}") from None
    if not any(line.split()[1:2] == [codec.encoder] for line in listing.splitlines()):
        raise MissingDependencyError(
            f"this ffmpeg ({ffmpeg}) has no {codec.encoder} encoder for {codec.name.upper()}; "
            "install a full build (Debian and Homebrew's ffmpeg have it)"
        )
    return ffmpeg


def encode(ffmpeg: str, samples: np.ndarray, sample_rate: int, codec: Codec, kbps: int, target: Path) -> Path:
    """Encode float32 ``(channels, frames)`` audio at ``kbps`` into ``target`` (atomically)."""
    channels = samples.shape[0]
    data = np.ascontiguousarray(samples.T, dtype="<f4").tobytes()
    with audio.atomic_output(target) as tmp:
        command = [
            ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y",
            "-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0",
            "-c:a", codec.encoder, "-b:a", f"{kbps}k", "-ar", str(codec.sample_rate(kbps)),
            *codec.arguments, "-f", codec.muxer, os.fspath(tmp),
        ]  # fmt: skip
        done = subprocess.run(command, input=data, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            why = one_line(done.stderr.decode("utf-8", "replace")) or f"exit status {done.returncode}"
            raise InputError(f"ffmpeg could not encode {codec.name.upper()} at {kbps} kbps: {why}")
    return target


def decode(path: Path) -> np.ndarray:
    """Decode an encoded file to float32 ``(channels, frames)`` at 44.1 kHz."""
    decoded = audio.load_audio(path)
    return audio.resample(decoded.samples, decoded.sample_rate, audio.MODEL_SAMPLE_RATE)
