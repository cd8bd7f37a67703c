"""Carrying out a batch plan: one model per device, decoding, inference and writing overlapped.

:func:`run_batch` carries a plan (:mod:`.plan`) out with one model per device. Decoding and
resampling of the next files (one background thread) overlap with inference (one
thread per device, pulling from a shared queue), and writing (one background thread)
happens off the inference path. An output appears only when complete (atomic
rename), so a batch stopped at any moment can simply be run again: finished files
are skipped, the rest are done. One bad file never stops the batch. Progress is
reported through a plain callback (:mod:`.events`), called from the calling thread only,
so a UI needs no locking; this module imports no UI.
"""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import api, audio, locks, provenance, signals, tags
from ..devices import parse_devices, resolve_device
from ..errors import ApolloError, DeviceError, OutputError
from ..model import Apollo
from ..options import RestoreOptions
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
)
from .plan import BatchPlan, Job, not_an_output


def replicate(model: Apollo, devices: Sequence[torch.device]) -> list[Apollo]:
    """One model per worker: ``model`` itself on the first device, a copy on each other device.

    Workers on the same device share that device's model: inference only reads the
    weights, so two threads can run one model at once (``cpu,cpu``), and a GPU holds
    its weights once however many workers it has.
    """
    by_device: dict[torch.device, Apollo] = {}
    models = []
    for device in devices:
        if device not in by_device:
            by_device[device] = model.to(device) if not by_device else _copy_to(model, device)
        models.append(by_device[device])
    return models


def _copy_to(model: Apollo, device: torch.device) -> Apollo:
    """A copy of ``model`` on ``device``, made without disturbing the original."""
    return copy.deepcopy(model).to(device)


