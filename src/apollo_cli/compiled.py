"""The optional ``torch.compile`` path (``--compile``): the model's slice functions, compiled.

The model (:mod:`apollo_cli.model`) states each per-slice step once, as a function
of plain tensors that eager inference and ``--compile`` both call:

- :func:`apollo_cli.model.band_slice`: one slice of the across-band transformer block;
- :func:`apollo_cli.model.time_update`: one slice of a residual time block's update.

Compiled, they get the same operands as eagerly, and the matrix products stay
what they are eagerly (:func:`apollo_cli.model.linear`, which the compiler sees as
one operator and does not look inside): on a CPU oneDNN's, with prepacked weights
and the SiLU fused in. Each function is then one graph, with no graph breaks.
TorchInductor compiles what lies between them: the norms and their casts, the
rotary embedding, the SiLU gating, the depthwise convolution and the residual adds,
each fused into a few loops instead of a dozen passes over memory. On one layer
alone (``benchmarks/compile_layer.py``, one core) that saved about 10 % in float32
and in bfloat16; whole restores on the same 2-core machine gained 0-3 % in its two
parallel streams, about what loading the compiled graphs costs on a 3-minute file
(docs/performance.md).

Measured and not kept: ``torch._inductor.config.cpp_wrapper``, which runs a whole graph
in C++ without holding the GIL (the default Python wrapper holds it while each kernel
runs, so a compiled kernel in one stream pauses the other stream's Python): no faster
in two streams, and a longer first compile.

Measured and not kept: compiling each layer with its weights frozen into the graph
(``torch._inductor.config.freezing``). On a CPU without AMX it was no faster than the
above, and its graphs hold oneDNN-prepacked constants, which TorchInductor cannot
cache: every run compiled 24 graphs again.

One compiled function serves every layer (weights are arguments, not constants),
and slices are padded to a fixed length, so a run compiles each function once per
shape (one for stereo, one for mono windows) instead of once per tail. Kernels are
built to take their thread count at run time, so the same kernels serve parallel
single-thread streams (:mod:`apollo_cli.streams`) and one stream on every thread.
Compiled kernels are cached on disk by TorchInductor (see :func:`cache_dir`), so
only the first run on a machine pays the full compile time.

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
import torch.utils._pytree as pytree
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
            # dynamic_threads: each kernel asks OpenMP for the calling thread's count, so
            # kernels compiled in a single-thread stream also serve a restore on all threads.
            compiled_fn = _FirstCallAlone(
                torch.compile(fn, dynamic=False, options={"cpp.dynamic_threads": True})
            )
            _compiled[fn] = compiled_fn
    return compiled_fn


class _FirstCallAlone:
    """A compiled function whose first call for each kind of arguments runs alone.

    That first call traces and compiles (or loads from the kernel cache) the graph for
    those shapes and dtypes. When parallel streams (:mod:`apollo_cli.streams`) make it
    at the same moment, each thread traced and compiled the same graph for itself, and
    tracing is Python that holds the GIL, so the streams took turns at it: the first
    compiled window of a restore started seconds later than it needed to. Here the
    other streams wait for the first call, then run the graph it made.
    """

    def __init__(self, fn: Callable[..., Tensor]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._made: set[tuple[object, ...]] = set()

    def __call__(self, *args: object) -> Tensor:
        kind = _kind(args)
        if kind in self._made:
            return self._fn(*args)
        with self._lock:
            out = self._fn(*args)
            self._made.add(kind)
        return out


def _kind(args: tuple[object, ...]) -> tuple[object, ...]:
    """What the compiled graph depends on: each tensor's shape, dtype, device and layout, other values as they are."""
    leaves, _ = pytree.tree_flatten(args)
    return tuple(
        (tuple(a.shape), a.dtype, a.device, a.layout, a.is_mkldnn) if isinstance(a, Tensor) else a
        for a in leaves
    )


def pad_rows(x: Tensor, rows: int) -> Tensor:
    """``x`` with zeros appended along axis 0 up to ``rows`` (a fixed shape for the compiler)."""
    missing = rows - x.shape[0]
    if missing <= 0:
        return x
    return torch.cat((x, x.new_zeros(missing, *x.shape[1:])))
