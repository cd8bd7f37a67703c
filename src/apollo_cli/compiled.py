"""The optional ``torch.compile`` path (``--compile``): the model's slice functions, compiled.

The model (:mod:`apollo_cli.model`) states each per-slice step once, as a function
of plain tensors that eager inference and ``--compile`` both call:

- :func:`apollo_cli.model.band_slice`: one slice of the across-band transformer block;
- :func:`apollo_cli.model.time_update`: one slice of a residual time block's update.

Eagerly they take oneDNN's prepacked weights (with the SiLU fused into the product)
and complex rotary products; compiled, they get plain weights, which TorchInductor
traces, and fuses the element-wise work between the products (norms, SiLU and
gating, rotary embeddings, residual adds) into the products' neighbours.

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
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from .errors import MissingDependencyError

#: Set before the first compile: TorchInductor's kernels, kept across runs.
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"

_lock = threading.Lock()
_compiled: dict[Callable[..., Tensor], Callable[..., Tensor]] = {}


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


def compiled(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``fn`` (one of the model's slice functions) through ``torch.compile``, made on first use."""
    with _lock:
        compiled_fn = _compiled.get(fn)
        if compiled_fn is None:
            os.environ.setdefault(CACHE_ENV, str(cache_dir()))
            compiled_fn = torch.compile(fn, dynamic=False)
            _compiled[fn] = compiled_fn
    return compiled_fn


def pad_rows(x: Tensor, rows: int) -> Tensor:
    """``x`` with zeros appended along axis 0 up to ``rows`` (a fixed shape for the compiler)."""
    missing = rows - x.shape[0]
    if missing <= 0:
        return x
    return torch.cat((x, x.new_zeros(missing, *x.shape[1:])))
