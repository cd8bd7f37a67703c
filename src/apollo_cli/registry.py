"""The Apollo checkpoints apollo-cli knows by name.

Data only: where each model lives on the Hugging Face Hub, what it is for, its
licence and, where it is published, the size and SHA-256 of the file. A comment
above each entry says where that information comes from (the README repeats it,
with the configuration each model's weights have; the model reads its own from
the checkpoint's shapes). Resolving names, Hub references and paths is done in
:mod:`apollo_cli.hub`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownModel:
    """A published Apollo checkpoint."""

    #: The name used with ``--model`` and ``apollo download-model``.
    name: str
    repo_id: str
    #: Path of the file inside the Hub repository.
    filename: str
    #: What it restores, in a few words.
    description: str
    license: str
    size_bytes: int | None = None
    #: SHA-256 of the file at the Hub's current revision, where it is published.
    #: Informative: downloads are verified against the Hub's own record of the file
    #: (its LFS object id), and this value is only the fallback when that record
    #: cannot be read from the cache.
    sha256: str | None = None
    #: Other names accepted for it.
    aliases: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        """``owner/repo/path/file``: the Hub reference of the file."""
        return f"{self.repo_id}/{self.filename}"


# Source: the authors' Hub repository JusperLee/Apollo (linked from
# github.com/JusperLee/Apollo); size and SHA-256 as recorded by
# SUC-DriverOld/MSST-WebUI's models_info.json for its mirror
# Apollo_LQ_MP3_restoration.ckpt and pinned for JusperLee/Apollo by other projects.
# Weights: feature_dim 256, 6 layers.
OFFICIAL = KnownModel(
    name="mp3",
    repo_id="JusperLee/Apollo",
    filename="pytorch_model.bin",
    description="MP3 and similar lossy music (the paper's official model)",
    license="CC BY-SA 4.0",
    size_bytes=66_541_845,
    sha256="99d9af7f1ff20e63c393035513a655392818d66b4d7fc23d658175c1f15e8d76",
    aliases=("official", "default"),
)

# Source: SUC-DriverOld/MSST-WebUI: models_info.json and data_backup/msst_model_map.json
# give the Hub path, size and SHA-256,
# configs_backup/single_stem_models/config_apollo_uni.yaml the configuration; first
# released by deton24 on GitHub (Lew-s-vocal-enhancer-for-Apollo-by-JusperLee, release
# 'uni'). Weights: feature_dim 384, 6 layers.
UNIVERSAL = KnownModel(
    name="universal",
    repo_id="Sucial/MSST-WebUI",
    filename="All_Models/single_stem_models/apollo_model_uni.ckpt",
    description="any lossy music (MP3, AAC, Opus, ...) at any bitrate (community model by Lew)",
    license="not stated (a fine-tune of the CC BY-SA 4.0 weights)",
    size_bytes=146_867_952,
    sha256="11433256eca90143d32f1108d156ac756fd0201fbc69e5f736def4062fb52186",
    aliases=("uni",),
)

# Source: the Hub repository jarredou/lew_apollo_vocal_enhancer, as used by
# jarredou/Apollo-Colab-Inference and the community scripts built on it (which give
# feature_dim 256); size and SHA-256 not published. Weights: feature_dim 256.
VOCALS = KnownModel(
    name="vocals",
    repo_id="jarredou/lew_apollo_vocal_enhancer",
    filename="apollo_model.ckpt",
    description="separated vocal stems (Lew's vocal enhancer v1)",
    license="not stated",
)

# Source: as for "vocals". Weights: feature_dim 256.
VOCALS_V2 = KnownModel(
    name="vocals-v2",
    repo_id="jarredou/lew_apollo_vocal_enhancer",
    filename="apollo_model_v2.ckpt",
    description="separated vocal stems (Lew's vocal enhancer v2, beta)",
    license="not stated",
)

KNOWN_MODELS: dict[str, KnownModel] = {m.name: m for m in (OFFICIAL, UNIVERSAL, VOCALS, VOCALS_V2)}

DEFAULT_MODEL = OFFICIAL.name

_BY_ALIAS: dict[str, KnownModel] = {
    alias: model for model in KNOWN_MODELS.values() for alias in (model.name, *model.aliases)
}


def known_model(name: str) -> KnownModel | None:
    """The known model called ``name`` (case-insensitive, aliases too), or ``None``."""
    return _BY_ALIAS.get(name.strip().lower())


def known_model_at(repo_id: str, filename: str) -> KnownModel | None:
    """The known model stored in ``repo_id`` as ``filename``, or ``None``."""
    for model in KNOWN_MODELS.values():
        if model.repo_id.lower() == repo_id.lower() and model.filename == filename:
            return model
    return None
