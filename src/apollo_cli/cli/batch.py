"""``apollo batch``: restore a whole folder tree, resumably.

The work is done by :mod:`apollo_cli.batch`; this module parses options, shows
progress (one bar for the batch, one per device for its current file), prints a line
per file and a summary table, and sets the exit status: 0 when every file was restored
or skipped, 1 when any failed, 130 when interrupted (Ctrl-C), 143 on SIGTERM and 129 on
SIGHUP.
"""

from __future__ import annotations

import contextlib
import time
import unicodedata
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from ..errors import OptionError
from ..options import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS
from ..registry import DEFAULT_MODEL
from . import app, interrupted_status, reported_errors, signal_name, stop_signals_interrupt
from .console import display_console, err, out
from .options import (
    BatchOpt,
    BitDepthOpt,
    ChunkOpt,
    CompileOpt,
    CutoffOpt,
    DebugOpt,
    KeepLowsOpt,
    ModelOpt,
    OfflineOpt,
    PrecisionOpt,
    QuietOpt,
    RevisionOpt,
    StereoOpt,
    restore_options,
)
from .progress import Display, format_duration

if (
    TYPE_CHECKING
):  # the functions that use it at run time import it: it imports torch, --help does not need it
    from .. import batch as lib
    from ..options import RestoreOptions


class OutputFormat(str, Enum):
    flac = "flac"
    wav = "wav"


