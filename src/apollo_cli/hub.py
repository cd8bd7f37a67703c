"""Fetching checkpoints from the Hugging Face Hub into its standard cache, verified.

Everything goes through ``huggingface_hub``: its cache layout, ``revision``,
``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and tokens. On top
of it this module adds what a package manager would:

* **Names, references and paths.** :func:`locate` turns what the user typed into a
  local file or a :class:`Target` on the Hub: a registry name (``mp3``, optionally
  ``mp3@revision``), a Hub reference ``owner/repo/path/file.ckpt[@revision]`` (also
  ``hf://...`` and ``https://huggingface.co/.../resolve|blob/...`` URLs) or a path.
* **Integrity.** huggingface_hub stores an LFS file as ``blobs/<sha256>``, named by
  the Hub's record of the file (the ``X-Linked-Etag``), but never hashes what it
  received (only the size is checked). After a download the file is hashed and
  compared with that record (a git blob SHA-1 for small non-LFS files); a mismatch
  deletes the blob and its snapshot links and fails. A verified file gets a record
  (size, mtime, inode, sha256) in ``.apollo-cli/verified/`` inside the repository's
  cache folder, so later loads check it with one ``stat`` and re-hash only when the
  file changed. A cached copy that no longer matches is deleted and, when online,
  downloaded again.
* **Offline.** With ``HF_HUB_OFFLINE`` (read when called, not at import) or
  ``offline=True`` the cache is read directly and nothing touches the network, not
  even huggingface_hub's user-agent lookup.
* **Clear failures.** Before the first download of a file one metadata request with
  a short timeout (``HF_HUB_ETAG_TIMEOUT``, default 5 s, no retries) tells a missing
  network, a timeout, a 404 repository/revision/file and a gated repository apart:
  a refused connection or DNS failure is reported at once and a silent server after
  the timeout, where huggingface_hub alone retries for ~23 s (refused) or minutes
  (silent: its retry round uses 60 s timeouts). Every failure is a
  :class:`~apollo_cli.errors.ModelError` subclass with a one-line message naming the
  file and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ModelError
from .registry import KNOWN_MODELS, KnownModel, known_model, known_model_at

#: ``progress(done_bytes, total_bytes)`` while a file downloads.
DownloadProgress = Callable[[int, int], None]

_TRUE = {"1", "true", "yes", "on", "y"}

#: Seconds to wait for the Hub's answer to a metadata request (``HF_HUB_ETAG_TIMEOUT``
#: overrides it). huggingface_hub's own default is 10 s plus a retry round.
DEFAULT_METADATA_TIMEOUT = 5.0

_CHECKPOINT_SUFFIXES = {".bin", ".ckpt", ".pt", ".pth", ".safetensors", ".pkl"}
_HUB_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_RECORDS = Path(".apollo-cli") / "verified"


# --------------------------------------------------------------------------------------- errors


class ModelNotCachedError(ModelError):
    """Offline, and the model is not in the cache."""


class HubUnreachableError(ModelError):
    """The Hub cannot be reached: no route, connection refused, DNS, proxy or timeout."""


class ModelNotFoundError(ModelError):
    """The Hub has no such repository, revision or file (HTTP 404)."""


class ModelAccessError(ModelError):
    """The Hub refuses access: a gated or private repository (HTTP 401/403)."""


class ChecksumError(ModelError):
    """A file's SHA-256 does not match the Hub's record of it; the file was deleted."""


class DownloadError(ModelError):
    """A transfer was interrupted or came out incomplete; nothing was kept."""


# ------------------------------------------------------------------------------ configuration


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks us not to touch the network.

    Read at call time rather than from ``huggingface_hub.constants`` (which reads
    it once at import) so a notebook or test can switch it.
    """
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _endpoint() -> str | None:
    # Same reason as offline_mode: honour HF_ENDPOINT as it is now.
    value = os.environ.get("HF_ENDPOINT", "").strip()
    return value.rstrip("/") or None


def _endpoint_url() -> str:
    from huggingface_hub import constants

    return _endpoint() or constants.ENDPOINT.rstrip("/")


