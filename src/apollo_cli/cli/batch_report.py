"""What ``apollo batch`` shows: progress bars, a line per file, the plan and the summary.

:class:`BatchDisplay` renders a running batch's events (:mod:`apollo_cli.batch.events`):
one bar for the batch and one per worker for its current file on a terminal, and always
a line per file restored, skipped or failed. The rest prints the headline before a run,
the ``--dry-run`` listing and the summary table after. Names from the file system are
shown on one line each, whatever they hold (:func:`visible`).
"""

from __future__ import annotations

import contextlib
import time
import unicodedata
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from .console import display_console, err, out
from .progress import format_duration

if TYPE_CHECKING:  # imports torch; the functions that need it at run time import it
    from .. import batch as lib


class BatchDisplay:
    """Renders batch events: bars on a terminal, a line per finished or failed file always."""

    def __init__(self, quiet: bool, plan: lib.BatchPlan, devices: list) -> None:  # type: ignore[type-arg]
        self.quiet = quiet
        self.pending = set(plan.jobs)
        self.jobs = len(plan.jobs)
        names = [str(d) for d in devices]
        # Workers by device, numbered when a device has several (cpu,cpu -> cpu#1, cpu#2).
        # Ray workers (no devices given) are named as they report in (WorkerReady).
        self.labels = [
            n if names.count(n) == 1 else f"{n}#{names[: i + 1].count(n)}" for i, n in enumerate(names)
        ]
        self.finished = 0
        self.audio_done = 0.0
        # Files being restored (or restored, on their way to disk): seconds done, total.
        self.partial: dict[lib.Job, tuple[float, float]] = {}
        self.current: dict[int, tuple[lib.Job, float]] = {}  # worker -> its file, when it started
        self.started = time.perf_counter()
        self._stack = contextlib.ExitStack()
        self.console: Console | None = None
        self.progress: Progress | None = None
        self.overall: TaskID | None = None
        self.files: dict[int, TaskID] = {}

    def __enter__(self) -> BatchDisplay:
        self.console = self._stack.enter_context(display_console())
        # Bars only on a terminal; logs (SLURM, CI, a pipe) get the per-file lines alone.
        if not self.quiet and self.console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=30),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=True,
            )
            self.overall = self.progress.add_task("[bold blue]restoring", total=self.jobs, info="")
            self._stack.enter_context(self.progress)
            self._refresh_overall()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def print(self, text: str) -> None:
        assert self.console is not None
        self.console.print(text, soft_wrap=True, highlight=False)

    def handle(self, event: lib.BatchEvent) -> None:
        from .. import batch as lib  # imported by now: the batch runner calls this

        if isinstance(event, lib.FileProgress):
            self.partial[event.job] = (event.done, event.total)
            self._show_file(event.worker)
        elif isinstance(event, lib.FileStarted):
            self.partial[event.job] = (0.0, event.duration)
            self.current[event.worker] = (event.job, time.perf_counter())
            self._show_file(event.worker)
        elif isinstance(event, lib.FileDone):
            self._forget(event.job)
            self.finished += 1
            self.audio_done += event.result.duration
            self._report_done(event)
        elif isinstance(event, lib.FileFailed):
            if event.job in self.pending:
                self._forget(event.job)
                self.finished += 1
            self.print(f"[red]failed[/] {_shown(event.name)}: {_shown(event.reason)}")
        elif isinstance(event, lib.FileSkipped):
            # Skips known from the plan are counted in the headline; report the ones
            # found while running (an output written meanwhile by another run).
            if event.job in self.pending:
                self.finished += 1
                if not self.quiet:
                    self.print(f"[dim]skipped {_shown(event.name)}: {_shown(event.reason)}[/]")
        elif isinstance(event, lib.WorkerReady):
            if not self.labels:  # speed and time left count from the first model loaded, as locally
                self.started = time.perf_counter()
            self.labels += [f"worker {i + 1}" for i in range(len(self.labels), event.worker + 1)]
            if not self.quiet:
                self.print(
                    f"[dim]worker {event.worker + 1} ready: {_shown(event.description)} (pid {event.pid})[/]"
                )
        elif isinstance(event, lib.WorkerLost):
            if not self.quiet:
                again = f"; trying {_shown(', '.join(event.retried))} again" if event.retried else ""
                self.print(f"[yellow]worker {event.worker + 1} lost[/]: {_shown(event.reason)}{again}")
        elif isinstance(event, lib.Stopping) and not self.quiet:
            pending = (
                f"; finishing {event.pending} restored file{'s' if event.pending != 1 else ''} "
                "(Ctrl-C again to drop them)"
                if event.pending
                else ""
            )
            self.print(f"[yellow]stopping[/]: no new files will be started{pending}")
        self._refresh_overall()

    def _forget(self, job: lib.Job | None) -> None:
        """A file is finished: drop it from the in-flight ones, and its bar if its worker is still on it."""
        self.partial.pop(job, None)  # type: ignore[arg-type]
        for worker, (current, _) in list(self.current.items()):
            if current == job:
                del self.current[worker]
                self._hide_file(worker)

    def _report_done(self, event: lib.FileDone) -> None:
        r = event.result
        if not self.quiet:
            speed = r.duration / r.elapsed if r.elapsed > 0 else float("inf")
            self.print(
                f"[green]restored[/] {_shown(event.job.name)} ({format_duration(r.duration)} in "
                f"{format_duration(r.elapsed)}, {speed:.2f}× real time)"
            )
        if self.quiet:
            return
        for warning in (*r.tag_warnings, *r.notes):
            self.print(f"  [yellow]note:[/] {escape(event.job.name)}: {escape(warning)}")
        if r.clipped_samples:
            self.print(
                f"  [yellow]note:[/] {escape(event.job.name)}: limited {r.clipped_samples} samples that went "
                f"beyond full scale ({r.bit_depth}-bit); write 32-bit float WAV to keep them"
            )

    def _show_file(self, worker: int) -> None:
        if self.progress is None:
            return
        if worker not in self.current:
            return
        job, start = self.current[worker]
        name = job.name
        done, total = self.partial.get(job, (0.0, 0.0))
        elapsed = time.perf_counter() - start
        # The first chunk's speed says little: show one after half a second.
        speed = f"{done / elapsed:5.2f}× real time" if elapsed > 0.5 and done else "  -  × real time"
        label = self.labels[worker] if worker < len(self.labels) else f"worker {worker + 1}"
        where = f"{label} " if len(self.labels) > 1 else ""
        label = f"  {where}{_shorten(visible(name), 40)}"
        info = f"{done:.1f}/{total:.1f} s  {speed}"
        if worker not in self.files:
            self.files[worker] = self.progress.add_task(label, total=total or None, info=info)
        self.progress.update(self.files[worker], description=escape(label), completed=done,
                             total=total or None, info=info)  # fmt: skip

    def _hide_file(self, worker: int) -> None:
        if self.progress is not None and worker in self.files:
            self.progress.remove_task(self.files.pop(worker))

    def _refresh_overall(self) -> None:
        if self.progress is None or self.overall is None:
            return
        partial = sum(done / total for done, total in self.partial.values() if total)
        audio = self.audio_done + sum(done for done, _ in self.partial.values())
        elapsed = time.perf_counter() - self.started
        completed = min(self.jobs, self.finished + partial)
        speed = f"{audio / elapsed:.2f}× real time" if elapsed > 0 and audio else "-× real time"
        if completed > 0 and completed < self.jobs:
            left = f"  {format_duration(elapsed / completed * (self.jobs - completed))} left"
        else:
            left = ""
        info = f"{self.finished}/{self.jobs} files  {format_duration(audio)} of audio  {speed}{left}"
        self.progress.update(self.overall, completed=completed, info=info)


