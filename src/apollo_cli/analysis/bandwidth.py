"""The effective bandwidth of some audio: where its content ends and its noise floor begins.

Lossy encoders throw away everything above a lowpass frequency (LAME: about 17 kHz at
128 kbps), and a "lossless" file transcoded from such a source keeps that hole. The
*effective bandwidth* is the frequency above which a file holds nothing but its noise
floor. :func:`estimate_bandwidth` finds it from the long-term average spectrum:

1. **Spectrum.** Hann-windowed frames of ``n_fft`` samples (the power of two nearest
   ``sample_rate / 12``: 4096 at 44.1 and 48 kHz, about 11 Hz per bin), hop ``n_fft/2``;
   power averaged over channels; at most 1500 frames, evenly spread over the file.
   Frames more than 60 dB quieter than the loudest frame (silence, fades) are left out.
2. **Long-term spectrum.** Per bin, the 95th percentile over frames of the power in
   dB, so content that is present in one frame in twenty (cymbals, consonants)
   counts; then a running median over 9 bins (about 100 Hz) removes isolated tones.
3. **Noise floor, relative to the file's own level.** ``own`` is the file's own level:
   the median of that spectrum between 1 and 6 kHz, where all music has content.
   ``floor_db`` is the 10th percentile of the spectrum over the top of the band: the
   1.5 kHz (at most a tenth of the band) just below 99 % of Nyquist; but never below
   ``own - 70 dB``, capped to between -140 and -120 dB (per bin of about 11 Hz, 0 dB
   being a full-scale sine's peak bin near -6 dB). For music at a normal level that
   limit is -120 dB, about 10 dB above 16-bit quantisation noise (about -131 dB here);
   without it a resampler's stopband (a 16-bit 48 kHz file resampled to 44.1 kHz) would
   be taken for the floor, and the 16-bit noise above an MP3's cut-off for content. For
   quiet music the limit follows the music down, to at most -140 dB (still 9 dB clear of
   16-bit noise), so a quiet file's top octave, 100 dB or more below full scale, still
   counts as content and its encoder's cliff is found: an absolute limit took a
   128 kbps MP3 at -30 dBFS for full band. Audio whose spectrum never rises above
   -150 dB counts as silent.
4. **Content, with hysteresis.** A bin holds content when it is at least 20 dB above
   the floor; runs of content narrower than 300 Hz are dropped (a tone or a narrow
   spur above a lowpass does not count). Scanning from the top down, the highest
   remaining content bin ends the band, so a notch or dip *below* the cut-off cannot
   fool the estimate. The edge is then placed where the spectrum first reaches
   ``content_db - 30 dB`` (and at least 10 dB above the floor) from that bin downwards,
   where ``content_db`` is the median level 0.5 to 1.5 kHz below it; this is the
   frequency at which the encoder's filter has taken 30 dB off, independent of how
   deep the floor beneath it is (a decoded MP3's is around -150 dB, a 16-bit
   transcode's around -130 dB). The reference lies close to the edge so that music
   whose own spectrum falls steeply towards 20 kHz is not cut early: measured 1 to
   2.5 kHz below, a 320 kbps file reaching 19.9 kHz was reported cut at 18.5 kHz.
5. **Sharp or gradual.** ``sharp`` is true when the level 1 to 2 kHz above the edge is
   at least 25 dB below the level in the 1 kHz under it: the cliff an encoder's lowpass
   leaves. Without a cliff, if the floor is less than 45 dB below the median level
   between 1 and 6 kHz, the top of the band is weak content rather than a floor, and
   the audio is full band; otherwise it is a recording that rolls off into a real
   floor (tape, a dull mix), and its bandwidth is where the spectrum last rises 6 dB
   above the floor (over 300 Hz). A spectrum that never rises 20 dB above its top
   (white noise) is full band too.

On CBR LAME MP3s this lands within about 0.4 kHz of the lowpass recorded in the LAME
header (LAME's filter runs over most of a polyphase band around the nominal
frequency), and on brick-wall low-passed noise or music within a few bins. VBR and
low-bitrate encoders often leave the top of their band empty in most frames; the
estimate then says what the file holds, which can be well below the nominal lowpass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .framing import TINY, as_2d, frame_count, frame_power

#: A bandwidth at or above this is "full band" for music: nothing much for Apollo to add.
FULL_BAND_HZ = 19500.0

# Bandwidth estimator settings (see the module docstring).
_PERCENTILE = 95.0
_MAX_FRAMES = 1500
_QUIET_FRAME_DB = 60.0
_MEDIAN_HZ = 100.0
_FLOOR_BAND_HZ = 1500.0
_CONTENT_DB = 20.0
_MIN_RUN_HZ = 300.0
_EDGE_DROP_DB = 30.0
_CLIFF_DB = 25.0
_GRADUAL_DB = 6.0
_DEEP_FLOOR_DB = 45.0
_LOWEST_FLOOR_DB = -120.0  # the floor's lower limit for music at a normal level
_FLOOR_BELOW_OWN_DB = 70.0  # ... which follows quieter music down, this far below its own level
_QUIET_FLOOR_DB = -140.0  # ... but no further: 16-bit noise sits near -131 dB
_SILENT_DB = -150.0
_REFERENCE_FAR_HZ = 1500.0  # content_db is measured this far to this near below the last content
_REFERENCE_NEAR_HZ = 500.0


@dataclass(frozen=True)
class Bandwidth:
    """The effective bandwidth of some audio, from :func:`estimate_bandwidth`."""

    #: Frequency (Hz) above which there is nothing but the noise floor.
    hz: float
    sample_rate: int
    #: Whether the band ends in a cliff (an encoder's lowpass) rather than a roll-off.
    sharp: bool
    #: The noise floor at the top of the band, dB (see the module docstring).
    floor_db: float
    #: The level just below the edge, dB; equal to ``floor_db`` when there is no edge.
    content_db: float
    #: The audio is digital silence (``hz`` is 0).
    silent: bool = False

    @property
    def nyquist(self) -> float:
        """Half the sample rate: the most bandwidth this sample rate can hold."""
        return self.sample_rate / 2

    @property
    def full_band(self) -> bool:
        """At least :data:`FULL_BAND_HZ`: nothing much for Apollo to add."""
        return not self.silent and self.hz >= FULL_BAND_HZ

    @property
    def rate_limited(self) -> bool:
        """The band reaches Nyquist, and Nyquist is below :data:`FULL_BAND_HZ`."""
        return not self.silent and self.nyquist < FULL_BAND_HZ and self.hz >= 0.98 * self.nyquist


def bandwidth_fft_size(sample_rate: int) -> int:
    """The analysis frame length: the power of two nearest ``sample_rate / 12`` (4096 at 44.1 kHz)."""
    return int(2 ** round(math.log2(max(sample_rate, 256) / 12)))


def long_term_spectrum(
    samples: np.ndarray, sample_rate: int, *, n_fft: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The long-term spectrum the bandwidth estimate reads: ``(freqs_hz, level_db)``.

    Steps 1 and 2 of the method in the module docstring: per bin, the 95th percentile
    over (non-silent) frames of the channel-averaged power in dB, median-smoothed over
    about 100 Hz. ``samples`` is ``(frames,)`` or ``(channels, frames)``.
    """
    x = as_2d(samples)
    return long_term_spectrum_blocks([x], sample_rate, x.shape[1], n_fft=n_fft)


