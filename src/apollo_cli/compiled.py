"""The optional ``torch.compile`` path (``--compile``): the model's slices as pure functions.

The eager model (:mod:`apollo_cli.model`) already spends most of its time in matrix
products; what is left is element-wise work between them (norms, SiLU and gating,
rotary embeddings, residual adds), each a separate pass over memory. TorchInductor
fuses that work into the products' neighbours. It cannot trace the eager path's
prepacked oneDNN weights, in-place updates and complex rotary product, so the two
per-slice steps are written here again as pure functions of plain tensors, the
same arithmetic in a form the compiler takes whole:

- :func:`band_slice`: one slice of the across-band transformer block;
- :func:`time_slice`: one slice of a residual time block's update.

One compiled function serves every layer (weights are arguments, not constants),
and slices are padded to a fixed length so that a run compiles each function once
per shape (one for stereo, one for mono) instead of once per tail. Compiled kernels
are cached on disk by TorchInductor (see :func:`cache_dir`), so only the first run
on a machine pays the full compile time.

The results are not bit-identical to the eager path (the compiler reorders sums
and uses fused multiply-adds): measured within 1e-5 relative in float32.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import MissingDependencyError

#: Set before the first compile: TorchInductor's kernels, kept across runs.
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"

_lock = threading.Lock()
_compiled: dict[str, Callable[..., Tensor]] = {}


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$TORCHINDUCTOR_CACHE_DIR``, else ``~/.cache/apollo-cli/inductor``.

    TorchInductor's own default is a folder in ``/tmp``, which many systems empty at
    every boot; ours survives, so the compile cost is paid once per machine.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "apollo-cli" / "inductor"


def check_available(device: torch.device) -> None:
    """Raise MissingDependencyError when ``torch.compile`` cannot work on ``device`` here.

    On a CPU TorchInductor writes C++ and builds it with the system compiler, so one
    must be installed; on CUDA it writes Triton kernels, so Triton must be importable.
    """
    if device.type == "cpu":
        compiler = os.environ.get("CXX") or "g++"
        if shutil.which(compiler) is None and shutil.which("c++") is None:
            raise MissingDependencyError(
                f"--compile needs a C++ compiler on the CPU ({compiler} not found); install one "
                "(Debian/Ubuntu: apt install g++) or run without --compile"
            )
    elif device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "--compile on CUDA needs Triton (pip install triton); or run without --compile"
            ) from None
    else:
        raise MissingDependencyError(f"--compile is not supported on {device.type}; run without it")


def compiled(name: str) -> Callable[..., Tensor]:
    """The compiled version of :func:`band_slice` or :func:`time_slice` (made on first use)."""
    with _lock:
        fn = _compiled.get(name)
        if fn is None:
            os.environ.setdefault(CACHE_ENV, str(cache_dir()))
            fn = torch.compile({"band": band_slice, "time": time_slice}[name], dynamic=False)
            _compiled[name] = fn
    return fn


def _normalized(x: Tensor, dtype: torch.dtype) -> Tensor:
    """RMSNorm without its gain (folded into the next weight), computed in float32."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dtype)


def band_slice(
    x: Tensor, w_qkv: Tensor, w_out: Tensor, w_mlp: Tensor, w_mlp_out: Tensor,
    cos: Tensor, sin: Tensor, heads: int, dtype: torch.dtype,
) -> Tensor:
    """``x`` (R, K, N) after one across-band block; weights folded with their norms' gains.

    The same arithmetic as :meth:`apollo_cli.model.BandAttention.forward`: products in
    ``dtype``, rotary embeddings (``cos``/``sin`` shaped (K, d/2)) and, on the CPU,
    attention in float32, the residual stream in float32.
    """
    rows, bands, dim = x.shape
    head_dim = dim // heads
    qkv = F.linear(_normalized(x, dtype), w_qkv).view(rows, bands, heads, 3, head_dim)
    qk = qkv[..., :2, :].float()
    a, b = qk[..., 0::2], qk[..., 1::2]
    c, s = cos[:, None, None, :], sin[:, None, None, :]
    qk = torch.stack((a * c - b * s, b * c + a * s), dim=-1).flatten(-2)
    q, k = qk.permute(3, 0, 2, 1, 4).unbind(0)
    v = qkv[..., 2, :].transpose(1, 2)
    att_dtype = torch.float32 if x.device.type == "cpu" else dtype
    att = F.scaled_dot_product_attention(q.to(att_dtype), k.to(att_dtype), v.to(att_dtype))
    att = att.transpose(1, 2).reshape(rows, bands, dim).to(dtype)
    x = x + F.linear(att, w_out).float()
    gate, z = F.silu(F.linear(_normalized(x, dtype), w_mlp)).chunk(2, dim=-1)
    return x + F.linear(F.silu(gate) * z, w_mlp_out).float()


def time_slice(
    window: Tensor, taps: Tensor, dw_bias: Tensor,
    w_up: Tensor, b_up: Tensor, w_down: Tensor, b_down: Tensor, dtype: torch.dtype,
) -> Tensor:
    """The update one time block adds to the frames of ``window`` between its padding.

    ``window`` holds ``frames + kernel - 1`` frames along axis 0; ``taps`` is the
    depthwise kernel as (kernel, N). Same arithmetic as
    :meth:`apollo_cli.model.TimeBlock.forward`'s slice.
    """
    frames = window.shape[0] - taps.shape[0] + 1
    h = dw_bias + window[0:frames] * taps[0]
    for j in range(1, taps.shape[0]):
        h = h + window[j : j + frames] * taps[j]
    h = F.silu(F.linear(_normalized(h, dtype), w_up, b_up))
    return F.linear(h, w_down, b_down)


def pad_rows(x: Tensor, rows: int) -> Tensor:
    """``x`` with zeros appended along axis 0 up to ``rows`` (a fixed shape for the compiler)."""
    missing = rows - x.shape[0]
    if missing <= 0:
        return x
    return torch.cat((x, x.new_zeros(missing, *x.shape[1:])))
