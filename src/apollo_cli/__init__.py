"""apollo-cli: restore music damaged by lossy codecs with the Apollo model.

The public surface is small::

    import apollo_cli
    model = apollo_cli.load_model()                      # or a name / checkpoint path
    restored = apollo_cli.restore(model, audio, sample_rate)
    fast = apollo_cli.restore(model, audio, sample_rate, apollo_cli.RestoreOptions(precision="bf16"))
    apollo_cli.restore_file(model, "song.mp3", "song.flac")
"""

from __future__ import annotations

__version__ = "0.1.0"

from .openmp import prefer_passive_waiting

# Before torch is imported (by .api): see apollo_cli.openmp.
prefer_passive_waiting()

from .api import RestoreResult, load_model, restore, restore_file  # noqa: E402
from .errors import (  # noqa: E402
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
from .model import Apollo, ApolloConfig  # noqa: E402
from .options import RestoreOptions  # noqa: E402

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
    "RestoreOptions",
    "RestoreResult",
    "UnsafeCheckpointError",
    "__version__",
    "load_model",
    "restore",
    "restore_file",
]
