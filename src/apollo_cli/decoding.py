"""Open input audio and read it a block at a time, whatever its length.

:func:`open_audio` checks everything that can be checked cheaply (the file exists, is
readable, is audio, is not visibly truncated) and returns an :class:`AudioSource`
whose :meth:`~AudioSource.blocks` yields float32 ``(channels, frames)`` blocks, so a
three-hour file costs no more memory than a three-minute one. libsndfile (through
soundfile) reads WAV, FLAC, OGG, MP3 and AIFF; every other container (M4A/AAC, Opus
in Matroska, WMA, WebM, ...) is decoded by ffmpeg through a pipe. ``-`` reads
standard input (spooled to a temporary file first, since most formats need seeking).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import numpy as np
import soundfile as sf
from mutagen import MutagenError
from mutagen.mp3 import MP3

from .errors import InputError, MissingDependencyError

#: Frames per block read from a decoder: large enough that per-call overhead is
#: negligible, small enough to be a sliver of memory (64 Ki frames of stereo: 512 KiB).
BLOCK_FRAMES = 1 << 16

#: What ``-`` means as an input or output path.
STDIO = "-"

# Extensions libsndfile decodes itself; when it rejects one of these, the file is bad
# rather than merely in need of ffmpeg.
_SOUNDFILE_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"}
)
FFMPEG_INSTALL_HINT = (
    "install it with 'apt-get install ffmpeg', 'brew install ffmpeg' or from https://ffmpeg.org"
)


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded audio: float32 ``samples`` shaped (channels, frames), C-contiguous."""

    samples: np.ndarray
    sample_rate: int

    @property
    def frames(self) -> int:
        """Number of sample frames (samples per channel)."""
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[0])


