"""Spectrogram pictures: before/after (and reference) stacked, for a person to judge.

matplotlib is an optional extra (``pip install 'apollo-cli[plot]'``) and is imported
only when a picture is drawn; :func:`require_matplotlib` fails early, with one line
saying what to install, so a command can check before doing any work. Drawing uses
matplotlib's object API and the Agg canvas (no pyplot, no GUI backend, no global state).

Each panel is a log-frequency power spectrogram (:func:`apollo_cli.analysis.spectrogram`):
frequency in Hz on a log axis, time in seconds, one colour scale (dB) shared by all
panels with a colour bar, a title with the file name and its estimated bandwidth, and a
dashed line at that bandwidth. The layout is fixed (:func:`figure_layout`), so the
picture's size depends only on the number of panels.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import numpy as np

from . import audio, provenance, tags
from .analysis import Bandwidth, Comparison, Spectrogram, estimate_bandwidth, spectrogram
from .audio import DecodedAudio
from .errors import MissingDependencyError, OutputError

INSTALL_HINT = "plotting needs matplotlib: pip install 'apollo-cli[plot]'"

DPI = 100
_WIDTH_IN = 12.0
_PANEL_IN = 3.0
_TOP_IN = 0.45
_GAP_IN = 0.5
_BOTTOM_IN = 0.6
_LEFT_IN = 0.85
_RIGHT_IN = 1.05
_COLORBAR_IN = 0.16
#: Colour scale: from the loudest panel's top (rounded up to 10 dB) down this far.
DYNAMIC_RANGE_DB = 100.0
_LINE_COLOUR = "#3ee8ff"
_CONTROL_COLOUR = "#9dff6e"


@dataclass(frozen=True)
class Panel:
    """One spectrogram of a picture."""

    #: What it is, e.g. "before": shown first in the title.
    role: str
    #: The file's name, shown after the role.
    name: str
    spectrogram: Spectrogram
    bandwidth: Bandwidth | None = None
    #: Extra words for the title, e.g. "resampled to 44.1 kHz".
    note: str = ""
    #: Lines to draw at frequencies (Hz), with their labels: a restoration's cutoff and crossover.
    marks: tuple[tuple[float, str], ...] = ()


def require_matplotlib() -> None:
    """Raise MissingDependencyError (one line: what to install) unless matplotlib imports."""
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None


def check_png_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check, before any work, that a PNG can be written to ``path``.

    A ``.png`` name in an existing, writable directory; an existing file only with
    ``overwrite``. Also checks that matplotlib is installed.
    """
    target = Path(path)
    if target.suffix.lower() != ".png":
        got = f"'{target.suffix}'" if target.suffix else "no extension"
        raise OutputError(f"cannot write {target}: pictures are PNG, not {got}; use a .png file name")
    audio.check_writable(target, overwrite)
    require_matplotlib()
    return target


def figure_layout(panels: int) -> tuple[tuple[int, int], list[tuple[float, float, float, float]]]:
    """The picture's size in pixels and each panel's box (left, bottom, width, height).

    Boxes are fractions of the figure, top panel first, as matplotlib's ``add_axes``
    takes them.
    """
    height_in = _TOP_IN + panels * _PANEL_IN + (panels - 1) * _GAP_IN + _BOTTOM_IN
    boxes = []
    for i in range(panels):
        top = _TOP_IN + i * (_PANEL_IN + _GAP_IN)
        bottom = height_in - top - _PANEL_IN
        boxes.append((
            _LEFT_IN / _WIDTH_IN,
            bottom / height_in,
            (_WIDTH_IN - _LEFT_IN - _RIGHT_IN) / _WIDTH_IN,
            _PANEL_IN / height_in,
        ))  # fmt: skip
    return (round(_WIDTH_IN * DPI), round(height_in * DPI)), boxes


