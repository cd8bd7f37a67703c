"""``apollo evaluate``: restoration quality against bitrate, on your own clean music.

The Apollo paper's bitrate analysis as a library call::

    import apollo_cli
    from apollo_cli.evaluate import evaluate
    report = evaluate("Clean", "Clean-evaluation", models=[apollo_cli.load_model("mp3")],
                      bitrates=[24, 64, 128], codec="mp3")
    for s in report.summaries():
        print(s.bitrate, s.system, s.metric, s.mean, s.gain)

Each concern has its module; the public names are also available here:

- :mod:`.segments`: which clean files, and which segment of each (44.1 kHz, not silence).
- :mod:`.coding`: encoding at a bitrate with a real encoder (ffmpeg), and decoding.
- :mod:`.alignment`: the encoder's delay found and checked; a misaligned pair refused.
- :mod:`.scoring`: SI-SNR, SDR, LSD and ViSQOL (the ``eval`` extra).
- :mod:`.store`: the resumable cache in the report folder.
- :mod:`.report`: rows, summaries (mean, spread, gain over the codec), CSV and JSON.
- :mod:`.figure`: each metric against bitrate, one line per model plus the codec.
- :mod:`.run`: :func:`evaluate`, the loop that ties them together.

Importing this package imports torch (through :mod:`.run`).
"""

from __future__ import annotations

from .coding import CODECS, DEFAULT_BITRATES, parse_bitrates
from .figure import draw_figure, group_png_path
from .report import CODEC, EvaluationReport, Row, Summary
from .run import EvaluationProgress, default_report_dir, evaluate, prepare_report_dir
from .scoring import METRICS, VISQOL_HINT, parse_metrics, visqol_available
from .segments import check_readable, find_references

__all__ = [
    "CODEC",
    "CODECS",
    "DEFAULT_BITRATES",
    "METRICS",
    "VISQOL_HINT",
    "EvaluationProgress",
    "EvaluationReport",
    "Row",
    "Summary",
    "check_readable",
    "default_report_dir",
    "draw_figure",
    "evaluate",
    "find_references",
    "group_png_path",
    "parse_bitrates",
    "parse_metrics",
    "prepare_report_dir",
    "visqol_available",
]