class AudioSource:
    """An opened input: its rate, channels and expected length, read by :meth:`blocks`.

    Use it as a context manager (or call :meth:`close`): a decoder process or an open
    file stays behind it until then.
    """

    path: Path
    sample_rate: int
    channels: int
    #: Frames the file says it holds (exact for libsndfile's formats; an estimate from
    #: the container for ffmpeg's; None when unknown). For progress bars and checks.
    frames: int | None
    #: Whether :attr:`frames` is the exact count (a measurement spread over the whole
    #: length needs it exact, or counts first).
    frames_exact: bool = True

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Yield float32 ``(channels, n)`` blocks in order until the end of the audio.

        Raises :class:`InputError` at the block where a problem shows (non-finite
        samples, a stream that stops short of what it announced, a decoder error), and
        when the file turns out to hold no audio at all.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or decoder."""

    @property
    def duration(self) -> float | None:
        """Expected length in seconds, if known."""
        return None if self.frames is None else self.frames / self.sample_rate

    def __enter__(self) -> AudioSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _checked(self, raw: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """Common checks on every block: finite samples; at least one frame in all."""
        total = 0
        for frames_first in raw:
            if not len(frames_first):
                continue
            bad = frames_first.size - int(np.count_nonzero(np.isfinite(frames_first)))
            if bad:
                first = total / self.sample_rate
                # Count the rest too, so the message says how much of the file is damaged.
                bad += sum(block.size - int(np.count_nonzero(np.isfinite(block))) for block in raw)
                raise InputError(
                    f"{self.path} contains {bad} NaN or infinite samples (from {first:.2f} s on); "
                    "re-export it from its source"
                )
            total += len(frames_first)
            yield np.ascontiguousarray(frames_first.T, dtype=np.float32)
        if total == 0:
            raise InputError(f"{self.path} contains no audio (0 frames); choose a file with sound in it")


def find_ffmpeg() -> str | None:
    """Path of the ffmpeg executable, or None; a function so tests can patch it."""
    return shutil.which("ffmpeg")


def open_audio(path: str | os.PathLike[str]) -> AudioSource:
    """Open an audio file for reading block by block, after the cheap checks.

    Raises :class:`InputError` when the file is missing, a directory, unreadable, empty,
    not audio, or visibly truncated (a WAV/AIFF whose data stops before its header's
    length, an Ogg stream without its last page, an MP3 shorter than its Xing header
    says), and :class:`MissingDependencyError` when it needs ffmpeg and ffmpeg is not
    installed. Nothing is decoded beyond the first bytes.
    """
    p = Path(path)
    _check_readable(p)
    try:
        return _SoundfileSource(p)
    except _NeedsFfmpeg as why:
        if why.unrecognised and _only_id3(p):
            raise InputError(f"{p} holds tags but no audio; re-download or re-export it") from None
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            if why.unrecognised and p.suffix.lower() in _SOUNDFILE_SUFFIXES:
                raise InputError(
                    f"cannot read {p}: it is not audio or is corrupt ({why}); check the file or re-export it"
                ) from None
            raise MissingDependencyError(
                f"ffmpeg is needed to decode {p} ({why}); {FFMPEG_INSTALL_HINT}"
            ) from None
        return _FfmpegSource(p, ffmpeg)


def load_audio(path: str | os.PathLike[str]) -> DecodedAudio:
    """Decode a whole audio file to float32 ``(channels, frames)`` at its own sample rate.

    Raises as :func:`open_audio` and :meth:`AudioSource.blocks` do. For long files
    prefer :func:`open_audio`, which holds one block at a time.
    """
    with open_audio(path) as source:
        parts = list(source.blocks())
        rate = source.sample_rate
    samples = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    return DecodedAudio(np.ascontiguousarray(samples), int(rate))


@contextlib.contextmanager
def spooled_stdin(stream: BinaryIO | None = None) -> Iterator[Path]:
    """Copy standard input to a temporary file (removed afterwards) and yield its path.

    Most containers need seeking (headers at the end, Xing frames, FLAC seek tables),
    which a pipe cannot do; a file on disk can, and costs no memory.
    """
    source = stream if stream is not None else sys.stdin.buffer
    if source.isatty():
        raise InputError("'-' reads audio from standard input, but it is a terminal; pipe a file in")
    fd, name = tempfile.mkstemp(prefix="apollo-stdin-", suffix=".audio")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as spool:
            shutil.copyfileobj(source, spool, 1 << 20)
        yield path
    finally:
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------- checks


def _check_readable(p: Path) -> None:
    """Fail early, with a clear message, on paths that cannot hold audio."""
    if not p.exists():
        if p.is_symlink():
            raise InputError(f"input file {p} is a broken symbolic link; check what it points to")
        raise InputError(f"input file {p} does not exist; check the path")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not an audio file; pass a file inside it")
    try:
        with p.open("rb") as fh:
            empty = not fh.read(1)
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}; check its permissions") from None
    if empty:
        raise InputError(f"{p} is empty (0 bytes); re-download or re-export it")


def _truncation(p: Path, fmt: str) -> str | None:
    """Why the file is visibly cut short, judged from its container alone; None if it is not."""
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            if fmt in ("WAV", "WAVEX"):
                return _riff_truncation(fh, size)
            if fmt in ("AIFF",):
                return _aiff_truncation(fh, size)
            if fmt == "OGG":
                return _ogg_truncation(fh, size)
    except (OSError, struct.error):
        return None
    return None


def _riff_truncation(fh: BinaryIO, size: int) -> str | None:
    head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None  # RF64, W64: sizes elsewhere; libsndfile checks those
    return _data_chunk_truncation(fh, size, "<4sI", b"data", "data")


def _aiff_truncation(fh: BinaryIO, size: int) -> str | None:
    head = fh.read(12)
    if head[:4] != b"FORM":
        return None
    return _data_chunk_truncation(fh, size, ">4sI", b"SSND", "sound data")


def _data_chunk_truncation(fh: BinaryIO, size: int, layout: str, data: bytes, what: str) -> str | None:
    """Walk an IFF-style file's chunks from byte 12 to ``data``; say if it is cut short."""
    position = 12
    while position + 8 <= size:
        fh.seek(position)
        chunk, length = struct.unpack(layout, fh.read(8))
        if chunk == data:
            have = size - position - 8
            # 0 and 0xFFFFFFFF: a streaming writer that never went back to fill in the size.
            if length not in (0, 0xFFFFFFFF) and have < length:
                return f"its {what} stops after {have} of the {length} bytes its header announces"
            return None
        position += 8 + length + (length & 1)
    return None