def long_term_spectrum_blocks(
    blocks: Iterable[np.ndarray], sample_rate: int, frames: int, *, n_fft: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`long_term_spectrum` of audio that arrives as ``(channels, n)`` blocks, ``frames`` long in all.

    Only the analysis frames are kept, so memory does not grow with the audio's length;
    the result equals :func:`long_term_spectrum` of the whole signal.
    """
    n = n_fft or bandwidth_fft_size(sample_rate)
    hop = n // 2
    count = frame_count(frames, n, hop)
    # At most _MAX_FRAMES frames, spread evenly: their starts need not fall on the hop grid.
    starts = np.linspace(0, (count - 1) * hop, min(count, _MAX_FRAMES)).round().astype(np.int64)
    power = np.zeros((starts.size, n // 2 + 1))
    buffer: np.ndarray | None = None
    offset = 0  # the absolute index of buffer[:, 0]
    done = 0  # frames measured so far

    def measure(upto: int) -> None:
        nonlocal done
        assert buffer is not None
        for first, block in frame_power(buffer, starts[done:upto] - offset, n, block=256):
            power[done + first : done + first + len(block)] = block
        done = upto

    for block in blocks:
        x = as_2d(block)
        buffer = x if buffer is None else np.concatenate((buffer, x), axis=1)
        end = offset + buffer.shape[1]
        ready = int(np.searchsorted(starts + n, end, side="right"))
        if ready > done:
            measure(ready)
        keep_from = int(starts[done]) if done < starts.size else end
        buffer = buffer[:, keep_from - offset :]
        offset = keep_from
    if buffer is None:
        raise InputError("no audio to measure")
    if done < starts.size:  # the last frames reach past the end (a short file): zero-padded
        buffer = np.pad(buffer, ((0, 0), (0, max(0, int(starts[-1]) + n - offset - buffer.shape[1]))))
        measure(starts.size)
    loudness = power.sum(axis=1)
    keep = loudness >= loudness.max() * 10 ** (-_QUIET_FRAME_DB / 10)
    level = np.percentile(10 * np.log10(power[keep] + TINY), _PERCENTILE, axis=0)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    width = max(1, round(_MEDIAN_HZ / (sample_rate / n))) | 1  # odd
    return freqs, _running_median(level, width)


def estimate_bandwidth(samples: np.ndarray, sample_rate: int) -> Bandwidth:
    """Estimate the effective bandwidth of ``(channels, frames)`` (or ``(frames,)``) audio.

    The frequency above which the audio holds nothing but noise floor; the method is
    described in the module docstring.
    """
    return bandwidth_of_spectrum(*long_term_spectrum(samples, sample_rate), sample_rate)


def estimate_bandwidth_blocks(blocks: Iterable[np.ndarray], sample_rate: int, frames: int) -> Bandwidth:
    """:func:`estimate_bandwidth` of audio that arrives as blocks, ``frames`` long in all, in bounded memory."""
    return bandwidth_of_spectrum(*long_term_spectrum_blocks(blocks, sample_rate, frames), sample_rate)


def bandwidth_of_spectrum(freqs: np.ndarray, level: np.ndarray, sample_rate: int) -> Bandwidth:
    """Step 3 of the method: the bandwidth that a long-term spectrum shows."""
    bin_hz = freqs[1]
    nyquist = sample_rate / 2
    peak = float(level.max())
    if peak < _SILENT_DB:
        return Bandwidth(0.0, sample_rate, False, peak, peak, silent=True)

    mid = (freqs >= 1000) & (freqs <= min(6000.0, nyquist / 2))
    own_db = float(np.median(level[mid]))  # the file's own level
    top = 0.99 * nyquist
    region = (freqs >= top - min(_FLOOR_BAND_HZ, 0.1 * nyquist)) & (freqs <= top)
    lowest = min(_LOWEST_FLOOR_DB, max(own_db - _FLOOR_BELOW_OWN_DB, _QUIET_FLOOR_DB))
    floor = max(float(np.percentile(level[region], 10)), lowest)

    # int(): bin_hz is a numpy float, which numpy 1.x rounds to a float.
    content = _drop_short_runs(level >= floor + _CONTENT_DB, int(round(_MIN_RUN_HZ / bin_hz)))  # noqa: RUF046
    if not content.any():
        # Nothing stands out from the top of the band: flat to Nyquist.
        return Bandwidth(float(nyquist), sample_rate, False, floor, floor)
    last = int(np.flatnonzero(content)[-1])

    below = (freqs >= freqs[last] - _REFERENCE_FAR_HZ) & (freqs <= freqs[last] - _REFERENCE_NEAR_HZ)
    reference = level[below] if below.any() else level[: last + 1]
    content_db = float(np.median(reference))
    threshold = max(content_db - _EDGE_DROP_DB, floor + _CONTENT_DB / 2)
    edge = last
    while edge > 0 and level[edge] < threshold:
        edge -= 1
    # Interpolate between the edge bin and the next one for sub-bin placement.
    hz = float(freqs[edge])
    if edge + 1 < level.size and level[edge] > level[edge + 1]:
        hz += bin_hz * float(np.clip((level[edge] - threshold) / (level[edge] - level[edge + 1]), 0, 1))

    under = (freqs >= hz - 1000) & (freqs <= hz)
    over = (freqs >= hz + 1000) & (freqs <= min(hz + 2000, top))
    above_level = float(np.median(level[over])) if over.sum() >= 3 else floor
    sharp = hz < top - 1000 and float(np.median(level[under])) - above_level >= _CLIFF_DB
    if not sharp:
        if own_db - floor < _DEEP_FLOOR_DB:
            # The top of the band is weak content, not a floor: full band.
            return Bandwidth(float(nyquist), sample_rate, False, floor, floor)
        # A roll-off into a real floor: the band ends where the spectrum last clears it.
        clear = _drop_short_runs(level >= floor + _GRADUAL_DB, int(round(_MIN_RUN_HZ / bin_hz)))  # noqa: RUF046 - as above
        hz = float(freqs[np.flatnonzero(clear)[-1]]) if clear.any() else float(nyquist)
    return Bandwidth(float(min(hz, nyquist)), sample_rate, bool(sharp), floor, content_db)


def _running_median(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return values
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=-1)


def _drop_short_runs(mask: np.ndarray, min_length: int) -> np.ndarray:
    """``mask`` without its runs of True shorter than ``min_length``."""
    out = mask.copy()
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):  # each run has a start and a stop
        if stop - start < min_length:
            out[start:stop] = False
    return out
