"""Decode input audio, resample it, and write results safely.

Everything here works on float32 arrays shaped ``(channels, frames)``. Decoding goes
through libsndfile (via soundfile) for WAV, FLAC, OGG, MP3 and AIFF, and falls back to
ffmpeg for every other container (M4A/AAC, Opus, WMA, WebM, ...). Writing is atomic:
a reader never sees a half-written output file.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from mutagen import MutagenError
from mutagen.mp3 import MP3

from .errors import InputError, MissingDependencyError, OutputError

MODEL_SAMPLE_RATE = 44100

# Extensions libsndfile decodes itself; when it rejects one of these, the file is bad
# rather than merely in need of ffmpeg.
_SOUNDFILE_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc"}
)
_OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
_BIT_DEPTHS = {"WAV": (16, 24, 32), "FLAC": (16, 24)}
_FFMPEG_INSTALL_HINT = (
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


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_audio` wrote."""

    path: Path
    clipped_samples: int
    frames: int
    sample_rate: int
    bit_depth: int
    format: str


class _NeedsFfmpeg(Exception):
    """libsndfile cannot decode a file (completely); ``str()`` says why."""

    def __init__(self, reason: str, *, unrecognised: bool) -> None:
        super().__init__(reason)
        self.unrecognised = unrecognised


def find_ffmpeg() -> str | None:
    """Path of the ffmpeg executable, or None; a function so tests can patch it."""
    return shutil.which("ffmpeg")


# --------------------------------------------------------------------------- decoding


def load_audio(path: str | os.PathLike[str]) -> DecodedAudio:
    """Decode an audio file to float32 ``(channels, frames)`` at its own sample rate.

    Raises InputError when the file is missing, empty, not audio, truncated or holds
    non-finite samples, and MissingDependencyError when it needs ffmpeg and ffmpeg is
    not installed.
    """
    p = Path(path)
    _check_readable(p)
    try:
        frames_first, rate = _decode_with_soundfile(p)
    except _NeedsFfmpeg as why:
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            if why.unrecognised and p.suffix.lower() in _SOUNDFILE_SUFFIXES:
                raise InputError(
                    f"cannot read {p}: it is not audio or is corrupt ({why}); "
                    "check the file or re-export it"
                ) from None
            raise MissingDependencyError(
                f"ffmpeg is needed to decode {p} ({why}); {_FFMPEG_INSTALL_HINT}"
            ) from None
        frames_first, rate = _decode_with_ffmpeg(p, ffmpeg)

    if frames_first.shape[0] == 0:
        raise InputError(f"{p} contains no audio (0 frames); choose a file with sound in it")
    bad = frames_first.size - int(np.count_nonzero(np.isfinite(frames_first)))
    if bad:
        raise InputError(
            f"{p} contains {bad} NaN or infinite samples; re-export it from its source"
        )
    return DecodedAudio(np.ascontiguousarray(frames_first.T), int(rate))


def _check_readable(p: Path) -> None:
    """Fail early, with a clear message, on paths that cannot hold audio."""
    if not p.exists():
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


