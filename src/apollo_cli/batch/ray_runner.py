"""Carrying out a batch plan on a Ray cluster: the driver keeps the files, workers do the work.

:func:`run_batch_ray` takes the same plan as :func:`apollo_cli.batch.run_batch` and gives
the same outputs, tags, events and summary. Only the driver (this process) touches the
file system: it claims each output (:mod:`apollo_cli.locks`), reads the input's bytes and
sends them to a worker (:mod:`.ray_worker`), a Ray actor that loaded the model once (from
checkpoint bytes the driver sent, so no shared file system is needed) and returns the
finished output's bytes, which the driver writes atomically. A worker can never leave a
partial output behind.

Files go to whichever worker has room (at most ``in_flight_per_worker`` each, so the
driver and the object store hold a bounded number of files). A worker that dies (killed,
out of memory, its node lost) costs only the files it had: they are retried on another
worker, ``max_attempts`` times in all, then reported as failed; Ray restarts the worker.
Ctrl-C, SIGTERM and SIGHUP stop the batch as they stop a local one.

Ray is an optional dependency (``pip install 'apollo-cli[ray]'``); importing this module
without it raises :class:`~apollo_cli.errors.MissingDependencyError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import audio, errors, locks, signals
from ..errors import ApolloError, MissingDependencyError, OptionError, OutputError
from ..options import RestoreOptions
from ..provenance import ModelSource
from .events import (
    BatchEvent,
    BatchInterrupted,
    BatchSummary,
    EventCallback,
    FileDone,
    FileFailed,
    FileProgress,
    FileSkipped,
    FileStarted,
    Stopping,
    WorkerLost,
    WorkerReady,
)
from .plan import BatchPlan, Job
from .ray_worker import MISSING, Cancelled, Identity, Outcome, RayWorker
from .runner import (
    _reason,
    _recheck_output,
    check_bit_depth,
    disk_full,
    plan_summary,
    prepare_output_dir,
)

try:
    import ray
    import ray.exceptions
except ImportError:  # pragma: no cover - the tests that need Ray skip without it
    raise MissingDependencyError(MISSING) from None

#: Files each worker holds at once (one being restored, the next waiting), by default: the
#: next file is already there when a worker finishes one, and no worker hoards files.
IN_FLIGHT_PER_WORKER = 2
#: How many times a file is tried on workers that die under it before it is reported as failed.
MAX_ATTEMPTS = 3
#: How many times Ray restarts a worker that died (each restart loads the model again).
WORKER_RESTARTS = 4
#: How long to wait for the first worker to start (the cluster may have to add a node).
STARTUP_TIMEOUT = 600.0

#: Ray's errors that mean "the worker or the data went away", not "this file is bad": the
#: file is tried again on another worker.
_LOST = (
    ray.exceptions.RayActorError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OutOfMemoryError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.LocalRayletDiedError,
)

_WAIT = 0.1  # seconds between looks at signals while waiting for workers
_PROGRESS_EVERY = 0.5  # seconds between progress reports asked of a busy worker


@dataclass
class _Slot:
    """One worker as the driver sees it."""

    index: int
    handle: Any
    ready: Any | None  # the pending identity() call, while the worker starts (or restarts)
    identity: Identity | None = None
    load: int = 0  # files sent and not yet answered
    poll: Any | None = None  # the pending progress() call
    next_poll: float = 0.0
    shown: int | None = None  # the file its last FileStarted was for
    deaths: int = 0
    gone: bool = False  # Ray gave up restarting it


@dataclass
class _Flight:
    """A file sent to a worker and not yet answered."""

    job: Job
    key: int
    slot: _Slot
    attempt: int
    sent: float


def run_batch_ray(
    plan: BatchPlan,
    model_source: ModelSource | str | os.PathLike[str],
    options: RestoreOptions | None = None,
    *,
    address: str | None = "auto",
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    bit_depth: int | None = None,
    carry_tags: bool = True,
    events: EventCallback | None = None,
    in_flight_per_worker: int = IN_FLIGHT_PER_WORKER,
    max_attempts: int = MAX_ATTEMPTS,
    send_checkpoint: bool = True,
    runtime_env: dict[str, Any] | None = None,
) -> BatchSummary:
    """Carry out ``plan`` on a Ray cluster, as :func:`~apollo_cli.batch.run_batch` does locally.

    ``model_source`` is the checkpoint file on this machine (or its
    :class:`~apollo_cli.provenance.ModelSource`, which also says what the outputs'
    provenance tag names): its bytes go to every worker through Ray's object store, or,
    with ``send_checkpoint=False``, its path, for clusters where every node sees it.
    ``address``: ``"auto"`` (``RAY_ADDRESS``, else the cluster ``ray start`` made on this
    machine, else a new local Ray instance), ``"local"`` or ``HOST:PORT``; ignored when Ray
    is already initialized in this process (that cluster is used, and left running).

    ``workers`` actors are started (default: as many as the cluster's GPUs, or CPUs,
    hold), each with ``gpus_per_worker`` GPUs (0: a CPU worker, its torch threads set to
    ``cpus_per_worker``) and ``cpus_per_worker`` CPUs. Each holds at most
    ``in_flight_per_worker`` files at once. A file whose worker dies is tried again on
    another, ``max_attempts`` times in all. Events, the summary, Ctrl-C
    (:class:`BatchInterrupted`, once nothing is half written) and the claims on outputs
    are as for ``run_batch``; ``WorkerReady`` and ``WorkerLost`` events say which workers
    started and which died.
    """
    depth = check_bit_depth(plan.format, bit_depth)
    options = options or RestoreOptions()
    if gpus_per_worker < 0 or cpus_per_worker <= 0 or (workers is not None and workers < 1):
        raise OptionError(
            "--workers must be at least 1, --gpus-per-worker at least 0, --cpus-per-worker above 0"
        )
    if not gpus_per_worker and options.precision == "fp16":
        raise OptionError(
            "fp16 is for GPUs; give the workers one with --gpus-per-worker 1, or use --precision bf16"
        )
    if in_flight_per_worker < 1 or max_attempts < 1:
        raise OptionError("in_flight_per_worker and max_attempts must be at least 1")
    source = model_source if isinstance(model_source, ModelSource) else _model_source(model_source)
    summary = plan_summary(plan)
    emit: EventCallback = events or (lambda event: None)
    earlier: list[BatchEvent] = [*summary.skipped, *summary.failed]
    for event in earlier:
        emit(event)
    if not plan.jobs:
        return summary
    prepare_output_dir(plan)
    description = source.describe()
    run = _Run(plan, summary, emit, depth, carry_tags, in_flight_per_worker, max_attempts)
    started = time.perf_counter()
    with _connected(address, runtime_env):
        try:
            with signals.handling(signals.STOP_SIGNALS, run.count_signal, run.replaceable):
                try:
                    run.start_workers(
                        source, description, send_checkpoint, options, workers, gpus_per_worker, cpus_per_worker
                    )  # fmt: skip
                except KeyboardInterrupt as exc:  # while the workers started: nothing was sent yet
                    summary.interrupted = True
                    run.signum = run.signum or getattr(exc, "signum", None) or signal.SIGINT
                else:
                    # Wall time counts from the first worker's model being loaded, as a local
                    # batch counts from its model being loaded.
                    started = time.perf_counter()
                    run.go()
        finally:
            run.finish()
            summary.wall_seconds = time.perf_counter() - started
    summary.devices = tuple(
        f"ray:{s.identity.device}@{s.identity.node}" for s in run.slots if s.identity is not None
    )
    summary.stopped = run.fatal
    ended: list[FileDone | FileFailed | FileSkipped] = [*summary.done, *summary.failed, *summary.skipped]
    accounted = {e.job for e in ended if e.job is not None}
    summary.not_done = sum(1 for job in plan.jobs if job not in accounted)
    if summary.interrupted:
        raise BatchInterrupted(summary, run.signum or signal.SIGINT)
    return summary


def _model_source(path: str | os.PathLike[str]) -> ModelSource:
    checkpoint = Path(path)
    if not checkpoint.is_file():
        raise errors.ModelError(
            f"checkpoint {checkpoint} does not exist; pass a checkpoint file on this machine"
        )
    return ModelSource(os.fspath(path), None, checkpoint)


@contextlib.contextmanager
def _connected(address: str | None, runtime_env: dict[str, Any] | None) -> Iterator[None]:
    """Ray, connected for the block: the caller's connection if there is one, else ours (then shut down)."""
    if ray.is_initialized():
        yield
        return
    # ray.init sets its own SIGTERM handler (exit at once); ours stops at a safe point instead.
    before = {s: signal.getsignal(s) for s in signals.STOP_SIGNALS}
    target = None if address in (None, "auto") else address
    try:
        ray.init(
            address=target, runtime_env=runtime_env, logging_level=logging.ERROR, log_to_driver=False,
            include_dashboard=False,
        )  # fmt: skip
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        where = "a Ray cluster" if target is None else f"the Ray cluster at {target}"
        causes = [exc, exc.__cause__, getattr(exc.__cause__, "__cause__", None)]
        if any(isinstance(c, ray.exceptions.AuthenticationError) for c in causes):
            raise OptionError(
                f"cannot connect to {where}: it wants its authentication token; set RAY_AUTH_MODE=token and "
                "give the token (~/.ray/auth_token, or RAY_AUTH_TOKEN), as for any Ray driver"
            ) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OptionError(
            f"cannot connect to {where} ({first}); start one with 'ray start --head', or check --ray"
        ) from None
    finally:
        if threading_is_main():
            for signum, handler in before.items():
                if handler is not None:
                    signal.signal(signum, handler)
    try:
        yield
    finally:
        ray.shutdown()
        if threading_is_main():  # and put back what shutting down may have changed
            for signum, handler in before.items():
                if handler is not None:
                    signal.signal(signum, handler)


