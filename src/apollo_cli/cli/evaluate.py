"""``apollo evaluate``: restoration quality against bitrate on a folder of clean music.

A thin layer over :func:`apollo_cli.evaluate.evaluate`: parse the options, check what
can be checked before any work (codec, bitrates, ffmpeg, metrics, the figure's path,
the files), load each model once, show a bar over file × bitrate × model, then print a
table per bitrate (and per ``--group-by`` group) or, with ``--json``, the report.
Interrupted, it exits 130 (143 on SIGTERM); run again, it continues from its cache.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..options import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS
from ..registry import DEFAULT_MODEL
from . import app, interrupted_status, reported_errors, signal_name, stop_signals_interrupt
from .console import display_console, err, out
from .options import (
    BatchOpt,
    ChunkOpt,
    CutoffOpt,
    DebugOpt,
    DeviceOpt,
    KeepLowsOpt,
    OfflineOpt,
    PrecisionOpt,
    QuietOpt,
    RevisionOpt,
    StereoOpt,
    restore_options,
)
from .progress import Display, format_duration

if TYPE_CHECKING:  # the command imports it when it runs: it imports torch, --help does not need it
    from ..evaluate import EvaluationReport

#: The defaults, as --help shows them (apollo_cli.evaluate imports torch; these must not).
DEFAULT_BITRATES = "24,32,48,64,96,128"
METRIC_NAMES = "si-snr,sdr,lsd,visqol"


@app.command()
def evaluate(
    clean_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of clean, lossless music (WAV, FLAC, AIFF; any rate), searched recursively.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="REPORT_DIR",
            help="Folder for the report (scores.csv, report.json) and the cache that makes a re-run "
            "resume. Default: CLEAN_DIR-evaluation beside it.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME|PATH",
            help="Model to evaluate (known name, Hub file owner/repo/path/file[@rev] or checkpoint file); "
            f"repeat to compare several side by side. Default: {DEFAULT_MODEL}.",
            show_default=False,
        ),
    ] = None,
    bitrates: Annotated[
        str,
        typer.Option(
            "--bitrates", "-b", metavar="KBPS,...", help="Bitrates to encode at, in kbps, comma-separated."
        ),
    ] = DEFAULT_BITRATES,
    codec: Annotated[
        str, typer.Option("--codec", "-c", metavar="mp3|aac|opus", help="Encoder (through ffmpeg).")
    ] = "mp3",
    segment_seconds: Annotated[
        float,
        typer.Option("--segment-seconds", help="Length of the segment cut from each file (not silence)."),
    ] = 10.0,
    max_files: Annotated[
        int | None,
        typer.Option("--max-files", min=1, help="Use only the first N files (by path).", show_default=False),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            "-i",
            metavar="GLOB",
            help="Only files matching GLOB (repeatable; case-insensitive): without '/' the file name "
            "('mixture.wav'), with '/' the path inside CLEAN_DIR.",
            show_default=False,
        ),
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by",
            metavar="TAG",
            help="Also summarise per value of this tag (genre, artist, ...), with a figure per group.",
            show_default=False,
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            metavar="METRIC,...",
            help=f"Metrics, comma-separated, from {METRIC_NAMES}. Default: all (ViSQOL when the eval "
            "extra is installed).",
            show_default=False,
        ),
    ] = None,
    png: Annotated[
        Path | None,
        typer.Option(
            "--png",
            metavar="FIG.png",
            help="Draw each metric against bitrate, one line per model plus the codec (needs the plot extra).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
    device: DeviceOpt = "auto",
    chunk_seconds: ChunkOpt = DEFAULT_CHUNK_SECONDS,
    batch_size: BatchOpt = DEFAULT_BATCH_SIZE,
    precision: PrecisionOpt = "fp32",
    cutoff: CutoffOpt = "off",
    keep_lows: KeepLowsOpt = "off",
    stereo: StereoOpt = "lr",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    revision: RevisionOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """Score restoration against bitrate on your clean music: codec baseline and each model. Resumable."""
    from .. import api
    from .. import evaluate as lib
    from ..evaluate import coding, scoring
    from ..evaluate.segments import check_seconds

    code = 0
    with reported_errors(debug), stop_signals_interrupt():
        options = restore_options(chunk_seconds, batch_size, precision, False, cutoff, keep_lows, stereo)
        # Everything that can fail in a second fails before a model is loaded or anything encoded.
        chosen = coding.get_codec(codec)
        rates = coding.check_bitrates(chosen, coding.parse_bitrates(bitrates))
        scoring.parse_metrics(metrics)
        check_seconds(segment_seconds)
        if png is not None:
            from ..plot import require_matplotlib

            require_matplotlib()
        coding.require_encoder(chosen)
        report_dir = output if output is not None else lib.default_report_dir(clean_dir)
        files = lib.find_references(clean_dir, include=include or (), max_files=max_files, exclude=report_dir)
        lib.check_readable(files)
        lib.prepare_report_dir(report_dir, clean_dir)
        if png is not None:  # now: it may go into the report folder, which exists from here on
            from ..plot import check_png_path

            check_png_path(png, overwrite=True)
        names = list(dict.fromkeys(model or [DEFAULT_MODEL]))
        total = len(files) * len(rates) * len(names)
        if not quiet:
            err.print(
                f"evaluating {len(files)} file{'s' if len(files) != 1 else ''} × {len(rates)} bitrate"
                f"{'s' if len(rates) != 1 else ''} × {len(names)} model{'s' if len(names) != 1 else ''} "
                f"({chosen.name.upper()} {','.join(map(str, rates))} kbps, {segment_seconds:g} s segments) "
                f"into {escape(str(report_dir))}",
                soft_wrap=True,
                highlight=False,
            )
        done = 0
        try:
            with display_console() as console:
                display = Display(console, quiet)
                models = []
                for name in names:
                    with display.download(f"downloading {name}") as fetched:
                        models.append(
                            api.load_model(name, device=device, download_progress=fetched,
                                           revision=revision, offline=offline or None)
                        )  # fmt: skip
                bar = Progress(
                    TextColumn("[bold blue]evaluating"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    TextColumn("{task.description}"),
                    console=console,
                    transient=True,
                    disable=display.quiet,
                )
                with bar:
                    task = bar.add_task("", total=total)

                    def advance(count: int, _total: int, what: str) -> None:
                        nonlocal done
                        done = count
                        bar.update(task, completed=count, description=escape(what))

                    report = lib.evaluate(
                        clean_dir, report_dir, models=models, bitrates=rates, codec=chosen.name,
                        segment_seconds=segment_seconds, max_files=max_files, include=include or (),
                        group_by=group_by, metrics=metrics, options=options, progress=advance,
                    )  # fmt: skip
        except KeyboardInterrupt as exc:
            status = interrupted_status(exc)
            what = "interrupted" if status == 130 else f"stopped by {signal_name(status - 128)}"
            err.print(
                f"[bold red]{what}:[/] {done} of {total} done, kept in {escape(str(report_dir))}; "
                "run the same command again to continue",
                soft_wrap=True,
            )
            code = status
        else:
            _finish(report, png, group_by, as_json, quiet)
    if code:
        raise typer.Exit(code)


def _finish(
    report: EvaluationReport, png: Path | None, group_by: str | None, as_json: bool, quiet: bool
) -> None:
    """Draw the figures, print the tables (or the JSON) and say what was written."""
    from .. import evaluate as lib

    pictures = []
    if png is not None:
        pictures.append(lib.draw_figure(report, png))
        if group_by is not None:
            pictures += [lib.draw_figure(report, lib.group_png_path(png, group_by, g), group=g)
                         for g in report.groups()]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_tables(report)
    if not quiet:
        took = sum(report.timings.values())
        cost = ", ".join(f"{k} {format_duration(v)}" for k, v in report.timings.items() if v >= 0.05)
        err.print(
            f"wrote {escape(str(report.report_dir / 'scores.csv'))} and report.json"
            + "".join(f", {escape(str(p))}" for p in pictures)
            + (f" (this run: {cost}; {format_duration(took)} in all)" if cost else " (all from the cache)"),
            soft_wrap=True,
            highlight=False,
        )


def _cell(mean: float, spread: float, gain: float | None) -> str:
    if not math.isfinite(mean):
        return "∞" if mean > 0 else "-∞"
    text = f"{mean:.2f} ± {spread:.2f}"
    return text if gain is None else f"{text} ({gain:+.2f})"


def _table(report: EvaluationReport, title: str, bitrates: tuple[int, ...], group: str | None) -> Table:
    """Rows: system (per bitrate); columns: each metric's mean ± spread, and a model's gain."""
    from ..evaluate import CODEC
    from ..evaluate.scoring import HIGHER_IS_BETTER, LABELS, UNITS

    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    if len(bitrates) > 1:
        table.add_column("kbps", justify="right")
    table.add_column("system")
    for metric in report.metrics:
        arrow = "↑" if HIGHER_IS_BETTER[metric] else "↓"
        table.add_column(f"{LABELS[metric]} {UNITS[metric]} {arrow}", justify="right")
    found = {(s.bitrate, s.system, s.metric): s for s in report.summaries(group)}
    for bitrate in bitrates:
        for i, system in enumerate(report.systems):
            cells = []
            for metric in report.metrics:
                s = found.get((bitrate, system, metric))
                cells.append("" if s is None else _cell(s.mean, s.spread, s.gain))
            name = f"{report.codec.upper()} (no restoration)" if system == CODEC else system
            lead = [str(bitrate) if i == 0 else ""] if len(bitrates) > 1 else []
            table.add_row(*lead, escape(name), *cells, end_section=i == len(report.systems) - 1)
    return table


def _print_tables(report: EvaluationReport) -> None:
    from ..evaluate.scoring import VISQOL_MISSING

    files = len(report.files)
    for bitrate in report.bitrates:
        title = (
            f"{report.codec.upper()} at {bitrate} kbps: mean ± spread over {files} file{'s' * (files != 1)}"
        )
        out.print(_table(report, title, (bitrate,), None))
    for group in report.groups():
        count = len({r.file for r in report.rows if r.group == group})
        title = f"{report.group_by} = {group}: {count} file{'s' * (count != 1)}"
        out.print(_table(report, escape(title), report.bitrates, group))
    notes = ["(+x): the gain over the codec, mean over files of (model - codec); ↑ higher is better, ↓ lower"]
    if report.visqol_missing:
        notes.append(VISQOL_MISSING)
    for note in notes:
        out.print(note, style="dim", soft_wrap=True, highlight=False, markup=False)
