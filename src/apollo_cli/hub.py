"""Fetching checkpoints from the Hugging Face Hub into its standard cache.

Everything goes through ``huggingface_hub``: its cache layout, ``revision``,
``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE``. Its typed
errors are mapped to ours so the CLI can print one line for each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from .errors import ModelError

#: ``progress(done_bytes, total_bytes)`` while a file downloads.
DownloadProgress = Callable[[int, int], None]

_TRUE = {"1", "true", "yes", "on", "y"}


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


def download(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    offline: bool | None = None,
    progress: DownloadProgress | None = None,
) -> Path:
    """Return the local path of ``filename`` in ``repo_id``, downloading it if needed.

    With ``offline`` (default: ``HF_HUB_OFFLINE``) only the cache is consulted.
    Raises :class:`ModelError` with a one-line reason for every failure.
    """
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    if offline is None:
        offline = offline_mode()
    where = f"{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            local_files_only=offline,
            endpoint=_endpoint(),
            tqdm_class=_tqdm_reporting_to(progress) if progress else None,
        )
    except hf_errors.LocalEntryNotFoundError:
        if offline:
            raise ModelError(
                f"model file {where} is not in the cache and offline mode is on; "
                "run 'apollo download-model' where there is a network"
            ) from None
        raise ModelError(
            f"cannot reach the Hugging Face Hub to download {where} and it is not cached; "
            "check your network, or run 'apollo download-model' where there is one"
        ) from None
    except hf_errors.GatedRepoError:
        raise ModelError(
            f"{repo_id} is gated: accept its terms on the Hub and log in (hf auth login)"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise ModelError(f"Hub repository {repo_id} does not exist (or is private)") from None
    except hf_errors.RevisionNotFoundError:
        raise ModelError(f"revision '{revision}' does not exist in {repo_id}") from None
    except hf_errors.EntryNotFoundError:
        raise ModelError(f"file {filename} does not exist in {repo_id}") from None
    except hf_errors.HfHubHTTPError as exc:
        raise ModelError(f"the Hub refused the download of {where}: {exc}".splitlines()[0]) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"download of {where} failed: {exc}".splitlines()[0]) from None
    return Path(path)
