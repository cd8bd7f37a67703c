"""The PNG options' checks and drawing: ``apollo restore --spectrogram`` and ``apollo compare --png``.

Thin over :mod:`apollo_cli.plot`, which (with matplotlib) is imported only when a picture is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.markup import escape

from ..errors import OutputError
from . import reported_errors
from .console import out


def check_spectrogram_option(
    path: Path, *, overwrite: bool, debug: bool, protected: dict[str, Path] | None = None
) -> None:
    """For ``restore --spectrogram``: fail before any work if the PNG cannot be drawn.

    ``protected`` names the files the picture must never replace (``{"input": ...,
    "output": ...}``): even with ``--overwrite`` a PNG path that is one of them is refused.
    """
    from .. import plot

    with reported_errors(debug):
        refuse_same_path(path, "--spectrogram", protected or {})
        plot.check_png_path(path, overwrite=overwrite)


def refuse_same_path(path: Path, option: str, protected: dict[str, Path]) -> None:
    """An :class:`OutputError` if the picture ``path`` is one of the ``protected`` files (by role)."""
    for role, other in protected.items():
        if _same_path(path, other):
            raise OutputError(
                f"{option} {path} is the {role} file, which the picture would replace; choose another path for the PNG"
            )


def _same_path(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path, or (existing) the same inode."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def draw_restore_spectrogram(
    path: Path, input_path: Path, before: Any, output_path: Path, *, overwrite: bool, quiet: bool, debug: bool
) -> None:
    """For ``restore --spectrogram``: draw the decoded input and the written result."""
    from .. import audio, plot, tags

    with reported_errors(debug):
        after = audio.load_audio(output_path)
        marks = plot.control_marks(tags.read_provenance(output_path))  # --cutoff / --keep-lows lines
        plot.save_restore_png(
            path, before, input_path.name, after, output_path.name, overwrite=overwrite, marks=marks
        )
        if not quiet:
            out.print(f"wrote {escape(str(path))}", soft_wrap=True)
