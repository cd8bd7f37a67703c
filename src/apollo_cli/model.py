"""An inference-only implementation of the Apollo generator.

Written from the description of the published model (band-split STFT features,
band-sequence blocks that alternate attention across bands with depthwise
convolutions along time, band-wise GLU decoders). The module tree and parameter
names mirror the published checkpoints, so their state dicts load unchanged.

Internally every activation is kept "channels last", shaped ``(T, B, K, N)``
(frames, batch, bands, features): each 1×1 convolution of the original is then a
plain matrix product over the last axis and no transposes are needed between the
across-band and along-time steps.

The arithmetic of a layer is stated once, as two functions of plain tensors:
:func:`band_slice` (the across-band block) and :func:`time_update` (a time block's
update). The modules only hold the checkpoint's weights and hand these functions
their operands (on CPUs, oneDNN-prepacked weights); :mod:`apollo_cli.compiled`
compiles the same two functions for ``--compile``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import carry as carry_frames
from . import compiled
from .errors import CheckpointError

if TYPE_CHECKING:
    from .carry import Carry
    from .provenance import ModelSource

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
    band_widths: list[int] = []
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
    folded into that product's weight (:meth:`Conv1x1.weights`' ``gain``):
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


_T = TypeVar("_T")


class _Derived:
    """A cache of tensors derived from a module's parameters (packed, folded, cast).

    Entries are keyed by what they were made for (dtype, device) and remember the
    version counters of the parameters they came from, so loading new weights
    or changing them in place rebuilds them. They are not state: copies and
    pickles of the module start without them.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[object, ...], tuple[tuple[int, ...], object]] = {}

    def get(self, key: tuple[object, ...], params: list[Tensor], build: Callable[[], _T]) -> _T:
        """The entry for ``key``: ``build()``'s result, made again when ``params`` have changed."""
        versions = tuple(p._version for p in params) + tuple(id(p) for p in params)
        cached = self._entries.get(key)
        if cached is None or cached[0] != versions:
            with torch.no_grad():
                cached = (versions, build())
            self._entries[key] = cached
        # Each owner builds a key's entry the same way every time, so it holds what build() returns.
        return cast(_T, cached[1])

    def __deepcopy__(self, memo: dict[int, object]) -> _Derived:
        return _Derived()

    def __getstate__(self) -> dict[str, object]:
        return {"_entries": {}}


class RMSNorm(nn.Module):
    """The gain of a root-mean-square normalisation over the last axis (no bias).

    A holder of the checkpoint's weight only: the model applies its norms as
    :func:`normalize` with this gain folded into the next product's weight.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


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


def packed_products(device: torch.device) -> bool:
    """Whether eager products on ``device`` take oneDNN's prepacked weights (:data:`USE_ONEDNN`)."""
    return USE_ONEDNN and device.type == "cpu"


def _product(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool) -> Tensor:
    if weight.is_mkldnn:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "swish" if silu else "none", [], "")
    y = F.linear(x, weight, bias)
    return F.silu(y, inplace=True) if silu else y


@torch.library.custom_op("apollo_cli::linear", mutates_args=())
def _product_op(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool) -> Tensor:
    """:func:`linear` as one operator that ``torch.compile`` traces without looking inside."""
    return _product(x, weight, bias, silu)


@_product_op.register_fake
def _(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool) -> Tensor:
    # A prepacked weight keeps its logical (out, in) size.
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, silu: bool = False) -> Tensor:
    """``x @ weight.T + bias`` over the last axis, then SiLU when ``silu``.

    ``weight`` is a plain ``(out, in)`` matrix, or one prepacked for oneDNN (see
    :meth:`Conv1x1.weights`): then oneDNN's product runs, with the SiLU fused in.

    Under ``torch.compile`` it is one opaque operator (``apollo_cli::linear``): the
    compiler works on what lies between the products and calls each product as it
    runs eagerly (one call to oneDNN, the BLAS or cuBLAS), since it cannot take
    prepacked weights (it reads them as dense tensors, torch 2.13). Being an operator
    rather than a graph break, it leaves each compiled function one graph.
    """
    if torch.compiler.is_compiling():
        return _product_op(x, weight, bias, silu)
    return _product(x, weight, bias, silu)


