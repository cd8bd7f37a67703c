"""``apollo inspect``'s report on one file: codec facts, bandwidth and verdict together."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import audio, tags
from .bandwidth import Bandwidth, estimate_bandwidth
from .codecs import CodecInfo, probe_codec
from .verdict import Verdict, judge


@dataclass(frozen=True)
class FileReport:
    """Everything ``apollo inspect`` says about one file."""

    path: Path
    codec: CodecInfo
    sample_rate: int
    channels: int
    duration: float
    bandwidth: Bandwidth
    verdict: Verdict
    #: The file's apollo-cli provenance tag (version, model, settings), if it is a restoration.
    restored_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``--json`` output)."""
        return {
            "path": str(self.path),
            "container": self.codec.container,
            "codec": self.codec.codec,
            "lossless": self.codec.lossless,
            "bitrate_kbps": self.codec.bitrate_kbps,
            "bitrate_mode": self.codec.bitrate_mode,
            "encoder": self.codec.encoder,
            "encoder_settings": self.codec.encoder_settings,
            "encoder_lowpass_hz": self.codec.lowpass_hz,
            "sample_format": self.codec.sample_format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration": round(self.duration, 3),
            "bandwidth_hz": round(self.bandwidth.hz, 1),
            "bandwidth_sharp": self.bandwidth.sharp,
            "full_band": self.bandwidth.full_band,
            "noise_floor_db": round(self.bandwidth.floor_db, 1),
            "restoration_likely_to_help": self.verdict.helps,
            "verdict": self.verdict.message,
            "restored_by": self.restored_by,
        }


def inspect_file(path: str | os.PathLike[str]) -> FileReport:
    """Decode a file, estimate its bandwidth and read its codec facts.

    Raises the same :class:`~apollo_cli.errors.InputError` (and
    :class:`~apollo_cli.errors.MissingDependencyError`) as :func:`apollo_cli.audio.load_audio`.
    """
    p = Path(path)
    decoded = audio.load_audio(p)
    codec = probe_codec(p)
    bandwidth = estimate_bandwidth(decoded.samples, decoded.sample_rate)
    return FileReport(
        path=p,
        codec=codec,
        sample_rate=decoded.sample_rate,
        channels=decoded.channels,
        duration=decoded.duration,
        bandwidth=bandwidth,
        verdict=judge(codec, bandwidth, decoded.channels),
        restored_by=tags.read_provenance(p),
    )
