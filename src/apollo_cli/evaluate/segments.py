"""Which clean references an evaluation reads, and which part of each.

:func:`find_references` lists the lossless files under a folder (WAV, FLAC, AIFF: a
lossy "clean" file would already carry a codec's damage), in a stable order.
:func:`choose_segment` cuts one segment from a file, deterministically and never from
silence, reading the file a block at a time (memory: one segment), and resamples it
to the model's 44.1 kHz.

The choice: the file's loudness is measured per second (RMS over channels); of the
windows that start on a whole second, the one nearest the middle of the file whose
quietest second is above :data:`QUIET_DBFS` is taken (the middle: away from fade-ins
and fade-outs, typical of the song). When no window is that loud throughout, the one
whose quietest second is loudest is taken; a file with no second above
:data:`SILENT_DBFS` is refused. A file shorter than the segment is taken whole.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from .. import audio
from ..batch.plan import included
from ..errors import InputError, OptionError

#: Extensions of the clean references picked up (any case): lossless formats only.
REFERENCE_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc"})
#: The rate every segment is brought to (the model's).
SAMPLE_RATE = audio.MODEL_SAMPLE_RATE
#: A window whose every second is louder than this (RMS, dB full scale) counts as music.
QUIET_DBFS = -50.0
#: A file none of whose seconds is louder than this is silence: refused.
SILENT_DBFS = -70.0
#: The shortest segment (seconds) the metrics can use (ViSQOL wants about a second).
MIN_SECONDS = 1.0


@dataclass(frozen=True)
class Reference:
    """A clean file to evaluate on: where it is, and its path under the folder (for reports)."""

    path: Path
    name: str


@dataclass(frozen=True)
class Segment:
    """The part of a reference an evaluation uses, at :data:`SAMPLE_RATE`."""

    #: float32 ``(channels, frames)`` at 44.1 kHz.
    samples: np.ndarray
    #: Where it starts in the file, and how long it is (seconds).
    start: float
    seconds: float

    @property
    def frames(self) -> int:
        """Frames (samples per channel)."""
        return int(self.samples.shape[1])


def find_references(
    folder: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    max_files: int | None = None,
    exclude: str | os.PathLike[str] | None = None,
) -> list[Reference]:
    """The clean references under ``folder`` (recursively; hidden files and folders left out).

    ``include`` patterns work as ``apollo batch --include``'s (case-insensitive; without
    ``/`` matched against the file name, with ``/`` against the path inside the folder).
    Sorted by that path; ``max_files`` keeps the first N. The folder ``exclude`` (the
    report folder, when it lies inside: its cache holds WAV files) is not searched. Raises InputError when the
    folder does not exist or holds no reference.
    """
    root = Path(folder)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise InputError(f"{root} {what}; pass a folder of clean WAV, FLAC or AIFF files")
    if max_files is not None and max_files < 1:
        raise OptionError(f"--max-files must be at least 1, got {max_files}")
    patterns = [p.strip() for p in include if p.strip()]
    skipped = Path(exclude).resolve() if exclude is not None else None
    found: list[Reference] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != skipped)
        for filename in filenames:
            if filename.startswith(".") or Path(filename).suffix.lower() not in REFERENCE_EXTENSIONS:
                continue
            relative = PurePosixPath((here / filename).relative_to(root).as_posix())
            if included(relative, patterns):
                found.append(Reference(here / filename, relative.as_posix()))
    found.sort(key=lambda r: r.name)
    if not found:
        which = f" matching {', '.join(repr(p) for p in patterns)}" if patterns else ""
        raise InputError(
            f"no WAV, FLAC or AIFF files{which} under {root}; evaluation needs clean, lossless references"
        )
    return found[:max_files] if max_files is not None else found


def check_readable(references: Sequence[Reference]) -> None:
    """Open each reference (headers only), so an unreadable one fails before any work."""
    for reference in references:
        with audio.open_audio(reference.path):
            pass


def content_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex): what the cache knows a reference by, whatever its name."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_seconds(seconds: float) -> float:
    """``seconds`` if it is a usable segment length, else OptionError."""
    if not (math.isfinite(seconds) and seconds >= MIN_SECONDS):
        raise OptionError(f"--segment-seconds must be at least {MIN_SECONDS:g}, got {seconds:g}")
    return seconds


def choose_segment(path: str | os.PathLike[str], seconds: float) -> Segment:
    """Cut the evaluation segment of ``seconds`` from a file (see the module docstring).

    Two passes over the file, a block at a time: loudness per second, then the segment.
    Raises InputError for a file that cannot be read, is shorter than
    :data:`MIN_SECONDS` or is silent.
    """
    check_seconds(seconds)
    source = Path(path)
    with audio.open_audio(source) as opened:
        rate = opened.sample_rate
        loudness, frames = _loudness_per_second(opened.blocks(), rate)
    if frames < MIN_SECONDS * rate:
        raise InputError(
            f"{source} is {frames / rate:.2f} s long; evaluation needs at least {MIN_SECONDS:g} s of music"
        )
    if not loudness.size or loudness.max() < SILENT_DBFS:
        raise InputError(f"{source} is silent (no second louder than {SILENT_DBFS:g} dBFS); leave it out")
    length = min(round(seconds * rate), frames)
    start = _best_start(loudness, length / rate, frames / rate) * rate
    with audio.open_audio(source) as opened:
        samples = _cut(opened.blocks(), start, length)
    samples = audio.resample(samples, rate, SAMPLE_RATE)
    return Segment(np.ascontiguousarray(samples, dtype=np.float32), start / rate, length / rate)


def _loudness_per_second(blocks: Iterable[np.ndarray], rate: int) -> tuple[np.ndarray, int]:
    """RMS level (dBFS) of each whole second (the last, partial one too), and the frame count."""
    sums: list[float] = []
    carry = 0.0
    filled = 0
    frames = 0
    for block in blocks:
        power = np.mean(np.square(block, dtype=np.float64), axis=0)
        frames += power.size
        at = 0
        while at < power.size:
            take = min(rate - filled, power.size - at)
            carry += float(power[at : at + take].sum())
            filled += take
            at += take
            if filled == rate:
                sums.append(carry / rate)
                carry, filled = 0.0, 0
    if filled:
        sums.append(carry / filled)
    return 10 * np.log10(np.asarray(sums) + 1e-20), frames


def _best_start(loudness: np.ndarray, seconds: float, duration: float) -> int:
    """The chosen window's start, in whole seconds (see the module docstring)."""
    last = math.floor(duration - seconds + 1e-9)
    span = max(1, math.ceil(seconds - 1e-9))
    starts = np.arange(0, max(last, 0) + 1)
    quietest = np.array([loudness[s : s + span].min() for s in starts])
    loud = starts[quietest > QUIET_DBFS]
    if loud.size:
        middle = (duration - seconds) / 2
        return int(loud[np.argmin(np.abs(loud - middle))])  # the earlier of two as near
    return int(starts[np.argmax(quietest)])


def _cut(blocks: Iterable[np.ndarray], start: int, length: int) -> np.ndarray:
    """Frames ``start .. start + length`` of a block stream, holding only those."""
    parts: list[np.ndarray] = []
    at = 0
    for block in blocks:
        end = at + block.shape[1]
        lo, hi = max(start, at), min(start + length, end)
        if lo < hi:
            parts.append(block[:, lo - at : hi - at])
        at = end
        if at >= start + length:
            break
    return np.concatenate(parts, axis=1)
