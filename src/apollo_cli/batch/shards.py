"""Sharding: which of ``N`` machines restores a file (``--shard K/N``).

A file's shard depends only on its path relative to the input folder (see
:func:`shard_of`), so machines that each take their own shard split a library exactly,
without talking to each other.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import OptionError


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``, numbered from 1 (``--shard 1/4`` ... ``4/4``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise OptionError(
                f"invalid shard {self.index}/{self.count}: K must be between 1 and N "
                f"(shards are counted from 1: 1/{max(self.count, 1)} to {max(self.count, 1)}/{max(self.count, 1)})"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def __contains__(self, relative: object) -> bool:
        return shard_of(relative, self.count) == self.index  # type: ignore[arg-type]


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> :class:`Shard`, with 1 <= K <= N; a one-line :class:`OptionError` otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise OptionError(f"invalid --shard '{text}': use K/N, e.g. 1/4 (shard K of N, counted from 1)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise OptionError(f"invalid --shard '{text}': N must be at least 1")
    return Shard(index, count)


def output_key(relative: str | os.PathLike[str]) -> str:
    """What identifies a file's output: its relative path without extension, normalised.

    Case-folded and NFC-normalised, so names that a case-insensitive or normalising
    file system (macOS, Windows, SMB shares) would store as one file are treated as one.
    """
    posix = PurePosixPath(Path(relative).as_posix())
    stem = posix.with_suffix("") if posix.suffix else posix
    return unicodedata.normalize("NFC", stem.as_posix()).casefold()


def shard_of(relative: str | os.PathLike[str], count: int) -> int:
    """The shard (1..count) a file belongs to.

    A hash of :func:`output_key` of its path relative to the input folder: it depends on
    nothing else (not the listing order, not the other files, not the machine), so
    ``count`` machines each taking their own shard split a library exactly and without
    talking to each other, and adding files never moves the others. Files that would
    share an output share a shard, so a collision is always seen by one machine.
    """
    digest = hashlib.sha256(output_key(relative).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
