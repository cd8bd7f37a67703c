"""The evaluation's cache in REPORT_DIR/cache: what was done is never done again.

Three kinds of entries, each written atomically (a reader never sees half a file, and
an interrupted run leaves only whole entries):

- ``coded/KEY.EXT``: a segment encoded at a bitrate (KEY: the reference's content
  hash, the segment length, codec and bitrate);
- ``restored/KEY.wav``: its restoration by a model (KEY adds the checkpoint's SHA-256
  and the options that change the output, :meth:`RestoreOptions.describe`), as 32-bit
  float WAV so nothing is clipped;
- ``scores/KEY.json``: the metrics of one (coded or restored) estimate.

Keys hash what the result depends on, so a renamed file, another model or other
options are new entries rather than stale ones, and a re-run reads what is there.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .. import audio
from ..errors import OutputError

#: Bump when a change would make cached results differ (the segment choice, say).
VERSION = "1"


def key(*parts: object) -> str:
    """A short, stable name for what ``parts`` describe (24 hex digits of their SHA-256)."""
    text = "\x1f".join(str(p) for p in (VERSION, *parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class Store:
    """The cache under ``report_dir/cache``; folders are made on first write."""

    def __init__(self, report_dir: str | os.PathLike[str]) -> None:
        self.root = Path(report_dir) / "cache"

    def path(self, kind: str, name: str) -> Path:
        """Where entry ``name`` (with its extension) of ``kind`` lives."""
        return self.root / kind / name

    def _prepare(self, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create {target.parent}: {exc.strerror or exc}; choose a writable report folder with -o"
            ) from None

    def coded_path(self, name: str, extension: str) -> Path:
        """Where an encoded segment goes; its folder exists afterwards."""
        target = self.path("coded", name + extension)
        self._prepare(target)
        return target

    def read_audio(self, kind: str, name: str) -> np.ndarray | None:
        """A cached float32 ``(channels, frames)`` WAV, or None when absent."""
        target = self.path(kind, name + ".wav")
        if not target.is_file():
            return None
        data, _rate = sf.read(target, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T)

    def write_audio(self, kind: str, name: str, samples: np.ndarray, sample_rate: int) -> None:
        """Cache float32 ``(channels, frames)`` audio as a 32-bit float WAV."""
        target = self.path(kind, name + ".wav")
        self._prepare(target)
        with audio.atomic_output(target) as tmp:
            sf.write(tmp, np.ascontiguousarray(samples.T), sample_rate, subtype="FLOAT", format="WAV")

    def read_scores(self, name: str) -> dict[str, float]:
        """The metrics cached for an estimate (``{}`` when none)."""
        target = self.path("scores", name + ".json")
        try:
            stored = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: (math.inf if v is None else float(v)) for k, v in stored.items()}

    def write_scores(self, name: str, scores: dict[str, float]) -> None:
        """Cache an estimate's metrics (infinite values, identical signals, as null)."""
        target = self.path("scores", name + ".json")
        self._prepare(target)
        data = {k: (v if math.isfinite(v) else None) for k, v in scores.items()}
        write_text(target, json.dumps(data, sort_keys=True))


def write_text(target: Path, text: str) -> None:
    """Write a text file atomically."""
    with audio.atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
