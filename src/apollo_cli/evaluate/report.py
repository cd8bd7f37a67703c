"""What an evaluation found: one row per (file, bitrate, system), and summaries of them.

A *system* is the codec itself (``codec``: the decoded audio, the baseline) or a
model's restoration of it (the model's label). :meth:`EvaluationReport.summaries`
gives, per bitrate and system, each metric's mean and spread (sample standard
deviation) over the files, and for a model its gain over the codec: the mean over
files of (model - codec), so a positive SI-SNR gain and a negative LSD gain are both
improvements. The report is written to REPORT_DIR as ``scores.csv`` (a row per file,
bitrate and system) and ``report.json`` (the settings, the rows and the summaries).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .scoring import METRICS, VISQOL_MISSING, finite_or_none
from .store import write_text

#: The codec baseline's name among the systems.
CODEC = "codec"


@dataclass(frozen=True)
class Row:
    """The scores of one estimate: a file's segment at a bitrate, coded or restored by a model."""

    file: str
    bitrate: int
    system: str
    scores: dict[str, float]
    #: Where the segment starts in the file, and its length (seconds).
    start: float
    seconds: float
    #: The file's value of the ``--group-by`` tag (None without grouping).
    group: str | None = None


@dataclass(frozen=True)
class Summary:
    """One metric of one system at one bitrate, over the files (of a group)."""

    bitrate: int
    system: str
    metric: str
    files: int
    mean: float
    spread: float
    #: Mean over files of (system - codec); None for the codec itself.
    gain: float | None


@dataclass
class EvaluationReport:
    """Everything :func:`apollo_cli.evaluate.evaluate` found, and what it cost."""

    report_dir: Path
    codec: str
    bitrates: tuple[int, ...]
    #: ``codec`` first, then each model's label.
    systems: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: list[Row]
    files: tuple[str, ...]
    group_by: str | None = None
    #: Each model's label and identity (``model NAME sha256:...; precision=...``).
    models: dict[str, str] = field(default_factory=dict)
    #: Seconds spent per stage in this run (segment, encode, decode, restore, score, visqol).
    timings: dict[str, float] = field(default_factory=dict)
    #: What this run did (not read from the cache): encoded, restored, scored.
    counts: dict[str, int] = field(default_factory=dict)
    #: Whether ViSQOL was left out because visqol-python is not installed.
    visqol_missing: bool = False

    def groups(self) -> list[str]:
        """The ``--group-by`` values found, sorted (empty without grouping)."""
        return sorted({r.group for r in self.rows if r.group is not None})

    def summaries(self, group: str | None = None) -> list[Summary]:
        """Per bitrate, system and metric: mean, spread and gain over the files (of ``group``)."""
        rows = [r for r in self.rows if group is None or r.group == group]
        table: dict[tuple[int, str], dict[str, float]] = {}
        for r in rows:
            for metric, value in r.scores.items():
                table.setdefault((r.bitrate, r.system), {})[f"{r.file}\x1f{metric}"] = value
        out = []
        for bitrate in self.bitrates:
            codec = table.get((bitrate, CODEC), {})
            for system in self.systems:
                values = table.get((bitrate, system), {})
                for metric in self.metrics:
                    mine = {k: v for k, v in values.items() if k.endswith(f"\x1f{metric}")}
                    if not mine:
                        continue
                    finite = [v for v in mine.values() if math.isfinite(v)]
                    mean = statistics.fmean(finite) if finite else math.inf
                    spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
                    gain = None
                    if system != CODEC:
                        gains = [v - codec[k] for k, v in mine.items() if k in codec]
                        gains = [g for g in gains if math.isfinite(g)]
                        gain = statistics.fmean(gains) if gains else None
                    out.append(Summary(bitrate, system, metric, len(mine), mean, spread, gain))
        return out

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: settings, rows, summaries (overall and per group), timings."""

        def summary_dicts(group: str | None) -> list[dict[str, object]]:
            return [
                {"bitrate": s.bitrate, "system": s.system, "metric": s.metric, "files": s.files,
                 "mean": finite_or_none(s.mean), "spread": finite_or_none(s.spread),
                 "gain": None if s.gain is None else finite_or_none(s.gain)}
                for s in self.summaries(group)
            ]  # fmt: skip

        data: dict[str, object] = {
            "codec": self.codec,
            "bitrates": list(self.bitrates),
            "systems": list(self.systems),
            "models": self.models,
            "metrics": list(self.metrics),
            "files": list(self.files),
            "group_by": self.group_by,
            "rows": [
                {
                    "file": r.file,
                    "group": r.group,
                    "bitrate": r.bitrate,
                    "system": r.system,
                    "start": finite_or_none(r.start),
                    "seconds": finite_or_none(r.seconds),
                    **{m: finite_or_none(r.scores[m]) for m in self.metrics if m in r.scores},
                }
                for r in self.rows
            ],
            "summary": summary_dicts(None),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "counts": self.counts,
        }
        if self.group_by is not None:
            data["groups"] = {g: summary_dicts(g) for g in self.groups()}
        if self.visqol_missing:
            data["note"] = VISQOL_MISSING
        return data

    def csv_text(self) -> str:
        """A row per file, bitrate and system; empty cells for what was not measured."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = [m for m in METRICS if m in self.metrics]
        head = ["file", *(["group"] if self.group_by else []), "bitrate_kbps", "system", "start_s", "seconds"]
        writer.writerow(head + columns)
        for r in self.rows:
            cells: list[object] = [r.file, *([r.group or ""] if self.group_by else []), r.bitrate, r.system,
                                   f"{r.start:.3f}", f"{r.seconds:.3f}"]  # fmt: skip
            for metric in columns:
                value = r.scores.get(metric)
                cells.append("" if value is None else ("inf" if math.isinf(value) else f"{value:.4f}"))
            writer.writerow(cells)
        return buffer.getvalue()

    def write(self) -> tuple[Path, Path]:
        """Write ``scores.csv`` and ``report.json`` into the report folder (atomically); their paths."""
        csv_path, json_path = self.report_dir / "scores.csv", self.report_dir / "report.json"
        write_text(csv_path, self.csv_text())
        write_text(json_path, json.dumps(self.to_dict(), indent=2) + "\n")
        return csv_path, json_path
