"""Framed spectra: the one short-time Fourier loop every analysis here reads.

The bandwidth estimate (:mod:`.bandwidth`), the log-spectral distance (:mod:`.metrics`)
and the spectrogram (:mod:`.spectrogram`) all look at a signal the same way: frames of
``n_fft`` samples, Hann-windowed, their power spectrum ``|rfft|^2 / (sum w)^2``
(0 dB: a full-scale sine's peak bin is near -6 dB), averaged over channels.
:func:`frame_power` does that in blocks of frames, so a whole song never becomes one
``(channels, frames, n_fft)`` array; the callers choose where frames start.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import InputError

#: Power floor before taking dB (-200 dB), so that silence gives a finite level.
TINY = 1e-20


def as_2d(samples: np.ndarray) -> np.ndarray:
    """``(channels, frames)`` floats, without copying float audio (songs are large).

    Integer samples become float64; ``(frames,)`` becomes one channel.
    """
    x = np.asarray(samples)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise InputError(f"expected audio shaped (frames,) or (channels, frames), got {x.shape}")
    return x


def frame_count(length: int, n_fft: int, hop: int) -> int:
    """How many whole frames of ``n_fft`` samples, ``hop`` apart, fit in ``length`` samples.

    A signal shorter than one frame counts as one frame (:func:`frame_power` pads it).
    """
    return 1 + (max(length, n_fft) - n_fft) // hop


def frame_power(
    x: np.ndarray, starts: np.ndarray, n_fft: int, *, block: int = 256
) -> Iterator[tuple[int, np.ndarray]]:
    """The channel-averaged power spectrum of the frames of ``x`` that begin at ``starts``.

    ``x`` is ``(channels, frames)``; a signal shorter than ``n_fft`` is zero-padded at
    the end to one frame. Each frame is multiplied by a Hann window (float64), and its
    power ``|rfft|^2`` averaged over channels and divided by the window's sum squared.
    Yields ``(first, power)`` per block of at most ``block`` frames: ``power`` is
    ``(frames in block, n_fft // 2 + 1)`` and belongs to ``starts[first:first + len(power)]``.
    ``block`` only bounds memory (one block's frames are copied at a time).
    """
    if x.shape[1] < n_fft:
        x = np.pad(x, ((0, 0), (0, n_fft - x.shape[1])))
    window = np.hanning(n_fft)
    norm = window.sum() ** 2
    offsets = np.arange(n_fft)
    for first in range(0, len(starts), block):
        idx = np.asarray(starts[first : first + block])[:, None] + offsets  # (frames, n_fft)
        frames = x[:, idx] * window  # (channels, frames, n_fft)
        yield first, (np.abs(np.fft.rfft(frames, axis=-1)) ** 2).mean(axis=0) / norm
