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

import re
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


def rms_norm(x: Tensor, weight: Tensor) -> Tensor:
    """RMSNorm over the last axis, computed in float32 as the reference does."""
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + NORM_EPS)
    return y.to(x.dtype) * weight


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last axis, with a gain, no bias."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight)


class Conv1x1(nn.Module):
    """A 1×1 ``Conv1d`` of the checkpoint, applied as a product over the last axis.

    The weight keeps the checkpoint's ``(out, in, 1)`` shape so state dicts load
    as they are.
    """

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim_out, dim_in, 1))
        self.bias = nn.Parameter(torch.zeros(dim_out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.squeeze(-1), self.bias)


class DepthwiseConv(nn.Module):
    """Depthwise convolution along time (axis 1) with zero padding, channels last."""

    def __init__(self, dim: int, kernel: int = TIME_KERNEL) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, T, K, N). A weighted sum of shifted copies keeps the layout, which
        # avoids two full transposes around a Conv1d for a cheap operation.
        kernel = self.weight.shape[-1]
        pad = kernel // 2
        frames = x.shape[1]
        padded = F.pad(x, (0, 0, 0, 0, pad, pad))
        taps = self.weight[:, 0, :]  # (N, kernel)
        out = padded[:, 0:frames] * taps[:, 0]
        for j in range(1, kernel):
            out = out + padded[:, j : j + frames] * taps[:, j]
        return out + self.bias


class Bands(nn.ModuleList):
    """One small module per band, applied as a few batched products.

    Bands of equal width share a shape, so their weights are stacked and applied
    with a single ``einsum``; the published layout has two such groups.
    """

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

    def stacked(self, start: int, stop: int) -> tuple[Tensor, Tensor, Tensor]:
        """Norm gains ``(G, C)``, weights ``(G, out, C)`` and biases ``(G, out)`` of a run."""
        mods = list(self)[start:stop]
        norms = torch.stack([m[0].weight for m in mods])
        weights = torch.stack([m[1].weight.squeeze(-1) for m in mods])
        biases = torch.stack([m[1].bias for m in mods])
        return norms, weights, biases

    def apply_run(self, start: int, stop: int, x: Tensor) -> Tensor:
        """Norm and 1×1 conv of bands ``start:stop``; ``x`` is ``(B, T, G, C)``."""
        norms, weights, biases = self.stacked(start, stop)
        return torch.einsum("btgc,goc->btgo", rms_norm(x, norms), weights) + biases


def _band_module(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(RMSNorm(dim_in), Conv1x1(dim_in, dim_out))


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
        # x: (..., K, N): tokens are bands, everything before is batch.
        *lead, bands, dim = x.shape
        head_dim = dim // self.heads
        qkv = self.weight(self.input_norm(x))
        # Head-major channels: per head, q then k then v, each head_dim wide.
        qkv = qkv.view(-1, bands, self.heads, 3, head_dim).permute(3, 0, 2, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B*, heads, K, d)
        cos = self.cos_freq[:bands].to(q.dtype)
        sin = self.sin_freq[:bands].to(q.dtype)
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin)
        att = F.scaled_dot_product_attention(q, k, v)
        att = att.transpose(1, 2).reshape(*lead, bands, dim)
        x = x + self.output(att)
        gate, z = F.silu(self.MLP(x)).chunk(2, dim=-1)
        return x + self.MLP_output(F.silu(gate) * z)


def rotary_tables(positions: int, head_dim: int) -> tuple[Tensor, Tensor]:
    """Cosine and sine tables ``(positions, head_dim)``, each frequency twice."""
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.arange(positions, dtype=torch.float32)[:, None] * inv[None, :]
    angles = angles.repeat_interleave(2, dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate interleaved pairs ``(2j, 2j+1)``: ``(a, b) -> (a cos - b sin, b cos + a sin)``."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * cos + rotated * sin


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

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x)


