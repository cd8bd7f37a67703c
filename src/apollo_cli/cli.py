"""The ``apollo`` command: a thin layer over :mod:`apollo_cli.api`.

Library code raises :class:`~apollo_cli.errors.ApolloError`; this module turns
each into one red line on stderr and exit status 1.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import ApolloError
from .inference import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS
from .progress import Display, format_duration
from .registry import DEFAULT_MODEL

app = typer.Typer(
    name="apollo",
    help="Restore music damaged by lossy codecs (MP3 and others) with the Apollo model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@contextmanager
def reported_errors(debug: bool) -> Iterator[None]:
    """Turn library errors into one red line and exit 1 (130 on Ctrl-C)."""
    debug = debug or os.environ.get("APOLLO_DEBUG", "") not in ("", "0")
    try:
        yield
    except ApolloError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[bold red]interrupted:[/] nothing was written for the unfinished file")
        raise typer.Exit(130) from None
    except MemoryError:
        err.print("[bold red]error:[/] out of memory; try a smaller --chunk-seconds or --batch-size")
        raise typer.Exit(1) from None
    except Exception as exc:  # a bug of ours: still one line, the traceback on request
        if debug:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {first} "
            "(rerun with --debug for a traceback and please report it)",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"apollo-cli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Restore music damaged by lossy codecs (MP3 and others) with the Apollo model."""


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", "-m",
        help="Known model name or checkpoint file.",
        show_default=True,
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps (auto: CUDA, then MPS, then CPU).")
]
ChunkOpt = Annotated[
    float,
    typer.Option("--chunk-seconds", min=0.01, help="Audio per inference chunk; bounds memory. Output does not depend on it."),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Chunks run together on the device.")]
BitDepthOpt = Annotated[
    Optional[int],
    typer.Option("--bit-depth", help="16, 24 or 32 (WAV only: float). Default: 24 for FLAC, 32-bit float for WAV."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]


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
    bit_depth: BitDepthOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Restore one audio file and write WAV or FLAC at 44.1 kHz."""
    from . import api, audio

    display = Display(err, quiet)
    with reported_errors(debug):
        target = output if output is not None else api.default_output_path(input)
        # Fail on a bad output before spending time on the model.
        audio.check_output(target, bit_depth=bit_depth, overwrite=overwrite)
        with display.download(f"downloading {model}") as fetched:
            apollo = api.load_model(model, device=device, download_progress=fetched)
        with display.audio(f"restoring {input.name}", apollo.config.sample_rate) as advance:
            result = api.restore_file(
                apollo, input, target,
                bit_depth=bit_depth, overwrite=overwrite,
                chunk_seconds=chunk_seconds, batch_size=batch_size, progress=advance,
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
            )
        if result.clipped_samples:
            err.print(
                f"[yellow]note:[/] limited {result.clipped_samples} samples that went beyond full scale "
                f"({result.bit_depth}-bit); write 32-bit float WAV to keep them",
                soft_wrap=True,
            )


def run() -> None:
    """Console-script entry point."""
    app(prog_name="apollo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
