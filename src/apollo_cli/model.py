"""An inference-only implementation of the Apollo generator.

Written from the description of the published model (band-split STFT features,
band-sequence blocks that alternate attention across bands with depthwise
convolutions along time, band-wise GLU decoders). The module tree and parameter
names mirror the published checkpoints, so their state dicts load unchanged.

Internally every activation is kept "channels last", shaped ``(B, T, K, N)``
(batch, frames, bands, features): each 1×1 convolution of the original is then a
plain matrix product over the last axis and no transposes are needed between the
across-band and along-time steps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import compiled
from .errors import CheckpointError

#: Heads of the across-band attention; fixed in every published model.
HEADS = 8
#: Length of the rotary tables stored in checkpoints (positions, not bands).
ROPE_POSITIONS = 100
#: Added inside the square root of each band's gain: float32 machine epsilon.
GAIN_EPS = 1.1920929e-07
#: Added to the mean square in every RMSNorm.
NORM_EPS = 1e-5
#: Depthwise convolution along time: kernel and residual blocks per layer.
TIME_KERNEL = 7
TIME_BLOCKS = 3


@dataclass(frozen=True)
class ApolloConfig:
    """The hyper-parameters of one Apollo generator.

    Everything but ``sample_rate`` is read back from a checkpoint's shapes by
    :func:`config_from_state_dict`.
    """

    feature_dim: int = 256
    layers: int = 6
    band_widths: tuple[int, ...] = (5,) * 79 + (47,)
    win: int = 882
    sample_rate: int = 44100

    @property
    def hop(self) -> int:
        """STFT hop in samples (half a window)."""
        return self.win // 2

    @property
    def bins(self) -> int:
        """One-sided STFT bins."""
        return self.win // 2 + 1

    @property
    def bands(self) -> int:
        """Number of frequency bands."""
        return len(self.band_widths)

    @property
    def receptive_frames(self) -> int:
        """Frames of context each side that can influence one output frame.

        Three depthwise convolutions of kernel 7 per layer widen the view by 9
        frames each side; the STFT's 50 % overlap adds one more.
        """
        return self.layers * TIME_BLOCKS * (TIME_KERNEL // 2) + 1

    @classmethod
    def for_sample_rate(
        cls, sample_rate: int = 44100, win_ms: int = 20, feature_dim: int = 256, layers: int = 6
    ) -> ApolloConfig:
        """The band layout the reference derives from a sample rate and window."""
        win = int(sample_rate * win_ms // 1000)
        bins = win // 2 + 1
        bw = int(win / 160)
        n_full = bins // bw
        widths = (bw,) * n_full
        if bins - n_full * bw:
            widths += (bins - n_full * bw,)
        return cls(feature_dim, layers, widths, win, sample_rate)


def config_from_state_dict(state: Mapping[str, Tensor], sample_rate: int = 44100) -> ApolloConfig:
    """Read an :class:`ApolloConfig` from the shapes of a generator state dict.

    Raises :class:`CheckpointError` when the keys are not those of an Apollo
    generator.
    """
    try:
        feature_dim = int(state["BN.0.1.weight"].shape[0])
    except KeyError:
        raise CheckpointError(
            "this checkpoint holds no Apollo generator weights (no 'BN.0.1.weight')"
        ) from None
    band_widths = []
    while f"BN.{len(band_widths)}.0.weight" in state:
        channels = int(state[f"BN.{len(band_widths)}.0.weight"].shape[0])
        band_widths.append((channels - 1) // 2)
    layer_ids = {int(m.group(1)) for k in state if (m := re.match(r"net\.(\d+)\.", k))}
    layers = max(layer_ids) + 1 if layer_ids else 0
    bins = sum(band_widths)
    win = 2 * (bins - 1)
    if feature_dim % HEADS or layers == 0 or bins < 2:
        raise CheckpointError(
            f"this checkpoint's shapes are not an Apollo generator's "
            f"(feature_dim={feature_dim}, layers={layers}, bins={bins})"
        )
    return ApolloConfig(feature_dim, layers, tuple(band_widths), win, sample_rate)


def normalize(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x * rsqrt(mean(x²) + eps)`` over the last axis: RMSNorm without its gain.

    Computed in float32 and written straight out in ``dtype`` (the dtype of the
    matrix product that always follows), in two passes over ``x``. The gain is
    folded into that product's weight (:meth:`Conv1x1.forward`'s ``gain``):
    ``W (g ⊙ y) = (W diag g) y``. Both steps matter on the CPU, where
    ``F.rms_norm`` with a weight runs a slow generic kernel (measured 16× slower
    than without one, torch 2.13).
    """
    xf = x.float()
    scale = torch.linalg.vector_norm(xf, dim=-1, keepdim=True)
    scale = scale.square_().mul_(1.0 / x.shape[-1]).add_(NORM_EPS).rsqrt_()
    return torch.mul(xf, scale, out=torch.empty(x.shape, dtype=dtype, device=x.device))


