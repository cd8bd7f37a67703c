"""The ``apollo`` command: a thin layer over :mod:`apollo_cli.api`.

Library code raises :class:`~apollo_cli.errors.ApolloError`; :func:`reported_errors`
turns each into one red line on stderr and exit status 1. Each command lives in a
module of its own in this package; this one holds the app, the options several
commands share and the error handling.
"""

from __future__ import annotations

import math
import os
import signal
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.text import Text

from .. import __version__, signals
from ..errors import ApolloError, OptionError

app = typer.Typer(
    name="apollo",
    help="Restore music damaged by lossy codecs (MP3 and others) with the Apollo model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain: "owner/repo/file[@REV]" must not be read as markup.
    rich_markup_mode=None,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def debugging(debug: bool = False) -> bool:
    """Whether tracebacks are wanted (``--debug`` or ``APOLLO_DEBUG=1``)."""
    return debug or os.environ.get("APOLLO_DEBUG", "") not in ("", "0")


def print_error(exc: BaseException, debug: bool = False) -> None:
    """``error: <message>`` in red on stderr, the message verbatim (never markup)."""
    if debugging(debug):
        traceback.print_exception(exc)
    err.print(Text.assemble(("error:", "bold red"), " ", str(exc)), soft_wrap=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so that work stops the same way.

    ``signum`` says which signal it was; the exit status is 128 + ``signum`` (143, 129).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


# apollo_cli.batch replaces a handler so marked by its own, which acts at safe points.
setattr(_raise_terminated, signals.INTERRUPT_LIKE_CTRL_C, True)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise :class:`Terminated`, as Ctrl-C raises KeyboardInterrupt.

    ``timeout``, SLURM's time limit, ``docker stop`` and systemd send SIGTERM; a closed
    terminal sends SIGHUP. Without this Python dies on the spot, leaving temporary files
    and saying nothing. Only in the main thread, and only where the signal has its
    default action (a SIGHUP ignored by ``nohup`` stays ignored); the previous handlers
    are put back on the way out.
    """
    with signals.handling((s for s in signals.STOP_SIGNALS if s != signal.SIGINT), _raise_terminated):
        yield


def interrupted_status(exc: BaseException) -> int:
    """The exit status for an interrupt: 130 for Ctrl-C, 128 + the signal's number otherwise."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


@contextmanager
def reported_errors(debug: bool) -> Iterator[None]:
    """Turn library errors into one red line and exit 1 (130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP)."""
    debug = debugging(debug)
    try:
        yield
    except ApolloError as exc:
        print_error(exc, debug)
        raise typer.Exit(1) from None
    except (click.exceptions.Exit, click.exceptions.Abort, click.exceptions.ClickException):
        raise  # typer's own ways out (an Exit is a RuntimeError since click 8.2)
    except KeyboardInterrupt as exc:
        status = interrupted_status(exc)
        what = "interrupted" if status == 130 else f"stopped by {signal_name(status - 128)}"
        err.print(f"[bold red]{what}:[/] nothing was written for the unfinished file")
        raise typer.Exit(status) from None
    except MemoryError:
        err.print("[bold red]error:[/] out of memory; try a smaller --chunk-seconds or --batch-size")
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 - a bug of ours: still one line, the traceback on request
        if debug:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        err.print(
            Text.assemble(
                ("internal error:", "bold red"),
                f" {type(exc).__name__}: {first} (rerun with --debug for a traceback and please report it)",
            ),
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
        help="Known model name (see apollo models), Hub file owner/repo/path/file (add @revision to pin one), or checkpoint file.",
        show_default=True,
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps (auto: CUDA, then MPS, then CPU).")
]
#: The shortest ``--chunk-seconds`` accepted.
MIN_CHUNK_SECONDS = 0.01


def _check_chunk_seconds(value: float) -> float:
    """Refuse a chunk length that is not a finite number of at least 0.01 s, in one ``error:`` line.

    A callback rather than typer's ``min=``: that lets ``inf`` through (an internal error
    later) and words NaN's refusal as a comparison. It runs while the command line is
    parsed, before anything is loaded, so it reports and exits itself, like the other
    option errors (exit status 1, no usage text).
    """
    if not (math.isfinite(value) and value >= MIN_CHUNK_SECONDS):
        print_error(
            OptionError(
                f"--chunk-seconds must be a number of seconds, at least {MIN_CHUNK_SECONDS:g}, not {value:g}; "
                "the default is 10"
            )
        )
        raise typer.Exit(1)
    return value


ChunkOpt = Annotated[
    float,
    typer.Option(
        "--chunk-seconds", callback=_check_chunk_seconds,
        help="Audio per inference chunk (seconds, at least 0.01); bounds memory. Output does not depend on it.",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size", min=1,
        help="Chunks run together on the device. Default: 1 on a CPU; on a GPU as many as fit in free memory (up to 16).",
    ),
]
BitDepthOpt = Annotated[
    int | None,
    typer.Option("--bit-depth", help="16, 24 or 32 (WAV only: float). Default: 24 for FLAC, 32-bit float for WAV."),
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help="fp32 (exact, default), bf16 (CPUs with bfloat16 support, GPUs; about 1.5x faster on such CPUs, 0.65 of the time) or fp16 (GPUs).",
    ),
]
CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile",
        help="Compile the model with torch.compile: about 8% faster on long files, after a one-time compile "
        "(about 20 s, then cached on disk). Needs a C++ compiler on CPUs.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]


def run() -> None:
    """Console-script entry point."""
    app(prog_name="apollo")


# Commands register themselves on ``app`` when imported.
from . import batch as _batch  # noqa: E402,F401
from . import inspect as _inspect  # noqa: E402,F401
from . import models as _models  # noqa: E402,F401
from . import restore as _restore  # noqa: E402,F401
