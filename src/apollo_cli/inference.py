"""Chunked inference that reproduces whole-file inference.

Only the depthwise convolutions mix information across time, so an output frame
depends on a bounded number of input frames each side (the model's receptive
field). A chunk whose start lies on the STFT hop grid and that carries enough real
context on both sides therefore reproduces whole-file inference over its core, and
where a chunk reaches the start or end of the file it sees the same reflect
padding the whole file would. No cross-fading, no zero padding: the cores tile the
file exactly.

The accumulator lives on the CPU; only chunks visit the device. Progress is
reported through a callback so this module never imports a UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

from .errors import InputError, OptionError
from .model import Apollo

#: ``progress(done_samples, total_samples)`` after every batch of chunks.
ProgressCallback = Callable[[int, int], None]

#: Frames of context beyond the receptive field. With L=6 this gives 64 frames,
#: which was measured to reproduce whole-file inference bit for bit.
CONTEXT_MARGIN_FRAMES = 9

DEFAULT_CHUNK_SECONDS = 4.0
DEFAULT_BATCH_SIZE = 1


@dataclass(frozen=True)
class Chunk:
    """A window ``[start, stop)`` of the input whose output is kept on ``[core_start, core_stop)``."""

    start: int
    stop: int
    core_start: int
    core_stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def context_frames(model: Apollo) -> int:
    """Frames of real context a chunk needs on each side to match whole-file inference."""
    return model.config.receptive_frames + CONTEXT_MARGIN_FRAMES


def plan_chunks(samples: int, hop: int, core_frames: int, context: int) -> list[Chunk]:
    """Tile ``samples`` with cores of ``core_frames`` hops, each with ``context`` hops around it.

    Every window starts on the hop grid (or at 0) so that its STFT frames coincide
    with the whole file's; windows are clipped to the file, where the STFT's
    reflect padding then matches the whole file's too.
    """
    core = core_frames * hop
    margin = context * hop
    chunks = []
    for core_start in range(0, samples, core):
        core_stop = min(core_start + core, samples)
        chunks.append(
            Chunk(max(0, core_start - margin), min(samples, core_stop + margin), core_start, core_stop)
        )
    return chunks


def _batches(chunks: list[Chunk], batch_size: int) -> Iterator[list[Chunk]]:
    """Consecutive chunks of equal window length, at most ``batch_size`` at a time.

    Windows clipped at the file's ends are shorter; they run in batches of their
    own rather than being padded, since padding would change their output.
    """
    batch: list[Chunk] = []
    for chunk in chunks:
        if batch and (len(batch) == batch_size or chunk.length != batch[0].length):
            yield batch
            batch = []
        batch.append(chunk)
    if batch:
        yield batch


def restore_waveform(
    model: Apollo,
    waveform: Tensor,
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
) -> Tensor:
    """Restore a ``(channels, samples)`` waveform at the model's sample rate.

    Runs the model on the device its parameters are on, in chunks of about
    ``chunk_seconds`` (several per call when ``batch_size`` > 1), and returns the
    restored waveform as a float32 CPU tensor of the same shape. The result equals
    whole-file inference; memory is bounded by the chunk size and batch size.
    """
    if waveform.dim() != 2:
        raise InputError(f"expected audio shaped (channels, samples), got {tuple(waveform.shape)}")
    if not chunk_seconds > 0:
        raise OptionError(f"chunk length must be positive, got {chunk_seconds} s")
    if batch_size < 1:
        raise OptionError(f"batch size must be at least 1, got {batch_size}")
    cfg = model.config
    channels, samples = waveform.shape
    if samples <= cfg.win // 2:
        raise InputError(
            f"audio too short to restore: {samples} samples, at least {cfg.win // 2 + 1} needed"
        )
    waveform = waveform.detach().to("cpu", torch.float32)
    if not torch.isfinite(waveform).all():
        raise InputError("audio contains NaN or infinite samples; repair or re-export the file")

    device = next(model.parameters()).device
    core_frames = max(1, round(chunk_seconds * cfg.sample_rate / cfg.hop))
    chunks = plan_chunks(samples, cfg.hop, core_frames, context_frames(model))
    output = torch.empty(channels, samples, dtype=torch.float32)
    # Pinned host memory lets the copy to a GPU overlap with work already queued.
    pin = device.type == "cuda"
    done = 0
    with torch.inference_mode():
        for batch in _batches(chunks, batch_size):
            stacked = torch.stack([waveform[:, c.start : c.stop] for c in batch])
            if pin:
                stacked = stacked.pin_memory()
            result = model(stacked.to(device, non_blocking=pin)).to("cpu", torch.float32)
            for chunk, restored in zip(batch, result):
                offset = chunk.core_start - chunk.start
                output[:, chunk.core_start : chunk.core_stop] = restored[
                    :, offset : offset + chunk.core_stop - chunk.core_start
                ]
                done += chunk.core_stop - chunk.core_start
            if progress is not None:
                progress(done, samples)
    return output

