"""The two huggingface_hub calls that touch the network.

Before the first download of a file one metadata request with a short timeout
(``HF_HUB_ETAG_TIMEOUT``, default 5 s, no retries) tells a missing network, a
timeout, a 404 repository/revision/file and a gated repository apart: a refused
connection or DNS failure is reported at once and a silent server after the
timeout, where huggingface_hub alone retries for ~23 s (refused) or minutes
(silent: its retry round uses 60 s timeouts).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .references import Target
from .settings import endpoint, metadata_timeout

#: ``progress(done_bytes, total_bytes)`` while a file downloads.
DownloadProgress = Callable[[int, int], None]


def metadata(target: Target) -> Any:
    """One HEAD on the file's resolve URL (no retries, short timeout): its Hub metadata."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from .. import __version__

    url = hf_hub_url(target.repo_id, target.filename, revision=target.revision, endpoint=endpoint())
    return get_hf_file_metadata(
        url,
        timeout=metadata_timeout(),
        endpoint=endpoint(),
        library_name="apollo-cli",
        library_version=__version__,
    )


def download(target: Target, cache: Path, progress: DownloadProgress | None) -> Path:
    """huggingface_hub's download of ``target`` into ``cache``: the snapshot path."""
    from huggingface_hub import hf_hub_download

    from .. import __version__

    return Path(
        hf_hub_download(
            target.repo_id,
            target.filename,
            revision=target.revision,
            cache_dir=str(cache),
            endpoint=endpoint(),
            etag_timeout=metadata_timeout(),
            library_name="apollo-cli",
            library_version=__version__,
            tqdm_class=_tqdm_reporting_to(progress) if progress else None,
        )
    )


def _tqdm_reporting_to(callback: DownloadProgress) -> type:
    """A tqdm class that draws nothing and forwards byte counts to ``callback``."""
    from huggingface_hub.utils import tqdm

    class _Bridge(tqdm):
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
