"""What the cache holds, and apollo-cli's records of the files it verified.

huggingface_hub stores an LFS file as ``blobs/<sha256>``, named by the Hub's record
of the file (the ``X-Linked-Etag``; a git blob SHA-1 for small non-LFS files), but
never hashes what it received. A file apollo-cli verified gets a record (size,
mtime, inode, sha256) in ``.apollo-cli/verified/`` inside the repository's cache
folder, so later loads check it with one ``stat`` and re-hash only when the file
changed. Everything here reads the file system only; nothing touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .references import Target
from .settings import cache_dir, storage_dir

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_RECORDS = Path(".apollo-cli") / "verified"

#: The Hub's record of a file: ``("sha256" | "git-sha1", hex digest)``.
Expected = tuple[str, str]


def cached_path(target: Target, cache: Path) -> Path | None:
    """The cached snapshot file for ``target``'s revision, without touching the network.

    Read from huggingface_hub's documented cache layout (``refs/<revision>`` holds the
    commit, ``snapshots/<commit>/<file>`` the file), as its ``try_to_load_from_cache``
    does, without importing huggingface_hub: ``apollo models`` stays fast.
    """
    storage = storage_dir(cache, target.repo_id)
    revision = target.revision or "main"
    if _SHA1.match(revision):
        commit = revision
    else:
        try:
            commit = (storage / "refs" / revision).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
    if not _SHA1.match(commit):
        return None
    found = storage / "snapshots" / commit / target.filename
    return found if found.is_file() else None


@dataclass(frozen=True)
class CacheStatus:
    """What the cache holds for a target (from the file system only)."""

    path: Path | None
    size: int | None
    #: A verification record matches the file as it is now.
    verified: bool


def cache_status(target: Target) -> CacheStatus:
    """Whether ``target`` is cached, where, and whether it was verified (no network)."""
    cache = cache_dir().resolve()
    path = cached_path(target, cache)
    if path is None:
        return CacheStatus(None, None, False)
    blob = path.resolve()
    stat = blob.stat()
    record = read_record(storage_dir(cache, target.repo_id), blob)
    return CacheStatus(path, stat.st_size, record_vouches(record, stat, expected_from_layout(blob)))


def inventory(storage: Path) -> set[tuple[str, int, int]]:
    """Regular files under blobs/ and snapshots/ with their inode and mtime."""
    found: set[tuple[str, int, int]] = set()
    for sub in ("blobs", "snapshots"):
        base = storage / sub
        if not base.is_dir():
            continue
        for item in base.rglob("*"):
            try:
                if item.is_symlink() or not item.is_file():
                    continue
                st = item.stat()
            except OSError:
                continue
            found.add((str(item), st.st_ino, st.st_mtime_ns))
    return found


# ---------------------------------------------------------------------------------- records


def _record_path(storage: Path, blob: Path) -> Path:
    try:
        key = blob.relative_to(storage.resolve()).as_posix().replace("/", "%")
    except ValueError:
        key = hashlib.sha1(str(blob).encode()).hexdigest()
    return storage / _RECORDS / f"{key}.json"


def read_record(storage: Path, blob: Path) -> dict[str, Any] | None:
    """The verification record of ``blob``, or ``None`` (none, or unreadable)."""
    try:
        record = json.loads(_record_path(storage, blob).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def record_vouches(record: dict[str, Any] | None, stat: os.stat_result, expected: Expected | None) -> bool:
    """Whether ``record`` describes the file as it is now, checked against ``expected``."""
    return (
        record is not None
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
        and record.get("inode") == stat.st_ino
        and isinstance(record.get("sha256"), str)
        and (expected is None or record.get("expected") == list(expected))
    )


def write_record(
    storage: Path, blob: Path, stat: os.stat_result, sha256: str, expected: Expected | None
) -> None:
    """Best effort: a read-only cache just means hashing on every load."""
    path = _record_path(storage, blob)
    record = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
        "sha256": sha256,
        "expected": list(expected) if expected else None,
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------- hashing


def expected_from_etag(etag: str) -> Expected | None:
    """The Hub's record of a file from its ETag (a blob's name in the cache is one)."""
    if _SHA256.match(etag):
        return ("sha256", etag)
    if _SHA1.match(etag):
        return ("git-sha1", etag)
    return None


def expected_from_layout(blob: Path) -> Expected | None:
    """The Hub's record of a blob, from its name in the cache (``blobs/<etag>``)."""
    if blob.parent.name != "blobs":
        return None
    return expected_from_etag(blob.name)


def hash_file(path: Path, *, git_sha1: bool) -> tuple[str, str | None]:
    """SHA-256 of a file, and its git blob SHA-1 when asked for."""
    sha256 = hashlib.sha256()
    sha1 = None
    if git_sha1:
        sha1 = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            sha256.update(block)
            if sha1 is not None:
                sha1.update(block)
    return sha256.hexdigest(), sha1.hexdigest() if sha1 is not None else None


def discard(storage: Path, blob: Path, path: Path) -> None:
    """Delete a bad file: its blob, every snapshot link to it, and its record."""
    snapshots = storage / "snapshots"
    if snapshots.is_dir():
        for link in snapshots.rglob("*"):
            if link.is_symlink() and Path(os.path.realpath(link)) == blob:
                link.unlink()
    _record_path(storage, blob).unlink(missing_ok=True)
    blob.unlink(missing_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
