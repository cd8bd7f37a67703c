"""Consecutive chunks without recomputing their shared context.

Exact chunking (:mod:`apollo_cli.inference`) gives each chunk's window the context
its core's receptive field needs, and the model computes that context again in
every window: at a junction between two chunks, the frames around it are computed
by both, layer after layer (about 0.67 s of audio's work per junction and channel
for the full-size model, 2-3 % of a long file's).

When the same audio's chunks run one after another, the second window does not need
to: the first one has already computed, at every level of the residual stream (the
input of each time block, and the output), the frames the second one would compute
there again. A :class:`Carry` holds, per level, the last few of them (those the next
window's first new frames read, ``2 × pad`` each, and the output frames its kept
samples overlap); the next window takes them and computes only frames that no earlier
window computed. The total work of a restore is then that of the whole file at once.

Frames are the same computation either way (the per-frame arithmetic does not depend
on where a frame sits in its window), so the output equals the recomputed one within
float32 rounding, as chunked inference already equals whole-file inference.

:func:`plan` states which frames each level needs, computes and must hold; the model
(:meth:`apollo_cli.model.Apollo.forward`) follows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Carry:
    """What one window leaves to the next window of the same audio (``Apollo.forward(carry=...)``).

    Pass one ``Carry`` to the model for each window of one stream of audio (one
    channel, or the same channels together), in order and with nothing skipped: each
    call reads what the previous window left and replaces it with its own. A new
    ``Carry`` is empty: the first window computes all of its context, as without one.

    ``levels[j]`` is ``(first, frames)``: frames ``(n, B, K, N)`` of level ``j`` of
    the residual stream, the first at frame ``first`` counted from the frame where
    the window's kept samples end (the next window's kept samples begin there).
    """

    levels: list[tuple[int, Tensor]] = field(default_factory=list)
    #: The buffer ``levels`` are in, and one free for the next window to fill: two
    #: buffers take turns, so that windows after the second allocate none.
    buffers: tuple[Tensor | None, Tensor | None] = field(default=(None, None), repr=False)


@dataclass(frozen=True)
class LevelPlan:
    """Which frames of one window each level of the residual stream needs, computes and holds.

    Levels ``0 .. blocks``: level ``j < blocks`` is the input of time block ``j``
    (after the across-band step where a layer starts), level ``blocks`` the output.
    Frames are the window's STFT frames; spans are ``(start, stop)``.
    """

    #: Frames of level ``j`` that the window's kept samples depend on.
    need: tuple[tuple[int, int], ...]
    #: Frames the window computes at level ``j`` (those of ``need`` no earlier window did).
    new: tuple[tuple[int, int], ...]
    #: The first frame level ``j`` must hold once complete: read by the next block, or left to the next window.
    hold: tuple[int, ...]
    #: Frames of level ``j`` taken from the previous window, as ``(first frame, frames)``; empty without.
    given: tuple[tuple[int, Tensor], ...]

    @property
    def start(self) -> int:
        """The first frame the window's residual stream must have room for."""
        return min(self.hold)

    def place(self, level: int, view: Callable[[int, int], Tensor]) -> None:
        """Write level ``level``'s given frames that it must hold into the residual stream (``view(a, b)``: frames a..b)."""
        if not self.given:
            return
        first, frames = self.given[level]
        a, b = max(first, self.hold[level]), min(first + frames.shape[0], self.new[level][0])
        if b > a:
            view(a, b).copy_(frames[a - first : b - first])


def plan(
    lo: int,
    hi: int,
    frames: int,
    pad: int,
    blocks: int,
    carry: Carry | None = None,
    anchor: int | None = None,
    shape: tuple[int, ...] = (),
) -> LevelPlan:
    """The :class:`LevelPlan` of a window of ``frames`` whose kept samples depend on output frames ``lo..hi``.

    Each of the ``blocks`` time blocks widens what is needed by ``pad`` frames on each
    side. With ``carry`` (left by the previous window), ``anchor`` (the frame where
    this window's kept samples begin) and ``shape`` (a frame's, ``(B, K, N)``), the
    frames it holds are taken, not computed again; a carry that does not fit (frames
    of another shape, a gap between the windows) is not used.
    """
    first, last = max(0, lo - pad * blocks), min(frames, hi + pad * blocks)
    need = tuple(
        (max(lo - pad * (blocks - j), first), min(hi + pad * (blocks - j), last)) for j in range(blocks + 1)
    )

    def fitted(given: tuple[tuple[int, Tensor], ...]) -> LevelPlan:
        new = tuple(
            (min(max(start, given[j][0] + given[j][1].shape[0]) if given else start, stop), stop)
            for j, (start, stop) in enumerate(need)
        )
        # A level is read by the next block from ``pad`` before that block's first new frame;
        # the output from ``lo``.
        hold = (*(max(first, new[j + 1][0] - pad) for j in range(blocks)), lo)
        return LevelPlan(need, new, hold, given)

    if (
        carry is None
        or anchor is None
        or len(carry.levels) != blocks + 1
        or any(tuple(level.shape[1:]) != shape for _, level in carry.levels)
    ):
        return fitted(())
    levels = fitted(tuple((anchor + start, level) for start, level in carry.levels))
    # The given frames must reach back to what each level holds and on to its first new frame.
    if all(
        at <= min(hold, start) and at + given.shape[0] >= start
        for (at, given), hold, (start, _) in zip(levels.given, levels.hold, levels.new, strict=True)
    ):
        return levels
    return fitted(())  # not the previous window of this one: compute everything


class Handover:
    """What a window leaves to the next one (:attr:`Carry.levels`), gathered level by level.

    The next window's kept samples begin at sample ``stop`` of this one: frame
    ``stop // hop``, the anchor the carry counts from. Of the output level it gets
    the frames those samples overlap (from ``stop // hop - 1``, its first needed
    output frame); of the others, the frames its first new frames of the level above
    read (from ``pad`` before the end of that level here). All in one buffer of the
    carry's two, which take turns: windows after the second allocate none.
    Nothing is left when ``stop`` is not on the hop grid (no window follows on the same grid).
    """

    def __init__(self, levels: LevelPlan, pad: int, stop: int, hop: int, like: Tensor, carry: Carry) -> None:
        self.carry = carry
        self.anchor = stop // hop
        count = len(levels.need)
        self.spans: list[tuple[int, int]] = []
        if stop % hop == 0:
            for level, (_, end) in enumerate(levels.need):
                start = self.anchor - 1 if level == count - 1 else levels.need[level + 1][1] - pad
                start = min(max(start, levels.hold[level]), end)
                self.spans.append((start, end))
        frames = sum(end - start for start, end in self.spans)
        spare = carry.buffers[1]
        if spare is None or spare.shape[0] < frames or spare.shape[1:] != like.shape[1:]:
            spare = like.new_empty(frames, *like.shape[1:])
        self._store = spare
        self._levels: list[tuple[int, Tensor]] = []

    def take(self, level: int, view: Callable[[int, int], Tensor]) -> None:
        """Copy level ``level``'s frames to leave, once it is complete in the residual stream (``view(a, b)``)."""
        if not self.spans:
            return
        start, end = self.spans[level]
        at = sum(b - a for a, b in self.spans[:level])
        frames = self._store[at : at + end - start]
        frames.copy_(view(start, end))
        self._levels.append((start - self.anchor, frames))

    def give(self) -> None:
        """Hand what was gathered to the carry (emptied when this window leaves nothing)."""
        carry = self.carry
        carry.levels = self._levels if self.spans and len(self._levels) == len(self.spans) else []
        carry.buffers = (self._store, carry.buffers[0])
