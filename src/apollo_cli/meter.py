"""Progress of a restore, counted within its chunks as well as by the chunks delivered.

One chunk of the full-size model takes tens of seconds on a CPU (a 20 s chunk about a
minute in fp32 on one core), so progress counted only by delivered chunks left a bar
still for that long, and the first report (which makes the CLI's bar appear) came
only with the first chunk. A :class:`Meter` also counts, for every model call in
flight, the model's time blocks it has entered (three per layer, the last steps of
each layer), and reports the finished share of those chunks too.

``progress(done, total)`` is called from the thread that runs the restore, as before,
never from a stream's worker (:mod:`apollo_cli.streams`): while it waits for the
streams it wakes when one of them enters a block. ``done`` never decreases and is the
samples delivered plus less than those of the chunks in flight; the last call is
``(total, total)``. A callback that raises (to abandon the restore) stops it within a
block instead of a chunk.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import torch

from .model import Apollo, TimeBlock

_local = threading.local()


class Meter:
    """Counts a restore's progress; ``progress`` is the caller's ``(done, total)`` callback or ``None``.

    Made, used and closed in the thread that runs the restore (its owner).
    """

    def __init__(self, model: Apollo, progress: Callable[[int, int], None] | None, total: int | None) -> None:
        self._progress = progress
        self._total = total or 0
        self._owner = threading.get_ident()
        self._changed = threading.Condition()
        self._version = 0  # counts changes, so that a waiter misses none
        self._delivered = 0
        self._reported = 0
        # Per model call in flight: [samples of its chunks, calls sharing them, blocks entered].
        self._running: dict[int, list[int]] = {}
        blocks = [m for m in model.modules() if isinstance(m, TimeBlock)]
        # Blocks entered count as finished work only up to the last one's start: a share below 1.
        self._blocks = len(blocks) + 1
        self._hooks = [] if progress is None else [b.register_forward_pre_hook(self._entered) for b in blocks]

    def close(self) -> None:
        """Stop counting blocks (remove the hooks on the model)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    @contextlib.contextmanager
    def window(self, key: int, samples: int, parts: int) -> Iterator[None]:
        """Count the blocks this thread's model calls enter towards the chunks ``key``.

        ``samples`` is what those chunks deliver; ``parts`` how many calls share them (one
        per channel with parallel streams).
        """
        with self._changed:
            self._running.setdefault(key, [samples, parts, 0])
        previous = getattr(_local, "window", None)
        _local.window = (self, key)
        try:
            yield
        finally:
            _local.window = previous

    @property
    def done(self) -> int:
        """Samples delivered so far."""
        return self._delivered

    def delivered(self, key: int, samples: int) -> None:
        """The chunks ``key`` were handed on: ``samples`` more are done."""
        with self._changed:
            self._running.pop(key, None)
            self._delivered += samples
        self._report()

    def wait(self, futures: Sequence[Future[Any]]) -> None:
        """Wait until ``futures`` are done, reporting progress as their calls enter blocks."""
        for future in futures:
            future.add_done_callback(self._notify)
        while True:
            with self._changed:
                seen = self._version
            self._report()
            with self._changed:
                if all(f.done() for f in futures):
                    return
                while self._version == seen:  # a block entered or a call finished
                    self._changed.wait()

    def _notify(self, _: object = None) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _entered(self, module: torch.nn.Module, args: Sequence[object]) -> None:
        """A forward pre-hook on each time block: one more block entered by this thread's call."""
        window = getattr(_local, "window", None)
        if window is None or window[0] is not self:  # another restore on the same model
            return
        with self._changed:
            running = self._running.get(window[1])
            if running is not None:
                running[2] += 1
        self._notify()
        self._report()  # without streams this is the owner's thread: report from here

    def _report(self) -> None:
        """Call ``progress`` when the count has grown (in the owner thread)."""
        if self._progress is None or threading.get_ident() != self._owner:
            return
        with self._changed:
            partial = sum(
                samples * min(entered, parts * self._blocks - 1) // (parts * self._blocks)
                for samples, parts, entered in self._running.values()
            )
            done = self._delivered + partial
        if done > self._reported:
            self._reported = done
            self._progress(done, max(done, self._total))
