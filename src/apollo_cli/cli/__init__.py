"""The ``apollo`` command: a thin layer over :mod:`apollo_cli.api`.

Library code raises :class:`~apollo_cli.errors.ApolloError`; :func:`reported_errors`
turns each into one red line on stderr and exit status 1. Each command lives in a
module of its own in this package; this one holds the app, the options several
commands share and the error handling.
"""

from __future__ import annotations

import os
import traceback
from contextlib import contextmanager
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console

from .. import __version__
from ..errors import ApolloError

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


def run() -> None:
    """Console-script entry point."""
    app(prog_name="apollo")


# Commands register themselves on ``app`` when imported.
from . import restore as _restore  # noqa: E402,F401
