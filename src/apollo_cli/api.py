"""The library's public entry points: load a model, restore audio.

The CLI is a thin layer over these functions; notebooks call them directly::

    import apollo_cli
    model = apollo_cli.load_model()                  # official MP3 model, cached
    restored = apollo_cli.restore(model, audio, 44100)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import audio, controls, hub, tags
from .analysis.bandwidth import estimate_bandwidth, estimate_bandwidth_blocks
from .checkpoint import check_keys, read_checkpoint
from .devices import resolve_device
from .errors import InputError, OutputError
from .inference import ProgressCallback, restore_stream, restore_waveform
from .model import Apollo, config_from_state_dict
from .options import RestoreOptions
from .provenance import ModelSource, describe
from .registry import DEFAULT_MODEL


def resolve_checkpoint(
    source: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    revision: str | None = None,
    progress: hub.DownloadProgress | None = None,
    offline: bool | None = None,
) -> Path:
    """The local checkpoint file for a model, downloading and verifying it if needed.

    ``source`` is a known model name (``mp3``, ``universal``, ...; ``name@revision``
    too), a Hub reference ``owner/repo/path/file.ckpt[@revision]`` or a checkpoint
    file. Hub files land in the Hugging Face cache and are checked against the
    Hub's SHA-256 of them. ``offline`` (default: ``HF_HUB_OFFLINE``) reads only the
    cache. Raises :class:`~apollo_cli.errors.ModelError` (subclasses in
    :mod:`apollo_cli.hub`) with a one-line reason.
    """
    return hub.resolve(source, revision=revision, offline=offline, progress=progress)


def load_model(
    source: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str | torch.device = "auto",
    revision: str | None = None,
    download_progress: hub.DownloadProgress | None = None,
    offline: bool | None = None,
) -> Apollo:
    """Load an Apollo generator, ready for inference.

    ``source`` is a known model name (default: the official MP3 restoration model,
    downloaded into the Hugging Face cache on first use) or a checkpoint file in
    any published format. The configuration is read from the weights' shapes.
    The model is returned in eval mode on ``device`` (``auto``: CUDA, MPS, CPU).
    """
    target = resolve_device(device)
    path = resolve_checkpoint(source, revision=revision, progress=download_progress, offline=offline)
    state = read_checkpoint(path)
    model = Apollo(config_from_state_dict(state))
    expected = model.state_dict()
    # The rotary tables are derived data; a checkpoint that omits them loses nothing.
    for key, value in expected.items():
        if key.endswith(("cos_freq", "sin_freq")) and key not in state:
            state[key] = value
    check_keys(expected, state, path.name)
    model.load_state_dict(state)
    # What the outputs' provenance tags name (the checkpoint's hash is taken when first needed).
    model.source = ModelSource(os.fspath(source), revision, path)
    return model.eval().to(target)


def restore(
    model: Apollo,
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    options: RestoreOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Restore audio shaped ``(samples,)`` or ``(channels, samples)``.

    Audio at another rate is first resampled to the model's (44.1 kHz). Returns a
    float32 array of the same rank at the model's sample rate. Channels are
    restored independently, as the model does. ``options`` (a
    :class:`~apollo_cli.RestoreOptions`; default: exact ``fp32`` in 20 s chunks, no
    controls) sets chunking, precision, compilation and the restoration controls, for
    example ``RestoreOptions(precision="bf16", cutoff="auto")``; :func:`resolve_controls`
    says what ``auto`` chooses.
    """
    data = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if data.ndim not in (1, 2):
        raise InputError(f"expected audio shaped (samples,) or (channels, samples), got {data.shape}")
    mono = data.ndim == 1
    data = np.ascontiguousarray(data[None] if mono else data, dtype=np.float32)
    options, _notes = resolve_controls(options or RestoreOptions(), data, int(sample_rate))
    data = audio.resample(data, int(sample_rate), model.config.sample_rate)
    out = restore_waveform(model, torch.from_numpy(data), options, progress=progress).numpy()
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
    #: Tags or pictures that could not be carried from the input, one line each.
    tag_warnings: tuple[str, ...] = ()
    #: What the restoration controls did for this file (``auto`` choices), one line each.
    notes: tuple[str, ...] = ()


def resolve_controls(
    options: RestoreOptions, audio_in: np.ndarray | audio.AudioSource, sample_rate: int | None = None
) -> tuple[RestoreOptions, tuple[str, ...]]:
    """``options`` with ``auto`` restoration controls set for this audio, and notes on what was done.

    ``audio_in`` is a ``(channels, samples)`` array at ``sample_rate``, or an opened file
    (:func:`apollo_cli.audio.open_audio`), which is then read once more, a block at a
    time, to measure its bandwidth as ``apollo inspect`` does. Without ``auto`` controls
    nothing is measured. The notes, one line each, say what ``auto`` chose and what a
    control does not do for this audio (``--stereo mid-side`` on a mono file, say).
    """
    if isinstance(audio_in, np.ndarray):
        channels = audio_in.shape[0] if audio_in.ndim == 2 else 1
        if "auto" not in (options.cutoff, options.keep_lows):
            return controls.resolve(options, None, channels)
        if sample_rate is None:
            raise ValueError("an array needs its sample_rate")
        return controls.resolve(options, estimate_bandwidth(audio_in, sample_rate), channels)
    source = audio_in
    if "auto" not in (options.cutoff, options.keep_lows):
        return controls.resolve(options, None, source.channels)
    frames = source.frames if source.frames_exact else None
    # A stream that does not state its exact length is counted first: the measurement
    # spreads its analysis frames over the length, so that it equals the whole signal's
    # (apollo batch measures short files decoded whole, and must choose the same).
    if not frames:
        with audio.open_audio(source.path) as counting:
            frames = sum(block.shape[1] for block in counting.blocks())
    with audio.open_audio(source.path) as again:
        measured = estimate_bandwidth_blocks(again.blocks(), again.sample_rate, frames)
    return controls.resolve(options, measured, source.channels)