class TimeNet(nn.Module):
    """Three residual time blocks (``net.{l}.seq_net``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TimeBlock(dim) for _ in range(TIME_BLOCKS))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class BandSequenceBlock(nn.Module):
    """Across bands, then along time (``net.{l}``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.band_net = BandAttention(dim)
        self.seq_net = TimeNet(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.seq_net(self.band_net(x))


class Apollo(nn.Module):
    """The Apollo generator: ``(B, C, S)`` waveform in, restored waveform out."""

    def __init__(self, config: ApolloConfig | None = None) -> None:
        super().__init__()
        self.config = config or ApolloConfig()
        n = self.config.feature_dim
        widths = self.config.band_widths
        self.BN = Bands(_band_module(2 * w + 1, n) for w in widths)
        self.net = nn.ModuleList(BandSequenceBlock(n) for _ in range(self.config.layers))
        self.output = Bands(_band_module(n, 4 * w) for w in widths)
        self.register_buffer("window", torch.hann_window(self.config.win), persistent=False)

    def forward(self, wav: Tensor) -> Tensor:
        """Restore a batch of waveforms shaped ``(B, C, S)``; returns the same shape."""
        batch, channels, samples = wav.shape
        spec = self.stft(wav.reshape(batch * channels, samples))
        x = self.encode(spec)
        for block in self.net:
            x = block(x)
        restored = self.decode(x)
        out = self.istft(restored, samples)
        return out.reshape(batch, channels, samples)

    # The spectral transforms stay in float32 whatever the surrounding precision:
    # reduced precision here costs far more quality than it saves time.
    def stft(self, wav: Tensor) -> Tensor:
        """``(B, S)`` float waveform to a ``(B, T, bins)`` complex spectrum."""
        cfg = self.config
        with torch.autocast(wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float(), cfg.win, cfg.hop, window=self.window, center=True,
                pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
            )
        return spec.transpose(1, 2)

    def istft(self, spec: Tensor, samples: int) -> Tensor:
        """``(B, T, bins)`` complex spectrum back to a ``(B, samples)`` waveform."""
        cfg = self.config
        with torch.autocast(spec.device.type, enabled=False):
            return torch.istft(
                spec.transpose(1, 2), cfg.win, cfg.hop, window=self.window, center=True,
                normalized=False, onesided=True, length=samples,
            )

    def encode(self, spec: Tensor) -> Tensor:
        """Band features of a ``(B, T, bins)`` spectrum, encoded to ``(B, T, K, N)``."""
        out = []
        offset = 0
        for start, stop in self.BN.groups():
            width = self.config.band_widths[start]
            count = stop - start
            band = spec[..., offset : offset + width * count].unflatten(-1, (count, width))
            offset += width * count
            gain = torch.sqrt(band.real.pow(2).sum(-1, keepdim=True)
                              + band.imag.pow(2).sum(-1, keepdim=True) + GAIN_EPS)
            feats = torch.cat((band.real / gain, band.imag / gain, gain.log()), dim=-1)
            out.append(self.BN.apply_run(start, stop, feats.to(self._compute_dtype(feats))))
        return torch.cat(out, dim=2)

    def decode(self, x: Tensor) -> Tensor:
        """``(B, T, K, N)`` features to the restored ``(B, T, bins)`` complex spectrum."""
        out = []
        for start, stop in self.output.groups():
            width = self.config.band_widths[start]
            y = self.output.apply_run(start, stop, x[:, :, start:stop]).float()
            value, gate = y.chunk(2, dim=-1)
            y = value * torch.sigmoid(gate)  # GLU over channels
            out.append(torch.complex(y[..., :width], y[..., width:]).flatten(-2))
        return torch.cat(out, dim=-1)

    @staticmethod
    def _compute_dtype(x: Tensor) -> torch.dtype:
        if torch.is_autocast_enabled(x.device.type):
            return torch.get_autocast_dtype(x.device.type)
        return x.dtype