def draw_spectrograms(
    panels: Sequence[Panel], path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Draw stacked spectrograms to a PNG at ``path`` (atomically); returns the path."""
    if not panels:
        raise ValueError("nothing to draw: no panels")
    target = check_png_path(path, overwrite=overwrite)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    (width_px, height_px), boxes = figure_layout(len(panels))
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)

    top_db = max(float(np.percentile(p.spectrogram.db, 99.9)) for p in panels)
    vmax = 10 * math.ceil(top_db / 10)
    vmin = vmax - DYNAMIC_RANGE_DB
    fmin = min(float(p.spectrogram.freq_edges[0]) for p in panels)
    fmax = max(float(p.spectrogram.freq_edges[-1]) for p in panels)
    tmax = max(p.spectrogram.duration for p in panels)
    ticks = [t for t in (20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4) if fmin <= t <= fmax]

    image = None
    for i, (panel, box) in enumerate(zip(panels, boxes, strict=True)):
        ax = fig.add_axes(box)
        spec = panel.spectrogram
        image = ax.imshow(
            spec.db,
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            extent=(0.0, spec.duration, math.log10(spec.freq_edges[0]), math.log10(spec.freq_edges[-1])),
        )
        ax.set_facecolor("#d9d9d9")  # where a panel has no data (shorter, lower rate)
        ax.set_xlim(0.0, tmax)
        ax.set_ylim(math.log10(fmin), math.log10(fmax))
        ax.yaxis.set_major_locator(FixedLocator([math.log10(t) for t in ticks]))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_yticklabels([_hz_label(t) for t in ticks])
        ax.set_ylabel("frequency (Hz)")
        ax.tick_params(labelsize=9)
        if i == len(panels) - 1:
            ax.set_xlabel("time (s)")
        else:
            ax.tick_params(labelbottom=False)
        ax.set_title(_title(panel), loc="left", fontsize=11)
        bw = panel.bandwidth
        if _has_edge(bw, spec):
            _mark(ax, bw.hz, f"{bw.hz / 1000:.1f} kHz", _LINE_COLOUR, (0, (6, 4)), 1.5, at=0.995)
        for hz, label in panel.marks:
            if spec.freq_edges[0] < hz < spec.freq_edges[-1]:
                _mark(ax, hz, label, _CONTROL_COLOUR, (0, (1, 2)), 1.5, at=0.5)
        first_bw = panels[0].bandwidth
        moved = bw is None or first_bw is None or not abs(bw.hz - first_bw.hz) < 300
        if i > 0 and _has_edge(first_bw, panels[0].spectrogram) and moved:
            # Where the first panel's band ended, to see what changed above it.
            label = f"{panels[0].role}: {first_bw.hz / 1000:.1f} kHz"
            _mark(ax, first_bw.hz, label, "white", (0, (2, 3)), 1.0, at=0.005)

    assert image is not None  # there is at least one panel
    first, last = boxes[0], boxes[-1]
    bar = fig.add_axes((
        first[0] + first[2] + 0.18 / _WIDTH_IN,
        last[1],
        _COLORBAR_IN / _WIDTH_IN,
        first[1] + first[3] - last[1],
    ))  # fmt: skip
    colorbar = fig.colorbar(image, cax=bar)
    colorbar.set_label("power (dB)")
    colorbar.ax.tick_params(labelsize=9)

    with audio.atomic_output(target) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return target


def _has_edge(bw: Bandwidth | None, spec: Spectrogram) -> TypeGuard[Bandwidth]:
    """Whether a bandwidth is worth a line: a cut inside its spectrogram's range."""
    return bw is not None and not bw.silent and spec.freq_edges[0] < bw.hz < spec.freq_edges[-1] * 0.98


def _mark(ax, hz: float, text: str, colour: str, style: object, width: float, *, at: float) -> None:  # type: ignore[no-untyped-def]
    """A horizontal line at ``hz`` with a small label under it, at ``at`` of the width (left, centre or right)."""
    y = math.log10(hz)
    ax.axhline(y, color=colour, linestyle=style, linewidth=width)
    ax.text(
        at, y, f" {text} ", transform=ax.get_yaxis_transform(),
        ha="right" if at > 0.9 else "left" if at < 0.1 else "center", va="top", color=colour, fontsize=9, fontweight="bold",
        bbox={"facecolor": "black", "alpha": 0.55, "edgecolor": "none", "pad": 1.5},
    )  # fmt: skip


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


def _db(value: float) -> str:
    return f"{value:.1f} dB" if math.isfinite(value) else ("∞ dB" if value > 0 else "-∞ dB")


def _title(panel: Panel) -> str:
    parts = [f"{panel.role}: {panel.name}"]
    bw = panel.bandwidth
    if bw is not None:
        if bw.silent:
            parts.append("silent")
        elif bw.full_band:
            parts.append(f"bandwidth {bw.hz / 1000:.1f} kHz (full band)")
        elif bw.rate_limited:
            parts.append(f"bandwidth {bw.hz / 1000:.1f} kHz (the sample rate's limit)")
        else:
            kind = "cut-off" if bw.sharp else "roll-off"
            parts.append(f"bandwidth {bw.hz / 1000:.1f} kHz ({kind})")
    if panel.note:
        parts.append(panel.note)
    return "  ·  ".join(parts)


# --------------------------------------------------------------------- the two pictures


def save_comparison_png(
    comparison: Comparison, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """``apollo compare --png``: before, after and (if given) reference, stacked.

    With a reference, the before and after titles carry their SI-SNR and LSD against it.
    """
    panels = []
    for m in comparison.files:
        metrics = comparison.metrics.get(m.role)
        note = "" if metrics is None else f"SI-SNR {_db(metrics.si_snr)}, LSD {_db(metrics.lsd)}"
        spec = spectrogram(m.audio.samples, m.audio.sample_rate)
        # A restoration made with --cutoff or --keep-lows says so in its provenance tag.
        marks = control_marks(tags.read_provenance(m.path))
        panels.append(Panel(m.role, m.path.name, spec, m.bandwidth, note, marks))
    return draw_spectrograms(panels, path, overwrite=overwrite)


def save_restore_png(
    path: str | os.PathLike[str],
    before: DecodedAudio,
    before_name: str,
    after: DecodedAudio,
    after_name: str,
    *,
    sample_rate: int = audio.MODEL_SAMPLE_RATE,
    overwrite: bool = False,
    marks: tuple[tuple[float, str], ...] = (),
) -> Path:
    """``apollo restore --spectrogram``: the decoded input (resampled to the model's rate) and the result.

    ``marks`` (see :func:`control_marks`) are drawn on the result's panel.
    """
    panels = []
    for role, decoded, name in (("before", before, before_name), ("after", after, after_name)):
        samples = audio.resample(decoded.samples, decoded.sample_rate, sample_rate)
        note = f"resampled to {sample_rate / 1000:g} kHz" if decoded.sample_rate != sample_rate else ""
        panels.append(Panel(
            role, name, spectrogram(samples, sample_rate), estimate_bandwidth(samples, sample_rate), note,
            marks if role == "after" else (),
        ))  # fmt: skip
    return draw_spectrograms(panels, path, overwrite=overwrite)


def control_marks(provenance_value: str | None) -> tuple[tuple[float, str], ...]:
    """The cutoff and crossover lines for a restoration whose provenance tag is ``provenance_value``."""
    settings = provenance.settings(provenance_value or "")
    marks = []
    for key, label in (("cutoff", "cutoff"), ("keep-lows", "keep-lows crossover")):
        value = settings.get(key)
        if value is not None:
            with contextlib.suppress(ValueError):  # "auto" (an older tag) has no frequency to draw
                marks.append((float(value), f"{label} {float(value) / 1000:.1f} kHz"))
    return tuple(marks)
