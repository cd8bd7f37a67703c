"""Look at and measure a restoration: effective bandwidth, codec facts, quality metrics.

Everything here is NumPy only (matplotlib drawing lives in :mod:`apollo_cli.plot`)
and works on float ``(channels, frames)`` arrays as :func:`apollo_cli.audio.load_audio`
returns them. Each concern has its module; every public name is also available here,
as ``apollo_cli.analysis.NAME``:

- :mod:`.framing`: the one framed-FFT loop (Hann frames, power spectra, in blocks)
  that the bandwidth estimate, the LSD and the spectrogram all read.
- :mod:`.bandwidth`: the effective bandwidth, :func:`estimate_bandwidth` (the method
  is described in that module's docstring).
- :mod:`.codecs`: :func:`probe_codec` (codec facts from a file's headers) and what
  MP3, AAC and Opus encoders are known to cut at each bitrate.
- :mod:`.verdict`: :func:`judge`, whether restoration is likely to help.
- :mod:`.report`: :func:`inspect_file`, ``apollo inspect``'s report on one file.
- :mod:`.metrics`: SI-SNR, SDR and LSD against a clean reference (defined in that
  module's docstring), :func:`measure`.
- :mod:`.compare`: :func:`compare_files`, ``apollo compare``'s findings.
- :mod:`.spectrogram`: :func:`spectrogram`, a log-frequency picture's data.
"""

from __future__ import annotations

from .bandwidth import FULL_BAND_HZ, Bandwidth, bandwidth_fft_size, estimate_bandwidth, long_term_spectrum
from .codecs import (
    AAC_LOWPASS_HZ,
    MP3_LOWPASS_HZ,
    OPUS_BANDWIDTH_HZ,
    OPUS_TRANSPARENT_KBPS_PER_CHANNEL,
    CodecInfo,
    aac_lowpass_range,
    expected_lowpass_hz,
    probe_codec,
    typical_mp3_bitrates,
)
from .compare import Comparison, Measured, compare_files
from .metrics import (
    LSD_FLOOR,
    LSD_HOP,
    LSD_N_FFT,
    Metrics,
    align,
    log_spectral_distance,
    measure,
    sdr,
    si_snr,
)
from .report import FileReport, inspect_file
from .spectrogram import Spectrogram, spectrogram
from .verdict import Verdict, judge

__all__ = [
    "AAC_LOWPASS_HZ",
    "FULL_BAND_HZ",
    "LSD_FLOOR",
    "LSD_HOP",
    "LSD_N_FFT",
    "MP3_LOWPASS_HZ",
    "OPUS_BANDWIDTH_HZ",
    "OPUS_TRANSPARENT_KBPS_PER_CHANNEL",
    "Bandwidth",
    "CodecInfo",
    "Comparison",
    "FileReport",
    "Measured",
    "Metrics",
    "Spectrogram",
    "Verdict",
    "aac_lowpass_range",
    "align",
    "bandwidth_fft_size",
    "compare_files",
    "estimate_bandwidth",
    "expected_lowpass_hz",
    "inspect_file",
    "judge",
    "log_spectral_distance",
    "long_term_spectrum",
    "measure",
    "probe_codec",
    "sdr",
    "si_snr",
    "spectrogram",
    "typical_mp3_bitrates",
]