def _decode_with_soundfile(p: Path) -> tuple[np.ndarray, int]:
    """Decode with libsndfile; returns (frames, channels) float32 and the rate."""
    with _native_stderr_silenced():
        try:
            f = sf.SoundFile(p)
        except (sf.LibsndfileError, RuntimeError):
            # libsndfile's own message here is often misleading ("not a regular file").
            raise _NeedsFfmpeg(
                "libsndfile does not recognise its format", unrecognised=True
            ) from None
        with f:
            if f.format == "MP3" and not _mp3_has_length_header(p):
                # Without a Xing/Info frame libmpg123 guesses the length from the first
                # frame's bitrate, and libsndfile silently stops reading there: a VBR file
                # comes back cut short. ffmpeg decodes to the real end of the stream.
                raise _NeedsFfmpeg(
                    "it is an MP3 without a Xing/Info length header", unrecognised=False
                )
            announced, rate = f.frames, f.samplerate
            try:
                data = f.read(dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise InputError(
                    f"{p} is corrupt or truncated ({_one_line(str(exc))}); "
                    "re-download or re-export it"
                ) from None
    # A truncated MP3 opens fine and announces its full length (from the Xing header)
    # but decoding just stops early, with no error: the short read is the only sign.
    if len(data) < announced:
        raise InputError(
            f"{p} is truncated or corrupt: only {len(data) / rate:.2f} s of the "
            f"{announced / rate:.2f} s it announces could be decoded; re-download or re-export it"
        )
    return data, rate


def _mp3_has_length_header(p: Path) -> bool:
    """Whether the MP3 starts with a Xing/Info frame, where libmpg123 reads its length from."""
    try:
        offset = MP3(p).info.frame_offset
        with p.open("rb") as fh:
            fh.seek(offset)
            head = fh.read(64)  # the tag sits 13-38 bytes into the frame
    except (MutagenError, OSError, AttributeError):
        return False
    return b"Xing" in head or b"Info" in head


def _decode_with_ffmpeg(p: Path, ffmpeg: str) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with ffmpeg to float32, keeping its rate and channels."""
    # "file:" stops ffmpeg reading names like "concat:a|b" or "http:x" as protocols; a
    # float WAV on stdout carries rate and channel layout with the full-precision samples.
    url = f"file:{p.resolve()}"
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", url,
           "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", "-"]  # fmt: skip
    try:
        # A session of its own, so a Ctrl-C at the terminal reaches only us: we stop
        # ffmpeg when we stop (subprocess.run kills it on KeyboardInterrupt), and a
        # batch finishing a decode after Ctrl-C does not see a killed ffmpeg as a bad file.
        proc = subprocess.run(cmd, capture_output=True, check=False, start_new_session=True)
    except OSError as exc:
        raise MissingDependencyError(
            f"cannot run ffmpeg ({ffmpeg}) to decode {p}: {exc.strerror or exc}; "
            f"{_FFMPEG_INSTALL_HINT}"
        ) from None
    if proc.returncode == 0:
        try:
            return sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            detail = f"unreadable output: {_one_line(str(exc))}"
    else:
        message = _one_line(proc.stderr.decode("utf-8", "replace")).replace(f"{url}: ", "")
        detail = message or f"exit status {proc.returncode}"
    raise InputError(
        f"cannot decode {p}: it is not audio or is corrupt (ffmpeg: {detail}); check the file"
    )


def _one_line(text: str) -> str:
    """The last non-empty line of a tool's message, so errors stay one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
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


# ------------------------------------------------------------------------- resampling


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 ``(channels, frames)`` audio with soxr's HQ filter.

    Returns the input itself when the rates are equal.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return samples
    # soxr wants (frames, channels).
    frames_first = np.ascontiguousarray(samples.T, dtype=np.float32)
    out = soxr.resample(frames_first, from_rate, to_rate, quality="HQ")
    return np.ascontiguousarray(out.reshape(out.shape[0], -1).T, dtype=np.float32)


# ---------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike[str]) -> str:
    """The output format, "WAV" or "FLAC", from the file's extension (any case)."""
    suffix = Path(path).suffix.lower()
    try:
        return _OUTPUT_FORMATS[suffix]
    except KeyError:
        got = f"'{suffix}'" if suffix else "no extension"
        raise OutputError(
            f"cannot write {path}: {got} is not a supported output format; "
            "use a .wav or .flac file name"
        ) from None


def default_bit_depth(fmt: str) -> int:
    """Default bit depth: 24 for FLAC, 32 (float) for WAV."""
    return {"FLAC": 24, "WAV": 32}[fmt]


def check_output(
    path: str | os.PathLike[str], *, bit_depth: int | None = None, overwrite: bool = False
) -> int:
    """Check that ``path`` can receive a result, before any work is done.

    Validates the format (from the extension) and the bit depth, refuses an
    existing file unless ``overwrite``, and checks that the directory exists.
    Returns the bit depth to write with.
    """
    target = Path(path)
    # A folder where a file is wanted (before the format: "no extension" would mislead).
    # ``Path`` drops a trailing separator, so look at the text as given.
    text = os.fspath(path)
    folder = "it is a directory" if target.is_dir() else None
    if folder is None and text.endswith(tuple(s for s in (os.sep, os.altsep) if s)):
        folder = f"a path ending in '{text[-1]}' names a folder"
    if folder is not None:
        raise OutputError(
            f"cannot write {text}: {folder}, not a file; give an output file name "
            f"such as {target / 'song.flac'} (for a folder of files use apollo batch)"
        )
    fmt = output_format(target)
    bits = default_bit_depth(fmt) if bit_depth is None else bit_depth
    if bits not in _BIT_DEPTHS[fmt]:
        *others, last = _BIT_DEPTHS[fmt]
        allowed = f"{', '.join(map(str, others))} or {last}"
        raise OutputError(
            f"cannot write {target}: {fmt} supports bit depth {allowed}, not {bits}; "
            "choose one of those"
        )
    _check_writable(target, overwrite)
    return bits


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    bit_depth: int | None = None,
    overwrite: bool = False,
    finalize: Callable[[Path], None] | None = None,
) -> WriteResult:
    """Write float ``(channels, frames)`` audio to a WAV or FLAC file, atomically.

    Integer depths (16, 24) are limited to full scale instead of wrapping around, and
    the number of samples that had to be limited is reported; 32-bit WAV is float and
    stored as is. The file appears only once it is complete.

    ``finalize``, if given, is called with the path of the finished temporary file just
    before it is renamed into place (tags are added this way, so the file has them the
    moment it appears). If it raises, nothing is written and the exception propagates.
    """
    target = Path(path)
    fmt = output_format(target)
    bits = check_output(target, bit_depth=bit_depth, overwrite=overwrite)
    if samples.ndim != 2:
        raise ValueError(f"samples must be shaped (channels, frames), got shape {samples.shape}")
    if fmt == "FLAC" and samples.shape[0] > 8:
        raise OutputError(
            f"cannot write {target}: FLAC holds at most 8 channels, this audio has "
            f"{samples.shape[0]}; write a .wav file instead"
        )
    if not np.isfinite(samples).all():
        raise OutputError(
            f"refusing to write {target}: the audio contains NaN or infinite samples; "
            "this is a bug, please report it"
        )

    data, clipped = _to_file_samples(samples, bits)
    subtype = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}[bits]
    tmp = _create_temp_beside(target)
    try:
        sf.write(tmp, data, sample_rate, subtype=subtype, format=fmt)
        if finalize is not None:
            finalize(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        # Including KeyboardInterrupt: never leave a partial file behind.
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, sf.LibsndfileError, RuntimeError)):
            raise OutputError(
                f"cannot write {target}: {_one_line(str(exc))}; check free space and permissions"
            ) from None
        raise
    return WriteResult(target, clipped, int(samples.shape[1]), int(sample_rate), bits, fmt)


