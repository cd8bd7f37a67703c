"""How audio is restored: one frozen value that every layer passes on unchanged.

``restore``, ``restore_file``, the streaming core and ``apollo batch`` all take a
:class:`RestoreOptions`, so a new setting is added here once rather than threaded
through four signatures. The module is light (no torch at import), so the CLI can
read its defaults for ``--help`` without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import OptionError

if TYPE_CHECKING:
    import torch

DEFAULT_CHUNK_SECONDS = 10.0
#: ``None``: 1 on a CPU (larger batches only add memory there), on a GPU as many
#: chunks as fit in free memory (see :func:`apollo_cli.inference.auto_batch_size`).
DEFAULT_BATCH_SIZE: int | None = None
#: ``--precision`` values: ``fp32`` is exact; the others run the matrix products in
#: bfloat16 / float16 (see :func:`apollo_cli.inference.precision_context`).
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class RestoreOptions:
    """Settings of one restoration; the defaults give the reference implementation's output.

    Change one with :func:`dataclasses.replace`. Values are checked when the object is
    made (:class:`~apollo_cli.errors.OptionError`); whether a device can run them is
    checked by :meth:`check`.
    """

    #: Seconds of audio per chunk; memory grows with it, the output does not change.
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    #: Chunks per model call; ``None`` picks (1 on a CPU, what fits on a GPU).
    batch_size: int | None = DEFAULT_BATCH_SIZE
    #: ``fp32`` (exact), ``bf16`` (CPUs with bfloat16 support, GPUs) or ``fp16`` (GPUs).
    precision: str = "fp32"
    #: Run the model's blocks through ``torch.compile`` (see :mod:`apollo_cli.compiled`).
    compile: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.chunk_seconds) or not self.chunk_seconds > 0:
            raise OptionError(f"chunk length must be a positive number of seconds, got {self.chunk_seconds}")
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"batch size must be at least 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise OptionError(f"unknown precision '{self.precision}'; use fp32, bf16 or fp16")

    def check(self, device: torch.device) -> None:
        """Raise :class:`~apollo_cli.errors.OptionError` (or ``MissingDependencyError``) now
        if ``device`` cannot run these options, before any audio is decoded.

        The one pre-flight for precision and compilation: ``restore``, ``restore_file``,
        ``apollo restore`` and ``apollo batch`` (for each of its devices) all call it.
        """
        import torch

        if device.type == "cpu" and self.precision == "fp16":
            raise OptionError("fp16 is for GPUs; on the CPU use --precision bf16")
        if device.type == "cpu" and self.precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise OptionError("this CPU has no bfloat16 support (AVX-512 BF16 or AMX); use --precision fp32")
        if device.type == "cuda" and self.precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise OptionError(f"{device} has no bfloat16 support; use --precision fp16")
        if self.compile:
            from . import compiled

            compiled.check_available(device)
