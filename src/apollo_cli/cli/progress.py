"""Rich progress displays for the CLI, fed by the library's plain callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

if TYPE_CHECKING:  # types only: importing inference would import torch, which --help does not need
    from ..hub import DownloadProgress
    from ..inference import ProgressCallback


class AudioSecondsColumn(ProgressColumn):
    """``12.0/180.0 s`` of audio done."""

    def render(self, task: Task) -> Text:
        total = f"{task.total:.1f}" if task.total is not None else "?"
        return Text(f"{task.completed:.1f}/{total} s", style="progress.download")


class RealTimeColumn(ProgressColumn):
    """Processing speed as a multiple of real time (audio seconds per wall second)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("  -  × real time", style="progress.data.speed")
        return Text(f"{speed:5.2f}× real time", style="progress.data.speed")


def format_duration(seconds: float) -> str:
    """``1:02:03``, ``3:07`` or ``4.2 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Display:
    """The CLI's progress bars; every method is a no-op when quiet."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        # Bars are for people: when stderr is a file or a pipe (a log, CI) they
        # would only add noise.
        self.quiet = quiet or not console.is_terminal

    def download(self, label: str) -> contextlib.AbstractContextManager[DownloadProgress]:
        """A byte-count bar for one file; yields the callback ``(done, total)`` that feeds it."""
        return self._bar(label, 1, DownloadColumn(), TransferSpeedColumn())

    def audio(self, label: str, sample_rate: int) -> contextlib.AbstractContextManager[ProgressCallback]:
        """A bar over seconds of audio restored; yields the callback ``(done, total)`` in samples."""
        return self._bar(label, sample_rate, AudioSecondsColumn(), RealTimeColumn())

    @contextlib.contextmanager
    def _bar(self, label: str, unit: int, *columns: ProgressColumn) -> Iterator[Callable[[int, int], None]]:
        """One transient bar whose task appears with the first report (its total known then)."""
        if self.quiet:
            yield lambda done, total: None
            return
        progress = Progress(
            TextColumn("[bold blue]{task.description}"),
            BarColumn(),
            *columns,
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        task: TaskID | None = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = progress.add_task(escape(label), total=total / unit if total else None)
            progress.update(task, completed=done / unit, total=total / unit if total else None)

        with progress:
            yield update
