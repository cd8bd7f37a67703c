"""``apollo compare``'s findings: two or three files' bandwidths and, with a reference, metrics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import audio
from ..audio import DecodedAudio
from .bandwidth import Bandwidth, estimate_bandwidth
from .metrics import Metrics, measure


@dataclass(frozen=True)
class Measured:
    """One decoded file of a comparison with its bandwidth."""

    role: str
    path: Path
    audio: DecodedAudio = field(repr=False)
    bandwidth: Bandwidth


@dataclass(frozen=True)
class Comparison:
    """``apollo compare``'s findings: bandwidths, and metrics when there is a reference."""

    files: list[Measured]
    #: role ("before", "after") -> metrics against the reference; empty without one.
    metrics: dict[str, Metrics]

    def get(self, role: str) -> Measured | None:
        """The file with this role ("before", "after", "reference"), if any."""
        return next((m for m in self.files if m.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``--json`` output)."""
        return {
            m.role: {
                "path": str(m.path),
                "sample_rate": m.audio.sample_rate,
                "channels": m.audio.channels,
                "duration": round(m.audio.duration, 3),
                "bandwidth_hz": round(m.bandwidth.hz, 1),
                "bandwidth_sharp": m.bandwidth.sharp,
                **({"metrics": self.metrics[m.role].to_dict()} if m.role in self.metrics else {}),
            }
            for m in self.files
        }


def compare_files(
    before: str | os.PathLike[str],
    after: str | os.PathLike[str],
    reference: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Decode two (or three) files, estimate their bandwidths and, with a reference, the metrics."""
    roles: Sequence[tuple[str, str | os.PathLike[str] | None]] = (
        ("before", before), ("after", after), ("reference", reference)
    )  # fmt: skip
    files = []
    for role, path in roles:
        if path is None:
            continue
        decoded = audio.load_audio(path)
        files.append(
            Measured(role, Path(path), decoded, estimate_bandwidth(decoded.samples, decoded.sample_rate))
        )
    metrics: dict[str, Metrics] = {}
    if reference is not None:
        ref = files[-1].audio
        metrics = {m.role: measure(ref, m.audio) for m in files[:2]}
    return Comparison(files, metrics)
