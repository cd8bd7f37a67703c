"""The options several commands share, as ``Annotated`` types: one definition each.

``apollo restore`` and ``apollo batch`` take the same ``--model``, ``--chunk-seconds``,
``--precision``, ``--revision``... with the same help; a command that wants one names
it here rather than importing it from another command. Light by design: typer and the
defaults' modules only, so ``--help`` needs no torch.
"""

from __future__ import annotations

import math
from typing import Annotated

import typer

from ..errors import OptionError
from ..options import DEFAULT_CHUNK_SECONDS, RestoreOptions, parse_frequency
from .console import print_error

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Known model name (see apollo models), Hub file owner/repo/path/file (add @revision to pin one), or checkpoint file.",
        show_default=True,
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps (auto: CUDA, then MPS, then CPU)."),
]
#: The shortest ``--chunk-seconds`` accepted.
MIN_CHUNK_SECONDS = 0.01


def _check_chunk_seconds(value: float) -> float:
    """Refuse a chunk length that is not a finite number of at least 0.01 s, in one ``error:`` line.

    A callback rather than typer's ``min=``: that lets ``inf`` through (an internal error
    later) and words NaN's refusal as a comparison. It runs while the command line is
    parsed, before anything is loaded, so it reports and exits itself, like the other
    option errors (exit status 1, no usage text).
    """
    if not (math.isfinite(value) and value >= MIN_CHUNK_SECONDS):
        print_error(
            OptionError(
                f"--chunk-seconds must be a number of seconds, at least {MIN_CHUNK_SECONDS:g}, not {value:g}; "
                f"the default is {DEFAULT_CHUNK_SECONDS:g}"
            )
        )
        raise typer.Exit(1)
    return value


ChunkOpt = Annotated[
    float,
    typer.Option(
        "--chunk-seconds",
        callback=_check_chunk_seconds,
        help="Longest audio per inference chunk (seconds, at least 0.01); bounds memory. Output does not depend on it.",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        help="Chunks run together on the device. Default: 1 on a CPU; on a GPU as many as fit in free memory (up to 16).",
    ),
]
BitDepthOpt = Annotated[
    int | None,
    typer.Option(
        "--bit-depth", help="16, 24 or 32 (WAV only: float). Default: 24 for FLAC, 32-bit float for WAV."
    ),
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help="fp32 (exact, default), bf16 (CPUs with bfloat16 support, GPUs; about 1.7x faster on such CPUs, 0.6 of the time) or fp16 (GPUs).",
    ),
]
CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile",
        help="Fuse the element-wise work between the model's products with torch.compile (within 1e-5 of "
        "eager; a one-time compile of 10-25 s, then 3-4 s from the disk cache). Not faster than the "
        "default on every CPU: see the README. Needs a C++ compiler on CPUs.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
RevisionOpt = Annotated[
    str | None,
    typer.Option(
        "--revision",
        help="Branch, tag or commit of the model's Hub repository (default: main). Also NAME@REV.",
        show_default=False,
    ),
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Use only models already in the cache; never touch the network (also HF_HUB_OFFLINE=1).",
    ),
]

CutoffOpt = Annotated[
    str,
    typer.Option(
        "--cutoff",
        metavar="auto|HZ|off",
        help="Low-pass the input here before the model (linear phase, flat to the cutoff). "
        "auto: at the file's measured bandwidth (what apollo inspect reports). HZ as 16000, 16k or 16kHz.",
    ),
]
KeepLowsOpt = Annotated[
    str,
    typer.Option(
        "--keep-lows",
        metavar="auto|HZ|off",
        help="Keep the input below this crossover and the restoration above it (linear-phase, "
        "complementary). auto: 1.5 kHz below the file's measured bandwidth.",
    ),
]
StereoOpt = Annotated[
    str,
    typer.Option(
        "--stereo",
        metavar="lr|mid-side",
        help="lr: restore left and right; mid-side: restore (L+R)/2 and (L-R)/2, then turn them back.",
    ),
]


def restore_options(
    chunk_seconds: float,
    batch_size: int | None,
    precision: str,
    compile: bool,
    cutoff: str,
    keep_lows: str,
    stereo: str,
) -> RestoreOptions:
    """The :class:`RestoreOptions` that the restoration options above give (bad values: one ``OptionError`` line)."""
    return RestoreOptions(
        chunk_seconds=chunk_seconds,
        batch_size=batch_size,
        precision=precision,
        compile=compile,
        cutoff=parse_frequency("--cutoff", cutoff),
        keep_lows=parse_frequency("--keep-lows", keep_lows),
        stereo=stereo,
    )