def _check_writable(target: Path, overwrite: bool) -> None:
    """Refuse to clobber, and fail before any work when the directory is unusable."""
    parent = target.parent
    if not parent.is_dir():
        # The nearest part of the path that exists: a file there ("file.wav/x.flac")
        # is a mistake of its own, not a folder to create.
        existing = next((p for p in parent.parents if p.exists()), None) if not parent.exists() else parent
        if existing is not None and not existing.is_dir():
            raise OutputError(
                f"cannot write {target}: {existing} is a file, not a folder; "
                "choose an output path inside a folder"
            )
        raise OutputError(
            f"cannot write {target}: directory {parent} does not exist; "
            "create it or choose another output path"
        )
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a directory; choose a file name")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {target}: directory {parent} is not writable; "
            "choose a writable output directory"
        )
    if target.exists() and not overwrite:
        raise OutputError(f"{target} already exists; pass --overwrite to replace it")


def _create_temp_beside(target: Path) -> Path:
    """Create an empty hidden temp file beside ``target``: os.replace needs one filesystem."""
    # O_EXCL with mode 0o666 (not mkstemp's 0o600) so the final file gets the usual
    # umask-derived permissions.
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise OutputError(
            f"cannot write to {target.parent}: {exc.strerror or exc}; "
            "choose a writable output directory"
        ) from None
    return tmp


def _to_file_samples(samples: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Convert (C, S) float audio to the (S, C) array soundfile writes, and count clipped samples.

    Integer PCM is quantised here rather than by libsndfile, which scales by 2**(n-1) - 1
    on write but 2**(n-1) on read, and wraps values beyond full scale. The conversion
    runs a block at a time into the result, so a long file costs one extra copy of
    itself, not four.
    """
    if bits == 32:
        return np.ascontiguousarray(samples.T, dtype=np.float32), 0
    scale = float(2 ** (bits - 1))
    top = (scale - 1) / scale  # the largest positive value the format holds
    quantised = np.empty((samples.shape[1], samples.shape[0]), np.int16 if bits == 16 else np.int32)
    clipped = 0
    for start in range(0, samples.shape[1], _CONVERT_BLOCK):
        block = np.array(samples[:, start : start + _CONVERT_BLOCK].T, dtype=np.float32, order="C")
        clipped += int(np.count_nonzero((block > top) | (block < -1.0)))
        np.clip(block, -1.0, top, out=block)
        block *= scale  # exact in float32: scaling by a power of two
        quantised[start : start + len(block)] = np.rint(block, out=block)
    if bits == 24:
        quantised <<= 8  # libsndfile writes the top 24 bits of int32 samples
    return quantised, clipped


_CONVERT_BLOCK = 1 << 16  # frames