def visible(text: str) -> str:
    """``text`` on one line: control characters (a newline in a file name) shown as ``\\n``, ``\\x1b``...

    A listing with one line per file stays one line per file, whatever the names hold,
    and no name can move the cursor or change colours on a terminal.
    """
    if text.isprintable():
        return text
    return "".join(_escaped(c) if unicodedata.category(c) in _BREAKING else c for c in text)


def _escaped(c: str) -> str:
    return _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


#: Control characters and the Unicode line and paragraph separators.
_BREAKING = frozenset({"Cc", "Zl", "Zp"})


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _shown(text: str) -> str:
    """A name or reason for a Rich markup line: :func:`visible`, then markup-escaped."""
    return escape(visible(text))


def _shorten(name: str, width: int) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


# ------------------------------------------------------------------------------- reports


def _describe_output(plan: lib.BatchPlan, bits: int) -> str:
    depth = "32-bit float" if plan.format == "WAV" and bits == 32 else f"{bits}-bit"
    return f"{plan.format} {depth}"


def headline(plan: lib.BatchPlan, bits: int, devices: str) -> str:
    scope = (
        f"shard {plan.shard} holds {_count(_total(plan), 'file')} of {plan.found}"
        if plan.shard
        else (f"found {_count(plan.found, 'audio file')}")
    )
    parts = [f"{len(plan.jobs)} to restore"]
    if plan.skipped:
        parts.append(f"{len(plan.skipped)} already done")
    if plan.already_restored:
        parts.append(f"{_count(len(plan.already_restored), 'restoration')} left alone")
    if plan.problems:
        parts.append(f"{len(plan.problems)} not restorable")
    where = f"→ {_shown(str(plan.output_dir))} ({_describe_output(plan, bits)})"
    on = f" on {devices}" if plan.jobs else ""
    return f"{_shown(str(plan.input_dir))}: {scope}; {', '.join(parts)} {where}{on}"


