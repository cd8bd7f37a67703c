"""The library's public entry points: load a model, restore audio.

The CLI is a thin layer over these functions; notebooks call them directly::

    import apollo_cli
    model = apollo_cli.load_model()                  # official MP3 model, cached
    restored = apollo_cli.restore(model, audio, 44100)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import audio
from .checkpoint import check_keys, read_checkpoint
from .devices import resolve_device
from .errors import InputError, ModelError, OutputError
from .hub import DownloadProgress, download
from .inference import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_SECONDS,
    ProgressCallback,
    restore_waveform,
)
from .model import Apollo, config_from_state_dict
from .registry import DEFAULT_MODEL, KNOWN_MODELS, known_model


def resolve_checkpoint(
    source: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    revision: str | None = None,
    progress: DownloadProgress | None = None,
) -> Path:
    """The local checkpoint file for a model name or a path, downloading if needed."""
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise ModelError(f"{path} is a directory; pass a checkpoint file or a model name")
        return path
    entry = known_model(text)
    if entry is None:
        names = ", ".join(KNOWN_MODELS)
        raise ModelError(
            f"unknown model '{text}': not a file and not a known model name ({names})"
        )
    return download(entry.repo_id, entry.filename, revision=revision, progress=progress)


def load_model(
    source: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str | torch.device = "auto",
    revision: str | None = None,
    download_progress: DownloadProgress | None = None,
) -> Apollo:
    """Load an Apollo generator, ready for inference.

    ``source`` is a known model name (default: the official MP3 restoration model,
    downloaded into the Hugging Face cache on first use) or a checkpoint file in
    any published format. The configuration is read from the weights' shapes.
    The model is returned in eval mode on ``device`` (``auto``: CUDA, MPS, CPU).
    """
    target = resolve_device(device)
    path = resolve_checkpoint(source, revision=revision, progress=download_progress)
    state = read_checkpoint(path)
    model = Apollo(config_from_state_dict(state))
    expected = model.state_dict()
    # The rotary tables are derived data; a checkpoint that omits them loses nothing.
    for key, value in expected.items():
        if key.endswith(("cos_freq", "sin_freq")) and key not in state:
            state[key] = value
    check_keys(expected, state, path.name)
    model.load_state_dict(state)
    return model.eval().to(target)


def restore(
    model: Apollo,
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Restore audio shaped ``(samples,)`` or ``(channels, samples)``.

    Audio at another rate is first resampled to the model's (44.1 kHz). Returns a
    float32 array of the same rank at the model's sample rate. Channels are
    restored independently, as the model does.
    """
    data = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if data.ndim not in (1, 2):
        raise InputError(f"expected audio shaped (samples,) or (channels, samples), got {data.shape}")
    mono = data.ndim == 1
    data = np.ascontiguousarray(data[None] if mono else data, dtype=np.float32)
    data = audio.resample(data, int(sample_rate), model.config.sample_rate)
    out = restore_waveform(
        model, torch.from_numpy(data), chunk_seconds=chunk_seconds, batch_size=batch_size, progress=progress
    ).numpy()
    return out[0] if mono else out


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_file` did."""

    input: Path
    output: Path
    duration: float
    elapsed: float
    sample_rate: int
    channels: int
    format: str
    bit_depth: int
    clipped_samples: int


def default_output_path(input_path: str | os.PathLike[str]) -> Path:
    """``<stem>.restored.wav`` beside the input."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}.restored.wav")


def restore_file(
    model: Apollo,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    *,
    bit_depth: int | None = None,
    overwrite: bool = False,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
    on_decoded: Callable[[audio.DecodedAudio], None] | None = None,
) -> RestoreResult:
    """Decode ``input_path``, restore it and write WAV or FLAC to ``output_path``.

    Everything that can be checked before inference is checked first (output
    format and bit depth, an existing output, output equal to input), so a bad
    option fails in a second rather than after minutes of work. The output appears
    only when complete. ``on_decoded`` is called once the input is decoded (the
    CLI uses it to size its progress bar).
    """
    source = Path(input_path)
    target = Path(output_path) if output_path is not None else default_output_path(source)
    depth = audio.check_output(target, bit_depth=bit_depth, overwrite=overwrite)
    if source.exists() and _same_file(source, target):
        raise OutputError(f"output {target} is the input file; choose another output path")
    started = time.perf_counter()
    decoded = audio.load_audio(source)
    if on_decoded is not None:
        on_decoded(decoded)
    restored = restore(
        model, decoded.samples, decoded.sample_rate,
        chunk_seconds=chunk_seconds, batch_size=batch_size, progress=progress,
    )
    written = audio.write_audio(target, restored, model.config.sample_rate, bit_depth=depth, overwrite=overwrite)
    return RestoreResult(
        input=source,
        output=written.path,
        duration=restored.shape[-1] / model.config.sample_rate,
        elapsed=time.perf_counter() - started,
        sample_rate=written.sample_rate,
        channels=decoded.channels,
        format=written.format,
        bit_depth=written.bit_depth,
        clipped_samples=written.clipped_samples,
    )


def _same_file(a: Path, b: Path) -> bool:
    if b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
