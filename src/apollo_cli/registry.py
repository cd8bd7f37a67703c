"""The Apollo checkpoints apollo-cli knows by name.

Data only: where each model lives on the Hugging Face Hub, what it is for, its
licence and the configuration its weights must have.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownModel:
    """A published Apollo checkpoint."""

    name: str
    repo_id: str
    filename: str
    description: str
    license: str
    feature_dim: int
    layers: int
    size_bytes: int | None = None
    source: str = ""


OFFICIAL = KnownModel(
    name="mp3",
    repo_id="JusperLee/Apollo",
    filename="pytorch_model.bin",
    description="official MP3 restoration model (Li & Luo, ICASSP 2025)",
    license="CC BY-SA 4.0",
    feature_dim=256,
    layers=6,
    size_bytes=66_541_845,
    source="the authors' Hub repository JusperLee/Apollo",
)

KNOWN_MODELS: dict[str, KnownModel] = {m.name: m for m in (OFFICIAL,)}

DEFAULT_MODEL = OFFICIAL.name


def known_model(name: str) -> KnownModel | None:
    """The known model called ``name`` (case-insensitive), or ``None``."""
    return KNOWN_MODELS.get(name.strip().lower())
