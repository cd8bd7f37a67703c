"""The environment huggingface_hub is driven by, read when called.

huggingface_hub reads ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and the cache variables
once, at import; these functions read them as they are now, so a notebook or a
test can switch them after the import.
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on", "y"}

#: Seconds to wait for the Hub's answer to a metadata request (``HF_HUB_ETAG_TIMEOUT``
#: overrides it). huggingface_hub's own default is 10 s plus a retry round.
DEFAULT_METADATA_TIMEOUT = 5.0


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks us not to touch the network.

    Read at call time rather than from ``huggingface_hub.constants`` (which reads
    it once at import) so a notebook or test can switch it.
    """
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def endpoint() -> str | None:
    """``HF_ENDPOINT`` as it is now (``None``: huggingface_hub's default)."""
    value = os.environ.get("HF_ENDPOINT", "").strip()
    return value.rstrip("/") or None


def endpoint_url() -> str:
    """The Hub's base URL in use, for parsing URLs and for messages."""
    from huggingface_hub import constants

    return endpoint() or constants.ENDPOINT.rstrip("/")


def endpoint_host() -> str:
    """The Hub's host (and port), for messages."""
    from urllib.parse import urlsplit

    url = endpoint_url()
    return urlsplit(url).netloc or url


def metadata_timeout() -> float:
    """Seconds to wait for the Hub's answer to a metadata request."""
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


def storage_dir(cache: Path, repo_id: str) -> Path:
    """The folder huggingface_hub keeps a model repository's files in."""
    return cache / ("models--" + repo_id.replace("/", "--"))
