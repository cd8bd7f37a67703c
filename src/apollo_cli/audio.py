"""Resample audio, and write results safely, whole or a block at a time.

Everything here works on float32 arrays shaped ``(channels, frames)``. Reading lives in
:mod:`apollo_cli.decoding` (re-exported here). Writing is atomic: a reader never sees a
half-written output file, and :class:`AudioWriter` writes a result block by block into
a hidden temporary file beside its target, so no output is ever held whole in memory.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf
import soxr

from .decoding import (  # noqa: F401 - re-exported: the audio module's public reading API
    BLOCK_FRAMES,
    FFMPEG_INSTALL_HINT,
    AudioSource,
    DecodedAudio,
    find_ffmpeg,
    load_audio,
    native_stderr_silenced,
    one_line,
    open_audio,
)
from .errors import OptionError, OutputError

MODEL_SAMPLE_RATE = 44100

#: The output formats, by file extension (lower case). ``--format`` names them in lower
#: case without the dot (``apollo_cli.batch.OUTPUT_FORMATS`` is that view of this table).
OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
#: The bit depths each output format holds, the default (the deepest) last.
BIT_DEPTHS = {"WAV": (16, 24, 32), "FLAC": (16, 24)}


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_audio` wrote."""

    path: Path
    clipped_samples: int
    frames: int
    sample_rate: int
    bit_depth: int
    format: str


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


def resampled(
    blocks: Iterable[np.ndarray], from_rate: int, to_rate: int, channels: int
) -> Iterator[np.ndarray]:
    """Resample a stream of float32 ``(channels, n)`` blocks with soxr's HQ filter.

    Block by block through soxr's stream API, whose output equals :func:`resample` on the
    whole signal exactly; the blocks are passed through untouched when the rates are equal.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        yield from blocks
        return
    stream = soxr.ResampleStream(from_rate, to_rate, channels, dtype="float32", quality="HQ")
    for block in blocks:
        out = stream.resample_chunk(np.ascontiguousarray(block.T), last=False)
        if len(out):
            yield np.ascontiguousarray(out.reshape(len(out), -1).T)
    out = stream.resample_chunk(np.zeros((0, channels), np.float32), last=True)
    if len(out):
        yield np.ascontiguousarray(out.reshape(len(out), -1).T)


# ---------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike[str]) -> str:
    """The output format, "WAV" or "FLAC", from the file's extension (any case)."""
    suffix = Path(path).suffix.lower()
    try:
        return OUTPUT_FORMATS[suffix]
    except KeyError:
        got = f"'{suffix}'" if suffix else "no extension"
        raise OutputError(
            f"cannot write {path}: {got} is not a supported output format; use a .wav or .flac file name"
        ) from None


def default_bit_depth(fmt: str) -> int:
    """Default bit depth: 24 for FLAC, 32 (float) for WAV."""
    return BIT_DEPTHS[fmt][-1]


def bit_depth_for(fmt: str, bit_depth: int | None = None) -> int:
    """The bit depth to write ``fmt`` ("FLAC" or "WAV", any case) with: ``bit_depth``, or the default.

    Raises a one-line :class:`~apollo_cli.errors.OptionError` when the format cannot hold
    ``bit_depth`` (writing a file, :func:`check_output` says so as an OutputError naming it).
    """
    fmt = fmt.upper()
    bits = default_bit_depth(fmt) if bit_depth is None else bit_depth
    if bits not in BIT_DEPTHS[fmt]:
        *others, last = BIT_DEPTHS[fmt]
        raise OptionError(
            f"{fmt} supports bit depth {', '.join(map(str, others))} or {last}, not {bits}; choose one of those"
        )
    return bits


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
    try:
        bits = bit_depth_for(output_format(target), bit_depth)
    except OptionError as exc:
        raise OutputError(f"cannot write {target}: {exc}") from None
    _check_writable(target, overwrite)
    return bits


class NoSpaceError(OutputError):
    """The output's file system is full: every later file would fail the same way."""

    @classmethod
    def at(cls, target: Path) -> NoSpaceError:
        """The error for ``target``, which could not be written for want of space."""
        return cls(
            f"cannot write {target}: no space left on device ({target.parent}); free some space and run again"
        )