def _total(plan: lib.BatchPlan) -> int:
    return (
        len(plan.jobs) + len(plan.skipped) + len(plan.already_restored)
        + sum(len(c.jobs) for c in plan.collisions) + len(plan.unusable)
    )  # fmt: skip


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def print_plan(plan: lib.BatchPlan, bits: int) -> None:
    """--dry-run: one line per file, then what a real run would do."""
    rows: list[tuple[str, str, str]] = []
    rows += [(job.name, "restore", _relative_output(plan, job)) for job in plan.jobs]
    rows += [(job.name, "skip", "output exists") for job in plan.skipped]
    rows += [(job.name, "skip", "already a restoration (apollo-cli's tag)") for job in plan.already_restored]
    rows += [(name, "cannot", reason) for name, reason in plan.problems]
    for name, action, detail in sorted(rows):
        arrow = "→" if action == "restore" else "·"
        out.print(f"{action:<8}{_shown(name)} {arrow} {_shown(detail)}", soft_wrap=True, highlight=False)
    scope = f" (shard {plan.shard} of {plan.found} files)" if plan.shard else ""
    out.print(
        f"dry run{scope}: {len(plan.jobs)} to restore, {len(plan.skipped)} skipped (output exists), "
        + (f"{len(plan.already_restored)} skipped (restorations), " if plan.already_restored else "")
        + f"{len(plan.problems)} not restorable; output {escape(str(plan.output_dir))} as "
        f"{_describe_output(plan, bits)}; nothing was written",
        soft_wrap=True, highlight=False,
    )  # fmt: skip


def _relative_output(plan: lib.BatchPlan, job: lib.Job) -> str:
    try:
        return job.output.relative_to(plan.output_dir).as_posix()
    except ValueError:
        return str(job.output)


def print_problems(summary: lib.BatchSummary) -> None:
    for failure in summary.failed:
        err.print(f"[red]failed[/] {_shown(failure.name)}: {_shown(failure.reason)}", soft_wrap=True)


def _why_skipped(skipped: list[lib.FileSkipped]) -> str:
    """The summary's reason for its skipped files: the one reason, or each with its count."""
    elsewhere = sum(1 for s in skipped if s.reason.startswith("being restored by another"))
    restorations = sum(1 for s in skipped if s.reason.startswith("already restored"))
    kinds = [
        (len(skipped) - elsewhere - restorations, "output exists (--overwrite redoes them)", "output exists"),
        (
            elsewhere,
            f"{elsewhere} being restored by another apollo run",
            f"({elsewhere}) being restored by another apollo run",
        ),
        (restorations, "inputs that are restorations (--skip-restored)", f"({restorations}) restorations"),
    ]
    present = [(alone, among) for count, alone, among in kinds if count]
    if len(present) <= 1:
        return present[0][0] if present else ""
    return ", or ".join(among for _, among in present)


def print_summary(summary: lib.BatchSummary) -> None:
    """The table at the end: counts, audio, failures with reasons, totals."""
    from .. import batch as lib

    table = Table(title="apollo batch", box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("files", justify="right")
    table.add_column("audio", justify="right")
    table.add_column("")
    table.add_row("[green]restored[/]", str(len(summary.done)), format_duration(summary.audio_seconds), "")
    table.add_row("skipped", str(len(summary.skipped)), "", _why_skipped(summary.skipped))
    table.add_row("[red]failed[/]" if summary.failed else "failed", str(len(summary.failed)), "",
                  "listed below" if summary.failed else "")  # fmt: skip
    if summary.interrupted or summary.stopped:
        why = "interrupted" if summary.interrupted else "stopped early"
        table.add_row("[yellow]not done[/]", str(summary.not_done), "", f"{why}; run again to finish")
    out.print(table)
    if summary.failed:
        failures = Table(title="failed", box=box.SIMPLE, title_justify="left", show_header=True)
        failures.add_column("file", overflow="fold")
        failures.add_column("reason", overflow="fold")
        for failure in summary.failed:
            failures.add_row(_shown(failure.name), _shown(failure.reason))
        out.print(failures)
    if summary.done:
        hours = summary.audio_seconds / 3600
        amount = format_duration(summary.audio_seconds) + (f" ({hours:.1f} h)" if hours >= 0.1 else "")
        out.print(
            f"restored {amount} of audio in {format_duration(summary.wall_seconds)} of wall time, "
            f"{summary.speed:.2f}× real time, on {lib.describe_devices(summary.devices)}",
            soft_wrap=True, highlight=False,
        )  # fmt: skip