def _compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype matrix products run in: autocast's when it is on, else ``x``'s."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


class _Derived:
    """A cache of tensors derived from a module's parameters (packed, folded, cast).

    Entries are keyed by what they were made for (dtype, device) and remember the
    version counters of the parameters they came from, so loading new weights
    or changing them in place rebuilds them. They are not state: copies and
    pickles of the module start without them.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[tuple[int, ...], object]] = {}

    def get(self, key: tuple, params: list[Tensor], build):  # type: ignore[no-untyped-def]
        versions = tuple(p._version for p in params) + tuple(id(p) for p in params)
        cached = self._entries.get(key)
        if cached is None or cached[0] != versions:
            with torch.no_grad():
                cached = (versions, build())
            self._entries[key] = cached
        return cached[1]

    def __deepcopy__(self, memo: dict) -> _Derived:
        return _Derived()

    def __getstate__(self) -> dict:
        return {"_entries": {}}


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last axis, with a gain, no bias.

    The model applies its norms as :func:`normalize` plus a gain folded into the
    next product; this ``forward`` is the plain definition, for other callers.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return normalize(x, x.dtype) * self.weight.to(x.dtype)


def _onednn_usable() -> bool:
    """Whether oneDNN's prepacked linear (what torch.compile uses on CPUs) works here."""
    try:
        w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2), 1)
        y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), w, None, "none", [], "")
        return bool(torch.backends.mkldnn.is_available() and y.shape == (1, 2))
    except (AttributeError, RuntimeError):
        return False


#: oneDNN's matrix products are about 1.5× faster than the default BLAS for these
#: shapes on the CPUs we measured (AMD EPYC, float32), and fuse the SiLU that
#: follows two of the projections. Elsewhere we fall back to ``F.linear``.
#: ``APOLLO_ONEDNN=0`` turns it off (to compare, or to work around a broken build).
USE_ONEDNN = os.environ.get("APOLLO_ONEDNN", "1") != "0" and _onednn_usable()


