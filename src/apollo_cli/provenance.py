"""What a restored file says about how it was made: the value of its provenance tag.

Every output carries a tag (:data:`apollo_cli.tags.PROVENANCE_KEY`) whose value names
the apollo-cli version, the model (the name or file it was loaded from, the revision
asked for or the Hub commit it was downloaded at, the first 12 hex digits of the
checkpoint's SHA-256) and the settings that
change the output, for example::

    apollo-cli 0.1.0; model mp3 sha256:99d9af7f1ff2; precision=fp32 cutoff=16000 keep-lows=14500

so a library owner can tell restored files from originals and redo them the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Apollo
    from .options import RestoreOptions

#: Hex digits of the checkpoint's SHA-256 that the tag keeps: enough to tell files apart.
SHA256_DIGITS = 12


@dataclass
class ModelSource:
    """Where a loaded model came from (set by :func:`apollo_cli.load_model`)."""

    #: The name, Hub reference or file it was loaded by, as given.
    reference: str
    #: The revision asked for (``None``: the default branch).
    revision: str | None
    #: The checkpoint file.
    path: Path
    _sha256: str | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        """The checkpoint's SHA-256 (hex), computed once, when first asked for."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            with self.path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._sha256 = digest.hexdigest()
        return self._sha256

    @property
    def commit(self) -> str | None:
        """The Hub commit of a checkpoint in huggingface_hub's cache (``.../snapshots/<commit>/...``)."""
        parts = self.path.parts
        for i, part in enumerate(parts[:-1]):
            if part == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", parts[i + 1]):
                return parts[i + 1]
        return None

    def describe(self) -> str:
        """``model NAME[@REVISION] sha256:PREFIX``; a Hub file's revision is the commit it came from."""
        name = os.path.basename(self.reference) if Path(self.reference).exists() else self.reference
        commit = self.commit
        revision = self.revision or (commit[:SHA256_DIGITS] if commit else None)
        at = f"@{revision}" if revision and "@" not in name else ""
        return f"model {name}{at} sha256:{self.sha256[:SHA256_DIGITS]}"


def describe(model: Apollo | None, options: RestoreOptions | None) -> str:
    """The provenance tag's value for audio restored by ``model`` with ``options``."""
    from . import __version__

    parts = [f"apollo-cli {__version__}"]
    source: ModelSource | None = getattr(model, "source", None)
    if source is not None:
        parts.append(source.describe())
    if options is not None:
        parts.append(options.describe())
    return "; ".join(parts)


def settings(value: str) -> dict[str, str]:
    """The ``key=value`` settings of a provenance tag's value (``{}`` if it has none)."""
    found: dict[str, str] = {}
    for part in value.split("; ")[1:]:
        words = part.split()
        if words and all("=" in w for w in words):
            for word in words:
                key, _, setting = word.partition("=")
                found[key] = setting
    return found
