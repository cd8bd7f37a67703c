"""The signals that stop work as Ctrl-C does, and handlers installed for a while.

Ctrl-C (SIGINT), SIGTERM (``timeout``, SLURM's time limit, ``docker stop``, systemd)
and SIGHUP (a closed terminal) all mean "stop, keep nothing half written". The CLI
turns SIGTERM and SIGHUP into a KeyboardInterrupt; ``apollo batch`` counts all three
and acts on them at safe points. Both install their handlers through :func:`handling`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator

#: Ctrl-C, SIGTERM and SIGHUP (those this platform has).
STOP_SIGNALS: tuple[int, ...] = tuple(
    s
    for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
    if s is not None
)

#: The attribute that marks a signal handler as one that only raises KeyboardInterrupt (as
#: the CLI's SIGTERM/SIGHUP handlers do): ``run_batch`` replaces it by its safe-point counting.
INTERRUPT_LIKE_CTRL_C = "apollo_interrupt_like_ctrl_c"


def is_default(signum: int, handler: object) -> bool:
    """Whether ``handler`` is Python's own handling of ``signum`` (KeyboardInterrupt for SIGINT)."""
    return handler is (signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


@contextlib.contextmanager
def handling(
    signums: Iterable[int],
    handler: Callable[[int, object], None],
    replaceable: Callable[[int, object], bool] = is_default,
) -> Iterator[None]:
    """Within: ``handler`` handles each of ``signums`` whose current handler is ``replaceable``.

    Only in the main thread (Python allows handlers nowhere else); an embedding
    program's own handlers, and a SIGHUP ignored by ``nohup``, are left alone by the
    default test. The previous handlers are put back on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in signums:
        if replaceable(signum, signal.getsignal(signum)):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
