"""Parallel single-thread streams: every CPU core busy with a window of its own.

Most of the model's operations are too small to split well over threads: each one
that PyTorch parallelises ends in a barrier, and between two of them the threads
wait (or, under the passive OpenMP policy that :mod:`apollo_cli.openmp` prefers,
sleep and are woken). Channels and chunks, on the other hand, are independent, so
on a CPU the chunk loop (:func:`apollo_cli.inference.restore_stream`) can instead
hand whole windows, one channel each, to K worker threads that each run on one
thread of their own (``torch.set_num_threads(1)`` in that thread): no barrier inside
an operation, and no core left idle while another finishes its part.

The output does not change: a channel restored on its own, on one thread, gives the
same float32 numbers as the channels restored together on several threads (tested
on the test model; ``benchmarks/bench.py --precision fp32 --streams 1 2`` checks the
full-size one), and the restored windows are still handed on in order. Memory grows with K: each stream
holds one window's working set.

A restore that is abandoned (Ctrl-C, a failing write, ``apollo batch`` stopping) stops
its streams within one model block: each stream checks, before every block of the
model, whether its restore was abandoned, and the pool waits for them before it
returns. No stream outlives its restore, so none can be inside PyTorch when the
process exits (which aborts the process).

PyTorch's thread count is a per-thread setting here (OpenMP's, set in each worker)
with a process-wide default that new threads start from; :func:`stream_pool` puts
that default back when it ends.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import torch

#: Most streams ``streams=None`` picks, whatever the core count: each holds a window's
#: working set (the residual stream alone is about 170 MB for a 20 s mono window of the
#: full-size model in float32).
MAX_AUTO_STREAMS = 8

_R = TypeVar("_R")


@dataclass(frozen=True)
class StreamPlan:
    """How a restore runs on the CPU: ``streams`` workers of ``threads`` threads each."""

    streams: int
    threads: int

    @property
    def parallel(self) -> bool:
        """Whether windows run in worker threads (more than one stream)."""
        return self.streams > 1


def plan_streams(
    requested: int | None,
    device: torch.device,
    *,
    items: int | None,
    threads: int | None = None,
) -> StreamPlan:
    """The streams and threads per stream for one restore.

    ``requested`` is :attr:`RestoreOptions.streams` (``None``: pick). ``items`` is how
    many independent windows the audio has (chunks times channels; ``None`` when its
    length is unknown); ``threads`` the calling thread's PyTorch thread count (by
    default :func:`torch.get_num_threads`). Off the CPU, one stream.
    Picked: one stream per thread, at most :data:`MAX_AUTO_STREAMS` and no more than
    there are windows, each stream with an equal share of the threads. Measured on
    2 AVX-512 cores shared with other work: two single-thread streams took 0.72-0.88
    of the wall time of one stream on two threads in bf16, 0.94-1.08 in fp32, at the
    same CPU time; never measurably slower. See docs/performance.md.
    """
    threads = threads or torch.get_num_threads()
    if device.type != "cpu":
        # RestoreOptions.check refuses more than one stream here.
        return StreamPlan(1, threads)
    if requested is None:
        streams = min(threads, MAX_AUTO_STREAMS, items or threads)
    else:
        streams = min(requested, items or requested)
    streams = max(1, streams)
    return StreamPlan(streams, max(1, threads // streams))


def windows_in(total: int | None, core: int, channels: int) -> int | None:
    """Independent windows (chunks times channels) in ``total`` samples cut into cores of ``core``."""
    return None if not total else math.ceil(total / core) * channels


class Abandoned(BaseException):
    """Raised inside a stream, at a model block's start, once its restore was abandoned.

    A BaseException, so that no ``except Exception`` on the way turns it into a result.
    """


_local = threading.local()


def _stop_if_abandoned(module: torch.nn.Module, args: object) -> None:
    """A forward pre-hook: in a stream whose restore was abandoned, stop before this block."""
    event = getattr(_local, "abandoned", None)
    if event is not None and event.is_set():
        raise Abandoned


class _Pool:
    """K daemon threads, each on its own thread count, taking calls from one queue or (``lanes``) one each."""

    def __init__(
        self,
        plan: StreamPlan,
        context: Callable[[], contextlib.AbstractContextManager[object]],
        lanes: bool = False,
    ) -> None:
        shared: queue.Queue[tuple[Future[object], Callable[[], object]] | None] = queue.Queue()
        self._queues = [queue.Queue() if lanes else shared for _ in range(plan.streams)]
        self._plan = plan
        self._context = context
        self.abandoned = threading.Event()
        # Daemon threads, as a last resort: the pool waits for them in any case.
        self._threads = [
            threading.Thread(target=self._work, args=(q,), name=f"apollo-stream-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], _R], lane: int = 0) -> Future[_R]:
        """Run ``fn()`` on the next free stream or, in a pool of lanes, on stream ``lane``
        (modulo the streams), after the calls submitted to it before."""
        future: Future[_R] = Future()
        # A Future[_R] is read as a Future[object].
        self._queues[lane % len(self._queues)].put((future, fn))  # type: ignore[arg-type]
        return future

    def _work(self, calls: queue.Queue[tuple[Future[object], Callable[[], object]] | None]) -> None:
        # Per thread (OpenMP's setting for this thread), and so are autocast and inference mode.
        torch.set_num_threads(self._plan.threads)
        _local.abandoned = self.abandoned
        with self._context():
            while True:
                item = calls.get()
                if item is None:
                    return
                future, fn = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = fn()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
                    future.set_exception(exc)
                else:
                    future.set_result(result)

    def close(self, abandon: bool) -> None:
        """Stop the workers, after their queued calls or (``abandon``) at their next model block."""
        if abandon:
            self.abandoned.set()
            for calls in self._queues:
                while True:
                    try:
                        item = calls.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
        for calls in self._queues:
            calls.put(None)
        for thread in self._threads:
            thread.join()


@contextlib.contextmanager
def stream_pool(
    plan: StreamPlan,
    model: torch.nn.Module,
    context: Callable[[], contextlib.AbstractContextManager[object]],
    lanes: bool = False,
) -> Iterator[_Pool]:
    """Workers for ``plan`` that run ``model``, each running its calls inside ``context()``
    (inference mode, autocast); with ``lanes``, each from a queue of its own
    (``submit(fn, lane)``), so that calls on one lane run in the order given.

    On the way out the workers are stopped and waited for: after their work, or when
    the body raised, at their next block of ``model`` (queued calls are dropped). Then
    the process-wide thread count is put back as the calling thread had it.
    """
    before = torch.get_num_threads()
    # On every submodule: only those the model calls as modules (its blocks) ever run them,
    # and only a stream of an abandoned restore is stopped by them.
    hooks = [module.register_forward_pre_hook(_stop_if_abandoned) for module in model.modules()]
    pool = _Pool(plan, context, lanes)
    try:
        yield pool
    except BaseException:
        pool.close(abandon=True)
        raise
    else:
        pool.close(abandon=False)
    finally:
        for hook in hooks:
            hook.remove()
        # The workers' set_num_threads changed the default that new threads start from.
        torch.set_num_threads(before)
