"""A Hub file into the cache and verified: :func:`fetch` and :func:`resolve`.

After a download the file is hashed and compared with the Hub's record of it
(see :mod:`.cache`); a mismatch deletes the blob and its snapshot links and
fails. A cached copy that no longer matches is deleted and, when online,
downloaded again. Offline (``HF_HUB_OFFLINE``, read when called, or
``offline=True``) the cache is read directly and nothing touches the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from . import cache, remote
from .errors import ChecksumError, ModelNotCachedError, hub_error
from .references import Target, locate
from .remote import DownloadProgress
from .settings import cache_dir, offline_mode, storage_dir


@dataclass(frozen=True)
class Fetched:
    """A model file in the cache, after verification."""

    path: Path
    target: Target
    commit: str | None
    size: int
    sha256: str
    #: What the file was checked against: ``"hub"`` (the Hub's record of the file),
    #: ``"registry"`` (apollo-cli's registry) or ``""`` (nothing to check against).
    checked_against: str
    #: Whether this call transferred the file.
    downloaded: bool

    @property
    def matches_registry(self) -> bool | None:
        """Whether the file is the one apollo-cli's registry lists (``None``: no record)."""
        known = self.target.known
        if known is None or known.sha256 is None or self.target.revision:
            return None  # the registry describes the file at the default revision only
        return self.sha256 == known.sha256


class _CachedCopyCorrupt(Exception):
    """A cached copy failed verification and was deleted (internal: triggers a re-download)."""


def fetch(
    target: Target,
    *,
    offline: bool | None = None,
    progress: DownloadProgress | None = None,
    full_check: bool = False,
) -> Fetched:
    """Make sure ``target`` is in the cache and intact; download it if needed.

    With ``offline`` (default: ``HF_HUB_OFFLINE``) only the cache is read. A cached
    file is checked against its verification record (a re-hash if the file changed,
    always with ``full_check``); a downloaded one is hashed and compared with the
    Hub's record. Raises a :class:`ModelError` subclass with a one-line reason for
    every failure.
    """
    if offline is None:
        offline = offline_mode()
    hub_cache = cache_dir().resolve()  # as huggingface_hub does: paths it returns are under it
    storage = storage_dir(hub_cache, target.repo_id)
    if offline:
        path = cache.cached_path(target, hub_cache)
        if path is None:
            raise ModelNotCachedError(
                f"model file {target.where} is not in the cache and offline mode is on; "
                f"run '{target.download_command}' where there is a network"
            )
        return _verify(target, path, storage, fresh=False, full=full_check, offline=True)

    if cache.cached_path(target, hub_cache) is None:
        # Fail fast and precisely before huggingface_hub's retry rounds.
        try:
            remote.metadata(target)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one of ours
            raise hub_error(exc, target) from None
    for attempt in (1, 2):
        before = cache.inventory(storage)
        try:
            path = remote.download(target, hub_cache, progress)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one of ours
            raise hub_error(exc, target) from None
        blob = Path(os.path.realpath(path))
        try:
            st = blob.stat()
            fresh = (str(blob), st.st_ino, st.st_mtime_ns) not in before
        except OSError:
            fresh = True
        try:
            return _verify(target, path, storage, fresh=fresh, full=full_check, offline=False)
        except _CachedCopyCorrupt:
            if attempt == 2:
                break
    raise ChecksumError(f"{target.where} keeps failing verification; delete {storage} and try again")


def resolve(
    source: str | os.PathLike[str],
    *,
    revision: str | None = None,
    offline: bool | None = None,
    progress: DownloadProgress | None = None,
) -> Path:
    """The local checkpoint file for a model name, Hub reference or path."""
    found = locate(source, revision)
    if isinstance(found, Path):
        return found
    return fetch(found, offline=offline, progress=progress).path


# ----------------------------------------------------------------------------- verification


def _commit_of(path: Path, storage: Path) -> str | None:
    try:
        return path.relative_to(storage / "snapshots").parts[0]
    except (ValueError, IndexError):
        return None


def _expected_from_hub(target: Target, commit: str | None) -> cache.Expected | None:
    """The Hub's record of a file whose cache entry does not carry it (copies, no symlinks)."""
    try:
        meta = remote.metadata(replace(target, revision=commit or target.revision))
    except Exception:  # noqa: BLE001 - best effort: the caller falls back
        return None
    return cache.expected_from_etag((meta.etag or "").strip('"').lower())


def _verify(target: Target, path: Path, storage: Path, *, fresh: bool, full: bool, offline: bool) -> Fetched:
    """Check ``path`` against the Hub's record of it; delete it if it does not match."""
    blob = Path(os.path.realpath(path))
    stat = blob.stat()
    commit = _commit_of(path, storage)
    record = cache.read_record(storage, blob)
    expected = cache.expected_from_layout(blob)
    source = "hub" if expected else ""
    if not fresh and not full and record is not None and cache.record_vouches(record, stat, expected):
        recorded = record.get("expected")
        checked = "hub" if recorded else ""
        if recorded and recorded[0] == "registry":
            checked = "registry"
        return Fetched(path, target, commit, stat.st_size, record["sha256"], checked, downloaded=False)
    if expected is None and not offline:
        expected = _expected_from_hub(target, commit)
        source = "hub" if expected else ""
    if expected is None and target.known and target.known.sha256 and not target.revision:
        expected, source = ("sha256", target.known.sha256), "registry"
    git_sha1 = expected is not None and expected[0] == "git-sha1"
    sha256, sha1 = cache.hash_file(blob, git_sha1=git_sha1)
    actual = sha1 if git_sha1 and sha1 is not None else sha256  # hash_file gives a SHA-1 when asked
    if expected is not None and actual != expected[1]:
        whose = "the Hub's record of it" if source == "hub" else "apollo-cli's registry entry for it"
        try:
            cache.discard(storage, blob, path)
        except OSError as exc:
            raise ChecksumError(
                f"{target.where} in the cache does not match {whose} and could not be deleted "
                f"({exc.strerror or exc}); delete {blob} by hand"
            ) from None
        if fresh:
            raise ChecksumError(
                f"the downloaded {target.where} does not match {whose} "
                f"({expected[0]} {expected[1][:12]}…, got {actual[:12]}…) and was deleted; try again, and "
                "if it happens again the file on the Hub, or a proxy on the way, is corrupt"
            )
        if offline:
            raise ChecksumError(
                f"the cached copy of {target.where} is corrupt (it does not match {whose}) and was "
                f"deleted; run '{target.download_command}' where there is a network"
            )
        raise _CachedCopyCorrupt()
    record_expected: cache.Expected | None = None
    if expected is not None:
        record_expected = expected if source == "hub" else ("registry", expected[1])
    if cache.expected_from_layout(blob) is not None or expected is not None:
        cache.write_record(storage, blob, blob.stat(), sha256, record_expected)
    return Fetched(path, target, commit, stat.st_size, sha256, source if expected else "", downloaded=fresh)