def _metadata_timeout() -> float:
    try:
        value = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", ""))
    except ValueError:
        return DEFAULT_METADATA_TIMEOUT
    return value if value > 0 else DEFAULT_METADATA_TIMEOUT


def cache_dir() -> Path:
    """The Hugging Face Hub cache in use, from the environment as it is now.

    ``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else ``HF_HOME/hub``, else
    huggingface_hub's default (``~/.cache/huggingface/hub``).
    """
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(var, "").strip()
        if value:
            return Path(value).expanduser()
    home = os.environ.get("HF_HOME", "").strip()
    if home:
        return Path(home).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def _storage(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


# --------------------------------------------------------------------------- what to fetch


@dataclass(frozen=True)
class Target:
    """A file on the Hub, and how the user named it."""

    repo_id: str
    filename: str
    revision: str | None = None
    #: What the user typed (a registry name or a reference), for messages.
    label: str = ""
    known: KnownModel | None = None

    @property
    def where(self) -> str:
        """``owner/repo/path/file[@revision]``."""
        return f"{self.repo_id}/{self.filename}" + (f"@{self.revision}" if self.revision else "")

    @property
    def download_command(self) -> str:
        """The command that downloads this file."""
        label = self.label or self.where
        command = f"apollo download-model {shlex.quote(label)}"
        if self.revision and "@" not in label:
            command += f" --revision {shlex.quote(self.revision)}"
        return command


def parse_reference(text: str) -> tuple[str, str, str | None] | None:
    """``(repo_id, filename, revision)`` for a Hub reference, else ``None``.

    Accepted: ``owner/repo/path/file[@rev]``, ``owner/repo@rev/path/file``, the same
    with ``hf://``, and ``https://huggingface.co/owner/repo/{resolve,blob}/rev/path``.
    """
    text = text.strip()
    revision: str | None = None
    if text.lower().startswith(("https://", "http://")):
        url = urlsplit(text)
        endpoint = urlsplit(_endpoint_url())
        if (url.hostname or "").lower() not in _HUB_HOSTS | {(endpoint.hostname or "").lower()}:
            return None
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if len(parts) < 5 or parts[2] not in ("resolve", "blob"):
            return None
        owner, repo, revision, segments = parts[0], parts[1], parts[3], parts[4:]
    else:
        if text.lower().startswith("hf://"):
            text = text[5:]
        parts = text.split("/")
        if len(parts) < 3:
            return None
        owner, repo, segments = parts[0], parts[1], parts[2:]
        if "@" in repo:
            repo, _, revision = repo.partition("@")
            revision = unquote(revision)
        else:
            rest, at, rev = "/".join(segments).rpartition("@")
            if at:
                segments, revision = rest.split("/"), rev
    if not (_NAME_PART.match(owner) and _NAME_PART.match(repo)):
        return None
    if not segments or any(s in ("", ".", "..") for s in segments):
        return None
    if revision is not None and not revision.strip():
        return None
    return f"{owner}/{repo}", "/".join(segments), revision


def _one_revision(given: str | None, option: str | None, text: str) -> str | None:
    if given and option and given != option:
        raise ModelError(f"'{text}' names revision '{given}' but --revision is '{option}'; give one of them")
    return given or option or None


def locate(source: str | os.PathLike[str], revision: str | None = None) -> Path | Target:
    """The local checkpoint file, or the Hub file, that ``source`` names.

    ``source`` is an existing file, a known model name (``mp3``, ``mp3@rev``) or a
    Hub reference (see :func:`parse_reference`). ``revision`` applies to Hub files.
    Raises :class:`ModelError` when it is none of these.
    """
    text = os.fspath(source).strip()
    if not text:
        raise ModelError(
            "no model given: pass a model name (" + ", ".join(KNOWN_MODELS) + "), a Hub reference "
            "owner/repo/path/file.ckpt or a checkpoint file"
        )
    # A bare registry name is always the model, even beside a file or folder of that
    # name (a music folder may well hold an "mp3" directory); "./mp3" is the file.
    name, at, rev = text.partition("@")
    if "/" not in name and "\\" not in name:
        entry = known_model(name)
        if entry is not None:
            return Target(
                entry.repo_id, entry.filename, _one_revision(rev.strip() if at else None, revision, text),
                label=text, known=entry,
            )
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise ModelError(f"{path} is a directory; pass a checkpoint file or a model name")
        if revision:
            raise ModelError(f"--revision applies to models on the Hub, not to the local file {path}")
        return path
    ref = parse_reference(text)
    if ref is not None:
        repo_id, filename, ref_revision = ref
        return Target(
            repo_id, filename, _one_revision(ref_revision, revision, text),
            label=text, known=known_model_at(repo_id, filename),
        )
    parts = text.split("/")
    if len(parts) == 2 and all(_NAME_PART.match(p) for p in parts) and path.suffix.lower() not in _CHECKPOINT_SUFFIXES:
        raise ModelError(
            f"'{text}' is not a file; for a Hub repository name the file too: {text}/path/to/model.ckpt"
        )
    if "/" in text or "\\" in text or path.suffix.lower() in _CHECKPOINT_SUFFIXES:
        raise ModelError(f"checkpoint file {text} does not exist")
    names = ", ".join(KNOWN_MODELS)
    raise ModelError(
        f"unknown model '{text}': not a file, not a known model name ({names}) "
        "and not a Hub reference (owner/repo/path/file.ckpt)"
    )


# ------------------------------------------------------------------------------ the cache


def _cached_path(target: Target, cache: Path) -> Path | None:
    """The cached snapshot file for ``target``'s revision, without touching the network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(
            target.repo_id, target.filename, cache_dir=str(cache), revision=target.revision
        )
    except (ValueError, OSError):
        return None
    if isinstance(found, str) and os.path.isfile(found):
        return Path(found)
    return None


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
    path = _cached_path(target, cache)
    if path is None:
        return CacheStatus(None, None, False)
    blob = path.resolve()
    storage = _storage(cache, target.repo_id)
    stat = blob.stat()
    record = _read_record(storage, blob)
    expected = _expected_from_layout(blob)
    verified = record is not None and _record_matches(record, stat) and (
        expected is None or record.get("expected") == list(expected)
    )
    return CacheStatus(path, stat.st_size, verified)


def _inventory(storage: Path) -> set[tuple[str, int, int]]:
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


def _record_path(storage: Path, blob: Path) -> Path:
    try:
        key = blob.relative_to(storage.resolve()).as_posix().replace("/", "%")
    except ValueError:
        key = hashlib.sha1(str(blob).encode()).hexdigest()
    return storage / _RECORDS / f"{key}.json"


def _read_record(storage: Path, blob: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(_record_path(storage, blob).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _record_matches(record: dict[str, Any], stat: os.stat_result) -> bool:
    return (
        record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
        and record.get("inode") == stat.st_ino
        and isinstance(record.get("sha256"), str)
    )


def _write_record(
    storage: Path, blob: Path, stat: os.stat_result, sha256: str, expected: tuple[str, str] | None
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


# --------------------------------------------------------------------------- verification


def _expected_from_layout(blob: Path) -> tuple[str, str] | None:
    """The Hub's record of a blob, from its name in the cache (``blobs/<etag>``)."""
    if blob.parent.name != "blobs":
        return None
    if _SHA256.match(blob.name):
        return ("sha256", blob.name)
    if _SHA1.match(blob.name):
        return ("git-sha1", blob.name)
    return None


def _hash_file(path: Path, *, git_sha1: bool) -> tuple[str, str | None]:
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


def _discard(storage: Path, blob: Path, path: Path) -> None:
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


class _CachedCopyCorrupt(Exception):
    """A cached copy failed verification and was deleted (internal: triggers a re-download)."""


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


def _commit_of(path: Path, storage: Path) -> str | None:
    try:
        return path.relative_to(storage / "snapshots").parts[0]
    except (ValueError, IndexError):
        return None


def _expected_from_hub(target: Target, commit: str | None) -> tuple[str, str] | None:
    """The Hub's record of a file whose cache entry does not carry it (copies, no symlinks)."""
    try:
        meta = _metadata(replace(target, revision=commit or target.revision))
    except Exception:  # noqa: BLE001 - best effort: the caller falls back
        return None
    etag = (meta.etag or "").strip('"').lower()
    if _SHA256.match(etag):
        return ("sha256", etag)
    if _SHA1.match(etag):
        return ("git-sha1", etag)
    return None


def _verify(target: Target, path: Path, storage: Path, *, fresh: bool, full: bool, offline: bool) -> Fetched:
    """Check ``path`` against the Hub's record of it; delete it if it does not match."""
    blob = Path(os.path.realpath(path))
    stat = blob.stat()
    commit = _commit_of(path, storage)
    record = _read_record(storage, blob)
    expected = _expected_from_layout(blob)
    source = "hub" if expected else ""
    if (
        not fresh and not full and record is not None and _record_matches(record, stat)
        and (expected is None or record.get("expected") == list(expected))
    ):
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
    sha256, sha1 = _hash_file(blob, git_sha1=expected is not None and expected[0] == "git-sha1")
    actual = sha1 if expected is not None and expected[0] == "git-sha1" else sha256
    if expected is not None and actual != expected[1]:
        whose = "the Hub's record of it" if source == "hub" else "apollo-cli's registry entry for it"
        try:
            _discard(storage, blob, path)
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
    record_expected: tuple[str, str] | None = None
    if expected is not None:
        record_expected = expected if source == "hub" else ("registry", expected[1])
    if _expected_from_layout(blob) is not None or expected is not None:
        _write_record(storage, blob, blob.stat(), sha256, record_expected)
    return Fetched(path, target, commit, stat.st_size, sha256, source if expected else "", downloaded=fresh)


# ------------------------------------------------------------------------------- network


def _metadata(target: Target) -> Any:
    """One HEAD on the file's resolve URL (no retries, short timeout): its Hub metadata."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from . import __version__

    endpoint = _endpoint()
    url = hf_hub_url(target.repo_id, target.filename, revision=target.revision, endpoint=endpoint)
    return get_hf_file_metadata(
        url, timeout=_metadata_timeout(), endpoint=endpoint,
        library_name="apollo-cli", library_version=__version__,
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__


def _is(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _hub_error(exc: BaseException, target: Target) -> ModelError:
    """The one-line error of ours for anything huggingface_hub or the network raised."""
    host = urlsplit(_endpoint_url()).netloc or _endpoint_url()
    rev = target.revision or "main"
    for cause in _causes(exc):
        if _is(cause, "LocalEntryNotFoundError"):
            continue  # "not cached and the Hub could not be asked": the reason is its cause
        if _is(cause, "GatedRepoError"):
            return ModelAccessError(
                f"{target.repo_id} is gated: accept its terms at {_endpoint_url()}/{target.repo_id} "
                "and log in (hf auth login) or set HF_TOKEN"
            )
        if _is(cause, "RevisionNotFoundError"):
            return ModelNotFoundError(f"revision '{rev}' does not exist in {target.repo_id}")
        if _is(cause, "EntryNotFoundError"):
            return ModelNotFoundError(f"file {target.filename} does not exist in {target.repo_id} at revision '{rev}'")
        if _is(cause, "RepositoryNotFoundError"):
            local = " (and there is no local file of that name)" if target.label and "/" in target.label else ""
            return ModelNotFoundError(
                f"Hub repository {target.repo_id} does not exist or is private{local}; "
                "check the name, or log in (hf auth login) if it is yours"
            )
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if _is(cause, "HfHubHTTPError") and status in (401, 403):
            return ModelAccessError(
                f"the Hub refused access to {target.repo_id} (HTTP {status}); log in (hf auth login) "
                "or set HF_TOKEN with a token that can read it"
            )
        if _is(cause, "HfHubHTTPError") and status is not None:
            return HubUnreachableError(
                f"the Hub at {host} answered HTTP {status} for {target.where}; try again later"
            )
        if _is(cause, "OfflineModeIsEnabled"):
            return ModelNotCachedError(
                f"model file {target.where} is not in the cache and huggingface_hub is in offline mode; "
                f"run '{target.download_command}' where there is a network"
            )
        if _is(cause, "FileMetadataError"):
            return HubUnreachableError(
                f"{host} does not answer like the Hugging Face Hub for {target.where}; "
                "check HF_ENDPOINT and your proxy or firewall"
            )
        if _is(cause, "ProxyError"):
            return HubUnreachableError(f"the proxy refused the connection to {host} ({_reason(cause)}); check your proxy settings")
        if _is(cause, "TimeoutException", "Timeout", "TimeoutError", "ReadTimeout", "ConnectTimeout"):
            return HubUnreachableError(
                f"the Hugging Face Hub at {host} did not answer within {_metadata_timeout():g} s "
                f"while fetching {target.where}; check your network (HF_HUB_ETAG_TIMEOUT sets the wait), "
                "or use --offline with a cached model"
            )
        if _is(cause, "ConnectError", "ConnectionError", "NewConnectionError", "ConnectionRefusedError", "gaierror"):
            return HubUnreachableError(
                f"cannot reach the Hugging Face Hub at {host} to fetch {target.where} ({_reason(cause)}); "
                "check your network, proxy or HF_ENDPOINT, or use --offline with a cached model"
            )
        if _is(cause, "RemoteProtocolError", "ReadError", "NetworkError", "ChunkedEncodingError", "ProtocolError"):
            return DownloadError(
                f"the download of {target.where} was interrupted ({_reason(cause)}); nothing was kept, "
                "run the command again"
            )
        if isinstance(cause, OSError) and "Consistency check failed" in str(cause):
            return DownloadError(
                f"the download of {target.where} came out the wrong size (the connection dropped?); "
                "nothing was kept, run the command again"
            )
    if _is(exc, "LocalEntryNotFoundError"):
        return HubUnreachableError(
            f"cannot reach the Hugging Face Hub at {host} to fetch {target.where} and it is not cached; "
            "check your network, proxy or HF_ENDPOINT"
        )
    if isinstance(exc, OSError):
        detail = exc.strerror or _reason(exc)
        return DownloadError(f"the download of {target.where} failed: {detail}")
    return ModelError(f"fetching {target.where} failed: {type(exc).__name__}: {_reason(exc)}")


def _tqdm_reporting_to(callback: DownloadProgress) -> type:
    """A tqdm class that draws nothing and forwards byte counts to ``callback``."""
    from huggingface_hub.utils import tqdm

    class _Bridge(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            self._total = int(kwargs.get("total") or 0)
            callback(self._done, self._total)

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            callback(self._done, self._total)
            return None

    return _Bridge


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
    cache = cache_dir().resolve()  # as huggingface_hub does: paths it returns are under it
    storage = _storage(cache, target.repo_id)
    if offline:
        path = _cached_path(target, cache)
        if path is None:
            raise ModelNotCachedError(
                f"model file {target.where} is not in the cache and offline mode is on; "
                f"run '{target.download_command}' where there is a network"
            )
        return _verify(target, path, storage, fresh=False, full=full_check, offline=True)

    from huggingface_hub import hf_hub_download

    from . import __version__

    if _cached_path(target, cache) is None:
        # Fail fast and precisely before huggingface_hub's retry rounds.
        try:
            _metadata(target)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one of ours
            raise _hub_error(exc, target) from None
    for attempt in (1, 2):
        before = _inventory(storage)
        try:
            path = Path(
                hf_hub_download(
                    target.repo_id,
                    target.filename,
                    revision=target.revision,
                    cache_dir=str(cache),
                    endpoint=_endpoint(),
                    etag_timeout=_metadata_timeout(),
                    library_name="apollo-cli",
                    library_version=__version__,
                    tqdm_class=_tqdm_reporting_to(progress) if progress else None,
                )
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes one of ours
            raise _hub_error(exc, target) from None
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