def _ogg_truncation(fh: BinaryIO, size: int) -> str | None:
    """An Ogg stream ends with a page flagged end-of-stream; a cut file ends without one."""
    tail_start = max(0, size - (1 << 16))
    fh.seek(tail_start)
    tail = fh.read()
    last = tail.rfind(b"OggS")
    if last < 0 or last + 27 > len(tail):
        return "its last Ogg page is missing"
    header_type = tail[last + 5]
    segments = tail[last + 26]
    lacing = tail[last + 27 : last + 27 + segments]
    complete = len(lacing) == segments and last + 27 + segments + sum(lacing) <= len(tail)
    if not header_type & 0x04 or not complete:
        return "its Ogg stream stops without its final page"
    return None


class _MPEGInfo(Protocol):
    """What we read of mutagen's ``MPEGInfo``.

    ``frame_offset`` is copied in from the first frame at run time, so mutagen's
    class does not declare it (hence the ``AttributeError`` the callers catch).
    """

    frame_offset: int
    length: float


def _mpeg_info(p: Path) -> _MPEGInfo:
    """The stream information mutagen reads from an MP3 (raises what :class:`MP3` raises)."""
    # mutagen declares FileType.info as None; an MP3 that loads always has its MPEGInfo.
    return cast(_MPEGInfo, MP3(p).info)


def _mp3_truncation(p: Path) -> str | None:
    """An MP3 whose Xing/Info header announces more bytes than the file holds."""
    try:
        info = _mpeg_info(p)
        offset = info.frame_offset
        size = p.stat().st_size
        with p.open("rb") as fh:
            fh.seek(offset)
            head = fh.read(200)
    except (MutagenError, OSError, AttributeError):
        return None
    for tag in (b"Xing", b"Info"):
        at = head.find(tag)
        if at < 0:
            continue
        flags = struct.unpack(">I", head[at + 4 : at + 8])[0]
        field = at + 8 + (4 if flags & 1 else 0)
        if flags & 2 and field + 4 <= len(head):
            announced = struct.unpack(">I", head[field : field + 4])[0]
            have = size - offset
            # Encoders count the Xing frame itself (or not): allow a frame's slack.
            if announced and have + 2048 < announced:
                seconds = float(info.length)
                return (
                    f"only about {seconds * have / announced:.2f} s of the {seconds:.2f} s it announces "
                    "are in the file"
                )
    return None


def mp3_has_length_header(p: Path) -> bool:
    """Whether the MP3 starts with a Xing/Info frame, where libmpg123 reads its length from."""
    try:
        offset = _mpeg_info(p).frame_offset
        with p.open("rb") as fh:
            fh.seek(offset)
            head = fh.read(64)  # the tag sits 13-38 bytes into the frame
    except (MutagenError, OSError, AttributeError):
        return False
    return b"Xing" in head or b"Info" in head


def _truncated_error(p: Path, why: str) -> InputError:
    return InputError(f"{p} is truncated or corrupt: {why}; re-download or re-export it")


# ------------------------------------------------------------------------------ libsndfile


class _NeedsFfmpeg(Exception):
    """libsndfile cannot decode a file (completely); ``str()`` says why."""

    def __init__(self, reason: str, *, unrecognised: bool) -> None:
        super().__init__(reason)
        self.unrecognised = unrecognised


