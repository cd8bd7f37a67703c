"""What a running batch reports: one event per step of a file, and the summary at the end.

:func:`apollo_cli.batch.run_batch` hands these to its ``events`` callback, always in the
calling thread, and returns a :class:`BatchSummary` (or raises :class:`BatchInterrupted`
with one).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

from .. import api
from .plan import Job


@dataclass(frozen=True)
class FileStarted:
    """Inference on ``job`` began on worker ``worker``; ``duration`` is its length in seconds."""

    job: Job
    worker: int
    duration: float


@dataclass(frozen=True)
class FileProgress:
    """``done`` of ``total`` seconds of ``job`` restored (after every batch of chunks)."""

    job: Job
    worker: int
    done: float
    total: float


@dataclass(frozen=True)
class FileDone:
    """``job`` was restored and written."""

    job: Job
    worker: int
    result: api.RestoreResult


@dataclass(frozen=True)
class FileFailed:
    """An input that was not restored, and why (one line). ``job`` is None for a folder."""

    name: str
    reason: str
    job: Job | None = None


@dataclass(frozen=True)
class FileSkipped:
    """An input left alone: its output exists, or it is itself a restoration (``reason`` says which)."""

    name: str
    reason: str
    job: Job | None = None


@dataclass(frozen=True)
class Stopping:
    """An interrupt arrived: no new work starts; ``pending`` restored files are still being written."""

    pending: int


@dataclass(frozen=True)
class WorkerReady:
    """A Ray worker (:func:`apollo_cli.batch.run_batch_ray`) loaded its model and takes files.

    ``description`` says where it runs (``cpu on node07``); ``pid`` and ``node`` (its IP
    address) name its process.
    """

    worker: int
    description: str
    pid: int
    node: str


@dataclass(frozen=True)
class WorkerLost:
    """A Ray worker died (or a file's data was lost with a node); ``retried`` names the files sent again.

    A file that was lost too many times is reported by a ``FileFailed`` instead. Ray
    restarts the worker, which takes files again once it has loaded its model.
    """

    worker: int
    reason: str
    retried: tuple[str, ...] = ()


BatchEvent = Union[  # noqa: UP007 - a runtime alias on 3.10
    FileStarted, FileProgress, FileDone, FileFailed, FileSkipped, Stopping, WorkerReady, WorkerLost
]
EventCallback = Callable[[BatchEvent], None]


@dataclass
class BatchSummary:
    """What :func:`run_batch` did (plan-time skips and collisions included)."""

    done: list[FileDone] = field(default_factory=list)
    skipped: list[FileSkipped] = field(default_factory=list)
    failed: list[FileFailed] = field(default_factory=list)
    #: Files of the plan that were neither done nor failed (after an interrupt).
    not_done: int = 0
    wall_seconds: float = 0.0
    interrupted: bool = False
    #: Why the batch stopped before the end without being interrupted (a full disk), if it did.
    stopped: str | None = None
    devices: tuple[str, ...] = ()

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio restored."""
        return sum(d.result.duration for d in self.done)

    @property
    def speed(self) -> float:
        """Audio seconds restored per wall-clock second (× real time)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every file was restored or skipped, and nothing was interrupted."""
        return not self.failed and not self.interrupted and self.stopped is None


class BatchInterrupted(KeyboardInterrupt):
    """Raised by :func:`run_batch` on Ctrl-C, SIGTERM or SIGHUP, once nothing is half written.

    ``summary`` says what was done; ``signum`` is the signal that stopped the batch
    (``SIGINT`` for Ctrl-C and for a KeyboardInterrupt raised by an event callback).
    """

    def __init__(self, summary: BatchSummary, signum: int = signal.SIGINT) -> None:
        super().__init__("batch interrupted")
        self.summary = summary
        self.signum = signum
