"""Quality metrics of an estimate against a clean reference: SI-SNR, SDR, LSD.

Measured against a clean reference, as in the Apollo paper. The reference and the
estimate are brought to the reference's sample rate (:func:`apollo_cli.audio.resample`),
trimmed to the shorter length (no time alignment: both must start together) and,
if their channel counts differ, both mixed down to mono. Channels are otherwise
treated as one signal: sums run over every channel's samples.

- **SI-SNR** (scale-invariant signal-to-noise ratio): both signals made zero-mean per
  channel; ``target = a * s`` with ``a = <s_hat, s> / |s|^2`` (one scale factor for all
  channels); ``SI-SNR = 10 log10(|target|^2 / |s_hat - target|^2)`` dB. Gain changes
  of the estimate do not affect it.
- **SDR**: the plain signal-to-distortion ratio ``10 log10(|s|^2 / |s - s_hat|^2)`` dB,
  with no projection, no allowed filter and no mean removal (not BSS Eval's SDR), so
  a gain change counts as distortion.
- **LSD** (log-spectral distance), in dB: per channel, STFT with a Hann window,
  ``n_fft = 2048``, hop 512, frames wholly inside the signal (a signal shorter than one
  frame is zero-padded to one), power ``P = |X|^2 / (sum w)^2`` (a full-scale sine
  peaks near -6 dB), ``L = 10 log10(P + 1e-10)`` (a floor at -100 dB, so silence on both
  sides is no distance); per frame the RMS over frequency bins of ``L_ref - L_est``,
  then the mean over frames and channels. Papers that use ``log10`` of the power
  instead of dB report a tenth of this value.

Identical signals give ``inf`` for SI-SNR and SDR and 0 for LSD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import audio
from ..audio import DecodedAudio
from ..errors import InputError
from .framing import as_2d, frame_count, frame_power

# Metric settings.
LSD_N_FFT = 2048
LSD_HOP = 512
LSD_FLOOR = 1e-10


def si_snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SNR of ``estimate`` against ``reference``, in dB.

    Both same-shaped ``(frames,)`` or ``(channels, frames)``; made zero-mean per channel,
    one scale factor over all channels (see the module docstring). ``inf`` for an
    estimate that is the reference up to gain, ``-inf`` for a silent estimate.
    """
    s, e = _pair(reference, estimate)
    s_mean = s.mean(axis=-1, dtype=np.float64, keepdims=True)
    e_mean = e.mean(axis=-1, dtype=np.float64, keepdims=True)
    energy = cross = estimate_energy = 0.0
    for part in _blocks(s.shape[-1]):
        sb, eb = s[:, part] - s_mean, e[:, part] - e_mean
        energy += float(np.sum(sb * sb))
        cross += float(np.sum(eb * sb))
        estimate_energy += float(np.sum(eb * eb))
    if energy == 0.0:
        raise InputError("the reference is silent (or constant); SI-SNR needs a reference with sound in it")
    if estimate_energy == 0.0:
        return -math.inf
    scale = cross / energy
    noise = 0.0
    for part in _blocks(s.shape[-1]):
        noise += float(np.sum((e[:, part] - e_mean - scale * (s[:, part] - s_mean)) ** 2))
    return _ratio_db(scale * scale * energy, noise)


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Plain signal-to-distortion ratio ``10 log10(|s|^2 / |s - s_hat|^2)`` in dB.

    No projection, filter or mean removal: a gain change is distortion. ``inf`` for
    identical signals.
    """
    s, e = _pair(reference, estimate)
    energy = distortion = 0.0
    for part in _blocks(s.shape[-1]):
        sb = s[:, part].astype(np.float64)
        energy += float(np.sum(sb * sb))
        distortion += float(np.sum((sb - e[:, part]) ** 2))
    if energy == 0.0:
        raise InputError("the reference is silent; SDR needs a reference with sound in it")
    return _ratio_db(energy, distortion)


def log_spectral_distance(
    reference: np.ndarray, estimate: np.ndarray, *, n_fft: int = LSD_N_FFT, hop: int = LSD_HOP
) -> float:
    """Log-spectral distance in dB (definition in the module docstring).

    Per channel: Hann STFT (``n_fft`` 2048, hop 512), power in dB with a -100 dB floor,
    RMS over frequency per frame, then the mean over frames and channels.
    """
    s, e = _pair(reference, estimate)
    return float(np.mean(np.concatenate([_lsd_frames(a, b, n_fft, hop) for a, b in zip(s, e, strict=True)])))


def _lsd_frames(s: np.ndarray, e: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Per frame of one channel, the RMS over bins of the two signals' power difference in dB."""
    count = frame_count(s.size, n_fft, hop)
    starts = np.arange(count) * hop
    out = np.empty(count)
    blocks = zip(
        frame_power(s[None], starts, n_fft, block=512),
        frame_power(e[None], starts, n_fft, block=512),
        strict=True,  # the same frames of both
    )
    for (first, ps), (_, pe) in blocks:
        ls = 10 * np.log10(ps + LSD_FLOOR)
        le = 10 * np.log10(pe + LSD_FLOOR)
        out[first : first + len(ps)] = np.sqrt(np.mean((ls - le) ** 2, axis=-1))
    return out


def _blocks(length: int, size: int = 1 << 18) -> list[slice]:
    """Slices covering ``range(length)``: sums in float64 without whole-song copies."""
    return [slice(start, start + size) for start in range(0, max(length, 1), size)]


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, e = as_2d(reference), as_2d(estimate)
    if s.shape != e.shape:
        raise InputError(
            f"reference and estimate must have the same shape, got {s.shape} and {e.shape}; "
            "use apollo_cli.analysis.measure to align them"
        )
    return s, e


def _ratio_db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10 * math.log10(signal / noise)


@dataclass(frozen=True)
class Metrics:
    """An estimate measured against a clean reference (dB; see the module docstring)."""

    si_snr: float
    sdr: float
    lsd: float
    #: Seconds compared: the shorter of the two lengths.
    seconds: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready; infinite values (identical signals) become None."""
        return {k: (round(v, 4) if math.isfinite(v) else None) for k, v in
                {"si_snr_db": self.si_snr, "sdr_db": self.sdr, "lsd_db": self.lsd,
                 "seconds": self.seconds}.items()}  # fmt: skip


def align(reference: DecodedAudio, estimate: DecodedAudio) -> tuple[np.ndarray, np.ndarray, int]:
    """Bring ``estimate`` to ``reference``'s rate, trim both to the shorter, match channels.

    Returns ``(reference_samples, estimate_samples, sample_rate)``, float arrays of
    equal shape. Different channel counts are mixed down to mono on both sides.
    """
    rate = reference.sample_rate
    est = audio.resample(estimate.samples, estimate.sample_rate, rate)
    ref = reference.samples
    if ref.shape[0] != est.shape[0]:
        ref, est = ref.mean(axis=0, keepdims=True), est.mean(axis=0, keepdims=True)
    frames = min(ref.shape[1], est.shape[1])
    return ref[:, :frames], est[:, :frames], rate


def measure(reference: DecodedAudio, estimate: DecodedAudio) -> Metrics:
    """SI-SNR, SDR and LSD of ``estimate`` against ``reference``, after :func:`align`."""
    ref, est, rate = align(reference, estimate)
    return Metrics(
        si_snr=si_snr(ref, est),
        sdr=sdr(ref, est),
        lsd=log_spectral_distance(ref, est),
        seconds=ref.shape[1] / rate,
    )