class _SoundfileSource(AudioSource):
    """A file libsndfile decodes itself."""

    def __init__(self, p: Path) -> None:
        self.path = p
        with native_stderr_silenced():
            try:
                handle = sf.SoundFile(p)
            except (sf.LibsndfileError, RuntimeError):
                # libsndfile's own message here is often misleading ("not a regular file").
                raise _NeedsFfmpeg("libsndfile does not recognise its format", unrecognised=True) from None
        self._file = handle
        try:
            if handle.format == "MP3":
                if not mp3_has_length_header(p):
                    # Without a Xing/Info frame libmpg123 guesses the length from the first
                    # frame's bitrate, and libsndfile silently stops reading there: a VBR file
                    # comes back cut short. ffmpeg decodes to the real end of the stream.
                    raise _NeedsFfmpeg("it is an MP3 without a Xing/Info length header", unrecognised=False)
                why = _mp3_truncation(p)
            else:
                why = _truncation(p, handle.format)
            if why:
                raise _truncated_error(p, why)
            if handle.frames == 0 and handle.format == "MP3" and _has_id3(p):
                raise InputError(f"{p} holds tags but no audio; re-download or re-export it")
        except BaseException:
            handle.close()
            raise
        self.sample_rate = int(handle.samplerate)
        self.channels = int(handle.channels)
        self.frames = int(handle.frames)

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        return self._checked(self._read(frames))

    def _read(self, frames: int) -> Iterator[np.ndarray]:
        read = 0
        while True:
            # Silenced per read only: a long restore prints its progress to fd 2 meanwhile.
            with native_stderr_silenced():
                try:
                    data = self._file.read(frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise InputError(
                        f"{self.path} is corrupt or truncated ({one_line(str(exc))}); re-download or re-export it"
                    ) from None
            if not len(data):
                break
            read += len(data)
            yield data
        # A truncated MP3 opens fine and announces its full length (from the Xing header)
        # but decoding just stops early, with no error: the short read is the only sign.
        if self.frames and read < self.frames:
            rate = self.sample_rate
            raise InputError(
                f"{self.path} is truncated or corrupt: only {read / rate:.2f} s of the "
                f"{self.frames / rate:.2f} s it announces could be decoded; re-download or re-export it"
            )

    def close(self) -> None:
        self._file.close()


def _only_id3(p: Path) -> bool:
    """Whether the file is an ID3 tag with nothing (or less than one MP3 frame) after it."""
    try:
        with p.open("rb") as fh:
            head = fh.read(10)
        size = p.stat().st_size
    except OSError:
        return False
    if len(head) < 10 or head[:3] != b"ID3":
        return False
    # The tag's size is a 28-bit "synchsafe" integer: 7 bits in each of four bytes.
    body = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    end = 10 + body + (10 if head[5] & 0x10 else 0)
    return size - end < 128  # no room for even one MPEG frame (or just an ID3v1 tag)


def _has_id3(p: Path) -> bool:
    with contextlib.suppress(OSError), p.open("rb") as fh:
        return fh.read(3) == b"ID3"
    return False


# ---------------------------------------------------------------------------------- ffmpeg


#: The stream ffmpeg decodes: a file's first audio stream (its others, and video, are ignored).
AUDIO_STREAM = "0:a:0"


class _FfmpegSource(AudioSource):
    """Any other container, decoded by ffmpeg to 32-bit float WAV on a pipe."""

    def __init__(self, p: Path, ffmpeg: str) -> None:
        self.path = p
        # "file:" stops ffmpeg reading names like "concat:a|b" or "http:x" as protocols; a
        # float WAV on stdout carries rate and channel layout with the full-precision samples.
        self._url = f"file:{p.resolve()}"
        cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", self._url,
               "-map", AUDIO_STREAM, "-c:a", "pcm_f32le", "-f", "wav", "-"]  # fmt: skip
        # stderr to a file, not a pipe: a damaged stream can print more than a pipe holds.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the decoder; close() closes it
        try:
            # A session of its own, so a Ctrl-C at the terminal reaches only us: we stop
            # ffmpeg when we stop, and a batch finishing a decode after Ctrl-C does not
            # see a killed ffmpeg as a bad file.
            self._proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=self._errors, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            self._errors.close()
            raise MissingDependencyError(
                f"cannot run ffmpeg ({ffmpeg}) to decode {p}: {exc.strerror or exc}; {FFMPEG_INSTALL_HINT}"
            ) from None
        try:
            self.channels, self.sample_rate = self._read_header()
        except BaseException:
            self.close()
            raise
        self.frames = _container_frames(p, self.sample_rate)
        self.frames_exact = False  # the container's duration, rounded: an estimate

    def _fail(self) -> InputError:
        """The error for a stream ffmpeg could not decode, with ffmpeg's own last line."""
        code = self._proc.wait()
        self._errors.seek(0)
        said = self._errors.read().decode("utf-8", "replace")
        if f"Stream map '{AUDIO_STREAM}' matches no streams" in said:
            # A video without sound, a subtitle file: ffmpeg's last line is only a hint
            # about its map syntax ("add a trailing '?'"), which says nothing to a user.
            return InputError(f"{self.path} has no audio stream; choose a file with sound in it")
        message = one_line(said).replace(f"{self._url}: ", "")
        detail = message or f"exit status {code}"
        return InputError(
            f"cannot decode {self.path}: it is not audio or is corrupt (ffmpeg: {detail}); check the file"
        )

    def _read_exact(self, n: int) -> bytes:
        assert self._proc.stdout is not None
        data = self._proc.stdout.read(n)
        return data if data is not None else b""

    def _read_header(self) -> tuple[int, int]:
        """Parse the WAV header ffmpeg writes (sizes unknown on a pipe) up to the data chunk."""
        head = self._read_exact(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise self._fail()
        channels = rate = 0
        while True:
            chunk = self._read_exact(8)
            if len(chunk) < 8:
                raise self._fail()
            name, length = struct.unpack("<4sI", chunk)
            if name == b"data":
                break
            body = self._read_exact(length + (length & 1))
            if name == b"fmt ":
                _tag, channels, rate = struct.unpack("<HHI", body[:8])
        if not channels or not rate:
            raise self._fail()
        return channels, rate

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        return self._checked(self._read(frames))

    def _read(self, frames: int) -> Iterator[np.ndarray]:
        frame_bytes = 4 * self.channels
        leftover = b""
        while True:
            data = leftover + self._read_exact(frames * frame_bytes - len(leftover))
            whole = len(data) - len(data) % frame_bytes
            if whole:
                yield np.frombuffer(data[:whole], dtype="<f4").reshape(-1, self.channels)
            leftover = data[whole:]
            if len(data) < frames * frame_bytes:
                break
        if self._proc.wait() != 0:
            raise self._fail()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._errors.close()


def _container_frames(p: Path, rate: int) -> int | None:
    """The length the container states (for progress), or None: mutagen's, else ffprobe's."""
    try:
        import mutagen

        info = mutagen.File(p)
        length = getattr(getattr(info, "info", None), "length", None)
    except Exception:  # noqa: BLE001 - an estimate only: any failure means "unknown"
        length = None
    if not length:
        # Matroska and WebM state a duration that mutagen does not read.
        from .ffprobe import probe_audio

        probed = probe_audio(p)
        length = probed.duration if probed else None
    return round(length * rate) if length else None


def one_line(text: str) -> str:
    """The last non-empty line of a tool's message, so errors stay one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration.

    libmpg123 (inside libsndfile) prints resync notes and warnings straight to fd 2
    on damaged MP3s; our InputError already says what is wrong, in one line.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (daemonised): nothing to silence
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
