"""The Hub's failures, as apollo-cli's one-line errors.

Whatever huggingface_hub or the network raises is mapped by type through one
ordered table, :func:`_rules` (most specific class first, as huggingface_hub's own
CLI does in ``huggingface_hub.cli._errors``): each rule names the exception
classes it recognises, the :class:`~apollo_cli.errors.ModelError` subclass it
becomes and a one-line message saying what is wrong and what to do.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import ModelError
from .references import Target
from .settings import endpoint_host, endpoint_url, metadata_timeout


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


Message = Callable[[BaseException, Target], str]


@dataclass(frozen=True)
class _Rule:
    """Exceptions of these types (and passing ``when``) become ``error(message(...))``."""

    types: tuple[type[BaseException], ...]
    #: ``None``: the exception only wraps the reason, which its cause gives.
    error: type[ModelError] | None
    message: Message
    when: Callable[[BaseException], bool] | None = None


def _rules() -> list[_Rule]:
    """The ordered table: the first rule an exception matches decides.

    A subclass comes before its base class (GatedRepoError before
    RepositoryNotFoundError, OfflineModeIsEnabled before ConnectionError, the
    HTTP-status errors before OSError, ConnectError before NetworkError).
    """
    from huggingface_hub.errors import (
        EntryNotFoundError,
        FileMetadataError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def transport(name: str) -> tuple[type[BaseException], ...]:
        # huggingface_hub 1.x talks HTTP through httpx, 2.x through httpx2 (same classes);
        # an exception's class is always in a module already imported, so look only there.
        return tuple(getattr(sys.modules[m], name) for m in ("httpx2", "httpx") if m in sys.modules)

    def status(exc: BaseException) -> int | None:
        return getattr(getattr(exc, "response", None), "status_code", None)

    no_connection = (*transport("ConnectError"), ConnectionError, socket.gaierror)
    return [
        # "Not cached and the Hub could not be asked": the reason is its cause.
        _Rule((LocalEntryNotFoundError,), None, lambda e, t: ""),
        _Rule(
            (GatedRepoError,),
            ModelAccessError,
            lambda e, t: (
                f"{t.repo_id} is gated: accept its terms at {endpoint_url()}/{t.repo_id} "
                "and log in (hf auth login) or set HF_TOKEN"
            ),
        ),
        _Rule(
            (RevisionNotFoundError,),
            ModelNotFoundError,
            lambda e, t: f"revision '{_revision(t)}' does not exist in {t.repo_id}",
        ),
        _Rule(
            (EntryNotFoundError,),
            ModelNotFoundError,
            lambda e, t: f"file {t.filename} does not exist in {t.repo_id} at revision '{_revision(t)}'",
        ),
        _Rule(
            (RepositoryNotFoundError,),
            ModelNotFoundError,
            lambda e, t: (
                f"Hub repository {t.repo_id} does not exist or is private"
                + (" (and there is no local file of that name)" if t.label and "/" in t.label else "")
                + "; check the name, or log in (hf auth login) if it is yours"
            ),
        ),
        _Rule(
            (HfHubHTTPError,),
            ModelAccessError,
            lambda e, t: (
                f"the Hub refused access to {t.repo_id} (HTTP {status(e)}); log in (hf auth login) "
                "or set HF_TOKEN with a token that can read it"
            ),
            when=lambda e: status(e) in (401, 403),
        ),
        _Rule(
            (HfHubHTTPError,),
            HubUnreachableError,
            lambda e, t: (
                f"the Hub at {endpoint_host()} answered HTTP {status(e)} for {t.where}; try again later"
            ),
            when=lambda e: status(e) is not None,
        ),
        _Rule(
            (OfflineModeIsEnabled,),
            ModelNotCachedError,
            lambda e, t: (
                f"model file {t.where} is not in the cache and huggingface_hub is in offline mode; "
                f"run '{t.download_command}' where there is a network"
            ),
        ),
        _Rule(
            (FileMetadataError,),
            HubUnreachableError,
            lambda e, t: (
                f"{endpoint_host()} does not answer like the Hugging Face Hub for {t.where}; "
                "check HF_ENDPOINT and your proxy or firewall"
            ),
        ),
        _Rule(
            transport("ProxyError"),
            HubUnreachableError,
            lambda e, t: (
                f"the proxy refused the connection to {endpoint_host()} ({_reason(e)}); check your proxy settings"
            ),
        ),
        _Rule(
            (*transport("TimeoutException"), TimeoutError),
            HubUnreachableError,
            lambda e, t: (
                f"the Hugging Face Hub at {endpoint_host()} did not answer within {metadata_timeout():g} s "
                f"while fetching {t.where}; check your network (HF_HUB_ETAG_TIMEOUT sets the wait), "
                "or use --offline with a cached model"
            ),
        ),
        _Rule(
            no_connection,
            HubUnreachableError,
            lambda e, t: (
                f"cannot reach the Hugging Face Hub at {endpoint_host()} to fetch {t.where} ({_reason(e)}); "
                "check your network, proxy or HF_ENDPOINT, or use --offline with a cached model"
            ),
        ),
        _Rule(
            (*transport("ProtocolError"), *transport("NetworkError")),
            DownloadError,
            lambda e, t: (
                f"the download of {t.where} was interrupted ({_reason(e)}); nothing was kept, "
                "run the command again"
            ),
        ),
        # huggingface_hub's size check after a transfer (a plain OSError).
        _Rule(
            (OSError,),
            DownloadError,
            lambda e, t: (
                f"the download of {t.where} came out the wrong size (the connection dropped?); "
                "nothing was kept, run the command again"
            ),
            when=lambda e: "Consistency check failed" in str(e),
        ),
    ]


def hub_error(exc: BaseException, target: Target) -> ModelError:
    """The one-line error of ours for anything huggingface_hub or the network raised.

    The exception and then its causes are matched against the table in turn: a
    library wraps a network failure in its own exception, and the innermost
    recognisable one says most precisely what happened.
    """
    rules = _rules()
    for cause in _causes(exc):
        rule = next(
            (r for r in rules if isinstance(cause, r.types) and (r.when is None or r.when(cause))), None
        )
        if rule is not None and rule.error is not None:
            return rule.error(rule.message(cause, target))
    return _last_resort(exc, target)


def _last_resort(exc: BaseException, target: Target) -> ModelError:
    """The error for an exception nothing in the table (nor any of its causes) matched."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(exc, LocalEntryNotFoundError):
        return HubUnreachableError(
            f"cannot reach the Hugging Face Hub at {endpoint_host()} to fetch {target.where} "
            "and it is not cached; "
            "check your network, proxy or HF_ENDPOINT"
        )
    if isinstance(exc, OSError):
        detail = exc.strerror or _reason(exc)
        return DownloadError(f"the download of {target.where} failed: {detail}")
    return ModelError(f"fetching {target.where} failed: {type(exc).__name__}: {_reason(exc)}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it, and so on (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__


def _revision(target: Target) -> str:
    return target.revision or "main"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