def default_output_path(input_path: str | os.PathLike[str]) -> Path:
    """``<stem>.restored.wav`` beside the input."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}.restored.wav")


def restore_file(
    model: Apollo,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    options: RestoreOptions | None = None,
    *,
    bit_depth: int | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    carry_tags: bool = True,
) -> RestoreResult:
    """Decode ``input_path``, restore it and write WAV or FLAC to ``output_path``.

    Everything that can be checked before inference is checked first (output
    format and bit depth, an existing output, output equal to input, the input's
    readability and channel count), so a bad option fails in a second rather than
    after minutes of work. The file is decoded, restored and written a block at a
    time, so memory does not grow with its length; the output appears only when
    complete. ``progress(done, total)`` counts samples at the model's rate, ``total``
    being the length the input announces. With ``carry_tags`` the input's tags and
    pictures are copied into the output (see :mod:`apollo_cli.tags`); what cannot be
    carried is listed in ``tag_warnings`` and never fails the restore. ``options`` as
    for :func:`restore`; whether the model's device can run them is checked first.
    """
    options = options or RestoreOptions()
    options.check(next(model.parameters()).device)
    source = Path(input_path)
    target = Path(output_path) if output_path is not None else default_output_path(source)
    audio.check_output(target, bit_depth=bit_depth, overwrite=overwrite)
    if source.exists() and _same_file(source, target):
        raise OutputError(f"output {target} is the input file; choose another output path")
    started = time.perf_counter()
    with audio.open_audio(source) as opened:
        audio.check_channels(target, opened.channels)
        carried = tags.read_tags(source) if carry_tags else tags.Tags()
        return restore_source(
            model,
            opened,
            target,
            carried,
            options,
            bit_depth=bit_depth,
            overwrite=overwrite,
            started=started,
            progress=progress,
        )


def restore_source(
    model: Apollo,
    source: audio.AudioSource,
    target: Path,
    carried: tags.Tags,
    options: RestoreOptions,
    *,
    bit_depth: int | None,
    overwrite: bool,
    started: float,
    progress: ProgressCallback | None = None,
    finalize: Callable[[Path], None] | None = None,
) -> RestoreResult:
    """Stream an opened input through the model into ``target`` (atomically), with its tags.

    The streaming core that :func:`restore_file` and ``apollo batch`` (for long files)
    share: decode, resample, restore and write one block at a time. ``started`` is the
    ``time.perf_counter()`` at which work on the file began; ``finalize`` runs on the
    finished temporary file after the tags are added.
    """
    options, notes = resolve_controls(options, source)
    rate = model.config.sample_rate
    expected = round(source.frames * rate / source.sample_rate) if source.frames else None
    blocks = audio.resampled(source.blocks(), source.sample_rate, rate, source.channels)
    with audio.open_output(
        target, source.channels, rate, bit_depth=bit_depth, overwrite=overwrite, expected_frames=expected
    ) as writer:
        restore_stream(
            model,
            (torch.from_numpy(block) for block in blocks),
            lambda core: writer.write(core.numpy()),
            options,
            channels=source.channels,
            total=expected,
            name=str(source.path),
            progress=progress,
        )
        result = _commit(writer, source.path, carried, started, finalize, describe(model, options))
        return replace(result, notes=notes)


def write_restored(
    source: Path,
    target: Path,
    samples: np.ndarray,
    sample_rate: int,
    carried: tags.Tags,
    *,
    bit_depth: int | None,
    overwrite: bool,
    started: float,
    finalize: Callable[[Path], None] | None = None,
    provenance: str | None = None,
    notes: tuple[str, ...] = (),
) -> RestoreResult:
    """Write restored ``(channels, samples)`` audio with the input's tags, atomically.

    What ``apollo batch`` does with a file restored in memory. ``started`` is the
    ``time.perf_counter()`` at which work on the file began; ``finalize`` runs on the
    finished temporary file after the tags are added. ``provenance`` is the value of
    the output's provenance tag (:func:`apollo_cli.provenance.describe`); ``notes`` go
    into the result as they are.
    """
    with audio.open_output(
        target,
        samples.shape[0],
        sample_rate,
        bit_depth=bit_depth,
        overwrite=overwrite,
        expected_frames=samples.shape[1],
    ) as writer:
        writer.write(samples)
        return replace(_commit(writer, source, carried, started, finalize, provenance), notes=notes)


def _commit(
    writer: audio.AudioWriter,
    source: Path,
    carried: tags.Tags,
    started: float,
    finalize: Callable[[Path], None] | None,
    provenance: str | None,
) -> RestoreResult:
    """Add the tags to a finished output, rename it into place and say what was written."""
    warnings = list(carried.warnings)
    add_tags = tags.finalizer(carried, writer.format, writer.frames, warnings, provenance)

    def finish(tmp: Path) -> None:
        add_tags(tmp)
        if finalize is not None:
            finalize(tmp)

    written = writer.commit(finish)
    return RestoreResult(
        input=source,
        output=written.path,
        duration=written.frames / written.sample_rate,
        elapsed=time.perf_counter() - started,
        sample_rate=written.sample_rate,
        channels=writer.channels,
        format=written.format,
        bit_depth=written.bit_depth,
        clipped_samples=written.clipped_samples,
        tag_warnings=tuple(warnings),
    )


def _same_file(a: Path, b: Path) -> bool:
    if b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
