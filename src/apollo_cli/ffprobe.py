"""What ffprobe says about a file that libsndfile and mutagen cannot read.

Matroska and WebM (what yt-dlp saves Opus and Vorbis in), FLV, MPEG-TS and other
containers only ffmpeg decodes carry no header that mutagen reads: without ffprobe
their codec showed as "unknown", :mod:`apollo_cli.analysis.verdict` judged an Opus
file by its bandwidth alone, a restore's progress bar had no end, and their tags and
cover art were lost. ffprobe reads the container's own statements in a few tens of
milliseconds, without decoding; ffmpeg copies an attached picture out.

What comes from here is estimates (a length for progress, a bitrate for a verdict) and
tags: nothing that changes a restored sample depends on it. Without ffprobe every
function here answers None (or nothing), and the callers go on as before.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: The longest we wait for ffprobe: it reads headers only, so a longer run means a
#: stalled file system or a container it reads to the end; then we go without.
TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class ProbedAudio:
    """The first audio stream of a file, as its container states it. Unknown fields are None."""

    #: The container, e.g. "Matroska", "WebM", "FLV".
    container: str
    #: ffprobe's codec name, e.g. "opus", "vorbis", "aac", "pcm_s16le".
    codec: str | None
    #: The codec's profile, e.g. "LC", "HE-AAC", "HE-AACv2".
    profile: str | None
    #: The audio stream's bitrate as the container states it (Matroska and WebM
    #: usually do not: see :func:`counted_bitrate_kbps`).
    bitrate_kbps: float | None
    #: The container's stated duration, seconds.
    duration: float | None
    #: The file's tags as ffmpeg names them (the container's, then the audio stream's),
    #: without the statistics muxers add to each stream (``BPS``, ``DURATION``, ...).
    tags: tuple[tuple[str, str], ...] = ()
    #: Pictures the file carries (Matroska attachments, MP4 cover streams), to be read
    #: with :func:`attached_picture`.
    pictures: tuple[AttachedPicture, ...] = ()


@dataclass(frozen=True)
class AttachedPicture:
    """A picture stored in the file as a stream of its own."""

    #: The stream's index in the file (ffmpeg's ``0:N``).
    index: int
    #: Its MIME type as the container states it, if it does.
    mime: str | None
    #: Its file name (Matroska attachments have one: ``cover.jpg``, ``small_cover.png``).
    filename: str | None


def find_ffprobe() -> str | None:
    """Path of the ffprobe executable: beside ffmpeg (as builds ship them), else on PATH."""
    from .decoding import find_ffmpeg

    ffmpeg = find_ffmpeg()
    if ffmpeg:
        beside = Path(ffmpeg).with_name("ffprobe" + Path(ffmpeg).suffix)
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
    return shutil.which("ffprobe")


def probe_audio(path: str | os.PathLike[str]) -> ProbedAudio | None:
    """What the container of ``path`` states about its first audio stream, or None.

    None when ffprobe is not installed, cannot read the file, or finds no audio: the
    callers then go on without these facts, as they would without ffprobe.
    """
    p = Path(path)
    try:
        stat = p.stat()
    except OSError:
        return None
    # Keyed by the file's identity and state: inspect and restore both ask for it.
    return _probe(str(p.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _probe(path: str, _size: int, _mtime_ns: int) -> ProbedAudio | None:
    out = _ffprobe(path, "-of", "json", "-show_format", "-show_streams")
    try:
        facts = json.loads(out) if out is not None else None
    except ValueError:
        return None
    return _read(facts, Path(path).suffix.lower()) if isinstance(facts, dict) else None


def counted_bitrate_kbps(path: str | os.PathLike[str], duration: float) -> float | None:
    """The first audio stream's average bitrate over ``duration`` seconds, from its packets' sizes.

    For containers that state none (Matroska, WebM). The file's own average would
    count its cover picture and container overhead: a 45 kbps Opus stream with a
    300 kB cover read 470 kbps. ffprobe reads the packets without decoding them
    (about 0.1 s for 5 minutes of Opus). None without ffprobe or on any failure.
    """
    if duration <= 0:
        return None
    out = _ffprobe(
        Path(path).resolve(), "-select_streams", "a:0", "-show_entries", "packet=size", "-of", "csv=p=0"
    )
    try:
        # A packet with side data (Opus's first) ends its line with a comma.
        sizes = [int(line.split(b",")[0]) for line in out.split()] if out is not None else []
    except ValueError:
        return None
    return round(sum(sizes) * 8 / duration / 1000, 1) if sizes else None


def _ffprobe(path: str | os.PathLike[str], *args: str) -> bytes | None:
    """ffprobe's standard output for ``args`` on ``path``; None if it is missing, fails or stalls."""
    ffprobe = find_ffprobe()
    # "file:" as for ffmpeg (decoding._FfmpegSource): a name is never read as a protocol.
    return _output([ffprobe, "-v", "error", *args, f"file:{path}"]) if ffprobe else None


