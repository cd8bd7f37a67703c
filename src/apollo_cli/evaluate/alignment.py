"""Line coded audio up with its clean segment before scoring, or refuse the pair.

SI-SNR, SDR and LSD compare sample by sample: audio a few samples late scores as badly
damaged. Decoders drop their encoder's priming samples, so a coded segment normally
starts exactly with the clean one; :func:`align` checks that rather than trusting it.

1. The overall lag is found by cross-correlating the two (mixed to mono) over
   ±:data:`SEARCH_SECONDS`. A lag beyond :data:`MAX_DELAY_SECONDS`, more than any
   encoder's delay, means the pair is not the same audio lined up: refused.
2. The lag is compensated (the coded audio shifted, then cut or padded with silence
   to the clean segment's length).
3. What is left is checked piece by piece (:data:`WINDOW_SECONDS` windows with sound
   in them): each window's own best lag must be within :data:`TOLERANCE_SAMPLES` of
   zero. A pair that drifts (a codec that changed the length) is refused.

A refused pair is an :class:`~apollo_cli.errors.InputError` naming the file, never a
silently bad number.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: How far the overall lag is searched for (seconds each way).
SEARCH_SECONDS = 1.0
#: The largest lag an encoder explains (seconds): AAC's priming is 2112 samples (48 ms).
MAX_DELAY_SECONDS = 0.06
#: Windows the residual is checked in (seconds), and how far each is searched (seconds).
WINDOW_SECONDS = 0.5
WINDOW_SEARCH_SECONDS = 0.02
#: The residual lag tolerated in any window (samples; 1 at 44.1 kHz is 23 µs).
TOLERANCE_SAMPLES = 2
#: Windows quieter than this (RMS, dBFS) or less alike than this (normalised correlation at
#: their best lag) say nothing about timing: left out of the residual check.
QUIET_DBFS = -50.0
MIN_CORRELATION = 0.5


def find_lag(reference: np.ndarray, estimate: np.ndarray, search: int) -> int:
    """The lag (samples; positive: ``estimate`` is late) that best lines ``estimate`` up with ``reference``.

    Both ``(channels, frames)`` or ``(frames,)``; mixed to mono; searched over ±``search``.
    """
    ref, est = _mono(reference), _mono(estimate)
    size = 1 << int(np.ceil(np.log2(ref.size + est.size)))
    corr = np.fft.irfft(np.fft.rfft(est, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.concatenate([np.arange(0, search + 1), np.arange(-search, 0)])
    values = np.concatenate([corr[: search + 1], corr[size - search :]])
    return int(lags[int(np.argmax(values))])


def shift(samples: np.ndarray, lag: int, frames: int) -> np.ndarray:
    """``samples`` moved ``lag`` frames earlier (later for a negative lag), cut or padded to ``frames``."""
    moved = samples[:, lag:] if lag >= 0 else np.pad(samples, ((0, 0), (-lag, 0)))
    if moved.shape[1] < frames:
        moved = np.pad(moved, ((0, 0), (0, frames - moved.shape[1])))
    return np.ascontiguousarray(moved[:, :frames], dtype=np.float32)


def align(reference: np.ndarray, coded: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
    """``coded`` lined up with ``reference`` and of its length; InputError naming ``name`` if it cannot be.

    Both float ``(channels, frames)`` at ``sample_rate`` (see the module docstring).
    """
    search = min(round(SEARCH_SECONDS * sample_rate), max(reference.shape[1], coded.shape[1]) - 1)
    lag = find_lag(reference, coded, search)
    if abs(lag) > MAX_DELAY_SECONDS * sample_rate:
        raise InputError(
            f"{name}: the coded audio is {1000 * lag / sample_rate:+.0f} ms off the clean segment, more "
            f"than an encoder's delay ({1000 * MAX_DELAY_SECONDS:.0f} ms); it would score as noise, so it "
            "is not scored (does the file decode to the same audio each time?)"
        )
    aligned = shift(coded, lag, reference.shape[1])
    worst = residual_lag(reference, aligned, sample_rate)
    if abs(worst) > TOLERANCE_SAMPLES:
        raise InputError(
            f"{name}: after the encoder's delay ({lag} samples) the coded audio still drifts "
            f"{worst:+d} samples from the clean segment somewhere; it is not scored (the codec changed its "
            "timing, so sample-by-sample metrics would be meaningless)"
        )
    return aligned


def residual_lag(reference: np.ndarray, aligned: np.ndarray, sample_rate: int) -> int:
    """The largest best lag (samples, signed) over the windows that have sound in them; 0 if none."""
    ref, est = _mono(reference), _mono(aligned)
    window = round(WINDOW_SECONDS * sample_rate)
    search = round(WINDOW_SEARCH_SECONDS * sample_rate)
    worst = 0
    for start in range(0, max(ref.size - window, 0) + 1, window):
        r, e = ref[start : start + window], est[start : start + window]
        energy = float(np.dot(r, r))
        if r.size < 2 * search or 10 * np.log10(energy / r.size + 1e-20) < QUIET_DBFS:
            continue
        lag = find_lag(r, e, search)
        moved = shift(e[None], lag, e.size)[0]
        norm = np.sqrt(energy * float(np.dot(moved, moved)))
        if norm == 0 or float(np.dot(r, moved)) / norm < MIN_CORRELATION:
            continue
        if abs(lag) > abs(worst):
            worst = lag
    return worst


def _mono(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    return x.mean(axis=0) if x.ndim == 2 else x
