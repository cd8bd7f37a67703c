"""The restoration controls, as stages around the model's stream.

What careful users do by hand in a DAW, done exactly and in bounded memory:

- ``cutoff``: low-pass the decoded input at the codec's real cutoff before the model,
  so noise and dither above it do not confuse a model trained on hard cutoffs. The
  pass band ends at the cutoff (unchanged there within 0.0001 dB); the stop band
  starts :data:`CUTOFF_TRANSITION_HZ` above it.
- ``keep_lows``: after the model, keep the decoded input below a crossover and the
  restoration above it. The output is ``restored + lowpass(input - restored)``, a
  linear-phase complementary pair: the two bands add back to the input exactly when
  both sides are the same signal, with no bump or dip at the crossover (there each
  band has gain one half, in phase).
- ``stereo="mid-side"``: the model restores ``(L+R)/2`` and ``(L-R)/2``, which are
  turned back into left and right.

Order: input → mid/side → cutoff → model → left/right → keep-lows → output. Every
filter is zero-phase over the whole signal (see :mod:`apollo_cli.filters`), so
chunked inference stays equal to whole-file inference with any control on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from .analysis.bandwidth import Bandwidth
from .filters import ZeroPhaseFIR, filter_blocks, kaiser_lowpass
from .options import (
    CROSSOVER_WIDTH_HZ,
    CUTOFF_TRANSITION_HZ,
    KEEP_LOWS_MARGIN_HZ,
    MIN_CONTROL_HZ,
    MODEL_SAMPLE_RATE,
    RestoreOptions,
)


def cutoff_taps(cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """The ``--cutoff`` low-pass: flat to ``cutoff_hz``, stopped from ``cutoff_hz + CUTOFF_TRANSITION_HZ``."""
    return kaiser_lowpass(cutoff_hz + CUTOFF_TRANSITION_HZ / 2, CUTOFF_TRANSITION_HZ, sample_rate)


def crossover_taps(crossover_hz: float, sample_rate: int) -> np.ndarray:
    """The ``--keep-lows`` crossover's low band: gain one half at ``crossover_hz``, ±``CROSSOVER_WIDTH_HZ / 2``."""
    return kaiser_lowpass(crossover_hz, CROSSOVER_WIDTH_HZ, sample_rate)


def to_mid_side(x: Tensor) -> Tensor:
    """``(2, n)`` left/right → mid ``(L+R)/2`` and side ``(L-R)/2``."""
    return torch.stack(((x[0] + x[1]) / 2, (x[0] - x[1]) / 2))


def to_left_right(x: Tensor) -> Tensor:
    """``(2, n)`` mid/side → left ``M+S`` and right ``M-S``."""
    return torch.stack((x[0] + x[1], x[0] - x[1]))