class Conv1x1(nn.Module):
    """A 1×1 ``Conv1d`` of the checkpoint, applied as a product over the last axis.

    The weight keeps the checkpoint's ``(out, in, 1)`` shape so state dicts load
    as they are. The weight actually used (cast to the compute dtype, with the
    preceding norm's gain folded in, and for the eager CPU path prepacked for
    oneDNN) is made once and cached until the parameters change.
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
        weight, bias = self.weights(dtype, x.device, gain, packed_products(x.device))
        return linear(x.to(dtype), weight, bias, silu)

    def weights(
        self, dtype: torch.dtype, device: torch.device, gain: Tensor | None = None, packed: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """The ``(out, in)`` weight with ``gain`` folded in, and the bias, in ``dtype`` (cached).

        With ``packed`` the weight is prepacked for oneDNN (for :func:`linear`).
        """
        return self.split_weights(1, dtype, device, gain, packed)[0]

    def split_weights(
        self,
        parts: int,
        dtype: torch.dtype,
        device: torch.device,
        gain: Tensor | None = None,
        packed: bool = False,
    ) -> list[tuple[Tensor, Tensor | None]]:
        """:meth:`weights` cut into ``parts`` equal runs of output channels, each its own matrix (cached).

        Each part's product computes exactly those output channels of the whole product.
        """
        params = [p for p in (self.weight, self.bias, gain) if p is not None]
        return self._derived.get(
            (parts, dtype, device, packed), params, lambda: self._effective(parts, dtype, gain, packed)
        )

    def _effective(
        self, parts: int, dtype: torch.dtype, gain: Tensor | None, packed: bool
    ) -> list[tuple[Tensor, Tensor | None]]:
        weight = self.weight.detach().squeeze(-1)
        if gain is not None:
            weight = weight * gain.detach()  # folded in float32, then cast once
        weights = [w.contiguous() for w in weight.to(dtype).chunk(parts)]
        if packed:  # 2560: the rows per product the slicing in Apollo.forward aims at
            weights = [torch.ops.mkldnn._reorder_linear_weight(w, 2560) for w in weights]
        biases: list[Tensor | None] = (
            [None] * parts if self.bias is None else list(self.bias.detach().to(dtype).chunk(parts))
        )
        return list(zip(weights, biases, strict=True))


class DepthwiseConv(nn.Module):
    """Depthwise convolution along time, kernel 7, zero padding 3 (``conv.0``).

    Its weights only: :func:`time_update` applies it on small windows of frames.
    """

    def __init__(self, dim: int, kernel: int = TIME_KERNEL) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))

    def taps(self) -> Tensor:
        """The kernel as ``(kernel, N)``, contiguous: a strided tap row makes each product ~5× slower."""
        return self.weight.detach()[:, 0, :].t().contiguous()


class Bands(nn.ModuleList):
    """One small module per band, applied as a few batched products.

    Bands of equal width share a shape, so their weights are stacked and applied
    with a single ``einsum``; the published layout has two such groups.
    """

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        super().__init__(modules)
        self._derived = _Derived()

    def bands(self) -> list[tuple[RMSNorm, Conv1x1]]:
        """Each band's norm and 1×1 conv (see :func:`_band_module`)."""
        # nn.ModuleList and nn.Sequential type their items as plain Modules; a Bands
        # holds only _band_module's (norm, conv) pairs.
        return [cast("tuple[RMSNorm, Conv1x1]", tuple(cast(nn.Sequential, m))) for m in self]

    def groups(self) -> list[tuple[int, int]]:
        """Runs ``(start, stop)`` of consecutive bands whose modules have equal shapes."""
        runs: list[tuple[int, int]] = []
        bands = self.bands()
        for i, (_, conv) in enumerate(bands):
            shape = conv.weight.shape
            if runs and bands[runs[-1][0]][1].weight.shape == shape:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        return runs

    def apply_run(self, start: int, stop: int, x: Tensor) -> Tensor:
        """Norm and 1×1 conv of bands ``start:stop``; ``x`` is ``(..., G, C)``."""
        dtype = _compute_dtype(x)
        mods = self.bands()[start:stop]
        # A band's conv always has a bias (_band_module).
        params = [p for norm, conv in mods for p in (norm.weight, conv.weight, cast(Tensor, conv.bias))]

        def stacked() -> tuple[Tensor, Tensor]:
            gains = torch.stack([norm.weight for norm, _ in mods])[:, None, :]  # (G, 1, C)
            weights = torch.stack([conv.weight.squeeze(-1) for _, conv in mods]) * gains
            biases = torch.stack([cast(Tensor, conv.bias) for _, conv in mods])
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


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate interleaved pairs ``(2j, 2j+1)``: ``(a, b) -> (a cos - b sin, b cos + a sin)``.

    ``cos`` and ``sin`` hold one value per pair (``d/2`` wide) and broadcast against
    ``x``'s pairs. The result is float32 whatever ``x`` is. Eagerly this runs as the
    product of the complex numbers ``a + ib`` and ``cos + i sin``, several times
    faster than the same arithmetic on real pairs; TorchInductor generates no code
    for complex numbers, so under ``torch.compile`` it is spelled out on the pairs.
    """
    if torch.compiler.is_compiling():
        a, b = x[..., 0::2].float(), x[..., 1::2].float()
        return torch.stack((a * cos - b * sin, b * cos + a * sin), dim=-1).flatten(-2)
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2)


class BandParams(NamedTuple):
    """The operands of :func:`band_slice` other than the tokens.

    Product weights are ``(out, in)`` in the compute dtype with their norms' gains
    folded in, plain or prepacked for oneDNN (see :func:`linear`); the MLP's first
    projection (``MLP.1``) comes as its two halves, ``mlp_gate`` and ``mlp_value`` (see
    :func:`gated_mlp`); ``cos`` and ``sin`` are the rotary tables for the bands present,
    one value per pair ``(K, d/2)``.
    """

    qkv: Tensor
    output: Tensor
    mlp_gate: Tensor
    mlp_value: Tensor
    mlp_output: Tensor
    cos: Tensor
    sin: Tensor


def band_slice(x: Tensor, p: BandParams, heads: int, dtype: torch.dtype) -> Tensor:
    """One across-band transformer block on ``x`` shaped ``(R, K, N)``: R independent sets of K band tokens.

    Updates ``x`` (the float32 residual stream) in place and returns it. Matrix
    products run in ``dtype``. Eager and ``--compile`` both run this function
    (see :mod:`apollo_cli.compiled`).
    """
    rows, bands, dim = x.shape
    head_dim = dim // heads
    qkv = linear(normalize(x, dtype), p.qkv)
    # Head-major channels: per head, q then k then v, each head_dim wide.
    qkv = qkv.view(rows, bands, heads, 3, head_dim)
    # q and k rotated together, in one pass.
    qk = apply_rotary(qkv[..., :2, :], p.cos[:, None, None, :], p.sin[:, None, None, :])
    q, k = qk.permute(3, 0, 2, 1, 4).unbind(0)  # each (R, heads, K, d)
    v = qkv[..., 2, :].transpose(1, 2)
    # Attention runs in float32 on the CPU: there it is faster than in bfloat16
    # (measured 5.0 against 5.6 ms a slice) and q and k are float32 already. Autocast
    # lists it among the operators it runs in bfloat16 and would cast all three
    # operands down, so it is turned off around it. On GPUs the fused kernels run in
    # the compute dtype.
    if x.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):
            att = F.scaled_dot_product_attention(q, k, v.float())
    else:
        att = F.scaled_dot_product_attention(q.to(v.dtype), k.to(v.dtype), v)
    # att is laid out (R, K, heads, d) in memory, so this reshape is a view.
    x += linear(att.transpose(1, 2).reshape(rows, bands, dim).to(dtype), p.output)
    x += linear(gated_mlp(normalize(x, dtype), p.mlp_gate, p.mlp_value), p.mlp_output)
    return x


def gated_mlp(h: Tensor, gate: Tensor, value: Tensor) -> Tensor:
    """The MLP's gated hidden layer: ``SiLU(SiLU(h Wg^T)) * SiLU(h Wv^T)``.

    The published model applies SiLU to the whole projection ``MLP.1`` (``Wg`` its
    first half of output channels, ``Wv`` its second) and once more to the gate half.
    The halves run as two products, each with its SiLU fused in, so that the gating
    runs in place on contiguous memory: as one product it read the two strided
    halves of a tensor twice the size and wrote a third (measured 1.7 against 2.9 ms
    a slice in float32 on one core, and with less memory churn). The numbers are the
    same: each output channel is the same sum either way.
    """
    g = linear(h, gate, silu=True)
    return F.silu(g, inplace=True).mul_(linear(h, value, silu=True))


class TimeParams(NamedTuple):
    """The operands of :func:`time_update` other than the frames.

    ``taps`` is the depthwise kernel as ``(kernel, N)``; the products' weights are as
    in :class:`BandParams`, here with biases.
    """

    taps: Tensor
    dw_bias: Tensor
    up: Tensor
    up_bias: Tensor | None
    down: Tensor
    down_bias: Tensor | None


def time_update(window: Tensor, p: TimeParams, dtype: torch.dtype) -> Tensor:
    """What one residual time block adds to the frames of ``window`` between its padding.

    ``window`` is ``(frames + kernel - 1, ..., N)``: frames along axis 0 with the
    depthwise convolution's padding on each side. The block is depthwise conv,
    RMSNorm, 1×1 up with SiLU, 1×1 down; products in ``dtype``. Eager and
    ``--compile`` both run this function.
    """
    kernel = p.taps.shape[0]
    frames = window.shape[0] - kernel + 1
    # The depthwise convolution as a weighted sum of shifted views: the layout
    # never changes and the data stays in cache.
    h = torch.addcmul(p.dw_bias, window[0:frames], p.taps[0])
    for j in range(1, kernel):
        h.addcmul_(window[j : j + frames], p.taps[j])
    h = linear(normalize(h, dtype), p.up, p.up_bias, silu=True)
    return linear(h, p.down, p.down_bias)


class BandAttention(nn.Module):
    """Pre-norm transformer block across the band axis (``net.{l}.band_net``); see :func:`band_slice`."""

    # Registered buffers, declared for the type checker (nn.Module types them as Tensor | Module).
    cos_freq: Tensor
    sin_freq: Tensor

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

    def params(self, dtype: torch.dtype, device: torch.device, bands: int, packed: bool) -> BandParams:
        """This block's :class:`BandParams` for ``bands`` bands (weights cached, prepacked when ``packed``)."""
        # nn.Sequential types its items as plain Modules.
        norm, project = cast("tuple[RMSNorm, Conv1x1]", tuple(self.MLP))
        (gate, _), (value, _) = project.split_weights(2, dtype, device, norm.weight, packed)
        # The stored tables repeat each frequency for both members of a pair.
        return BandParams(
            self.weight.weights(dtype, device, self.input_norm.weight, packed)[0],
            self.output.weights(dtype, device, packed=packed)[0],
            gate,
            value,
            self.MLP_output.weights(dtype, device, packed=packed)[0],
            self.cos_freq[:bands, ::2],
            self.sin_freq[:bands, ::2],
        )

    def forward(self, x: Tensor, compiled_rows: int | None = None) -> Tensor:
        """Update ``x`` shaped ``(R, K, N)`` in place through :func:`band_slice`, and return it.

        With oneDNN's prepacked weights where they work; with ``compiled_rows``,
        through the compiled function, on ``x`` padded to that many rows (one shape
        for the whole run).
        """
        dtype = _compute_dtype(x)
        p = self.params(dtype, x.device, x.shape[1], packed_products(x.device))
        if compiled_rows is None:
            return band_slice(x, p, self.heads, dtype)
        padded = compiled.pad_rows(x, compiled_rows)
        out = compiled.compiled(band_slice)(padded, p, self.heads, dtype)
        return x if padded is x else x.copy_(out[: x.shape[0]])


