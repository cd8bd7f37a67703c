"""How audio is restored: one frozen value that every layer passes on unchanged.

``restore``, ``restore_file``, the streaming core and ``apollo batch`` all take a
:class:`RestoreOptions`, so a new setting is added here once rather than threaded
through four signatures. The module is light (no torch at import), so the CLI can
read its defaults for ``--help`` without loading torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import OptionError

if TYPE_CHECKING:
    import torch

#: Seconds of audio per chunk. Every chunk needs 0.59 s of context at each edge (the
#: receptive field; frames are dropped block by block, so it costs about half its
#: length). On a CPU, where each channel's chunks run one after another, a chunk takes
#: the context it shares with the one before from it (:mod:`apollo_cli.carry`): no
#: work is repeated. Where chunks run side by side (a GPU's batches, more CPU streams
#: than channels) each computes its own: about 5 % more work than whole-file inference
#: with 10 s chunks, about 3 % with 20 s. Longer chunks take more memory, 80-150 MB at
#: the peak with two CPU streams from 10 to 20 s (measured in ``docs/performance.md``).
#: The output does not depend on it.
DEFAULT_CHUNK_SECONDS = 20.0
#: ``None``: 1 on a CPU (larger batches only add memory there), on a GPU as many
#: chunks as fit in free memory (see :func:`apollo_cli.inference.auto_batch_size`).
DEFAULT_BATCH_SIZE: int | None = None
#: ``--precision`` values: ``fp32`` is exact; the others run the matrix products in
#: bfloat16 / float16 (see :func:`apollo_cli.inference.precision_context`).
PRECISIONS = ("fp32", "bf16", "fp16")
#: ``--stereo`` values: restore left and right, or mid ``(L+R)/2`` and side ``(L-R)/2``.
STEREO_MODES = ("lr", "mid-side")

#: The rate the model works at (Apollo's checkpoints are all 44.1 kHz); the
#: restoration controls' frequencies are checked against its Nyquist frequency.
MODEL_SAMPLE_RATE = 44100
#: ``--cutoff``'s low-pass: flat up to the cutoff, stopped this far above it.
CUTOFF_TRANSITION_HZ = 500.0
#: ``--keep-lows``' crossover: its two bands hand over within this width, centred on it.
CROSSOVER_WIDTH_HZ = 1000.0
#: ``--keep-lows auto`` puts the crossover this far below the detected bandwidth, so that
#: the whole hand-over lies in the band the codec kept.
KEEP_LOWS_MARGIN_HZ = 1500.0
#: The lowest cutoff or crossover accepted: below it the model would have little to work on.
MIN_CONTROL_HZ = 1000.0

#: A control's frequency: Hz, ``"auto"`` (from the file's measured bandwidth) or ``None`` (off).
Frequency = float | Literal["auto"] | None


@dataclass(frozen=True)
class RestoreOptions:
    """Settings of one restoration; the defaults give the reference implementation's output.

    Change one with :func:`dataclasses.replace`. Values are checked when the object is
    made (:class:`~apollo_cli.errors.OptionError`); whether a device can run them is
    checked by :meth:`check`.
    """

    #: The longest chunk in seconds; memory grows with it, the output does not change.
    #: Chunks are cut to equal lengths (see :func:`apollo_cli.inference.balanced_core`).
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    #: Chunks per model call; ``None`` picks (1 on a CPU, what fits on a GPU).
    batch_size: int | None = DEFAULT_BATCH_SIZE
    #: ``fp32`` (exact), ``bf16`` (CPUs with bfloat16 support, GPUs) or ``fp16`` (GPUs).
    precision: str = "fp32"
    #: Run the model's blocks through ``torch.compile`` (see :mod:`apollo_cli.compiled`).
    compile: bool = False
    #: Low-pass the input here before the model (Hz, ``"auto"``: the measured bandwidth; ``None``: off).
    cutoff: Frequency = None
    #: Keep the input below this crossover, the restoration above (Hz, ``"auto"``, ``None``: off).
    keep_lows: Frequency = None
    #: ``lr`` (each channel as it is) or ``mid-side`` (stereo as (L+R)/2 and (L-R)/2).
    stereo: str = "lr"
    #: CPU workers that each restore a channel of a chunk on one thread (``None``: one per
    #: thread; 1: every window on all threads, as before); the output does not change.
    #: See :mod:`apollo_cli.streams`.
    streams: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.chunk_seconds) or not self.chunk_seconds > 0:
            raise OptionError(f"chunk length must be a positive number of seconds, got {self.chunk_seconds}")
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"batch size must be at least 1, got {self.batch_size}")
        if self.streams is not None and (isinstance(self.streams, bool) or self.streams < 1):
            raise OptionError(f"streams must be at least 1 (or None: one per CPU thread), got {self.streams}")
        if self.precision not in PRECISIONS:
            raise OptionError(f"unknown precision '{self.precision}'; use fp32, bf16 or fp16")
        if self.stereo not in STEREO_MODES:
            raise OptionError(f"unknown stereo mode '{self.stereo}'; use lr or mid-side")
        nyquist = MODEL_SAMPLE_RATE / 2
        _check_frequency("--cutoff", self.cutoff, nyquist - CUTOFF_TRANSITION_HZ)
        _check_frequency("--keep-lows", self.keep_lows, nyquist - CROSSOVER_WIDTH_HZ / 2)

    @property
    def controls(self) -> bool:
        """Whether any restoration control is on (the default output is the reference's)."""
        return self.cutoff is not None or self.keep_lows is not None or self.stereo != "lr"

    def describe(self) -> str:
        """The settings that change the output, as ``key=value`` words (for provenance tags)."""
        words = [f"precision={self.precision}"]
        for key, value in (("cutoff", self.cutoff), ("keep-lows", self.keep_lows)):
            if value is not None:
                words.append(f"{key}={value if isinstance(value, str) else format(float(value), 'g')}")
        if self.stereo != "lr":
            words.append(f"stereo={self.stereo}")
        return " ".join(words)

    def check(self, device: torch.device) -> None:
        """Raise :class:`~apollo_cli.errors.OptionError` (or ``MissingDependencyError``) now
        if ``device`` cannot run these options, before any audio is decoded.

        The one pre-flight for precision and compilation: ``restore``, ``restore_file``,
        ``apollo restore`` and ``apollo batch`` (for each of its devices) all call it.
        """
        import torch

        if device.type == "cpu" and self.precision == "fp16":
            raise OptionError("fp16 is for GPUs; on the CPU use --precision bf16")
        if (
            device.type == "cpu"
            and self.precision == "bf16"
            and not torch.ops.mkldnn._is_mkldnn_bf16_supported()
        ):
            raise OptionError("this CPU has no bfloat16 support (AVX-512 BF16 or AMX); use --precision fp32")
        if device.type == "cuda" and self.precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise OptionError(f"{device} has no bfloat16 support; use --precision fp16")
        if device.type != "cpu" and self.streams is not None and self.streams > 1:
            raise OptionError(
                f"parallel streams are for CPUs, not {device.type}; use streams=1 or leave it unset"
            )
        if self.compile:
            from . import compiled

            compiled.check_available(device)


def _check_frequency(option: str, value: object, highest: float) -> None:
    if value is None or value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{option} must be auto, off or a frequency in Hz, not {value!r}")
    if not math.isfinite(value) or not MIN_CONTROL_HZ <= value <= highest:
        raise OptionError(
            f"{option} {value:g} Hz is outside {MIN_CONTROL_HZ:g}-{highest:g} Hz, what the model's "
            f"{MODEL_SAMPLE_RATE / 1000:g} kHz audio allows; use a frequency in that range, auto or off"
        )


_HZ = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(k?)(?:hz)?\s*$", re.IGNORECASE)


def parse_frequency(option: str, text: str) -> Frequency:
    """``auto``, ``off`` or a frequency (``16000``, ``16k``, ``16kHz``, ``15.5 kHz``) from the command line.

    Raises :class:`~apollo_cli.errors.OptionError` naming ``option`` for anything else; the range
    is checked by :class:`RestoreOptions`.
    """
    word = text.strip().lower()
    if word in ("auto", "off"):
        return None if word == "off" else "auto"
    match = _HZ.match(word)
    if not match:
        raise OptionError(f"{option} must be auto, off or a frequency such as 16000 or 16k, not '{text}'")
    return float(match.group(1)) * (1000 if match.group(2) else 1)
