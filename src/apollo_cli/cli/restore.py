"""``apollo restore``: one file."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import OptionError
from ..options import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS
from ..registry import DEFAULT_MODEL
from . import app, reported_errors, stop_signals_interrupt
from .console import display_console, err, out
from .options import (
    BatchOpt,
    BitDepthOpt,
    ChunkOpt,
    CompileOpt,
    CutoffOpt,
    DebugOpt,
    DeviceOpt,
    KeepLowsOpt,
    ModelOpt,
    OfflineOpt,
    PrecisionOpt,
    QuietOpt,
    RevisionOpt,
    StereoOpt,
    restore_options,
)
from .pictures import check_spectrogram_option, draw_restore_spectrogram
from .progress import Display, format_duration


@app.command()
def restore(
    input: Annotated[
        Path,
        typer.Argument(
            help="Audio file to restore (MP3, WAV, FLAC, OGG, M4A, ...); - reads standard input.",
            show_default=False,
        ),
    ],
    output: Annotated[
        # Text, not Path: Path drops the trailing '/' that shows a folder was meant.
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="WAV or FLAC file to write; - writes standard output (with --format). "
            "Default: <input stem>.restored.wav beside the input.",
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="flac or wav, for -o - (standard output); otherwise the extension decides.",
            show_default=False,
        ),
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = "auto",
    chunk_seconds: ChunkOpt = DEFAULT_CHUNK_SECONDS,
    batch_size: BatchOpt = DEFAULT_BATCH_SIZE,
    precision: PrecisionOpt = "fp32",
    compile: CompileOpt = False,
    cutoff: CutoffOpt = "off",
    keep_lows: KeepLowsOpt = "off",
    stereo: StereoOpt = "lr",
    bit_depth: BitDepthOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    revision: RevisionOpt = None,
    offline: OfflineOpt = False,
    spectrogram: Annotated[
        Path | None,
        typer.Option(
            "--spectrogram",
            help="Also draw before/after spectrograms to this PNG (needs matplotlib: the plot extra).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Restore one audio file and write WAV or FLAC at 44.1 kHz."""
    # Here, not at the top: they import torch and numpy, which --help does not need.
    from .. import api, audio, decoding, locks
    from ..decoding import STDIO

    if spectrogram is not None:  # before any work: matplotlib installed, the PNG writable, not a file of ours
        check_spectrogram_option(
            spectrogram, overwrite=overwrite, debug=debug, protected=_protected(input, output)
        )
    # SIGTERM/SIGHUP stop like Ctrl-C: temporaries removed, one line, exit 143/129.
    with reported_errors(debug), stop_signals_interrupt(), contextlib.ExitStack() as stack:
        options = restore_options(chunk_seconds, batch_size, precision, compile, cutoff, keep_lows, stereo)
        reading_stdin = str(input) == STDIO
        to_stdout = output is not None and str(output) == STDIO
        if reading_stdin and output is None:
            raise OptionError(
                "reading standard input (-) needs an output: pass -o FILE, or -o - with --format"
            )
        if to_stdout:
            if format is None or format.lower() not in ("flac", "wav"):
                raise OptionError("writing standard output (-o -) needs --format flac or --format wav")
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="apollo-stdout-")))
            target = scratch / f"restored.{format.lower()}"
        else:
            if format is not None:
                raise OptionError(
                    "--format is for -o - (standard output); otherwise the output's extension decides"
                )
            target = Path(output) if output is not None else api.default_output_path(input)
        # Cheap checks first: a bad output or input fails before a model is loaded or downloaded
        # (the output as typed: a trailing '/' says a folder was meant).
        audio.check_output(output if output is not None and not to_stdout else target,
                           bit_depth=bit_depth, overwrite=overwrite)  # fmt: skip
        source = stack.enter_context(decoding.spooled_stdin()) if reading_stdin else input
        with audio.open_audio(source) as opened:
            audio.check_channels(target, opened.channels)
        if not to_stdout:
            # One run per output: another run writing it is an error now, not a clash later;
            # under the claim, temporaries a killed run left for this output are ours to remove.
            stack.enter_context(locks.claim(target))
            locks.remove_stale_temps(target)
        # Progress is drawn on a duplicate of stderr: decoding silences fd 2 now and then.
        display = Display(stack.enter_context(display_console()), quiet)
        with display.download(f"downloading {model}") as fetched:
            apollo = api.load_model(
                model, device=device, download_progress=fetched, revision=revision, offline=offline or None
            )
        # An unsupported precision is known now; say so before decoding anything.
        options.check(next(apollo.parameters()).device)
        label = "standard input" if reading_stdin else input.name
        with display.audio(f"restoring {label}", apollo.config.sample_rate) as advance:
            result = api.restore_file(
                apollo, source, target, options, bit_depth=bit_depth, overwrite=overwrite, progress=advance
            )
        if to_stdout:
            with result.output.open("rb") as restored:
                shutil.copyfileobj(restored, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
        # The result line goes to stdout, unless stdout carries the audio itself.
        report = err if to_stdout else out
        if not quiet:
            speed = result.duration / result.elapsed if result.elapsed > 0 else float("inf")
            layout = {1: "mono", 2: "stereo"}.get(result.channels, f"{result.channels} channels")
            depth = (
                "32-bit float"
                if result.format == "WAV" and result.bit_depth == 32
                else f"{result.bit_depth}-bit"
            )
            where = "standard output" if to_stdout else str(result.output)
            report.print(
                f"wrote {where} ({format_duration(result.duration)}, "
                f"{result.sample_rate / 1000:g} kHz {layout}, {result.format} {depth}) "
                f"in {format_duration(result.elapsed)} ({speed:.2f}× real time)",
                soft_wrap=True,
                markup=False,  # a file name may hold [brackets]
            )
        # Notes are about a file that was written: -q drops them, as batch -q does.
        if result.clipped_samples and not quiet:
            err.print(
                f"[yellow]note:[/] limited {result.clipped_samples} samples that went beyond full scale "
                f"({result.bit_depth}-bit); write 32-bit float WAV to keep them",
                soft_wrap=True,
            )
        for warning in result.tag_warnings if not quiet else ():  # tags not carried; the audio is fine
            err.print(f"[yellow]note:[/] {escape(warning)}", soft_wrap=True)
        for note in result.notes if not quiet else ():  # what --cutoff/--keep-lows auto chose
            err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
        if spectrogram is not None:
            draw_restore_spectrogram(
                spectrogram, Path(source), audio.load_audio(source), result.output,
                overwrite=overwrite, quiet=quiet, debug=debug,
            )  # fmt: skip


def _protected(input: Path, output: str | None) -> dict[str, Path]:
    """The files ``--spectrogram`` must never replace: the input and the output (when they are files)."""
    from .. import api
    from ..decoding import STDIO

    files = {} if str(input) == STDIO else {"input": input}
    if output is not None and output != STDIO:
        files["output"] = Path(output)
    elif output is None and str(input) != STDIO:
        files["output"] = api.default_output_path(input)
    return files
