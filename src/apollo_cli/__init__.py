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

import typing as _typing
from importlib import import_module as _import_module

from .openmp import prefer_passive_waiting

# Before torch is imported (by .api, on first use): see apollo_cli.openmp.
prefer_passive_waiting()

if _typing.TYPE_CHECKING:
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
    from .options import RestoreOptions

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

#: Where each public name lives. They are imported on first use (PEP 562), not with the
#: package: ``api`` and ``model`` import torch, which takes seconds, and ``apollo --help``
#: or ``apollo models`` need none of it.
_LAZY = {
    "RestoreResult": "api",
    "load_model": "api",
    "restore": "api",
    "restore_file": "api",
    "ApolloError": "errors",
    "CheckpointError": "errors",
    "DeviceError": "errors",
    "InputError": "errors",
    "MissingDependencyError": "errors",
    "ModelError": "errors",
    "OptionError": "errors",
    "OutputError": "errors",
    "UnsafeCheckpointError": "errors",
    "Apollo": "model",
    "ApolloConfig": "model",
    "RestoreOptions": "options",
}


if not _typing.TYPE_CHECKING:  # type checkers see the imports above, and so catch a misspelt name

    def __getattr__(name: str) -> _typing.Any:
        """A public name (imported from its module now), or a submodule (``apollo_cli.api``)."""
        if name in _LAZY:
            value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
            globals()[name] = value  # found directly from now on
            return value
        if not name.startswith("_"):
            # Submodules stay reachable as attributes, as when the package imported them all.
            try:
                return _import_module(f".{name}", __name__)
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, imported yet or not, and the submodules imported so far; not the helpers above."""
    public = {name for name in globals() if name.startswith("__") or not name.startswith("_")}
    return sorted(set(__all__) | public)