def threading_is_main() -> bool:
    """Whether this is the main thread (the only one where signal handlers can be set)."""
    return threading.current_thread() is threading.main_thread()


class _Run:
    """The driver's loop: sends files to workers, writes what comes back, handles deaths and signals."""

    def __init__(
        self,
        plan: BatchPlan,
        summary: BatchSummary,
        emit: EventCallback,
        bit_depth: int,
        carry_tags: bool,
        per_worker: int,
        max_attempts: int,
    ) -> None:
        self.plan = plan
        self.summary = summary
        self._emit = emit
        self.bit_depth = bit_depth
        self.carry_tags = carry_tags
        self.per_worker = per_worker
        self.max_attempts = max_attempts
        self.slots: list[_Slot] = []
        self.todo: deque[tuple[int, Job]] = deque(enumerate(plan.jobs))
        self.retry: deque[tuple[int, Job, int, _Slot | None]] = deque()  # key, job, attempts so far, avoid
        self.flights: dict[Any, _Flight] = {}
        self.claims: dict[Job, locks.Claim] = {}
        self.fatal: str | None = None
        self.signum: int | None = None
        self._interrupts = 0
        self._seen = 0
        self.abort = False  # a second interrupt: drop restored files not yet written
        self._load_args: tuple[Any, ...] = ()

    # -- signals (the local runner's scheme: count them, act at a safe point)

    def count_signal(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        self._interrupts += 1

    @staticmethod
    def replaceable(signum: int, handler: object) -> bool:
        return signals.is_default(signum, handler) or getattr(handler, signals.INTERRUPT_LIKE_CTRL_C, False)

    def _new_interrupt(self) -> bool:
        if self._interrupts == self._seen:
            return False
        self._seen = self._interrupts
        return True

    def emit(self, event: BatchEvent) -> None:
        if isinstance(event, FileDone):
            self.summary.done.append(event)
        elif isinstance(event, FileFailed):
            self.summary.failed.append(event)
        elif isinstance(event, FileSkipped):
            self.summary.skipped.append(event)
        self._emit(event)

    # -- workers

    def start_workers(
        self,
        source: ModelSource,
        description: str,
        send_checkpoint: bool,
        options: RestoreOptions,
        workers: int | None,
        gpus: float,
        cpus: float,
    ) -> None:
        """Start the actors; return once the first has loaded its model (or raise why none can)."""
        resources = ray.cluster_resources()
        if gpus and resources.get("GPU", 0) < gpus:
            raise OptionError(
                f"the Ray cluster has {resources.get('GPU', 0):g} GPUs, a worker needs {gpus:g}; "
                "add GPU nodes or leave out --gpus-per-worker"
            )
        if workers is None:
            room = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1) / cpus
            workers = max(1, min(math.floor(room + 1e-9), len(self.plan.jobs)))
        # Held until the end: a worker that Ray restarts loads it again.
        checkpoint: Any = ray.put(source.path.read_bytes()) if send_checkpoint else str(source.path)
        self._load_args = (
            checkpoint,
            source.path.name,
            description,
            options,
            bool(gpus),
            max(1, math.floor(cpus)),
        )
        actor = RayWorker.options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=WORKER_RESTARTS, max_task_retries=0
        )
        for index in range(workers):
            handle = actor.remote()
            self.slots.append(_Slot(index, handle, handle.load.remote(*self._load_args)))
        waited = time.perf_counter()
        while not any(s.identity for s in self.slots):
            self._check_signals_while_starting()
            self._take_identities(timeout=_WAIT)
            if time.perf_counter() - waited > STARTUP_TIMEOUT and not any(s.identity for s in self.slots):
                raise ApolloError(
                    f"no Ray worker started in {STARTUP_TIMEOUT:g} s: the cluster has no room for a worker "
                    f"with {cpus:g} CPUs and {gpus:g} GPUs; check 'ray status'"
                )

    def _check_signals_while_starting(self) -> None:
        if self._new_interrupt():
            raise KeyboardInterrupt

    def _take_identities(self, timeout: float) -> None:
        pending = {s.ready: s for s in self.slots if s.ready is not None}
        if not pending:
            time.sleep(timeout)
            return
        done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=timeout)
        for ref in done:
            slot = pending[ref]
            slot.ready = None
            try:
                identity: Identity = ray.get(ref)
            except _LOST:
                slot.gone = True  # it cannot even start (restarts exhausted)
                self._check_any_left()
                continue
            if identity.error is not None:
                kind, message = identity.error
                cls = getattr(errors, kind, ApolloError)
                raise (
                    cls(message)
                    if isinstance(cls, type) and issubclass(cls, ApolloError)
                    else ApolloError(message)
                )
            from .. import __version__

            if identity.version != __version__:
                raise ApolloError(
                    f"the Ray worker on {identity.host} runs apollo-cli {identity.version}, this machine "
                    f"{__version__}; install the same version on every node"
                )
            first_time = slot.identity is None
            slot.identity = identity
            if first_time:
                self.emit(
                    WorkerReady(
                        slot.index, f"{identity.device} on {identity.host}", identity.pid, identity.node
                    )
                )

    def _check_any_left(self) -> None:
        if all(s.gone for s in self.slots):
            self.fatal = "every Ray worker died and could not be restarted; check the cluster ('ray status') and run the same command again to continue"

    # -- the loop

    def go(self) -> None:
        try:
            while (self.todo or self.retry or self.flights) and self.fatal is None:
                if self._new_interrupt():
                    raise KeyboardInterrupt
                self._send()
                self._wait_and_handle()
        except KeyboardInterrupt as exc:
            self.summary.interrupted = True
            self.signum = self.signum or getattr(exc, "signum", None) or signal.SIGINT
            self._drain_after_interrupt()

    def _free_slot(self, avoid: _Slot | None) -> _Slot | None:
        usable = [s for s in self.slots if s.identity is not None and s.ready is None and not s.gone]
        free = [s for s in usable if s.load < self.per_worker]
        if avoid is not None and len(usable) > 1:
            free = [s for s in free if s is not avoid] or []
        return min(free, key=lambda s: (s.load, s.index)) if free else None

    def _send(self) -> None:
        """Send files to workers with room, retries first."""
        while self.retry:
            key, job, attempts, avoid = self.retry[0]
            slot = self._free_slot(avoid)
            if slot is None:
                break
            self.retry.popleft()
            self._submit(key, job, slot, attempts)
        while self.todo and not self.retry:
            slot = self._free_slot(None)
            if slot is None:
                return
            key, job = self.todo.popleft()
            if self._claim(job):
                self._submit(key, job, slot, 0)

    def _claim(self, job: Job) -> bool:
        """Claim ``job``'s output (as the local runner does); False, with an event, if it is not to be done."""
        try:
            got = locks.try_claim(job.output, make_parents=True)
        except OutputError as exc:
            self.emit(FileFailed(job.name, str(exc), job))
            return False
        if isinstance(got, str):
            self.emit(FileSkipped(job.name, f"being restored by another apollo run ({got})", job))
            return False
        self.claims[job] = got
        verdict = _recheck_output(self.plan, job)
        if verdict is not None:
            self._release(job)
            self.emit(verdict)
            return False
        locks.remove_stale_temps(job.output)
        return True

    def _release(self, job: Job) -> None:
        held = self.claims.pop(job, None)
        if held is not None:
            held.release()

    def _submit(self, key: int, job: Job, slot: _Slot, attempt: int) -> None:
        try:
            data = job.source.read_bytes()
        except OSError as exc:
            self._release(job)
            self.emit(FileFailed(job.name, f"cannot read {job.source}: {exc.strerror or exc}", job))
            return
        ref = slot.handle.restore.remote(
            key, data, job.source.name, job.output.name, str(job.source), str(job.output),
            self.bit_depth, self.carry_tags,
        )  # fmt: skip
        del data  # the object store holds it now
        slot.load += 1
        self.flights[ref] = _Flight(job, key, slot, attempt, time.perf_counter())

    def _wait_and_handle(self) -> None:
        now = time.perf_counter()
        for slot in self.slots:
            if slot.load and slot.poll is None and now >= slot.next_poll and slot.ready is None:
                slot.poll = slot.handle.progress.remote()
        polls = {s.poll: s for s in self.slots if s.poll is not None}
        starting = [s.ready for s in self.slots if s.ready is not None]
        watched = [*self.flights, *polls, *starting]
        if not watched:
            time.sleep(_WAIT)
            return
        done, _ = ray.wait(watched, num_returns=1, timeout=_WAIT)
        if not done:
            return
        ref = done[0]
        if ref in self.flights:
            self._answer(self.flights.pop(ref), ref)
        elif ref in polls:
            self._progress(polls[ref], ref)
        else:
            self._take_identities(timeout=0)

    def _progress(self, slot: _Slot, ref: Any) -> None:
        slot.poll = None
        slot.next_poll = time.perf_counter() + _PROGRESS_EVERY
        try:
            current = ray.get(ref)
        except _LOST:
            return  # the restore call says so
        if current is None:
            return
        key, done, total = current
        flight = next((f for f in self.flights.values() if f.key == key and f.slot is slot), None)
        if flight is None:
            return  # answered meanwhile
        if slot.shown != key:
            slot.shown = key
            self.emit(FileStarted(flight.job, slot.index, total))
        self.emit(FileProgress(flight.job, slot.index, done, total))

    def _answer(self, flight: _Flight, ref: Any) -> None:
        slot, job = flight.slot, flight.job
        slot.load -= 1
        try:
            outcome: Outcome = ray.get(ref)
        except _LOST as exc:
            self._lost(flight, exc)
            return
        except ray.exceptions.RayTaskError as exc:  # a bug of ours inside the worker
            self._release(job)
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            self.emit(FileFailed(job.name, _reason(cause), job))
            return
        if slot.shown != flight.key and outcome.data is not None:
            self.emit(FileStarted(job, slot.index, outcome.result.duration))
        slot.shown = None
        if outcome.data is None:
            self._release(job)
            if outcome.reason != "cancelled":
                self.emit(FileFailed(job.name, outcome.reason or "no reason given", job))
            if outcome.no_space:
                self.fatal = "the disk of a Ray worker is full; free some space and run the same command again to continue"
            return
        try:
            self._write(flight, outcome)
        finally:
            self._release(job)

    def _write(self, flight: _Flight, outcome: Outcome) -> None:
        """Write a finished file's bytes into place, atomically, under its claim."""
        job = flight.job
        began = time.perf_counter()
        if not self.plan.overwrite and job.output.exists():
            self.emit(FileSkipped(job.name, "output exists (written by another run meanwhile)", job))
            return
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            with audio.atomic_output(job.output) as tmp:
                tmp.write_bytes(outcome.data or b"")
                if self.abort:
                    raise Cancelled
        except Cancelled:
            return
        except (OutputError, OSError) as exc:
            if audio.disk_full(job.output.parent):
                self.emit(FileFailed(job.name, str(audio.NoSpaceError.at(job.output)), job))
                self.fatal = disk_full(self.plan)
                return
            reason = (
                str(exc)
                if isinstance(exc, OutputError)
                else f"cannot write {job.output}: {exc.strerror or exc}"
            )
            self.emit(FileFailed(job.name, reason, job))
            return
        worked = outcome.result.elapsed
        result = dataclasses.replace(
            outcome.result, input=job.source, output=job.output,
            elapsed=worked + (time.perf_counter() - began),
        )  # fmt: skip
        self.emit(FileDone(job, flight.slot.index, result))

    def _lost(self, flight: _Flight, exc: BaseException) -> None:
        """A file's worker died (or its data was lost): try the file again elsewhere, or give up on it."""
        slot, job = flight.slot, flight.job
        why = _lost_reason(exc)
        if slot.ready is None and not slot.gone:
            # Ray restarts it (the model loads again); it takes files once it answers again.
            slot.deaths += 1
            slot.shown = None
            if slot.deaths > WORKER_RESTARTS:
                slot.gone = True
            else:
                slot.ready = slot.handle.load.remote(*self._load_args)
        attempts = flight.attempt + 1
        retried: tuple[str, ...] = ()
        if attempts < self.max_attempts:
            self.retry.append((flight.key, job, attempts, slot))
            retried = (job.name,)
        else:
            self._release(job)
            self.emit(FileFailed(
                job.name,
                f"the Ray worker restoring it was lost {'once' if attempts == 1 else f'{attempts} times'} "
                f"(last: {why}); run again to retry it, or give the workers more memory if it keeps happening",
                job,
            ))  # fmt: skip
        self.emit(WorkerLost(slot.index, why, retried))
        self._check_any_left()

    # -- stopping

    def _drain_after_interrupt(self) -> None:
        """After Ctrl-C: write what is already restored; a further Ctrl-C drops that too."""
        ready, _ = (
            ray.wait(list(self.flights), num_returns=len(self.flights), timeout=0)
            if self.flights
            else ([], [])
        )
        finished = list(ready)
        try:
            self.emit(Stopping(pending=len(finished)))
        except KeyboardInterrupt:
            self.abort = True
        for ref in finished:
            if self._new_interrupt():
                self.abort = True
            flight = self.flights.pop(ref)
            if self.abort:
                self._release(flight.job)
                continue
            try:
                outcome = ray.get(ref)
            except (ray.exceptions.RayError, KeyboardInterrupt):
                self._release(flight.job)
                continue
            if outcome.data is None:
                self._release(flight.job)
                continue
            try:
                self._write(flight, outcome)
            except KeyboardInterrupt:
                self.abort = True
            finally:
                self._release(flight.job)

    def finish(self) -> None:
        """Release every claim still held and stop the workers (their files in flight are abandoned)."""
        for job in list(self.claims):
            self._release(job)
        for slot in self.slots:
            with contextlib.suppress(Exception):  # a worker already gone is fine
                ray.kill(slot.handle, no_restart=True)


#: How a worker (or a file's data) was lost, in one line (Ray's own messages run to
#: paragraphs): the first entry whose type the error is an instance of. Subclasses first.
_LOST_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ray.exceptions.OutOfMemoryError, "its node ran out of memory"),
    (ray.exceptions.NodeDiedError, "its node died"),
    (ray.exceptions.ObjectLostError, "the file's data was lost with a node"),
    (
        ray.exceptions.ActorUnavailableError,
        "it stopped answering (its process died, or its node cannot be reached)",
    ),
    (ray.exceptions.RayActorError, "its process died (killed, out of memory, or its node was lost)"),
    (ray.exceptions.WorkerCrashedError, "its process crashed"),
)


def _lost_reason(exc: BaseException) -> str:
    """One line saying how a worker (or a file's data) was lost (see :data:`_LOST_REASONS`)."""
    for kind, reason in _LOST_REASONS:
        if isinstance(exc, kind):
            return reason
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
