"""Where the CLI writes: its two consoles, the one-line error, and a console that survives decoding.

Every command module prints through these; none imports another command for them.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from collections.abc import Iterator

from rich.console import Console
from rich.text import Text

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


@contextlib.contextmanager
def display_console() -> Iterator[Console]:
    """A console for progress that keeps working while audio is being decoded.

    ``audio.load_audio`` points file descriptor 2 at /dev/null while libsndfile decodes
    (libmpg123 prints warnings there); in a batch that happens in a background thread
    while the display is live, so anything written to fd 2 meanwhile would be lost. When
    stderr is fd 2, the display writes to a duplicate of it, made before any decoding
    starts: the same terminal or file, but a descriptor the silencing does not touch.
    (Other streams, such as a test runner's capture, are used as they are.)
    """
    stream = sys.stderr
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd = -1
    if fd != 2:
        yield Console(file=stream, highlight=False)
        return
    stream.flush()
    encoding = getattr(stream, "encoding", None) or "utf-8"
    with os.fdopen(os.dup(2), "w", buffering=1, encoding=encoding, errors="replace") as private:
        yield Console(file=private, highlight=False)