class TimeBlock(nn.Module):
    """Residual block along time: depthwise conv, norm, 1×1 up, SiLU, 1×1 down; see :func:`time_update`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            DepthwiseConv(dim),
            RMSNorm(dim),
            Conv1x1(dim, 4 * dim),
            nn.SiLU(),
            Conv1x1(4 * dim, dim),
        )

    def params(self, dtype: torch.dtype, device: torch.device, packed: bool) -> TimeParams:
        """This block's :class:`TimeParams` (weights cached, prepacked when ``packed``)."""
        # nn.Sequential types its items as plain Modules.
        dwconv, norm, up, _, down = cast(
            "tuple[DepthwiseConv, RMSNorm, Conv1x1, nn.SiLU, Conv1x1]", tuple(self.conv)
        )
        w_up, b_up = up.weights(dtype, device, norm.weight, packed)
        w_down, b_down = down.weights(dtype, device, packed=packed)
        return TimeParams(dwconv.taps(), dwconv.bias.detach(), w_up, b_up, w_down, b_down)

    def forward(self, x: Tensor, lo: int, hi: int, step: int, use_compiled: bool = False) -> Tensor:
        """Update frames ``lo:hi`` of ``x`` (``(T, B, K, N)``) to ``x + block(x)``, in place.

        Returns the view ``x[lo:hi]``. Works through ``step`` frames at a time so the
        4N-wide intermediate stays small, and in place so that only one copy of the
        residual stream exists: each slice's update is held back until the next
        slice's convolution has read the frames it needs as they were. Frames
        outside ``x`` are the convolution's zero padding. Each slice's update is
        :func:`time_update`, compiled when ``use_compiled`` (on windows padded to
        one length).
        """
        pad = TIME_KERNEL // 2
        frames = x.shape[0]
        dtype = _compute_dtype(x)
        update = compiled.compiled(time_update) if use_compiled else time_update
        p = self.params(dtype, x.device, packed_products(x.device))
        pending: tuple[int, int, Tensor] | None = None
        for s in range(lo, hi, step):
            e = min(s + step, hi)
            a, b = max(0, s - pad), min(frames, e + pad)
            window = x[a:b]
            if a != s - pad or b != e + pad:
                window = F.pad(window, (0, 0, 0, 0, 0, 0, a - (s - pad), (e + pad) - b))
            if use_compiled:
                window = compiled.pad_rows(window, step + 2 * pad)
            h = update(window, p, dtype)[: e - s]
            # The previous slice's update waits until this slice's convolution has
            # read the frames before ``s`` as they were.
            if pending is not None:
                x[pending[0] : pending[1]] += pending[2]
            pending = (s, e, h)
        if pending is not None:
            x[pending[0] : pending[1]] += pending[2]
        return x[lo:hi]


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

    window: Tensor  # a registered buffer, declared for the type checker

    def __init__(self, config: ApolloConfig | None = None) -> None:
        super().__init__()
        self.config = config or ApolloConfig()
        #: Where the weights came from, for provenance tags (set by :func:`apollo_cli.load_model`).
        self.source: ModelSource | None = None
        n = self.config.feature_dim
        widths = self.config.band_widths
        self.BN = Bands(_band_module(2 * w + 1, n) for w in widths)
        self.net = nn.ModuleList(BandSequenceBlock(n) for _ in range(self.config.layers))
        self.output = Bands(_band_module(n, 4 * w) for w in widths)
        self.register_buffer("window", torch.hann_window(self.config.win), persistent=False)

    def forward(
        self,
        wav: Tensor,
        keep: tuple[int, int] | None = None,
        use_compiled: bool = False,
        carry: Carry | None = None,
    ) -> Tensor:
        """Restore a batch of waveforms shaped ``(B, C, S)``.

        Returns ``(B, C, S)``, or with ``keep=(start, stop)`` only those samples,
        equal to the corresponding part of the full output. Frames that cannot
        influence the kept samples are dropped as soon as they stop mattering,
        which is what makes chunked inference cost little more than the chunks.
        With ``carry`` (:class:`apollo_cli.carry.Carry`, the same one for each
        window of the same audio, in order), frames the previous window already
        computed are taken from it, not computed again, and this window leaves its
        own for the next. ``use_compiled`` runs the blocks through
        :mod:`apollo_cli.compiled` (``torch.compile``; see
        :func:`apollo_cli.compiled.check_available`).
        """
        batch, channels, samples = wav.shape
        start, stop = keep if keep is not None else (0, samples)
        spec = self.stft(wav.reshape(batch * channels, samples))  # (T, B', F)
        # Output samples [start, stop) are overlap-added from frames
        # start // hop .. (stop - 1) // hop + 1; one more each side for safety.
        hop = self.config.hop
        lo = max(0, start // hop - 1)
        hi = min(spec.shape[0], (stop - 1) // hop + 3)
        # Each time block widens what is needed by its padding on each side.
        pad = TIME_KERNEL // 2
        blocks = self.config.layers * TIME_BLOCKS
        shape = (batch * channels, self.config.bands, self.config.feature_dim)
        anchor = None if start % hop else start // hop
        levels = carry_frames.plan(lo, hi, spec.shape[0], pad, blocks, carry, anchor, shape)
        rows = SLICE_ROWS.get(wav.device.type, 1 << 16) * 256 // self.config.feature_dim
        step = max(8, rows // shape[0] // shape[1])
        # The residual stream, frames levels.start.. of the window; view(a, b) is frames a..b.
        x = torch.empty(levels.need[0][1] - levels.start, *shape, device=wav.device)

        def view(a: int, b: int) -> Tensor:
            return x[a - levels.start : b - levels.start]

        handover = None if carry is None else carry_frames.Handover(levels, pad, stop, hop, x, carry)
        # nn.ModuleList types its items as plain Modules.
        layers = cast("list[BandSequenceBlock]", list(self.net))
        for j in range(blocks + 1):
            layer, block = divmod(j, TIME_BLOCKS)
            a, b = levels.new[j]
            if j == 0:
                self.encode(spec[a:b], step, view(a, b))
            else:
                below = layers[(j - 1) // TIME_BLOCKS].seq_net.blocks[(j - 1) % TIME_BLOCKS]
                held = levels.hold[j - 1]
                cast("TimeBlock", below)(
                    view(held, levels.need[j - 1][1]), a - held, b - held, step, use_compiled
                )
            if block == 0 and j < blocks:
                tokens = view(a, b).view(-1, *shape[1:])
                band_step = step * shape[0]
                for s in range(0, tokens.shape[0], band_step):
                    layers[layer].band_net(tokens[s : s + band_step], band_step if use_compiled else None)
            levels.place(j, view)
            if handover is not None:
                handover.take(j, view)
        if handover is not None:
            handover.give()
        restored = torch.zeros(
            spec.shape[0], shape[0], self.config.bins, dtype=torch.complex64, device=wav.device
        )
        self.decode(view(lo, hi), restored[lo:hi], step)
        out = self.istft(restored, samples)[:, start:stop]
        return out.reshape(batch, channels, stop - start)

    # The spectral transforms stay in float32 whatever the surrounding precision:
    # reduced precision here costs far more quality than it saves time.
    def stft(self, wav: Tensor) -> Tensor:
        """``(B, S)`` float waveform to a ``(T, B, bins)`` complex spectrum."""
        cfg = self.config
        with torch.autocast(wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float(),
                cfg.win,
                cfg.hop,
                window=self.window,
                center=True,
                pad_mode="reflect",
                normalized=False,
                onesided=True,
                return_complex=True,
            )
        return spec.permute(2, 0, 1)

    def istft(self, spec: Tensor, samples: int) -> Tensor:
        """``(T, B, bins)`` complex spectrum back to a ``(B, samples)`` waveform."""
        cfg = self.config
        with torch.autocast(spec.device.type, enabled=False):
            return torch.istft(
                spec.permute(1, 2, 0),
                cfg.win,
                cfg.hop,
                window=self.window,
                center=True,
                normalized=False,
                onesided=True,
                length=samples,
            )

    def encode(self, spec: Tensor, step: int, out: Tensor | None = None) -> Tensor:
        """Band features of a ``(T, B, bins)`` spectrum, encoded to ``(T, B, K, N)`` float32 (into ``out``).

        Slice by slice of ``step`` frames, straight into the result, so no other
        tensor of the residual stream's size is ever made.
        """
        frames, batch, _ = spec.shape
        x = out
        if x is None:
            x = torch.empty(frames, batch, self.config.bands, self.config.feature_dim, device=spec.device)
        for s in range(0, frames, step):
            piece = spec[s : s + step]
            offset = 0
            for start, stop in self.BN.groups():
                width = self.config.band_widths[start]
                count = stop - start
                band = piece[..., offset : offset + width * count].unflatten(-1, (count, width))
                offset += width * count
                gain = torch.sqrt(
                    band.real.pow(2).sum(-1, keepdim=True) + band.imag.pow(2).sum(-1, keepdim=True) + GAIN_EPS
                )
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
