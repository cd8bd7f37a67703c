"""Claims on output files, so that concurrent apollo runs never step on each other.

A run that is about to produce an output first *claims* it: it takes an exclusive
``fcntl.flock`` on a hidden lock file beside it (``.NAME.flac.lock``) and writes its
process id and host name into it. The claim lasts until the output is written or
abandoned; then the lock file is removed and the lock released. A claim is per output
file, not per folder, so any number of runs (``--shard 1/8`` ... ``8/8`` on a cluster)
can share one output folder, each skipping the files another is working on.

A lock file left behind by a process that was killed (``kill -9``, a power cut) is not
locked by anyone: the kernel drops a process's locks when it dies. The next claimant
simply takes it over. The same goes for temporary files (``.NAME.flac.XXXXXXXX.part``,
see :func:`apollo_cli.audio.write_audio`): they belong to whoever holds the claim on
their output, so :func:`remove_stale_temps` removes them only when nobody does.

``flock`` works on local file systems and, on Linux, on NFS (where the kernel maps it to
NFS byte-range locks). Only runs of apollo-cli that claim their outputs are seen; a
program writing the same files without a claim is not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import audio
from .errors import OutputError

#: flock() errors that mean "this file system has no locks", not "someone holds it".
_NO_LOCKING = frozenset(
    e
    for e in (errno.ENOLCK, errno.EINVAL, getattr(errno, "EOPNOTSUPP", None), getattr(errno, "ENOTSUP", None))
    if e
)

# The claims this process holds, by lock file path: flock() would see our own claim as
# someone else's when tested through a second descriptor, so we remember them.
_held: dict[str, Claim] = {}
_held_lock = threading.Lock()


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The hidden lock file of ``output``: ``.NAME.lock`` beside it."""
    path = Path(output)
    return path.with_name(f".{path.name}.lock")


@dataclass
class Claim:
    """This process's exclusive claim on one output file; :meth:`release` ends it."""

    output: Path
    path: Path  #: the lock file
    fd: int
    #: Folders created to hold the output, innermost first; removed again if left empty.
    created: list[Path] = field(default_factory=list)

    def release(self) -> None:
        """Remove the lock file and release the lock (and folders made for nothing). Idempotent."""
        with _held_lock:
            if _held.get(str(self.path)) is not self:
                return
            del _held[str(self.path)]
        # Unlink while still holding the lock: a process that opened the file meanwhile
        # and locks it after us sees it is no longer at its path and starts over.
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        if not self.output.exists():
            for folder in self.created:
                try:
                    folder.rmdir()  # only if empty: another run may be using it
                except OSError:
                    break

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ClaimedElsewhere(OutputError):
    """The output is claimed by another live process; ``owner`` describes it."""

    def __init__(self, output: Path, owner: str) -> None:
        super().__init__(
            f"{output} is being written by another apollo run ({owner}); wait for it to finish "
            "or choose another output"
        )
        self.output = output
        self.owner = owner


def claim(output: str | os.PathLike[str], *, make_parents: bool = False) -> Claim:
    """Claim ``output`` for this process, or raise :class:`ClaimedElsewhere`.

    ``make_parents`` creates the output's folder first (and remembers what it created,
    so that :meth:`Claim.release` removes it again if no output was written). Claiming an
    output this process already holds raises too: one claim, one owner. An unusable
    folder raises :class:`~apollo_cli.errors.OutputError`.
    """
    target = Path(output)
    path = lock_path(target)
    with _held_lock:
        if str(path) in _held:
            raise ClaimedElsewhere(target, f"this process, pid {os.getpid()}")
    for _ in range(100):  # each retry means another process released or removed the file meanwhile
        created = _make_parents(target.parent) if make_parents else []
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            if make_parents:
                continue  # another run removed the (empty) folder just now
            raise OutputError(
                f"cannot write {target}: directory {target.parent} does not exist; "
                "create it or choose another output path"
            ) from None
        except OSError as exc:
            raise OutputError(
                f"cannot write to {target.parent}: {exc.strerror or exc}; choose a writable output directory"
            ) from None
        try:
            _lock_now(fd)
        except OSError as exc:
            if exc.errno in _NO_LOCKING:
                pass  # a file system without locks (some FUSE mounts): work unguarded rather than not at all
            elif exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise ClaimedElsewhere(target, describe_owner(target)) from None
            else:
                os.close(fd)
                raise OutputError(f"cannot lock {path}: {exc.strerror or exc}") from None
        if not _is_at(fd, path):
            os.close(fd)  # its holder removed it after we opened it: take the new one
            continue
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        except OSError:
            pass  # the owner's description is a courtesy; the lock is what counts
        held = Claim(target, path, fd, created)
        with _held_lock:
            _held[str(path)] = held
        return held
    raise OutputError(f"cannot lock {path}: it keeps changing; is something removing it?")


def try_claim(output: str | os.PathLike[str], *, make_parents: bool = False) -> Claim | str:
    """:func:`claim`, but a claim held elsewhere is returned as its owner's description."""
    try:
        return claim(output, make_parents=make_parents)
    except ClaimedElsewhere as exc:
        return exc.owner


def describe_owner(output: str | os.PathLike[str]) -> str:
    """Who holds the claim on ``output``, for messages: ``pid 1234 on node07``.

    Read from the lock file; a holder that has not written it yet is "another process".
    """
    try:
        text = lock_path(output).read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        text = []
    if len(text) >= 2 and text[0].isdigit():
        return f"pid {text[0]} on {' '.join(text[1:])}"
    if len(text) == 1 and text[0].isdigit():
        return f"pid {text[0]}"
    return "another process"


def is_claimed_elsewhere(output: str | os.PathLike[str]) -> bool:
    """Whether a live process other than this one holds the claim on ``output``."""
    path = lock_path(output)
    with _held_lock:
        if str(path) in _held:
            return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: nobody holds a claim
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the shared lock, if we got it
    return False


def remove_stale_temps(output: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of ``output`` that no live process owns; returns them.

    Temporaries (``.NAME.XXXXXXXX.part``, see :func:`apollo_cli.audio.temp_files`) are owned
    through the claim on their output: while another process holds it they are its work
    in progress and are kept. Without a claim, or under this process's own claim (made
    before its temporary was), they were left by a run that was killed.
    """
    target = Path(output)
    try:
        stale = audio.temp_files(target)
    except OSError:
        return []
    if not stale or is_claimed_elsewhere(target):
        return []
    removed = []
    for path in stale:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError:
            pass  # not ours to insist on (a read-only folder); it does no harm
    return removed


def _lock_now(fd: int) -> None:
    """An exclusive lock on ``fd`` without waiting for a holder, but past a passing check.

    :func:`is_claimed_elsewhere` holds a shared lock for a moment while it looks; a
    claimant that meets one tries again a few milliseconds later instead of giving up.
    """
    for attempt in range(3):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if attempt == 2 or exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        time.sleep(0.005)


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p folder``; the folders it created, innermost first."""
    missing = []
    here = folder
    while not here.exists() and here != here.parent:
        missing.append(here)
        here = here.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder {folder}: {exc.strerror or exc}; choose another output folder"
        ) from None
    return missing


__all__ = [
    "Claim",
    "ClaimedElsewhere",
    "claim",
    "describe_owner",
    "is_claimed_elsewhere",
    "lock_path",
    "remove_stale_temps",
    "try_claim",
]