class AudioWriter:
    """A WAV or FLAC result written block by block into a hidden temporary file beside it.

    Open with :func:`open_output`; :meth:`write` float ``(channels, n)`` blocks in order,
    then :meth:`commit` renames the finished file into place (after ``finalize``, which
    adds tags, has run on it). Leaving the ``with`` block without committing removes the
    temporary file, so an output exists whole or not at all.

    A plain WAV header cannot state more than 4 GiB of data (about 3 h 23 min of 32-bit
    float stereo); beyond that readers would see a short file. So a WAV whose
    ``expected_frames`` do not fit, or whose length is unknown, is written as RF64,
    which libsndfile turns back into a (WAVE_FORMAT_EXTENSIBLE) WAV when the data
    turns out to fit; and a plain WAV refuses data beyond the limit rather than
    write a file that reads back short.
    """

    def __init__(
        self,
        target: Path,
        channels: int,
        sample_rate: int,
        bits: int,
        fmt: str,
        expected_frames: int | None = None,
    ) -> None:
        self.target = target
        self.channels = channels
        self.sample_rate = sample_rate
        self.bits = bits
        self.format = fmt
        self.frames = 0
        self.clipped = 0
        self.tmp = create_temp_beside(target)
        subtype = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}[bits]
        frame_bytes = channels * bits // 8
        self._limit = _WAV_DATA_LIMIT // frame_bytes if fmt == "WAV" else None
        try:
            if fmt == "WAV" and (expected_frames is None or expected_frames > self._limit):  # type: ignore[operator]
                self._limit = None
                self._file = sf.SoundFile(self.tmp, "w", sample_rate, channels, subtype, format="RF64")
                # SFC_RF64_AUTO_DOWNGRADE: a plain RIFF/WAV header whenever the data fits.
                sf._snd.sf_command(self._file._file, _SFC_RF64_AUTO_DOWNGRADE, sf._ffi.NULL, 1)
            else:
                self._file = sf.SoundFile(self.tmp, "w", sample_rate, channels, subtype, format=fmt)
        except BaseException as exc:
            self.tmp.unlink(missing_ok=True)
            if isinstance(exc, Exception):
                raise self._output_error(exc) from None
            raise
        self._open = True

    def write(self, samples: np.ndarray) -> None:
        """Append float ``(channels, n)`` samples of any length; integer depths are limited to full scale."""
        if samples.ndim != 2 or samples.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, frames) samples, got shape {samples.shape}")
        if not np.isfinite(samples).all():
            raise OutputError(
                f"refusing to write {self.target}: the audio contains NaN or infinite samples; "
                "this is a bug, please report it"
            )
        if self._limit is not None and self.frames + samples.shape[1] > self._limit:
            raise OutputError(
                f"cannot write {self.target}: the audio is longer than a WAV file can hold (4 GiB); "
                "write FLAC (.flac) instead"
            )
        # A block at a time, so that a whole file written at once never has a second,
        # converted copy in memory.
        for start in range(0, samples.shape[1], _CONVERT_BLOCK):
            data, clipped = _to_file_samples(samples[:, start : start + _CONVERT_BLOCK], self.bits)
            try:
                self._append(data)
            except Exception as exc:  # noqa: BLE001 - any failure to write is reported as the output's error
                raise self._output_error(exc) from None
            self.frames += data.shape[0]
            self.clipped += clipped

    def _append(self, data: np.ndarray) -> None:
        """Hand ``(frames, channels)`` file samples to libsndfile (one place to observe writes)."""
        self._file.write(data)

    def commit(self, finalize: Callable[[Path], None] | None = None) -> WriteResult:
        """Close the file, run ``finalize`` on it, and rename it into place."""
        try:
            self._close()
            if finalize is not None:
                finalize(self.tmp)
            os.replace(self.tmp, self.target)
        except BaseException as exc:
            self.discard()
            if isinstance(exc, (OSError, sf.LibsndfileError, RuntimeError)):
                raise self._output_error(exc) from None
            raise
        return WriteResult(self.target, self.clipped, self.frames, self.sample_rate, self.bits, self.format)

    def discard(self) -> None:
        """Abandon the output: close and remove the temporary file."""
        with contextlib.suppress(Exception):  # the file is being thrown away
            self._close()
        self.tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._open:
            self._open = False
            self._file.close()

    def _output_error(self, exc: BaseException) -> OutputError:
        """Say what went wrong writing, naming a full disk as such (libsndfile says "System error")."""
        if isinstance(exc, OutputError):
            return exc
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or disk_full(self.target.parent):
            return NoSpaceError.at(self.target)
        detail = (exc.strerror or str(exc)) if isinstance(exc, OSError) else one_line(str(exc))
        return OutputError(f"cannot write {self.target}: {detail}; check free space and permissions")

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._open or self.tmp.exists():
            self.discard()


