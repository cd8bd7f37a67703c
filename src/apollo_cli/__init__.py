"""apollo-cli: restore music damaged by lossy codecs with the Apollo model.

The public surface is small::

    import apollo_cli
    model = apollo_cli.load_model()                      # or a name / checkpoint path
    restored = apollo_cli.restore(model, audio, sample_rate)
    apollo_cli.restore_file(model, "song.mp3", "song.flac")
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import RestoreResult, load_model, restore, restore_file
from .errors import (
    ApolloError,
    CheckpointError,
    DeviceError,
    InputError,
    MissingDependencyError,
    ModelError,
    OptionError,
    OutputError,
    UnsafeCheckpointError,
)
from .model import Apollo, ApolloConfig

__all__ = [
    "Apollo",
    "ApolloConfig",
    "ApolloError",
    "CheckpointError",
    "DeviceError",
    "InputError",
    "MissingDependencyError",
    "ModelError",
    "OptionError",
    "OutputError",
    "RestoreResult",
    "UnsafeCheckpointError",
    "__version__",
    "load_model",
    "restore",
    "restore_file",
]
