"""Fetching checkpoints from the Hugging Face Hub into its standard cache, verified.

Everything goes through ``huggingface_hub``: its cache layout, ``revision``,
``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and tokens. On top
of it this package adds what a package manager would, one module each:

* :mod:`.references` -- **names, references and paths**: :func:`locate` turns what
  the user typed into a local file or a :class:`Target` on the Hub: a registry name
  (``mp3``, optionally ``mp3@revision``), a Hub reference
  ``owner/repo/path/file.ckpt[@revision]`` (also ``hf://...`` and
  ``https://huggingface.co/.../resolve|blob/...`` URLs) or a path.
* :mod:`.cache` -- **what the cache holds** and the verification records
  (size, mtime, inode, sha256) that let a later load check a file with one ``stat``.
* :mod:`.fetch` -- **integrity**: :func:`fetch` downloads when needed, hashes what
  huggingface_hub received and compares it with the Hub's record (deleting a file
  that does not match); **offline**, the cache is read directly and nothing touches
  the network, not even huggingface_hub's user-agent lookup.
* :mod:`.remote` -- the huggingface_hub calls that touch the network, with a short
  metadata timeout so a missing network fails fast.
* :mod:`.errors` -- **clear failures**: one ordered table maps huggingface_hub's and
  the network's exceptions to :class:`~apollo_cli.errors.ModelError` subclasses with
  a one-line message naming the file and what to do.
* :mod:`.settings` -- the environment, read when called, not at import.
"""

from __future__ import annotations

from ..errors import ModelError
from .cache import CacheStatus, cache_status
from .errors import (
    ChecksumError,
    DownloadError,
    HubUnreachableError,
    ModelAccessError,
    ModelNotCachedError,
    ModelNotFoundError,
)
from .fetch import Fetched, fetch, resolve
from .references import Target, locate, parse_reference
from .remote import DownloadProgress
from .settings import DEFAULT_METADATA_TIMEOUT, cache_dir, offline_mode

__all__ = [
    "DEFAULT_METADATA_TIMEOUT",
    "CacheStatus",
    "ChecksumError",
    "DownloadError",
    "DownloadProgress",
    "Fetched",
    "HubUnreachableError",
    "ModelAccessError",
    "ModelError",
    "ModelNotCachedError",
    "ModelNotFoundError",
    "Target",
    "cache_dir",
    "cache_status",
    "fetch",
    "locate",
    "offline_mode",
    "parse_reference",
    "resolve",
]