class Controls:
    """The stages one stream passes through; resolved options only (no ``auto`` left).

    Use: ``blocks = controls.inputs(blocks)`` feeds the model, ``sink =
    controls.outputs(sink)`` receives its output, and :meth:`finish` after the model's
    last output hands on what the keep-lows filter still holds.
    """

    def __init__(self, options: RestoreOptions, channels: int, sample_rate: int) -> None:
        if options.cutoff == "auto" or options.keep_lows == "auto":
            raise ValueError("resolve 'auto' controls for the audio first (apollo_cli.api.resolve_controls)")
        self.channels = channels
        self.mid_side = options.stereo == "mid-side" and channels == 2
        self.cutoff = None if options.cutoff is None else cutoff_taps(float(options.cutoff), sample_rate)
        self.keep_lows = (
            None
            if options.keep_lows is None
            else ZeroPhaseFIR(crossover_taps(float(options.keep_lows), sample_rate), channels)
        )
        self._originals: deque[Tensor] = deque()  # input not yet matched by output (keep-lows)
        self._restored: deque[np.ndarray] = deque()  # output waiting for the crossover's delay
        self._sink: Callable[[Tensor], None] | None = None

    @property
    def active(self) -> bool:
        """Whether any stage changes the audio."""
        return self.mid_side or self.cutoff is not None or self.keep_lows is not None

    def inputs(self, blocks: Iterable[Tensor]) -> Iterator[Tensor]:
        """The model's input: the blocks, kept for the crossover, in mid/side, low-passed."""

        def staged() -> Iterator[Tensor]:
            for given in blocks:
                block = torch.as_tensor(given, dtype=torch.float32)
                if self.keep_lows is not None:
                    self._originals.append(block)
                yield to_mid_side(block) if self.mid_side else block

        stream: Iterator[Tensor] = staged()
        if self.cutoff is not None:
            filtered = filter_blocks((b.numpy() for b in stream), self.cutoff, self.channels)
            stream = (torch.from_numpy(b) for b in filtered)
        return stream

    def outputs(self, sink: Callable[[Tensor], None]) -> Callable[[Tensor], None]:
        """A sink for the model's output that hands the final audio on to ``sink``."""
        self._sink = sink

        def staged(core: Tensor) -> None:
            if self.mid_side:
                core = to_left_right(core)
            if self.keep_lows is None:
                sink(core)
                return
            original = self._take_originals(core.shape[1])
            restored = core.numpy().astype(np.float64)
            self._restored.append(restored)
            self._emit(self.keep_lows.process(original - restored))

        return staged

    def finish(self) -> None:
        """Hand on the output the crossover still holds, once the model's output has ended."""
        if self.keep_lows is not None:
            self._emit(self.keep_lows.flush())

    def _take_originals(self, count: int) -> np.ndarray:
        parts: list[np.ndarray] = []
        while count > 0:
            head = self._originals[0]
            take = min(count, head.shape[1])
            parts.append(head[:, :take].numpy().astype(np.float64))
            if take == head.shape[1]:
                self._originals.popleft()
            else:
                self._originals[0] = head[:, take:]
            count -= take
        return np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0))

    def _emit(self, lows: np.ndarray) -> None:
        """Add the crossover's final low band to the restored samples it belongs to, and hand them on."""
        assert self._sink is not None
        done = 0
        while done < lows.shape[1]:
            head = self._restored[0]
            take = min(lows.shape[1] - done, head.shape[1])
            out = head[:, :take] + lows[:, done : done + take]
            self._sink(torch.from_numpy(out.astype(np.float32)))
            if take == head.shape[1]:
                self._restored.popleft()
            else:
                self._restored[0] = head[:, take:]
            done += take


def resolve(
    options: RestoreOptions, bandwidth: Bandwidth | None, channels: int
) -> tuple[RestoreOptions, tuple[str, ...]]:
    """``options`` with ``auto`` controls turned into frequencies for one file, and what was done.

    ``bandwidth`` is the file's measured bandwidth (:mod:`apollo_cli.analysis.bandwidth`,
    what ``apollo inspect`` reports); it is only read when a control is ``auto``. The
    notes say, one line each, what ``auto`` chose and what a control does not do for
    this file (mid/side on a mono file, say).
    """
    notes: list[str] = []
    cutoff, keep_lows = options.cutoff, options.keep_lows
    nyquist = MODEL_SAMPLE_RATE / 2
    if "auto" in (cutoff, keep_lows) and bandwidth is None:
        raise ValueError("an 'auto' control needs the file's bandwidth")
    if cutoff == "auto":
        assert bandwidth is not None
        if bandwidth.silent:
            cutoff = None
            notes.append("--cutoff auto: the audio is silent; not low-passed")
        elif bandwidth.full_band:
            cutoff = None
            notes.append(
                f"--cutoff auto: the audio reaches {bandwidth.hz / 1000:.1f} kHz (no codec cutoff found); not low-passed"
            )
        else:
            cutoff = float(np.clip(bandwidth.hz, MIN_CONTROL_HZ, nyquist - CUTOFF_TRANSITION_HZ))
            notes.append(f"--cutoff auto: low-passed at {cutoff / 1000:.1f} kHz, the measured bandwidth")
    if keep_lows == "auto":
        assert bandwidth is not None
        crossover = bandwidth.hz - KEEP_LOWS_MARGIN_HZ
        if bandwidth.silent or crossover < MIN_CONTROL_HZ:
            keep_lows = None
            notes.append(
                f"--keep-lows auto: no band to keep (bandwidth {bandwidth.hz / 1000:.1f} kHz); output is the restoration"
            )
        else:
            keep_lows = float(min(crossover, nyquist - CROSSOVER_WIDTH_HZ / 2))
            notes.append(
                f"--keep-lows auto: the input is kept below {keep_lows / 1000:.1f} kHz "
                f"({KEEP_LOWS_MARGIN_HZ / 1000:g} kHz under its {bandwidth.hz / 1000:.1f} kHz bandwidth)"
            )
    if options.stereo == "mid-side" and channels != 2:
        what = "mono" if channels == 1 else f"{channels} channels"
        notes.append(
            f"--stereo mid-side is for stereo files; this one is {what}, restored channel by channel"
        )
    return replace(options, cutoff=cutoff, keep_lows=keep_lows), tuple(notes)
