"""``apollo restore``: one file."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ..compiled import check_available as check_compile_available
from ..inference import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS, precision_context
from ..progress import Display, format_duration
from ..registry import DEFAULT_MODEL
from . import (
    BatchOpt,
    BitDepthOpt,
    ChunkOpt,
    CompileOpt,
    DebugOpt,
    DeviceOpt,
    ModelOpt,
    PrecisionOpt,
    QuietOpt,
    app,
    err,
    out,
    reported_errors,
    stop_signals_interrupt,
)
from .models import OfflineOpt, RevisionOpt


@app.command()
def restore(
    input: Annotated[Path, typer.Argument(help="Audio file to restore (MP3, WAV, FLAC, OGG, M4A, ...).", show_default=False)],
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="WAV or FLAC file to write. Default: <input stem>.restored.wav beside the input."),
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = "auto",
    chunk_seconds: ChunkOpt = DEFAULT_CHUNK_SECONDS,
    batch_size: BatchOpt = DEFAULT_BATCH_SIZE,
    precision: PrecisionOpt = "fp32",
    compile: CompileOpt = False,
    bit_depth: BitDepthOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    revision: RevisionOpt = None,
    offline: OfflineOpt = False,
    spectrogram: Annotated[
        Optional[Path],
        typer.Option("--spectrogram", help="Also draw before/after spectrograms to this PNG (needs matplotlib: the plot extra).", show_default=False),
    ] = None,
) -> None:
    """Restore one audio file and write WAV or FLAC at 44.1 kHz."""
    from .. import api, audio, locks

    display = Display(err, quiet)
    if spectrogram is not None:  # before any work: matplotlib installed, the PNG writable
        from .inspect import check_spectrogram_option

        check_spectrogram_option(
            spectrogram, overwrite=overwrite, debug=debug,
            protected={"input": input, "output": output if output is not None else api.default_output_path(input)},
        )  # fmt: skip
    decoded: list = []  # the decoded input, for --spectrogram
    # SIGTERM/SIGHUP stop like Ctrl-C: temporaries removed, one line, exit 143/129.
    with reported_errors(debug), stop_signals_interrupt(), contextlib.ExitStack() as held:
        target = output if output is not None else api.default_output_path(input)
        # Fail on a bad output before spending time on the model.
        audio.check_output(target, bit_depth=bit_depth, overwrite=overwrite)
        # One run per output: another run writing it is an error now, not a clash later;
        # under the claim, temporaries a killed run left for this output are ours to remove.
        held.enter_context(locks.claim(target))
        locks.remove_stale_temps(target)
        with display.download(f"downloading {model}") as fetched:
            apollo = api.load_model(
                model, device=device, download_progress=fetched, revision=revision, offline=offline or None
            )
        # An unsupported precision is known now; say so before decoding anything.
        precision_context(next(apollo.parameters()).device, precision)
        if compile:
            check_compile_available(next(apollo.parameters()).device)
        with display.audio(f"restoring {input.name}", apollo.config.sample_rate) as advance:
            result = api.restore_file(
                apollo, input, target,
                bit_depth=bit_depth, overwrite=overwrite,
                chunk_seconds=chunk_seconds, batch_size=batch_size, precision=precision, compile=compile,
                progress=advance,
                on_decoded=decoded.append if spectrogram is not None else None,
            )
        if not quiet:
            speed = result.duration / result.elapsed if result.elapsed > 0 else float("inf")
            layout = {1: "mono", 2: "stereo"}.get(result.channels, f"{result.channels} channels")
            depth = "32-bit float" if result.format == "WAV" and result.bit_depth == 32 else f"{result.bit_depth}-bit"
            out.print(
                f"wrote {result.output} ({format_duration(result.duration)}, "
                f"{result.sample_rate / 1000:g} kHz {layout}, {result.format} {depth}) "
                f"in {format_duration(result.elapsed)} ({speed:.2f}× real time)",
                soft_wrap=True,
                markup=False,  # a file name may hold [brackets]
            )
        if result.clipped_samples:
            err.print(
                f"[yellow]note:[/] limited {result.clipped_samples} samples that went beyond full scale "
                f"({result.bit_depth}-bit); write 32-bit float WAV to keep them",
                soft_wrap=True,
            )
        for warning in result.tag_warnings:  # tags that could not be carried; the audio is fine
            err.print(f"[yellow]note:[/] {escape(warning)}", soft_wrap=True)
        if spectrogram is not None:
            from .inspect import draw_restore_spectrogram

            draw_restore_spectrogram(
                spectrogram, input, decoded[0], result.output, overwrite=overwrite, quiet=quiet, debug=debug
            )

