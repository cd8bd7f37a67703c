"""Linear-phase FIR filters that run over a stream of blocks in bounded memory.

The restoration controls (``--cutoff``, ``--keep-lows``) need a steep low-pass with
no phase shift in its pass band, and a crossover whose two bands add back to the
input exactly. Both are symmetric FIR filters designed with a Kaiser window and
applied by FFT convolution one block at a time, with their delay taken out: the
output of a stream equals the zero-phase filtering of the whole signal (taken as
zero outside it), whatever the block sizes. Arithmetic is float64, so the filter's
own rounding stays some 200 dB down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

#: Stop-band attenuation of the designs, in dB. The pass-band ripple follows from it
#: (a Kaiser design has equal ripple in both bands): 10^(-100/20) is about 1e-5, or
#: 0.0001 dB, far inside the 0.01 dB the controls promise.
ATTENUATION_DB = 100.0


def kaiser_lowpass(cutoff_hz: float, transition_hz: float, sample_rate: int) -> np.ndarray:
    """Taps of a linear-phase low-pass whose gain is one half at ``cutoff_hz``.

    The gain is flat (within :data:`ATTENUATION_DB`'s ripple) below
    ``cutoff_hz - transition_hz / 2`` and at least :data:`ATTENUATION_DB` down above
    ``cutoff_hz + transition_hz / 2``. The tap count is odd, so the delay is a whole
    number of samples; the taps sum to one.
    """
    nyquist = sample_rate / 2
    if not 0 < cutoff_hz < nyquist or not transition_hz > 0:
        raise ValueError(
            f"no low-pass at {cutoff_hz} Hz with a {transition_hz} Hz transition at {sample_rate} Hz"
        )
    width = 2 * math.pi * transition_hz / sample_rate  # transition width in radians per sample
    count = math.ceil((ATTENUATION_DB - 7.95) / (2.285 * width)) + 1  # Kaiser's estimate
    count += 1 - count % 2  # odd
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    n = np.arange(count) - (count - 1) / 2
    fc = cutoff_hz / sample_rate  # cycles per sample
    taps = 2 * fc * np.sinc(2 * fc * n) * np.kaiser(count, beta)
    return taps / taps.sum()  # unity gain at 0 Hz exactly


def response_db(taps: np.ndarray, freqs_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """The gain of ``taps`` at ``freqs_hz``, in dB (for tests and plots)."""
    n = np.arange(taps.size) - (taps.size - 1) / 2  # zero-phase: the response is real
    gain = np.cos(2 * np.pi * np.outer(np.asarray(freqs_hz, dtype=np.float64) / sample_rate, n)) @ taps
    return 20 * np.log10(np.maximum(np.abs(gain), 1e-30))


class ZeroPhaseFIR:
    """Filter ``(channels, n)`` blocks with symmetric ``taps``, delay removed.

    :meth:`process` returns what is final so far (it lags the input by half the
    filter's length); :meth:`flush` returns the rest once the input has ended. All
    blocks returned together are as long as all blocks given.
    """

    def __init__(self, taps: np.ndarray, channels: int) -> None:
        self.taps = np.asarray(taps, dtype=np.float64)
        if self.taps.ndim != 1 or self.taps.size % 2 == 0:
            raise ValueError("a zero-phase FIR needs an odd number of taps")
        self.channels = channels
        self._tail = np.zeros((channels, self.taps.size - 1))  # convolution overlap not yet final
        self._skip = (self.taps.size - 1) // 2  # the delay: leading output samples to drop
        self._received = 0
        self._emitted = 0
        self._spectra: dict[int, np.ndarray] = {}

    def process(self, block: np.ndarray) -> np.ndarray:
        """Take the next ``(channels, n)`` block; return the output samples now final."""
        x = np.asarray(block, dtype=np.float64)
        n = x.shape[1]
        if n == 0:
            return np.zeros((self.channels, 0))
        size = 1 << (n + self.taps.size - 2).bit_length()
        spectrum = self._spectra.get(size)
        if spectrum is None:
            spectrum = self._spectra[size] = np.fft.rfft(self.taps, size)
        full = np.fft.irfft(np.fft.rfft(x, size, axis=1) * spectrum, size, axis=1)[
            :, : n + self.taps.size - 1
        ]
        full[:, : self._tail.shape[1]] += self._tail
        self._tail = full[:, n:].copy()
        ready = full[:, :n]
        drop = min(self._skip, n)
        self._skip -= drop
        self._received += n
        out = ready[:, drop:]
        self._emitted += out.shape[1]
        return out

    def flush(self) -> np.ndarray:
        """The output's last samples, once the input has ended (taken as zero after it)."""
        missing = self._received - self._emitted
        out = self._tail[:, self._skip : self._skip + missing]
        self._emitted += out.shape[1]
        return out


def filter_blocks(blocks: Iterable[np.ndarray], taps: np.ndarray, channels: int) -> Iterator[np.ndarray]:
    """Zero-phase filter a stream of ``(channels, n)`` blocks; float32 blocks out, same total length."""
    fir = ZeroPhaseFIR(taps, channels)
    for block in blocks:
        out = fir.process(block)
        if out.shape[1]:
            yield out.astype(np.float32)
    rest = fir.flush()
    if rest.shape[1]:
        yield rest.astype(np.float32)


def filter_signal(samples: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Zero-phase filter a whole ``(channels, n)`` signal at once (the reference the streams match)."""
    x = np.asarray(samples, dtype=np.float64)
    fir = ZeroPhaseFIR(taps, x.shape[0])
    return np.concatenate([fir.process(x), fir.flush()], axis=1)