class Conv1x1(nn.Module):
    """A 1×1 ``Conv1d`` of the checkpoint, applied as a product over the last axis.

    The weight keeps the checkpoint's ``(out, in, 1)`` shape so state dicts load
    as they are. The weight actually used (cast to the compute dtype, with the
    preceding norm's gain folded in, and on the CPU prepacked for oneDNN) is made
    once and cached until the parameters change.
    """

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim_out, dim_in, 1))
        self.bias = nn.Parameter(torch.zeros(dim_out)) if bias else None
        self._derived = _Derived()

    def forward(self, x: Tensor, silu: bool = False, gain: Tensor | None = None) -> Tensor:
        """``(x ⊙ gain) @ W.T + b`` over the last axis, then SiLU when ``silu``.

        ``gain`` is the weight of the RMSNorm that produced ``x`` (see
        :func:`normalize`); it is folded into ``W`` rather than applied to ``x``.
        """
        dtype = _compute_dtype(x)
        onednn = USE_ONEDNN and x.device.type == "cpu"
        weight, bias = self._weights(dtype, x.device, gain, onednn)
        if onednn:
            return torch.ops.mkldnn._linear_pointwise(
                x.to(dtype), weight, bias, "swish" if silu else "none", [], ""
            )
        y = F.linear(x.to(dtype), weight, bias)
        return F.silu(y, inplace=True) if silu else y

    def folded(
        self, dtype: torch.dtype, device: torch.device, gain: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The plain ``(out, in)`` weight with ``gain`` folded in, and the bias, in ``dtype`` (cached)."""
        return self._weights(dtype, device, gain, onednn=False)

    def _weights(
        self, dtype: torch.dtype, device: torch.device, gain: Tensor | None, onednn: bool
    ) -> tuple[Tensor, Tensor | None]:
        params = [p for p in (self.weight, self.bias, gain) if p is not None]
        return self._derived.get(
            (dtype, device, onednn), params, lambda: self._effective(dtype, gain, onednn)
        )

    def _effective(
        self, dtype: torch.dtype, gain: Tensor | None, onednn: bool
    ) -> tuple[Tensor, Tensor | None]:
        weight = self.weight.detach().squeeze(-1)
        if gain is not None:
            weight = weight * gain.detach()  # folded in float32, then cast once
        weight = weight.to(dtype)
        if onednn:  # 2560: the rows per product the slicing in Apollo.forward aims at
            weight = torch.ops.mkldnn._reorder_linear_weight(weight, 2560)
        bias = None if self.bias is None else self.bias.detach().to(dtype)
        return weight, bias


class DepthwiseConv(nn.Module):
    """Depthwise convolution along time, kernel 7, zero padding 3 (``conv.0``).

    Applied by :class:`TimeBlock` on small windows of frames, as a weighted sum of
    shifted views, so the layout never changes and the data stays in cache.
    """

    def __init__(self, dim: int, kernel: int = TIME_KERNEL) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, window: Tensor, frames: int) -> Tensor:
        """``window`` holds ``frames + kernel - 1`` frames along axis 0 (padding included)."""
        # (kernel, N), contiguous: a strided tap row makes each product ~5× slower.
        taps = self.weight[:, 0, :].t().contiguous()
        out = torch.addcmul(self.bias, window[0:frames], taps[0])
        for j in range(1, taps.shape[0]):
            out.addcmul_(window[j : j + frames], taps[j])
        return out


class Bands(nn.ModuleList):
    """One small module per band, applied as a few batched products.

    Bands of equal width share a shape, so their weights are stacked and applied
    with a single ``einsum``; the published layout has two such groups.
    """

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        super().__init__(modules)
        self._derived = _Derived()

    def groups(self) -> list[tuple[int, int]]:
        """Runs ``(start, stop)`` of consecutive bands whose modules have equal shapes."""
        runs: list[tuple[int, int]] = []
        for i, module in enumerate(self):
            shape = module[1].weight.shape  # type: ignore[index]
            if runs and self[runs[-1][0]][1].weight.shape == shape:  # type: ignore[index]
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        return runs

    def apply_run(self, start: int, stop: int, x: Tensor) -> Tensor:
        """Norm and 1×1 conv of bands ``start:stop``; ``x`` is ``(..., G, C)``."""
        dtype = _compute_dtype(x)
        mods = list(self)[start:stop]
        params = [p for m in mods for p in (m[0].weight, m[1].weight, m[1].bias)]

        def stacked() -> tuple[Tensor, Tensor]:
            gains = torch.stack([m[0].weight for m in mods])[:, None, :]  # (G, 1, C)
            weights = torch.stack([m[1].weight.squeeze(-1) for m in mods]) * gains
            biases = torch.stack([m[1].bias for m in mods])
            return weights.to(dtype), biases.to(dtype)

        weights, biases = self._derived.get((start, stop, dtype, x.device), params, stacked)
        return torch.einsum("...gc,goc->...go", normalize(x, dtype), weights) + biases


def _band_module(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(RMSNorm(dim_in), Conv1x1(dim_in, dim_out))


def rotary_tables(positions: int, head_dim: int) -> tuple[Tensor, Tensor]:
    """Cosine and sine tables ``(positions, head_dim)``, each frequency twice."""
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.arange(positions, dtype=torch.float32)[:, None] * inv[None, :]
    angles = angles.repeat_interleave(2, dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, rotation: Tensor) -> Tensor:
    """Rotate interleaved pairs ``(2j, 2j+1)``: ``(a, b) -> (a cos - b sin, b cos + a sin)``.

    That is the product of the complex number ``a + ib`` with ``cos + i sin``, so it
    runs as one complex multiplication (``rotation`` is ``(positions, d/2)``
    complex), several times faster than the same arithmetic on real pairs. The
    result is float32 whatever ``x`` is (there is no complex bfloat16).
    """
    pairs = x.float().unflatten(-1, (-1, 2))
    return torch.view_as_real(torch.view_as_complex(pairs) * rotation).flatten(-2)


class BandAttention(nn.Module):
    """Pre-norm transformer block across the band axis (``net.{l}.band_net``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.heads = HEADS
        head_dim = dim // HEADS
        self.input_norm = RMSNorm(dim)
        self.weight = Conv1x1(dim, 3 * dim, bias=False)
        self.output = Conv1x1(dim, dim, bias=False)
        self.MLP = nn.Sequential(RMSNorm(dim), Conv1x1(dim, 8 * dim, bias=False))
        self.MLP_output = Conv1x1(4 * dim, dim, bias=False)
        cos, sin = rotary_tables(ROPE_POSITIONS, head_dim)
        self.register_buffer("cos_freq", cos)
        self.register_buffer("sin_freq", sin)

    def forward(self, x: Tensor) -> Tensor:
        """Update ``x`` shaped ``(R, K, N)`` (R independent sets of K band tokens) in place."""
        rows, bands, dim = x.shape
        head_dim = dim // self.heads
        dtype = _compute_dtype(x)
        qkv = self.weight(normalize(x, dtype), gain=self.input_norm.weight)
        # Head-major channels: per head, q then k then v, each head_dim wide.
        qkv = qkv.view(rows, bands, self.heads, 3, head_dim)
        # q and k rotated together, in one pass. The stored tables repeat each
        # frequency for both members of a pair.
        rotation = torch.complex(self.cos_freq[:bands, ::2], self.sin_freq[:bands, ::2])
        qk = apply_rotary(qkv[..., :2, :], rotation[:, None, None, :])
        q, k = qk.permute(3, 0, 2, 1, 4).unbind(0)  # each (R, heads, K, d)
        v = qkv[..., 2, :].transpose(1, 2)
        # Attention itself runs in float32 on the CPU: there it is faster than in
        # bfloat16 (q and k are float32 already), and it is a small part of the work.
        if x.device.type == "cpu":
            v = v.float()
        att = F.scaled_dot_product_attention(q.to(v.dtype), k.to(v.dtype), v)
        # att is laid out (R, K, heads, d) in memory, so this reshape is a view.
        x += self.output(att.transpose(1, 2).reshape(rows, bands, dim))
        # Gated MLP. SiLU is applied to the whole projection and once more to the
        # gate half: that is the published model. The product is written to a new
        # contiguous tensor, which the next matrix product reads without a copy.
        norm, project = self.MLP
        gate, z = project(normalize(x, dtype), silu=True, gain=norm.weight).chunk(2, dim=-1)
        x += self.MLP_output(F.silu(gate).mul_(z))
        return x

    def forward_compiled(self, x: Tensor, rows: int) -> Tensor:
        """:meth:`forward` through :func:`apollo_cli.compiled.band_slice`, ``x`` padded to ``rows``."""
        dtype = _compute_dtype(x)
        w_qkv, _ = self.weight.folded(dtype, x.device, self.input_norm.weight)
        w_out, _ = self.output.folded(dtype, x.device)
        w_mlp, _ = self.MLP[1].folded(dtype, x.device, self.MLP[0].weight)
        w_mlp_out, _ = self.MLP_output.folded(dtype, x.device)
        bands = x.shape[1]
        out = compiled.compiled("band")(
            compiled.pad_rows(x, rows), w_qkv, w_out, w_mlp, w_mlp_out,
            self.cos_freq[:bands, ::2], self.sin_freq[:bands, ::2], self.heads, dtype,
        )
        return x.copy_(out[: x.shape[0]])


class TimeBlock(nn.Module):
    """Residual block along time: depthwise conv, norm, 1×1 up, SiLU, 1×1 down."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            DepthwiseConv(dim),
            RMSNorm(dim),
            Conv1x1(dim, 4 * dim),
            nn.SiLU(),
            Conv1x1(4 * dim, dim),
        )

    def forward(self, x: Tensor, lo: int, hi: int, step: int, use_compiled: bool = False) -> Tensor:
        """Update frames ``lo:hi`` of ``x`` (``(T, B, K, N)``) to ``x + block(x)``, in place.

        Returns the view ``x[lo:hi]``. Works through ``step`` frames at a time so the
        4N-wide intermediate stays small, and in place so that only one copy of the
        residual stream exists: each slice's update is held back until the next
        slice's convolution has read the frames it needs as they were. Frames
        outside ``x`` are the convolution's zero padding. ``use_compiled`` computes each
        slice with :func:`apollo_cli.compiled.time_slice`.
        """
        dwconv, norm, up, _, down = self.conv
        pad = TIME_KERNEL // 2
        frames = x.shape[0]
        pending: tuple[int, int, Tensor] | None = None
        for s in range(lo, hi, step):
            e = min(s + step, hi)
            a, b = max(0, s - pad), min(frames, e + pad)
            window = x[a:b]
            if a != s - pad or b != e + pad:
                window = F.pad(window, (0, 0, 0, 0, 0, 0, a - (s - pad), (e + pad) - b))
            dtype = _compute_dtype(window)
            if use_compiled:
                h = self._compiled_update(compiled.pad_rows(window, step + 2 * pad), dtype)[: e - s]
            else:
                h = down(up(normalize(dwconv(window, e - s), dtype), silu=True, gain=norm.weight))
            # The previous slice's update waits until this slice's convolution has
            # read the frames before ``s`` as they were.
            if pending is not None:
                x[pending[0] : pending[1]] += pending[2]
            pending = (s, e, h)
        if pending is not None:
            x[pending[0] : pending[1]] += pending[2]
        return x[lo:hi]

    def _compiled_update(self, window: Tensor, dtype: torch.dtype) -> Tensor:
        dwconv, norm, up, _, down = self.conv
        w_up, b_up = up.folded(dtype, window.device, norm.weight)
        w_down, b_down = down.folded(dtype, window.device)
        taps = dwconv.weight[:, 0, :].t().contiguous()
        return compiled.compiled("time")(window, taps, dwconv.bias, w_up, b_up, w_down, b_down, dtype)


class TimeNet(nn.Module):
    """Three residual time blocks (``net.{l}.seq_net``).

    A container only: :meth:`Apollo.forward` drives the blocks, since each needs to
    know which frames still matter.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TimeBlock(dim) for _ in range(TIME_BLOCKS))


class BandSequenceBlock(nn.Module):
    """Across bands, then along time (``net.{l}``); a container driven by :meth:`Apollo.forward`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.band_net = BandAttention(dim)
        self.seq_net = TimeNet(dim)


#: Tokens (frames × batch × bands) per slice of the wide projections for a feature
#: dimension of 256 (scaled inversely for others), by device type: on a CPU about
#: what keeps a slice's intermediates in cache (measured: 1280 to 5120 are within
#: 5 %, 10240 is 10 % slower); on a GPU enough to keep it busy without launching
#: thousands of small kernels.
SLICE_ROWS = {"cpu": 2560, "cuda": 1 << 17, "mps": 1 << 16}


class Apollo(nn.Module):
    """The Apollo generator: ``(B, C, S)`` waveform in, restored waveform out.

    Activations are laid out ``(T, B, K, N)``: frames first, so that dropping frames
    at either end is a view, and features last, so that every 1×1 convolution is a
    plain matrix product. Large intermediates (the 4N- and 8N-wide projections)
    only ever exist for a slice of about :data:`SLICE_ROWS` tokens.
    """

    def __init__(self, config: ApolloConfig | None = None) -> None:
        super().__init__()
        self.config = config or ApolloConfig()
        n = self.config.feature_dim
        widths = self.config.band_widths
        self.BN = Bands(_band_module(2 * w + 1, n) for w in widths)
        self.net = nn.ModuleList(BandSequenceBlock(n) for _ in range(self.config.layers))
        self.output = Bands(_band_module(n, 4 * w) for w in widths)
        self.register_buffer("window", torch.hann_window(self.config.win), persistent=False)

    def forward(
        self, wav: Tensor, keep: tuple[int, int] | None = None, use_compiled: bool = False
    ) -> Tensor:
        """Restore a batch of waveforms shaped ``(B, C, S)``.

        Returns ``(B, C, S)``, or with ``keep=(start, stop)`` only those samples,
        equal to the corresponding part of the full output. Frames that cannot
        influence the kept samples are dropped as soon as they stop mattering,
        which is what makes chunked inference cost little more than the chunks.
        ``use_compiled`` runs the blocks through :mod:`apollo_cli.compiled`
        (``torch.compile``; see :func:`apollo_cli.compiled.check_available`).
        """
        batch, channels, samples = wav.shape
        start, stop = keep if keep is not None else (0, samples)
        spec = self.stft(wav.reshape(batch * channels, samples))  # (T, B', F)
        frames = spec.shape[0]
        # Output samples [start, stop) are overlap-added from frames
        # start // hop .. (stop - 1) // hop + 1; one more each side for safety.
        hop = self.config.hop
        lo = max(0, start // hop - 1)
        hi = min(frames, (stop - 1) // hop + 3)
        # Each time block widens what is needed by its padding on each side.
        pad = TIME_KERNEL // 2
        blocks = self.config.layers * TIME_BLOCKS
        first, last = max(0, lo - pad * blocks), min(frames, hi + pad * blocks)
        rows_per_frame = batch * channels * self.config.bands
        rows = SLICE_ROWS.get(wav.device.type, 1 << 16) * 256 // self.config.feature_dim
        step = max(8, rows // rows_per_frame)
        x = self.encode(spec[first:last], step)
        offset = first  # absolute frame index of x[0]
        done = 0
        for layer in self.net:
            tokens = x.view(-1, *x.shape[2:])
            band_step = step * x.shape[1]
            for s in range(0, tokens.shape[0], band_step):
                if use_compiled:
                    layer.band_net.forward_compiled(tokens[s : s + band_step], band_step)
                else:
                    layer.band_net(tokens[s : s + band_step])
            for block in layer.seq_net.blocks:
                done += 1
                margin = pad * (blocks - done)
                new_lo, new_hi = max(lo - margin, first), min(hi + margin, last)
                x = block(x, new_lo - offset, new_hi - offset, step, use_compiled)
                offset = new_lo
        restored = torch.zeros(frames, batch * channels, self.config.bins, dtype=torch.complex64, device=wav.device)
        self.decode(x, restored[offset : offset + x.shape[0]], step)
        out = self.istft(restored, samples)[:, start:stop]
        return out.reshape(batch, channels, stop - start)

    # The spectral transforms stay in float32 whatever the surrounding precision:
    # reduced precision here costs far more quality than it saves time.
    def stft(self, wav: Tensor) -> Tensor:
        """``(B, S)`` float waveform to a ``(T, B, bins)`` complex spectrum."""
        cfg = self.config
        with torch.autocast(wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float(), cfg.win, cfg.hop, window=self.window, center=True,
                pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
            )
        return spec.permute(2, 0, 1)

    def istft(self, spec: Tensor, samples: int) -> Tensor:
        """``(T, B, bins)`` complex spectrum back to a ``(B, samples)`` waveform."""
        cfg = self.config
        with torch.autocast(spec.device.type, enabled=False):
            return torch.istft(
                spec.permute(1, 2, 0), cfg.win, cfg.hop, window=self.window, center=True,
                normalized=False, onesided=True, length=samples,
            )

    def encode(self, spec: Tensor, step: int) -> Tensor:
        """Band features of a ``(T, B, bins)`` spectrum, encoded to ``(T, B, K, N)`` float32.

        Slice by slice of ``step`` frames, straight into the result, so no other
        tensor of the residual stream's size is ever made.
        """
        frames, batch, _ = spec.shape
        x = torch.empty(frames, batch, self.config.bands, self.config.feature_dim, device=spec.device)
        for s in range(0, frames, step):
            piece = spec[s : s + step]
            offset = 0
            for start, stop in self.BN.groups():
                width = self.config.band_widths[start]
                count = stop - start
                band = piece[..., offset : offset + width * count].unflatten(-1, (count, width))
                offset += width * count
                gain = torch.sqrt(band.real.pow(2).sum(-1, keepdim=True)
                                  + band.imag.pow(2).sum(-1, keepdim=True) + GAIN_EPS)
                feats = torch.cat((band.real / gain, band.imag / gain, gain.log()), dim=-1)
                x[s : s + step, :, start:stop] = self.BN.apply_run(start, stop, feats)
        return x

    def decode(self, x: Tensor, out: Tensor, step: int) -> None:
        """``(T, B, K, N)`` features to the restored ``(T, B, bins)`` complex spectrum ``out``."""
        for s in range(0, x.shape[0], step):
            offset = 0
            for start, stop in self.output.groups():
                width = self.config.band_widths[start]
                y = self.output.apply_run(start, stop, x[s : s + step, :, start:stop]).float()
                value, gate = y.chunk(2, dim=-1)
                y = value * torch.sigmoid(gate)  # GLU over channels
                bins = width * (stop - start)
                out[s : s + step, :, offset : offset + bins] = torch.complex(
                    y[..., :width], y[..., width:]
                ).flatten(-2)
                offset += bins
