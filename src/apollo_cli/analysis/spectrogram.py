"""A log-frequency power spectrogram ready to draw (drawing lives in :mod:`apollo_cli.plot`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .framing import TINY, as_2d, frame_count, frame_power


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
    x = as_2d(samples)
    duration = x.shape[1] / sample_rate
    length = max(x.shape[1], n_fft)  # a shorter signal is padded to one frame
    # Long files: at most four frames per column (frames may then no longer overlap).
    hop = max(hop, math.ceil((length - n_fft) / (4 * max_columns)))
    count = frame_count(length, n_fft, hop)
    group = max(1, math.ceil(count / max_columns))
    columns = math.ceil(count / group)
    power = np.zeros((columns, n_fft // 2 + 1))
    # Blocks of whole columns, about 1024 frames each.
    step = max(group, (1024 // group) * group)
    for first, p in frame_power(x, np.arange(count) * hop, n_fft, block=step):
        np.add.at(power, np.arange(first, first + len(p)) // group, p)
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
    return Spectrogram(10 * np.log10(out + TINY), edges, duration, sample_rate)
