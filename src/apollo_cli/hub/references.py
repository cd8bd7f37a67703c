"""What the user typed, turned into a local file or a file on the Hub.

A registry name (``mp3``, optionally ``mp3@revision``), a Hub reference
``owner/repo/path/file.ckpt[@revision]`` (also ``hf://...`` and
``https://huggingface.co/.../resolve|blob/...`` URLs) or a path.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import ModelError
from ..registry import KNOWN_MODELS, KnownModel, known_model, known_model_at
from .settings import endpoint_url

_CHECKPOINT_SUFFIXES = {".bin", ".ckpt", ".pt", ".pth", ".safetensors", ".pkl"}
_HUB_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
        endpoint = urlsplit(endpoint_url())
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
                entry.repo_id,
                entry.filename,
                _one_revision(rev.strip() if at else None, revision, text),
                label=text,
                known=entry,
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
            repo_id,
            filename,
            _one_revision(ref_revision, revision, text),
            label=text,
            known=known_model_at(repo_id, filename),
        )
    parts = text.split("/")
    if (
        len(parts) == 2
        and all(_NAME_PART.match(p) for p in parts)
        and path.suffix.lower() not in _CHECKPOINT_SUFFIXES
    ):
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