def attached_picture(path: str | os.PathLike[str], index: int) -> bytes | None:
    """The bytes of the picture stored as stream ``index`` of ``path``, as stored (ffmpeg copies it out)."""
    from .decoding import find_ffmpeg

    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        return None
    url = f"file:{Path(path).resolve()}"
    return _output([ffmpeg, "-nostdin", "-v", "error", "-i", url, "-map", f"0:{index}", "-c", "copy",
                    "-f", "image2pipe", "-"]) or None  # fmt: skip


def _output(cmd: list[str]) -> bytes | None:
    """``cmd``'s standard output; None if it cannot start, fails or runs past :data:`TIMEOUT_SECONDS`."""
    try:
        done = subprocess.run(
            cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


#: Tags a muxer writes about a stream itself (mkvmerge's statistics, ffmpeg's timing):
#: not the music's. Matched on the name before a language suffix (``BPS-eng``).
_STREAM_STATISTICS = {"bps", "duration", "number_of_frames", "number_of_bytes", "creation_time"}


def _tags(*sources: object) -> tuple[tuple[str, str], ...]:
    pairs = []
    for tags in sources:
        for name, value in tags.items() if isinstance(tags, dict) else ():
            base = str(name).lower().partition("-")[0]
            if base in _STREAM_STATISTICS or base.startswith("_statistics_"):
                continue
            pairs.append((str(name), str(value)))
    return tuple(pairs)


def _read(facts: dict[str, object], suffix: str) -> ProbedAudio | None:
    """A :class:`ProbedAudio` from ffprobe's JSON (``-show_format -show_streams``)."""
    audio = next((s for s in _streams(facts) if s.get("codec_type") == "audio"), None)
    form = facts.get("format")
    if audio is None or not isinstance(form, dict):
        return None
    bitrate = _number(audio.get("bit_rate"))
    if bitrate is None:
        tags = audio.get("tags")
        # mkvmerge states each stream's average as a tag.
        bitrate = _number(tags.get("BPS")) if isinstance(tags, dict) else None
    duration = _number(audio.get("duration")) or _number(form.get("duration"))
    profile = audio.get("profile")
    return ProbedAudio(
        container=_container(str(form.get("format_name") or ""), suffix),
        codec=str(audio["codec_name"]) if audio.get("codec_name") else None,
        profile=str(profile) if profile and profile != "unknown" else None,
        bitrate_kbps=round(bitrate / 1000, 1) if bitrate else None,
        duration=duration if duration and duration > 0 else None,
        tags=_tags(form.get("tags"), audio.get("tags")),
        pictures=_pictures(_streams(facts)),
    )


def _pictures(streams: list[dict[str, object]]) -> tuple[AttachedPicture, ...]:
    """The streams that are pictures attached to the file (ffmpeg shows them as video streams)."""
    found = []
    for stream in streams:
        disposition, index = stream.get("disposition"), stream.get("index")
        if stream.get("codec_type") != "video" or not isinstance(index, int):
            continue
        if not (isinstance(disposition, dict) and disposition.get("attached_pic")):
            continue  # a video, not a picture
        tags = stream.get("tags")
        tags = tags if isinstance(tags, dict) else {}
        found.append(AttachedPicture(index, tags.get("mimetype") or None, tags.get("filename") or None))
    return tuple(found)


def _streams(facts: dict[str, object]) -> list[dict[str, object]]:
    """The streams in ffprobe's JSON, each a dict."""
    streams = facts.get("streams")
    return [s for s in streams if isinstance(s, dict)] if isinstance(streams, list) else []


#: ffprobe's format names (the first of its list) as people name the containers.
_CONTAINERS = {
    "matroska": "Matroska",
    "mov": "MP4",
    "ogg": "OGG",
    "asf": "ASF",
    "flv": "FLV",
    "mpegts": "MPEG-TS",
    "avi": "AVI",
    "wav": "WAV",
    "aiff": "AIFF",
    "aac": "ADTS",
    "caf": "CAF",
}


def _container(format_name: str, suffix: str) -> str:
    first = format_name.split(",", maxsplit=1)[0]
    if first == "matroska" and suffix == ".webm":
        return "WebM"  # one demuxer for both; the name tells them apart
    return _CONTAINERS.get(first, first.upper() or "unknown")


def _number(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None
