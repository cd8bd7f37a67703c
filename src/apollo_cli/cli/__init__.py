"""The ``apollo`` command: a thin layer over :mod:`apollo_cli.api`.

Library code raises :class:`~apollo_cli.errors.ApolloError`; :func:`reported_errors`
turns each into one red line on stderr and exit status 1. Each command lives in a
module of its own in this package and imports no other command; this one holds the
app and the error handling, :mod:`.options` the options several commands share,
:mod:`.console` the consoles and :mod:`.progress` the progress bars.

Importing this package (and so ``apollo --help``) loads no torch: the command modules
import the library's heavy modules inside the commands.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import click
import typer
from rich.text import Text

from .. import __version__, signals
from ..errors import ApolloError
from .console import debugging, err, out, print_error
from .options import (  # noqa: F401 - re-exported: the options' old home
    MIN_CHUNK_SECONDS,
    BatchOpt,
    BitDepthOpt,
    ChunkOpt,
    CompileOpt,
    DebugOpt,
    DeviceOpt,
    ModelOpt,
    OfflineOpt,
    PrecisionOpt,
    QuietOpt,
    RevisionOpt,
    _check_chunk_seconds,
)

app = typer.Typer(
    name="apollo",
    help="Restore music damaged by lossy codecs (MP3 and others) with the Apollo model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain: "owner/repo/file[@REV]" must not be read as markup.
    rich_markup_mode=None,
)


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
    except (
        typer.Exit,
        typer.Abort,
        click.exceptions.Exit,
        click.exceptions.Abort,
        click.exceptions.ClickException,
    ):
        raise  # typer's and click's own ways out (typer 0.29's Exit is its own RuntimeError, not click's)
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


def run() -> None:
    """Console-script entry point."""
    app(prog_name="apollo")


# Commands register themselves on ``app`` when imported, in the order --help lists them.
# isort: off
from . import models as _models  # noqa: E402,F401
from . import batch as _batch  # noqa: E402,F401
from . import inspect as _inspect  # noqa: E402,F401
from . import evaluate as _evaluate  # noqa: E402,F401
from . import restore as _restore  # noqa: E402,F401
# isort: on
