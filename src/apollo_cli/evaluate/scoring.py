"""Score an estimate against its clean segment: SI-SNR, SDR, LSD and (optionally) ViSQOL.

SI-SNR, SDR and LSD are :mod:`apollo_cli.analysis.metrics`' (defined there). ViSQOL
(v3, audio mode: the MOS-LQO score from 1 to about 4.75) comes from the optional
``eval`` extra, ``visqol-python`` (Apache-2.0; with numba it runs several times
faster). ViSQOL's audio mode works on mono at 48 kHz, so both signals are mixed down
and resampled to that first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import audio
from ..analysis.metrics import log_spectral_distance, sdr, si_snr
from ..errors import MissingDependencyError, OptionError

#: Every metric, by the name ``--metrics`` takes, in the order tables show them.
METRICS = ("si-snr", "sdr", "lsd", "visqol")
#: Whether a higher value is better, per metric (LSD is a distance).
HIGHER_IS_BETTER = {"si-snr": True, "sdr": True, "lsd": False, "visqol": True}
#: Units, for tables and figures.
UNITS = {"si-snr": "dB", "sdr": "dB", "lsd": "dB", "visqol": "MOS"}
LABELS = {"si-snr": "SI-SNR", "sdr": "SDR", "lsd": "LSD", "visqol": "ViSQOL"}
VISQOL_HINT = "pip install 'apollo-cli[eval]' adds ViSQOL"
#: The note a report carries when ViSQOL was not measured.
VISQOL_MISSING = "ViSQOL not measured: pip install 'apollo-cli[eval]' adds it"
#: ViSQOL's audio mode rate.
VISQOL_RATE = 48000


def visqol_available() -> bool:
    """Whether ``visqol-python`` can be imported."""
    try:
        import visqol  # noqa: F401
    except ImportError:
        return False
    return True


def parse_metrics(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """The metrics asked for, in table order; ``None``: all that are installed.

    An unknown name is an OptionError; ``visqol`` asked for by name without
    ``visqol-python`` is a MissingDependencyError saying what to install.
    """
    if text is None:
        return METRICS if visqol_available() else METRICS[:-1]
    words = text.split(",") if isinstance(text, str) else list(text)
    wanted = {w.strip().lower().replace("_", "-") for w in words if w.strip()}
    unknown = sorted(wanted - set(METRICS))
    if unknown or not wanted:
        raise OptionError(f"unknown metric '{', '.join(unknown)}'; use some of {', '.join(METRICS)}")
    if "visqol" in wanted and not visqol_available():
        raise MissingDependencyError(f"ViSQOL needs visqol-python: {VISQOL_HINT}")
    return tuple(m for m in METRICS if m in wanted)


@dataclass
class Scorer:
    """Scores pairs with the chosen metrics; ViSQOL's model is set up once, on first use."""

    metrics: Sequence[str]
    _visqol: Any = None

    def score(self, reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> dict[str, float]:
        """Every chosen metric of ``estimate`` against ``reference`` (same shape, ``(channels, frames)``)."""
        return {metric: self.one(metric, reference, estimate, sample_rate) for metric in self.metrics}

    def one(self, metric: str, reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
        """One metric (a name from :data:`METRICS`)."""
        if metric == "si-snr":
            return si_snr(reference, estimate)
        if metric == "sdr":
            return sdr(reference, estimate)
        if metric == "lsd":
            return log_spectral_distance(reference, estimate)
        if metric == "visqol":
            return self.visqol(reference, estimate, sample_rate)
        raise OptionError(f"unknown metric '{metric}'; use some of {', '.join(METRICS)}")

    def visqol(self, reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
        """ViSQOL v3 audio mode's MOS-LQO (mono, 48 kHz)."""
        if self._visqol is None:
            try:
                from visqol import VisqolApi
            except ImportError:
                raise MissingDependencyError(f"ViSQOL needs visqol-python: {VISQOL_HINT}") from None
            # Its warnings (a rate other than 48 kHz, lengths that differ) cannot happen here.
            logging.getLogger("visqol").setLevel(logging.ERROR)
            api = VisqolApi()
            api.create(mode="audio")
            self._visqol = api
        ref, est = (
            audio.resample(np.asarray(x, np.float32).mean(axis=0, keepdims=True), sample_rate, VISQOL_RATE)[0]
            for x in (reference, estimate)
        )
        result = self._visqol.measure_from_arrays(ref.astype(np.float64), est.astype(np.float64), VISQOL_RATE)
        return float(result.moslqo)


def finite_or_none(value: float) -> float | None:
    """JSON-ready: an infinite value (identical signals) becomes None."""
    return round(value, 4) if math.isfinite(value) else None
