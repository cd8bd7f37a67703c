"""``apollo batch``: restore a whole folder tree, resumably.

The work is done by :mod:`apollo_cli.batch`; this module parses options, runs the batch
(on this machine or on Ray) and sets the exit status: 0 when every file was restored or
skipped, 1 when any failed, 130 when interrupted (Ctrl-C), 143 on SIGTERM and 129 on
SIGHUP. What it shows (progress, a line per file, the summary table) is
:mod:`.batch_report`'s.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ..errors import OptionError
from ..options import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS
from ..registry import DEFAULT_MODEL
from . import app, interrupted_status, reported_errors, signal_name, stop_signals_interrupt
from .batch_report import BatchDisplay, headline, print_plan, print_problems, print_summary
from .console import err
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
from .progress import Display

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
            print_plan(plan, bits)
            return
        if plan.jobs:  # an unusable output folder fails now, before a model is loaded or downloaded
            lib.check_output_dir(plan.output_dir)
        if not quiet:
            where = lib.describe_devices(devices) if ray_address is None else _on_ray(ray_address)
            err.print(headline(plan, bits, where), soft_wrap=True, highlight=False)
        if not plan.jobs:  # nothing to restore: no model to load
            summary = lib.plan_summary(plan)
            if quiet:
                print_problems(summary)
            else:
                print_summary(summary)
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
                    with BatchDisplay(quiet, plan, devices) as display:
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
                print_summary(summary)
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
    with BatchDisplay(quiet, plan, []) as display:
        return ray_runner.run_batch_ray(
            plan, source, options, address=address, workers=workers, gpus_per_worker=gpus,
            cpus_per_worker=cpus, bit_depth=bits, events=display.handle,
        )  # fmt: skip