def open_output(
    path: str | os.PathLike[str],
    channels: int,
    sample_rate: int,
    *,
    bit_depth: int | None = None,
    overwrite: bool = False,
    expected_frames: int | None = None,
) -> AudioWriter:
    """Check ``path`` (see :func:`check_output`) and open an :class:`AudioWriter` for it.

    ``expected_frames`` (None: unknown) lets a WAV that fits be written as a plain WAV.
    """
    target = Path(path)
    fmt = output_format(target)
    bits = check_output(target, bit_depth=bit_depth, overwrite=overwrite)
    check_channels(target, channels)
    return AudioWriter(target, channels, sample_rate, bits, fmt, expected_frames)


def check_channels(path: str | os.PathLike[str], channels: int) -> None:
    """Refuse a channel count the output format cannot hold (FLAC stops at 8)."""
    if output_format(path) == "FLAC" and channels > 8:
        raise OutputError(
            f"cannot write {path}: FLAC holds at most 8 channels, this audio has {channels}; "
            "write a .wav file instead"
        )


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
    if samples.ndim != 2:
        raise ValueError(f"samples must be shaped (channels, frames), got shape {samples.shape}")
    with open_output(
        path,
        samples.shape[0],
        sample_rate,
        bit_depth=bit_depth,
        overwrite=overwrite,
        expected_frames=samples.shape[1],
    ) as writer:
        writer.write(samples)
        return writer.commit(finalize)


def disk_full(folder: Path, need: int = 1 << 20) -> bool:
    """Whether ``folder``'s file system has less than ``need`` bytes free."""
    try:
        return shutil.disk_usage(folder).free < need
    except OSError:
        return False


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
            f"cannot write {target}: directory {parent} is not writable; choose a writable output directory"
        )
    if target.exists() and not overwrite:
        raise OutputError(f"{target} already exists; pass --overwrite to replace it")


#: The same check for writers outside this module (plot.py's PNGs): refuse to clobber, and
#: fail before any work when the directory is unusable.
check_writable = _check_writable


#: The name of a temporary file beside an output NAME: ``.NAME.XXXXXXXX.part`` (8 hex digits).
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.part$")


def temp_files(target: str | os.PathLike[str]) -> list[Path]:
    """The temporary files of ``target`` that exist beside it (see :data:`TEMP_PATTERN`).

    A writer at work, or one that was killed, left them. Raises OSError when the folder
    cannot be listed.
    """
    target = Path(target)
    siblings = target.parent.glob(f".{glob.escape(target.name)}.*.part")
    return [p for p in siblings if (m := TEMP_PATTERN.match(p.name)) and m.group("name") == target.name]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A hidden temporary file beside ``path`` to write, renamed into place when the block ends.

    For writers of other files than audio (plot.py's PNGs): a reader never sees a
    half-written ``path``. If the block raises (Ctrl-C included), the temporary file
    is removed and the exception propagates; an OSError, there or in the rename,
    becomes a one-line :class:`~apollo_cli.errors.OutputError`.
    """
    target = Path(path)
    tmp = create_temp_beside(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(
                f"cannot write {target}: {exc.strerror or exc}; check free space and permissions"
            ) from None
        raise


def create_temp_beside(target: Path) -> Path:
    """Create an empty hidden temp file beside ``target``: os.replace needs one filesystem."""
    # O_EXCL with mode 0o666 (not mkstemp's 0o600) so the final file gets the usual
    # umask-derived permissions. The name matches TEMP_PATTERN.
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise OutputError(
            f"cannot write to {target.parent}: {exc.strerror or exc}; choose a writable output directory"
        ) from None
    return tmp


def _to_file_samples(samples: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Convert (C, S) float audio to the (S, C) array soundfile writes, and count clipped samples.

    Integer PCM is quantised here rather than by libsndfile, which scales by 2**(n-1) - 1
    on write but 2**(n-1) on read, and wraps values beyond full scale.
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
_SFC_RF64_AUTO_DOWNGRADE = 0x1210
#: The most sample data a plain WAV holds: its 32-bit sizes, less room for the header
#: and the tags that follow the data.
_WAV_DATA_LIMIT = (1 << 32) - (16 << 20)
