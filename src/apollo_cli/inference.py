"""Chunked inference that reproduces whole-file inference.

Only the depthwise convolutions mix information across time, so an output frame
depends on a bounded number of input frames each side (the model's receptive
field). A chunk whose start lies on the STFT hop grid and that carries enough real
context on both sides therefore reproduces whole-file inference over its core, and
where a chunk reaches the start or end of the file it sees the same reflect
padding the whole file would. No cross-fading, no zero padding: the cores tile the
file exactly. The model is told which samples of each window are kept and drops
context frames as soon as they stop mattering, so the context costs about half of
what it would if every layer computed it; and on a CPU, where the windows of each
channel run one after another, each window takes the frames it shares with the one
before from it (:mod:`apollo_cli.carry`), so that no frame is computed twice.

The accumulator lives on the CPU; only chunks visit the device. Progress is
reported through a callback so this module never imports a UI.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import torch
from torch import Tensor

from .allocator import inference_heap
from .carry import Carry
from .controls import Controls
from .errors import InputError, MissingDependencyError, OptionError
from .meter import Meter
from .model import Apollo
from .options import RestoreOptions
from .streams import StreamPlan, plan_streams, stream_pool, windows_in

#: ``progress(done_samples, total_samples)``, as the chunks advance (see :mod:`apollo_cli.meter`).
ProgressCallback = Callable[[int, int], None]

#: Frames of context beyond the receptive field (9 frames a layer plus one for the
#: STFT overlap): one for the window's own edge frame, which sees reflect padding,
#: and a few for safety.
CONTEXT_MARGIN_FRAMES = 4

#: Most chunks per call that :func:`auto_batch_size` picks.
MAX_AUTO_BATCH = 16

#: The dtype each ``--precision`` (:data:`apollo_cli.options.PRECISIONS`) runs matrix products in.
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Chunk:
    """A window ``[start, stop)`` of the input whose output is kept on ``[core_start, core_stop)``."""

    start: int
    stop: int
    core_start: int
    core_stop: int

    @property
    def length(self) -> int:
        """Samples in the window."""
        return self.stop - self.start

    @property
    def keep(self) -> tuple[int, int]:
        """The core, relative to the window."""
        return self.core_start - self.start, self.core_stop - self.start


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


def balanced_core(
    total: int | None, hop: int, longest: int, channels: int, streams: int, shortest: int
) -> int:
    """Frames per chunk core: chunks of equal length, at most ``longest`` frames, enough to fill the streams.

    With ``total`` samples known, the audio is cut into as few chunks as ``longest``
    allows, all of the same length (up to a frame), instead of full chunks and a short
    tail: with parallel streams a short last chunk would leave cores idle while the
    others finish. And while there are fewer windows (chunks times ``channels``) than
    ``streams``, chunks are cut shorter so that every stream has one, as long as each
    stays at least ``shortest`` frames (twice the context, in :func:`chunk_core`: a
    shorter core would cost more than half its own work again in context). With
    ``total`` unknown (streamed input), ``longest``. The output does not depend on the cut.
    """
    if not total:
        return longest
    frames = -(-total // hop)
    chunks = -(-frames // longest)
    wanted = min(-(-streams // channels), frames // max(1, shortest))
    return -(-frames // max(chunks, wanted))


def chunk_core(model: Apollo, options: RestoreOptions, channels: int, total: int | None) -> int:
    """Samples in each chunk's core when ``model`` restores ``total`` samples of ``channels`` with ``options``.

    The last chunk's core is what remains (as long or shorter). See :func:`balanced_core`.
    """
    cfg = model.config
    device = next(model.parameters()).device
    frames = balanced_core(
        total,
        cfg.hop,
        max(1, round(options.chunk_seconds * cfg.sample_rate / cfg.hop)),
        channels,
        plan_streams(options.streams, device, items=None).streams,
        2 * context_frames(model),
    )
    return frames * cfg.hop


def _batches(
    windows: Iterable[tuple[Chunk, Tensor]], batch_size: int
) -> Iterator[list[tuple[Chunk, Tensor]]]:
    """Consecutive windows of equal length and core placement, at most ``batch_size`` at a time.

    Windows clipped at the file's ends are shorter; they run in batches of their
    own rather than being padded, since padding would change their output.
    """
    batch: list[tuple[Chunk, Tensor]] = []
    for chunk, window in windows:
        first = batch[0][0] if batch else None
        same = first is not None and (chunk.length, chunk.keep) == (first.length, first.keep)
        if batch and (len(batch) == batch_size or not same):
            yield batch
            batch = []
        batch.append((chunk, window))
    if batch:
        yield batch


def precision_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    """Autocast for ``bf16``/``fp16`` on ``device``; nothing for ``fp32``.

    Under autocast the matrix products and the element-wise work between them run in
    reduced precision; the model keeps its norms, the residual stream, the STFT and
    the inverse STFT in float32. Whether the device supports the precision is
    :meth:`RestoreOptions.check`'s question, asked before this.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def auto_batch_size(model: Apollo, window_samples: int, channels: int, device: torch.device) -> int:
    """How many chunks to run at once on ``device``.

    On a GPU: as many windows as fit in 60 % of its free memory, by an estimate of
    what one window needs (the float32 residual stream and its copy in each time
    block, the encoder's temporaries, the spectra), capped at :data:`MAX_AUTO_BATCH`.
    An estimate: a batch that does not fit after all steps down (:class:`BatchFit`).
    On a CPU batching gains nothing but memory, so 1.
    """
    if device.type != "cuda":
        return 1
    cfg = model.config
    frames = window_samples // cfg.hop + 1
    per_window = frames * channels * cfg.bands * cfg.feature_dim * 4 * 4  # 4 residual-sized tensors
    per_window += frames * channels * cfg.bins * 8 * 4  # complex spectra
    free, _total = torch.cuda.mem_get_info(device)
    return max(1, min(MAX_AUTO_BATCH, int(0.6 * free) // per_window))


class BatchFit:
    """Runs each batch of chunks on the device, in smaller parts when it does not fit in its memory.

    The automatic batch size (``options.batch_size`` of ``None``) is an estimate made from the
    memory free when a restore starts, and other workers or programs on the card take memory
    too; so when a call runs out of device memory, the size steps down (to its largest proper
    divisor: 16, 8, 4, 2, 1) and the failed batch is run again in parts of that size, as is
    every batch after it. The new size divides the old one, so the chunks are grouped exactly
    as a run at the smaller size would group them, and the output is that run's output. A
    batch size the user chose is theirs to change: running out of memory with it, or with one
    chunk at a time, is a one-line :class:`~apollo_cli.errors.OptionError` saying what to do.
    """

    def __init__(self, size: int, device: torch.device, chunk_seconds: float, *, chosen: bool) -> None:
        self.size = size
        self.device = device
        self.chunk_seconds = chunk_seconds
        self.chosen = chosen
        # Parallel streams (apollo_cli.streams) share one: a failure steps down once.
        self._lock = threading.Lock()

    def run(self, model: Apollo, x: Tensor, **kwargs: object) -> Tensor:
        """``model(x, **kwargs)``, the batch ``x`` taken :attr:`size` windows at a time."""
        parts: list[Tensor] = []
        start = 0
        while start < x.shape[0]:
            size = self.size
            part = _unless_out_of_memory(model, x[start : start + size], kwargs)
            if part is None:
                self._step_down(size)
                continue
            parts.append(part)
            start += part.shape[0]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _step_down(self, failed: int) -> None:
        """Make :attr:`size` smaller than ``failed``, which did not fit, or say why it cannot be."""
        if self.device.type == "cuda":
            # The failed call's tensors are free now; hand their memory back to the card,
            # for the smaller parts, other workers and the message's figure.
            with torch.cuda.device(self.device):
                torch.cuda.empty_cache()
        with self._lock:
            if self.size < failed:  # another stream stepped down meanwhile
                return
            if self.chosen or self.size == 1:
                raise OptionError(self._message())
            self.size = next(self.size // p for p in range(2, self.size + 1) if self.size % p == 0)

    def _message(self) -> str:
        memory = ""
        if self.device.type == "cuda":
            free, total = torch.cuda.mem_get_info(self.device)
            memory = f"; {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"
        chunks = f"{self.chunk_seconds:g} s chunks{memory}"
        if self.chosen and self.size > 1:
            return (
                f"out of memory on {self.device} with --batch-size {self.size} ({chunks}): use a smaller "
                "--batch-size or --chunk-seconds, or leave --batch-size out to let apollo choose"
            )
        return (
            f"out of memory on {self.device} with one chunk at a time ({chunks}): use a smaller "
            "--chunk-seconds, or free the device's memory"
        )


def _unless_out_of_memory(model: Apollo, x: Tensor, kwargs: dict[str, object]) -> Tensor | None:
    """``model(x, **kwargs)``, or ``None`` when the device ran out of memory.

    The retry happens in the caller, after this handler has ended: until then the
    exception's traceback keeps the failed call's tensors, and their memory, alive.
    """
    try:
        return model(x, **kwargs)
    except torch.cuda.OutOfMemoryError:
        return None


def restore_waveform(
    model: Apollo,
    waveform: Tensor,
    options: RestoreOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> Tensor:
    """Restore a ``(channels, samples)`` waveform at the model's sample rate.

    Runs the model on the device its parameters are on, in equal chunks of at most
    ``options.chunk_seconds`` (``options.batch_size`` of them per call; ``None`` picks,
    see :func:`auto_batch_size`), and returns the restored waveform as a float32 CPU
    tensor of the same shape. In ``fp32`` the result equals whole-file inference;
    memory is bounded by the chunk size and batch size. ``options.compile`` runs the
    model's blocks through ``torch.compile`` (see :mod:`apollo_cli.compiled`), within
    1e-5 of the eager result.
    """
    if waveform.dim() != 2:
        raise InputError(f"expected audio shaped (channels, samples), got {tuple(waveform.shape)}")
    waveform = waveform.detach().to("cpu", torch.float32)
    if not torch.isfinite(waveform).all():
        raise InputError("audio contains NaN or infinite samples; repair or re-export the file")
    output = torch.empty_like(waveform)
    written = 0

    def sink(core: Tensor) -> None:
        nonlocal written
        output[:, written : written + core.shape[1]] = core
        written += core.shape[1]

    restore_stream(
        model,
        [waveform],
        sink,
        options,
        channels=waveform.shape[0],
        total=waveform.shape[1],
        progress=progress,
    )
    return output


def restore_stream(
    model: Apollo,
    blocks: Iterable[Tensor],
    sink: Callable[[Tensor], None],
    options: RestoreOptions | None = None,
    *,
    channels: int,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
) -> int:
    """Restore audio that arrives as ``(channels, n)`` float blocks, handing the result on in order.

    The streaming form of :func:`restore_waveform`, with the same output: each chunk's
    window is run as soon as enough input has arrived for it (its core plus the
    context after it), and its restored core goes to ``sink`` as a float32 CPU
    ``(channels, n)`` tensor. Only one window (or one batch of them) of input is held,
    one more per stream with parallel streams (``options.streams``, see
    :mod:`apollo_cli.streams`), so memory does not grow with the length of the audio.
    ``total`` (the expected number of samples, if known) sizes ``progress`` and caps the
    streams at the number of windows; ``name`` names the audio in errors. Returns the
    samples restored.
    """
    options = options or RestoreOptions()
    cfg = model.config
    device = next(model.parameters()).device
    options.check(device)
    if "auto" in (options.cutoff, options.keep_lows):
        raise OptionError(
            "'auto' restoration controls need the whole audio to measure; resolve them first "
            "(apollo_cli.api.resolve_controls) or give a frequency"
        )
    controls = Controls(options, channels, cfg.sample_rate)
    if controls.active:
        blocks, sink = controls.inputs(blocks), controls.outputs(sink)
    autocast = precision_context(device, options.precision)
    core_frames = chunk_core(model, options, channels, total) // cfg.hop
    windows = _windows(
        blocks,
        channels,
        core_frames * cfg.hop,
        context_frames(model) * cfg.hop,
        cfg.win // 2,
        name or "the audio",
    )
    batch_size = options.batch_size
    if batch_size is None:
        longest = core_frames * cfg.hop + 2 * context_frames(model) * cfg.hop
        batch_size = auto_batch_size(model, longest, channels, device)
    plan = plan_streams(
        options.streams,
        device,
        items=windows_in(total, core_frames * cfg.hop, channels),
    )
    fit = BatchFit(batch_size, device, options.chunk_seconds, chosen=options.batch_size is not None)
    # Pinned host memory lets the copy to a GPU overlap with work already queued.
    pin = device.type == "cuda"
    if pin:
        torch.backends.cudnn.benchmark = True

    def run(stacked: Tensor, batch: list[tuple[Chunk, Tensor]], parts: int, carry: Carry | None) -> Tensor:
        """The model on ``stacked``, the windows of ``batch`` (or one of ``parts`` channel slices of them),
        taking the frames that ``carry`` holds from the previous window of the same audio."""
        if pin:
            stacked = stacked.pin_memory()
        try:
            with meter.window(batch[0][0].core_start, _core_samples(batch), parts):
                result = fit.run(
                    model,
                    stacked.to(device, non_blocking=pin),
                    keep=batch[0][0].keep,
                    use_compiled=options.compile,
                    carry=carry,
                )
        except torch._dynamo.exc.BackendCompilerFailed as exc:
            # A compiler that is installed but cannot build TorchInductor's code.
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MissingDependencyError(
                f"torch.compile failed on this machine ({line}); run without --compile"
            ) from None
        return result.to("cpu", torch.float32)

    def deliver(batch: list[tuple[Chunk, Tensor]], result: Tensor) -> None:
        for _, restored in zip(batch, result, strict=True):
            sink(restored)
        meter.delivered(batch[0][0].core_start, _core_samples(batch))

    meter = Meter(model, progress, total)
    try:
        with torch.inference_mode(), autocast, inference_heap():
            batches = _batches(windows, batch_size)
            # On a CPU, one window after another of the same audio: each takes what the one
            # before computed of their shared context (apollo_cli.carry) rather than computing
            # it again. A GPU runs windows side by side in batches instead.
            in_order = device.type == "cpu" and batch_size == 1 and plan.streams <= channels
            if not plan.parallel:
                carry = Carry() if in_order else None
                for batch in batches:
                    deliver(batch, run(torch.stack([window for _, window in batch]), batch, 1, carry))
            else:
                context = functools.partial(_stream_context, device, options.precision)
                carries = [Carry() for _ in range(channels)] if in_order else None
                _run_streams(plan, model, batches, run, deliver, context, meter, carries)
    finally:
        meter.close()
    controls.finish()
    return meter.done


def _core_samples(batch: list[tuple[Chunk, Tensor]]) -> int:
    """The samples a batch of chunks delivers (their cores)."""
    return sum(chunk.core_stop - chunk.core_start for chunk, _ in batch)


def _stream_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """What a stream's thread runs inside: inference mode and autocast are per thread."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    stack.enter_context(precision_context(device, precision))
    return stack


def _run_streams(
    plan: StreamPlan,
    model: Apollo,
    batches: Iterable[list[tuple[Chunk, Tensor]]],
    run: Callable[[Tensor, list[tuple[Chunk, Tensor]], int, Carry | None], Tensor],
    deliver: Callable[[list[tuple[Chunk, Tensor]], Tensor], None],
    context: Callable[[], contextlib.AbstractContextManager[object]],
    meter: Meter,
    carries: list[Carry] | None,
) -> None:
    """The chunk loop on parallel streams (:mod:`apollo_cli.streams`): each channel of each batch
    is a call of its own, and results are delivered in order.

    With ``carries`` (one per channel), channel ``c`` always runs on stream ``c`` modulo
    the streams, its windows in order, each taking what the one before left in
    ``carries[c]``. At most ``streams + 1`` batches are in flight (one more than the
    workers, so that the next window is read while the last ones run): memory stays bounded.
    """
    pending: collections.deque[tuple[list[tuple[Chunk, Tensor]], list[Future[Tensor]]]] = collections.deque()

    def collect() -> None:
        batch, parts = pending.popleft()
        meter.wait(parts)
        deliver(batch, torch.cat([part.result() for part in parts], dim=1))

    with stream_pool(plan, model, context, lanes=carries is not None) as pool:
        for batch in batches:
            stacked = torch.stack([window for _, window in batch])
            channels = stacked.shape[1]
            # One channel per call: a lone channel gives the same numbers as the channels together.
            parts = [
                pool.submit(
                    functools.partial(
                        run,
                        stacked[:, c : c + 1].contiguous(),
                        batch,
                        channels,
                        carries[c] if carries else None,
                    ),
                    lane=c,
                )
                for c in range(channels)
            ]
            pending.append((batch, parts))
            if len(pending) > plan.streams:
                collect()
        while pending:
            collect()


def _windows(
    blocks: Iterable[Tensor], channels: int, core: int, margin: int, shortest: int, name: str
) -> Iterator[tuple[Chunk, Tensor]]:
    """The chunks of :func:`plan_chunks`, each with its window of input, as input arrives.

    A window is complete once the input reaches its core's end plus ``margin`` (it is
    then the same as in the whole-file plan) or once the input has ended (it is then
    the plan's last, clipped window). Input before the next window's start is dropped.
    """
    buffer = torch.empty(channels, 0)
    offset = 0  # absolute index of buffer[:, 0]
    received = 0
    ended = False
    source = iter(blocks)
    core_start = 0
    while True:
        while not ended and received < core_start + core + margin:
            block = next(source, None)
            if block is None:
                ended = True
                break
            block = torch.as_tensor(block, dtype=torch.float32)
            if block.dim() != 2 or block.shape[0] != channels:
                raise InputError(f"expected ({channels}, n) audio blocks, got {tuple(block.shape)}")
            buffer = torch.cat((buffer, block), dim=1) if buffer.shape[1] else block
            received += block.shape[1]
        if ended and received <= shortest:
            raise InputError(
                f"{name} is too short to restore: {received} samples, at least {shortest + 1} needed; "
                "choose a longer file"
            )
        if ended and core_start >= received:
            return
        end = received if ended else core_start + core + margin
        chunk = Chunk(max(0, core_start - margin), end, core_start, min(core_start + core, received))
        window = buffer[:, chunk.start - offset : chunk.stop - offset]
        yield chunk, window
        core_start += core
        drop = max(0, core_start - margin) - offset
        if drop > 0:
            buffer = buffer[:, drop:]
            offset += drop
