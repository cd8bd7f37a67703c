"""The evaluation's figure, like the Apollo paper's: each metric against bitrate.

One panel per metric, bitrate (kbps, log scale) across, the mean over files up, one
line per system (the codec dashed, each model solid) with the spread over files as a
band. With ``group`` set, only that group's files. matplotlib is the ``plot`` extra
(:func:`apollo_cli.plot.require_matplotlib`); the PNG is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import audio
from ..plot import DPI, check_png_path
from .report import CODEC, EvaluationReport
from .scoring import HIGHER_IS_BETTER, LABELS, UNITS

_PANEL_IN = 3.6


def group_png_path(path: str | os.PathLike[str], tag: str, group: str) -> Path:
    """``FIG.genre-Rock.png`` beside ``FIG.png``: the figure of one ``--group-by`` group."""
    target = Path(path)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in group) or "_"
    return target.with_name(f"{target.stem}.{tag}-{safe}{target.suffix}")


def draw_figure(
    report: EvaluationReport,
    path: str | os.PathLike[str],
    *,
    group: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Draw ``report``'s metrics against bitrate to a PNG at ``path``; returns the path."""
    target = check_png_path(path, overwrite=overwrite)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    summaries = report.summaries(group)
    metrics = [m for m in report.metrics if any(s.metric == m for s in summaries)] or list(report.metrics)
    fig = Figure(figsize=(_PANEL_IN * len(metrics) + 0.6, _PANEL_IN + 0.9), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colours = ["#444444", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for ax, metric in zip(axes, metrics, strict=True):
        for i, system in enumerate(report.systems):
            points = sorted((s.bitrate, s.mean, s.spread) for s in summaries
                            if s.system == system and s.metric == metric)  # fmt: skip
            if not points:
                continue
            x = [p[0] for p in points]
            y = [p[1] for p in points]
            colour = colours[i % len(colours)]
            ax.plot(x, y, marker="o", color=colour, linestyle="--" if system == CODEC else "-",
                    label=f"{report.codec.upper()} (no restoration)" if system == CODEC else system)  # fmt: skip
            if len(points) > 1:
                ax.fill_between(x, [p[1] - p[2] for p in points], [p[1] + p[2] for p in points],
                                color=colour, alpha=0.12, linewidth=0)  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(list(report.bitrates)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(b) for b in report.bitrates])
        ax.set_xlabel("bitrate (kbps)")
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        ax.set_title(f"{LABELS[metric]} ({UNITS[metric]}, {better} is better)", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=9)
    axes[0].legend(fontsize=8, loc="best")
    files = len({r.file for r in report.rows if group is None or r.group == group})
    where = f"{report.group_by} = {group}, " if group is not None else ""
    fig.suptitle(f"Restoration of {report.codec.upper()} against bitrate ({where}{files} files)", fontsize=11)
    fig.tight_layout()
    with audio.atomic_output(target) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return target
