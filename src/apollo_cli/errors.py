"""The exceptions apollo-cli raises.

Every error a user can cause (a bad file, an unknown model, a missing device) is an
:class:`ApolloError` whose message is one complete line: what is wrong and what to
do. The CLI prints that line and exits with status 1; library users can catch the
base class or a specific subclass.
"""

from __future__ import annotations


class ApolloError(Exception):
    """Base class of every error apollo-cli reports to its user."""


class InputError(ApolloError):
    """The input audio is missing, unreadable, empty or not usable."""


class OutputError(ApolloError):
    """The output cannot be written where or how it was asked for."""


class MissingDependencyError(ApolloError):
    """An external program the job needs (ffmpeg) is not installed."""


class DeviceError(ApolloError):
    """The requested compute device does not exist or cannot be used."""


class ModelError(ApolloError):
    """A model name, reference or download cannot be resolved to a checkpoint."""


class CheckpointError(ModelError):
    """A checkpoint file is corrupt, foreign, incomplete or unsafe to load."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint tries to run code when loaded; it was refused, nothing ran."""


class OptionError(ApolloError):
    """An option's value is out of range or inconsistent with another."""