@app.command()
def batch(
    input_dir: Annotated[
        Path,
        typer.Argument(help="Folder of audio files to restore (searched recursively).", show_default=False),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder to write to; mirrors the input's layout. Default: INPUT_DIR-restored beside it.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", case_sensitive=False, help="Output format.")
    ] = OutputFormat.flac,
    bit_depth: BitDepthOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            "-d",
            help="auto, cpu, cuda, cuda:N, mps, or a list such as cuda:0,cuda:1 (one worker each). "
            "cuda, and auto on a CUDA machine, use every GPU.",
        ),
    ] = "auto",
    chunk_seconds: ChunkOpt = DEFAULT_CHUNK_SECONDS,
    batch_size: BatchOpt = DEFAULT_BATCH_SIZE,
    precision: PrecisionOpt = "fp32",
    compile: CompileOpt = False,
    cutoff: CutoffOpt = "off",
    keep_lows: KeepLowsOpt = "off",
    stereo: StereoOpt = "lr",
    recursive: Annotated[
        bool, typer.Option("--recursive/--no-recursive", help="Look into sub-folders.")
    ] = True,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            "-i",
            metavar="GLOB",
            help="Only files matching GLOB (repeatable; case-insensitive). Without '/' it matches the "
            "file name ('*.mp3'), with '/' the path inside INPUT_DIR ('Beatles/*').",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo files whose output exists (kept and skipped otherwise).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Print what would be done; write nothing.")
    ] = False,
    skip_restored: Annotated[
        bool,
        typer.Option(
            "--skip-restored",
            help="Leave alone inputs that are apollo-cli restorations themselves (they carry its APOLLO_RESTORED tag).",
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Take shard K of N (1 <= K <= N), a stable share of the files, so N machines can split a "
            "library without coordination.",
            show_default=False,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="auto|HOST:PORT",
            help="Run on a Ray cluster: auto (RAY_ADDRESS, else the cluster 'ray start' made on this machine, "
            "else a new local one) or the head's HOST:PORT. Needs: pip install 'apollo-cli[ray]'.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="With --ray: how many workers (default: as many as the cluster's GPUs, or CPUs, hold).",
            show_default=False,
        ),
    ] = None,
    gpus_per_worker: Annotated[
        float,
        typer.Option("--gpus-per-worker", min=0, help="With --ray: GPUs per worker (0: CPU workers)."),
    ] = 0.0,
    cpus_per_worker: Annotated[
        float,
        typer.Option(
            "--cpus-per-worker", min=0.01, help="With --ray: CPUs per worker (a CPU worker's torch threads)."
        ),
    ] = 1.0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    revision: RevisionOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """Restore every audio file under a folder, mirroring it as FLAC or WAV. Resumable."""
    from .. import api
    from .. import batch as lib

    code = 0
    with reported_errors(debug), stop_signals_interrupt():
        if ray_address is not None:
            _check_ray_options(device)
        elif workers is not None or gpus_per_worker or cpus_per_worker != 1.0:
            raise OptionError("--workers, --gpus-per-worker and --cpus-per-worker go with --ray")
        chosen_shard = lib.parse_shard(shard) if shard is not None else None
        bits = lib.check_bit_depth(fmt.value, bit_depth)
        options = restore_options(chunk_seconds, batch_size, precision, compile, cutoff, keep_lows, stereo)
        devices = lib.parse_devices(device) if ray_address is None else []
        for target in dict.fromkeys(devices):  # an unsupported --precision fails before any work
            options.check(target)
        plan = lib.plan_batch(
            input_dir, output, fmt=fmt.value, recursive=recursive, include=include or (),
            shard=chosen_shard, overwrite=overwrite, skip_restored=skip_restored,
        )  # fmt: skip
        if dry_run:
            _print_plan(plan, bits)
            return
        if plan.jobs:  # an unusable output folder fails now, before a model is loaded or downloaded
            lib.check_output_dir(plan.output_dir)
        if not quiet:
            where = lib.describe_devices(devices) if ray_address is None else _on_ray(ray_address)
            err.print(_headline(plan, bits, where), soft_wrap=True, highlight=False)
        if not plan.jobs:  # nothing to restore: no model to load
            summary = lib.plan_summary(plan)
            if quiet:
                _print_problems(summary)
            else:
                _print_summary(summary)
            code = 0 if summary.ok else 1
        else:
            try:
                if ray_address is not None:
                    summary = _run_on_ray(
                        plan, model, revision, offline, options, bits, quiet,
                        address=ray_address, workers=workers, gpus=gpus_per_worker, cpus=cpus_per_worker,
                    )  # fmt: skip
                else:
                    with Display(err, quiet or not err.is_terminal).download(
                        f"downloading {model}"
                    ) as fetched:
                        apollo = api.load_model(
                            model, device=devices[0], download_progress=fetched, revision=revision,
                            offline=offline or None,
                        )  # fmt: skip
                    with _BatchDisplay(quiet, plan, devices) as display:
                        summary = lib.run_batch(
                            plan,
                            apollo,
                            devices=devices,
                            bit_depth=bits,
                            options=options,
                            events=display.handle,
                        )
                code = 0 if summary.ok else 1
            except lib.BatchInterrupted as stopped:
                summary, code = stopped.summary, interrupted_status(stopped)
            except KeyboardInterrupt as exc:  # before any file was started (loading the model, say)
                summary, code = lib.plan_summary(plan), interrupted_status(exc)
                summary.interrupted, summary.not_done = True, len(plan.jobs)
            if not quiet:
                _print_summary(summary)
            if summary.stopped:
                err.print(f"[bold red]error:[/] stopped early: {escape(summary.stopped)}", soft_wrap=True)
            if summary.interrupted:
                done = len(summary.done)
                what = "interrupted" if code == 130 else f"stopped by {signal_name(code - 128)}"
                err.print(
                    f"[bold red]{what}:[/] {done} file{'s' if done != 1 else ''} restored, "
                    f"{summary.not_done} not done; run the same command again to finish "
                    "(finished files are skipped, nothing is half written)",
                    soft_wrap=True,
                )
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------------------- Ray


def _check_ray_options(device: str) -> None:
    """``--ray`` needs Ray (said in one line, before any work), and chooses the workers' devices itself."""
    # Without Ray this raises MissingDependencyError, with what to install.
    from ..batch import ray_runner  # noqa: F401

    if device != "auto":
        raise OptionError(
            "--device is for a run on this machine; with --ray the workers use a GPU with "
            "--gpus-per-worker 1, else their CPUs"
        )


def _on_ray(address: str) -> str:
    return "a Ray cluster (auto)" if address == "auto" else f"the Ray cluster at {address}"


def _run_on_ray(
    plan: lib.BatchPlan,
    model: str,
    revision: str | None,
    offline: bool,
    options: RestoreOptions,
    bits: int,
    quiet: bool,
    *,
    address: str,
    workers: int | None,
    gpus: float,
    cpus: float,
) -> lib.BatchSummary:
    """The batch on Ray: the checkpoint is fetched here (workers get its bytes), then run_batch_ray."""
    from .. import api
    from ..batch import ray_runner
    from ..provenance import ModelSource

    with Display(err, quiet or not err.is_terminal).download(f"downloading {model}") as fetched:
        path = api.resolve_checkpoint(model, revision=revision, progress=fetched, offline=offline or None)
    source = ModelSource(model, revision, path)  # what the outputs' provenance names, as load_model does
    with _BatchDisplay(quiet, plan, []) as display:
        return ray_runner.run_batch_ray(
            plan, source, options, address=address, workers=workers, gpus_per_worker=gpus,
            cpus_per_worker=cpus, bit_depth=bits, events=display.handle,
        )  # fmt: skip


# ------------------------------------------------------------------------------- display


class _BatchDisplay:
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

    def __enter__(self) -> _BatchDisplay:
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


def _headline(plan: lib.BatchPlan, bits: int, devices: str) -> str:
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


def _print_plan(plan: lib.BatchPlan, bits: int) -> None:
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


def _print_problems(summary: lib.BatchSummary) -> None:
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


def _print_summary(summary: lib.BatchSummary) -> None:
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