def run_batch(
    plan: BatchPlan,
    model: Apollo,
    *,
    devices: Sequence[str | torch.device] | str | None = None,
    bit_depth: int | None = None,
    options: RestoreOptions | None = None,
    carry_tags: bool = True,
    events: EventCallback | None = None,
) -> BatchSummary:
    """Carry out ``plan``: restore every job, on one worker per device.

    ``devices`` defaults to the model's own device; a string is parsed by
    :func:`parse_devices`. ``events`` receives :data:`BatchEvent` objects, always in
    the calling thread. ``options`` (a :class:`~apollo_cli.RestoreOptions`) apply to every
    file. Failures of single files are reported (``FileFailed``) and the
    batch goes on. Several CPU workers share the cores: each gets
    ``torch.get_num_threads() // workers`` threads (at least one) for the run.

    On Ctrl-C (and SIGTERM or SIGHUP, when the process has its default handling of
    them) no new work starts, restored files already on their way to disk are
    finished (a second signal drops them too), and :class:`BatchInterrupted` is raised
    with the summary once no file is half written. Inference that was under way is
    abandoned at its next chunk, in the background.

    Each output is claimed (:mod:`apollo_cli.locks`) before its input is decoded and
    until it is written or abandoned, so runs sharing an output folder never work on
    the same file: one claimed by another run is skipped and reported as such.
    """
    if isinstance(devices, str):
        targets = parse_devices(devices)
    elif devices is None:
        targets = [next(model.parameters()).device]
    else:
        targets = [resolve_device(d) for d in devices]
    if not targets:
        raise DeviceError("no devices to run on")
    depth = check_bit_depth(plan.format, bit_depth)
    options = options or RestoreOptions()
    for device in dict.fromkeys(targets):  # an unsupported precision fails now, not per file
        options.check(device)
    summary = plan_summary(plan)
    summary.devices = tuple(str(d) for d in targets)
    emit = events or (lambda event: None)
    earlier: list[BatchEvent] = [*summary.skipped, *summary.failed]
    for event in earlier:
        emit(event)
    if not plan.jobs:
        return summary
    prepare_output_dir(plan)

    models = replicate(model, targets)
    pipeline = _Pipeline(plan, models, depth, options, carry_tags)
    # PyTorch's CPU thread pool size is one setting for the whole process: K CPU workers
    # each get 1/K of it, or they would oversubscribe the cores K times over.
    cpu_workers = sum(1 for d in targets if d.type == "cpu")
    threads_before = torch.get_num_threads()
    if cpu_workers > 1:
        torch.set_num_threads(max(1, threads_before // cpu_workers))
    started = time.perf_counter()

    def record(event: BatchEvent) -> None:
        if isinstance(event, FileDone):
            summary.done.append(event)
        elif isinstance(event, FileFailed):
            summary.failed.append(event)
        elif isinstance(event, FileSkipped):
            summary.skipped.append(event)
        emit(event)

    try:
        with pipeline.interrupts_at_safe_points():
            try:
                pipeline.start()
                pipeline.pump(record)
            except KeyboardInterrupt as exc:
                summary.interrupted = True
                pipeline.signum = pipeline.signum or getattr(exc, "signum", None)
                pipeline.stop.set()
                _drain_after_interrupt(pipeline, record, emit)
                pipeline.wait_for_all()
            except BaseException:
                pipeline.stop.set()
                pipeline.abort.set()
                pipeline.wait_for_all()
                raise
    finally:
        pipeline.release_claims()  # of files abandoned on the way (interrupts, errors)
        if cpu_workers > 1:
            torch.set_num_threads(threads_before)
        summary.wall_seconds = time.perf_counter() - started
    summary.stopped = pipeline.fatal
    ended: list[FileDone | FileFailed | FileSkipped] = [*summary.done, *summary.failed, *summary.skipped]
    accounted = {e.job for e in ended if e.job is not None}
    summary.not_done = sum(1 for job in plan.jobs if job not in accounted)
    if summary.interrupted:
        raise BatchInterrupted(summary, pipeline.signum or signal.SIGINT)
    return summary


def prepare_output_dir(plan: BatchPlan) -> None:
    """Create the plan's output folder; a one-line OutputError if it cannot be made or written to."""
    try:
        plan.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder {plan.output_dir}: {exc.strerror or exc}; choose another with -o"
        ) from None
    if not os.access(plan.output_dir, os.W_OK | os.X_OK):
        raise OutputError(f"the output folder {plan.output_dir} is not writable; choose another with -o")


def plan_summary(plan: BatchPlan) -> BatchSummary:
    """The summary of a plan before anything runs: its skipped files and its problems."""
    summary = BatchSummary()
    summary.skipped.extend(FileSkipped(job.name, "output exists", job) for job in plan.skipped)
    summary.skipped.extend(
        FileSkipped(job.name, "already restored (it carries apollo-cli's provenance tag)", job)
        for job in plan.already_restored
    )
    for collision in plan.collisions:
        summary.failed.extend(FileFailed(job.name, collision.reason, job) for job in collision.jobs)
    summary.failed.extend(FileFailed(job.name, reason, job) for job, reason in plan.unusable)
    summary.failed.extend(FileFailed(f"{name}/", reason) for name, reason in plan.unreadable)
    return summary


def _drain_after_interrupt(pipeline: _Pipeline, record: EventCallback, emit: EventCallback) -> None:
    """After Ctrl-C: let the writer finish what is restored; a further Ctrl-C drops that too."""
    try:
        emit(Stopping(pending=pipeline.pending_writes()))
    except KeyboardInterrupt:
        pipeline.abort.set()
    while True:
        try:
            pipeline.pump(record, until_writer_done=True)
            return
        except KeyboardInterrupt:
            # Keep waiting for the writer, but only for the file it is writing now; its
            # temporary file is removed if it cannot be finished.
            pipeline.abort.set()
        except BaseException:
            pipeline.abort.set()
            pipeline.wait_for_writer()
            raise


#: The bit depth to write a format (FLAC/WAV, any case) with; a one-line OptionError if not allowed.
check_bit_depth = audio.bit_depth_for


class _Cancelled(BaseException):
    """Raised inside a pipeline thread to abandon its current file (not an error)."""


@dataclass
class _Crash:
    """An exception a pipeline thread cannot handle (KeyboardInterrupt, SystemExit), for the caller."""

    exc: BaseException


_END = object()
_POLL = 0.1


#: Files up to this long (seconds, as announced) are decoded ahead of inference, in
#: memory, so a fast device never waits for a decoder; longer ones (and files of unknown
#: length) are streamed through the model by their worker, so memory stays bounded
#: whatever their length (five minutes of stereo: 106 MB).
PREFETCH_SECONDS = 300.0


def decode_whole(
    source: audio.AudioSource, rate: int, options: RestoreOptions
) -> tuple[np.ndarray, RestoreOptions, tuple[str, ...]]:
    """A short input decoded whole at the model's ``rate``, with its ``auto`` controls resolved.

    Returns the samples, the options and the notes on what ``auto`` chose. The
    controls are measured on the input at its own sample rate, before resampling, as
    :func:`apollo_cli.api.restore_file` measures them: a file restored in a batch
    gets the same output as when restored alone (measured after resampling, a
    22.05 kHz file's bandwidth read 10.8 kHz instead of 11.0).
    """
    blocks = list(source.blocks())
    samples = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    del blocks  # keep only the joined copy in memory
    options, notes = api.resolve_controls(options, samples, source.sample_rate)
    return audio.resample(samples, source.sample_rate, rate), options, notes


@dataclass
class _Decoded:
    job: Job
    samples: np.ndarray
    tags: tags.Tags
    seconds: float  # time spent decoding
    options: RestoreOptions  # with the input's auto controls resolved
    notes: tuple[str, ...]  # what the restoration controls did


@dataclass
class _Opened:
    """A long file, opened but not decoded: its worker streams it (see :data:`PREFETCH_SECONDS`)."""

    job: Job
    source: audio.AudioSource
    tags: tags.Tags
    seconds: float  # time spent opening


@dataclass
class _Restored:
    job: Job
    worker: int
    samples: np.ndarray
    tags: tags.Tags
    seconds: float  # decoding + inference time
    provenance: str  # the output's provenance tag
    notes: tuple[str, ...]  # what the restoration controls did


class _Pipeline:
    """Decoder thread -> one inference thread per model -> writer thread; events to the caller."""

    def __init__(
        self,
        plan: BatchPlan,
        models: list[Apollo],
        bit_depth: int,
        options: RestoreOptions,
        carry_tags: bool,
    ) -> None:
        self.plan = plan
        self.models = models
        self.rate = models[0].config.sample_rate
        self.bit_depth = bit_depth
        self.options = options
        self.carry_tags = carry_tags
        self.stop = threading.Event()  # start nothing new; abandon inference
        self.abort = threading.Event()  # also drop restored files not yet written
        self.events: queue.Queue[BatchEvent | _Crash] = queue.Queue()
        # Bounded queues bound memory: about three files per worker at most.
        self.decoded: queue.Queue[_Decoded | object] = queue.Queue(maxsize=len(models))
        self.restored: queue.Queue[_Restored | object] = queue.Queue(maxsize=len(models))
        self.workers_left = len(models)
        self.lock = threading.Lock()
        self.writer_done = threading.Event()
        self.fatal: str | None = None  # why the batch had to stop early (a full disk)
        self.threads: list[threading.Thread] = []
        self.writer: threading.Thread | None = None
        self._interrupts = 0  # Ctrl-Cs counted by the handler of interrupts_at_safe_points
        self._interrupts_seen = 0
        self.signum: int | None = None  # the first stop signal counted (SIGINT, SIGTERM, SIGHUP)
        # -- safety: claims on the outputs of files in flight (see _claim / _release)
        self.claims: dict[Job, locks.Claim] = {}

    # -- control (caller's thread)

    @contextlib.contextmanager
    def interrupts_at_safe_points(self) -> Iterator[None]:
        """Turn Ctrl-C, SIGTERM and SIGHUP into a count that :meth:`pump` and :meth:`wait_for_all` act on.

        Python raises KeyboardInterrupt between any two bytecodes of the main thread,
        including just after a queue has taken its lock and before the code that
        releases it has started; the other threads then block on that queue forever
        and the batch hangs after Ctrl-C (seen about once in ten runs). Counting the
        signal and raising at a poll of :meth:`pump` instead keeps every lock balanced.
        SIGTERM (``timeout``, SLURM, ``docker stop``, systemd) and SIGHUP stop the batch
        the same way; :attr:`signum` remembers the first that came, for the exit status.
        Only in the main thread and only over the default handling (or a handler marked
        :data:`apollo_cli.signals.INTERRUPT_LIKE_CTRL_C`, as the CLI's are): an embedding program's own
        handlers, and a SIGHUP ignored by ``nohup``, are left alone.
        """

        def count(signum: int, frame: object) -> None:
            # Nothing that takes a lock: this runs in the main thread, wherever it is.
            if self.signum is None:
                self.signum = signum
            self._interrupts += 1

        def replaceable(signum: int, handler: object) -> bool:
            return signals.is_default(signum, handler) or getattr(
                handler, signals.INTERRUPT_LIKE_CTRL_C, False
            )

        with signals.handling(signals.STOP_SIGNALS, count, replaceable):
            yield

    def _new_interrupt(self) -> bool:
        if self._interrupts == self._interrupts_seen:
            return False
        self._interrupts_seen = self._interrupts
        return True

    def start(self) -> None:
        self.threads = [
            threading.Thread(target=self._guard, args=(self._decode,), name="apollo-decode", daemon=True)
        ]
        for index, model in enumerate(self.models):
            self.threads.append(threading.Thread(
                target=self._guard, args=(self._infer, index, model), name=f"apollo-infer-{index}", daemon=True
            ))  # fmt: skip
        self.writer = threading.Thread(
            target=self._guard, args=(self._write,), name="apollo-write", daemon=True
        )
        self.threads.append(self.writer)
        for thread in self.threads:
            thread.start()

    def pump(self, handle: EventCallback, *, until_writer_done: bool = False) -> None:
        """Hand events to ``handle`` until every thread (or, when stopping, the writer) is done."""
        while True:
            if self._new_interrupt():
                raise KeyboardInterrupt
            try:
                event = self.events.get(timeout=_POLL)
            except queue.Empty:
                if until_writer_done:
                    if self._writer_running():
                        continue
                elif any(t.is_alive() for t in self.threads):
                    continue
                if self.events.empty():
                    return
                continue
            if isinstance(event, _Crash):
                raise event.exc
            if self.stop.is_set() and isinstance(event, (FileStarted, FileProgress)):
                continue
            handle(event)

    def pending_writes(self) -> int:
        return self.restored.qsize()

    def _writer_running(self) -> bool:
        # A writer that was never started (Ctrl-C during start()) counts as done.
        return self.writer is not None and self.writer.is_alive() and not self.writer_done.is_set()

    def wait_for_writer(self) -> None:
        if self.writer is not None and self.writer.ident is not None:
            self.writer.join()

    def wait_for_all(self) -> None:
        """Join every thread once ``stop`` is set (each notices within a chunk or a poll).

        A thread still inside a PyTorch kernel when the interpreter exits aborts the
        whole process ("terminate called without an active exception"), so the
        caller must not return before they are gone. Ctrl-C meanwhile cannot make
        them stop sooner; it only drops restored files not yet written.
        """
        for thread in self.threads:
            while thread is not None and thread.ident is not None and thread.is_alive():
                try:
                    thread.join(timeout=_POLL)
                except KeyboardInterrupt:
                    self.abort.set()
                if self._new_interrupt():
                    self.abort.set()

    # -- safety: claims on outputs (apollo_cli.locks), so concurrent runs never do a file twice

    def _claim(self, job: Job) -> bool:
        """Claim ``job``'s output before decoding it; False (with an event) if it is not to be done.

        A claim held by another run: skipped, named. Under the claim the plan's
        decision is checked again (another run may have finished the file meanwhile),
        and temporary files that a killed run left for this output are removed.
        """
        try:
            got = locks.try_claim(job.output, make_parents=True)
        except OutputError as exc:
            self._fail(job, exc)
            return False
        if isinstance(got, str):
            self._emit(FileSkipped(job.name, f"being restored by another apollo run ({got})", job))
            return False
        with self.lock:
            self.claims[job] = got
        verdict = _recheck_output(self.plan, job)
        if verdict is not None:
            self._release(job)
            self._emit(verdict)
            return False
        locks.remove_stale_temps(job.output)
        return True

    def _release(self, job: Job) -> None:
        with self.lock:
            held = self.claims.pop(job, None)
        if held is not None:
            held.release()

    def release_claims(self) -> None:
        """Release every claim still held (files abandoned by an interrupt or an error)."""
        with self.lock:
            held, self.claims = list(self.claims.values()), {}
        for claim in held:
            claim.release()

    # -- threads

    def _guard(self, body: Callable[..., None], *args: object) -> None:
        try:
            body(*args)
        except _Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - a KeyboardInterrupt raised in here, or a bug of ours
            self.stop.set()
            self.events.put(_Crash(exc))

    def _emit(self, event: BatchEvent) -> None:
        self.events.put(event)

    def _fail(self, job: Job, exc: BaseException) -> None:
        """Report a file that could not be decoded or restored, unless the batch is stopping.

        After Ctrl-C such errors are usually the interrupt itself (ffmpeg gets the
        terminal's SIGINT too); the file is simply not done and will be on the next run.
        """
        self._release(job)
        if not self.stop.is_set():
            self._emit(FileFailed(job.name, _reason(exc), job))

    def _put(self, q: queue.Queue, item: object, give_up: threading.Event) -> bool:  # type: ignore[type-arg]
        while not give_up.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> object | None:  # type: ignore[type-arg]
        while not self.stop.is_set():
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue
        return None

    def _decode(self) -> None:
        try:
            for job in self.plan.jobs:
                if self.stop.is_set():
                    return
                if not self._claim(job):  # safety: claimed elsewhere, or done meanwhile
                    continue
                began = time.perf_counter()
                try:
                    item = self._open(job, began)
                except _RECOVERABLE as exc:
                    self._fail(job, exc)
                    continue
                if not self._put(self.decoded, item, self.stop):
                    if isinstance(item, _Opened):
                        item.source.close()
                    return
        finally:
            for _ in self.models:
                if not self._put(self.decoded, _END, self.stop):
                    break
            self._drain_decoded()

    def _open(self, job: Job, began: float) -> _Decoded | _Opened:
        """Open one input (the cheap checks); decode it now if it is short enough."""
        source = audio.open_audio(job.source)
        handed_on = False
        try:
            audio.check_channels(job.output, source.channels)
            carried = tags.read_tags(job.source) if self.carry_tags else tags.Tags()
            if source.duration is None or source.duration > PREFETCH_SECONDS:
                handed_on = True
                return _Opened(job, source, carried, time.perf_counter() - began)
            samples, options, notes = decode_whole(source, self.rate, self.options)
        finally:
            if not handed_on:
                source.close()
        return _Decoded(job, samples, carried, time.perf_counter() - began, options, notes)

    def _drain_decoded(self) -> None:
        """Close streams still waiting in the queue once no worker will take them."""
        if not self.stop.is_set():
            return
        while True:
            try:
                item = self.decoded.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Opened):
                item.source.close()

    def _infer(self, index: int, model: Apollo) -> None:
        try:
            while True:
                item = self._get(self.decoded)
                if item is None or item is _END:
                    return
                if isinstance(item, _Opened):
                    self._stream(index, model, item)
                    continue
                assert isinstance(item, _Decoded)
                job = item.job
                seconds = item.samples.shape[-1] / self.rate
                self._emit(FileStarted(job, index, seconds))
                began = time.perf_counter()
                try:
                    restored = api.restore(
                        model, item.samples, self.rate, item.options, progress=self._progress(job, index)
                    )
                except _RECOVERABLE as exc:
                    self._fail(job, exc)
                    continue
                result = _Restored(job, index, restored, item.tags,
                                   item.seconds + time.perf_counter() - began,
                                   provenance.describe(model, item.options), item.notes)  # fmt: skip
                del item
                # Finished work is handed on even when stopping: the writer saves it.
                if not self._put(self.restored, result, self.writer_done):
                    return
        finally:
            with self.lock:
                self.workers_left -= 1
                last = self.workers_left == 0
            if last:
                self._put(self.restored, _END, self.writer_done)

    def _progress(self, job: Job, index: int) -> Callable[[int, int], None]:
        """The progress callback of one file's inference, which also abandons it on stop."""

        def progress(done: int, total: int) -> None:
            if self.stop.is_set():
                raise _Cancelled
            self._emit(FileProgress(job, index, done / self.rate, total / self.rate))

        return progress

    def _stream(self, index: int, model: Apollo, item: _Opened) -> None:
        """Decode, restore and write a long file in one pass on this worker (bounded memory)."""
        job = item.job
        began = time.perf_counter() - item.seconds
        self._emit(FileStarted(job, index, item.source.duration or 0.0))
        try:
            with item.source:
                self._prepare_output(job)
                result = api.restore_source(
                    model, item.source, job.output, item.tags, self.options,
                    bit_depth=self.bit_depth, overwrite=self.plan.overwrite, started=began,
                    progress=self._progress(job, index), finalize=self._unless_aborted,
                )  # fmt: skip
        except _Cancelled:
            return
        except audio.NoSpaceError as exc:
            self._write_failed(job, exc)
            return
        except _RECOVERABLE as exc:
            self._fail(job, exc)
            return
        finally:
            self._release(job)  # safety: written or abandoned, the claim ends here
        self._emit(FileDone(job, index, result))

    def _write(self) -> None:
        try:
            while True:
                try:
                    item = self.restored.get(timeout=_POLL)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if item is _END:
                    return
                if self.abort.is_set():
                    continue
                assert isinstance(item, _Restored)
                self._write_one(item)
        finally:
            self.writer_done.set()

    def _unless_aborted(self, tmp: Path) -> None:
        """A ``finalize`` hook: a second Ctrl-C drops a finished file before it is renamed into place."""
        if self.abort.is_set():
            raise _Cancelled  # the writer removes the temporary file

    def _prepare_output(self, job: Job) -> None:
        # Stale temporaries of this output were removed when it was claimed (_claim).
        job.output.parent.mkdir(parents=True, exist_ok=True)

    def _write_one(self, item: _Restored) -> None:
        try:
            self._write_claimed(item)
        finally:
            self._release(item.job)  # safety: written or abandoned, the claim ends here

    def _write_claimed(self, item: _Restored) -> None:
        job = item.job
        began = time.perf_counter()
        if not self.plan.overwrite and job.output.exists():
            self._emit(FileSkipped(job.name, "output exists (written by another run meanwhile)", job))
            return
        try:
            self._prepare_output(job)
            result = api.write_restored(
                job.source, job.output, item.samples, self.rate, item.tags,
                bit_depth=self.bit_depth, overwrite=self.plan.overwrite,
                started=began - item.seconds, finalize=self._unless_aborted,
                provenance=item.provenance, notes=item.notes,
            )  # fmt: skip
        except _Cancelled:
            return
        except _RECOVERABLE as exc:
            self._write_failed(job, exc)
            return
        self._emit(FileDone(job, item.worker, result))

    def _write_failed(self, job: Job, exc: BaseException) -> None:
        """Report a file that could not be restored or written; a full disk stops the batch."""
        if isinstance(exc, audio.NoSpaceError):
            self._emit(FileFailed(job.name, str(exc), job))
            # Every later file would fail the same way after all its work: stop now.
            self.fatal = disk_full(self.plan)
            self.stop.set()
            return
        reason = (
            f"cannot write {job.output}: {exc.strerror or exc}" if isinstance(exc, OSError) else _reason(exc)
        )
        self._emit(FileFailed(job.name, reason, job))


#: What one file can raise without stopping the batch (KeyboardInterrupt, SystemExit
#: and our _Cancelled are BaseExceptions and pass through).
_RECOVERABLE = (Exception,)


def disk_full(plan: BatchPlan) -> str:
    """Why a batch stopped when its output disk filled up (every later file would fail the same way)."""
    return (
        f"the disk of {plan.output_dir} is full; free some space and run the same command again to continue"
    )


def _reason(exc: BaseException) -> str:
    """One line saying why a file failed."""
    if isinstance(exc, ApolloError):
        return str(exc)
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "out of memory; try a smaller --chunk-seconds or --batch-size"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"internal error: {type(exc).__name__}: {first} (please report it)"


def _recheck_output(plan: BatchPlan, job: Job) -> BatchEvent | None:
    """The plan's decision about an existing output, made again just before work starts."""
    if not job.output.exists() or job.output.is_dir():
        return None
    in_the_way = not_an_output(plan.input_dir, plan.output_dir, job)
    if in_the_way is not None:
        return FileFailed(job.name, in_the_way, job)
    if not plan.overwrite:
        return FileSkipped(job.name, "output exists (written by another run meanwhile)", job)
    return None
