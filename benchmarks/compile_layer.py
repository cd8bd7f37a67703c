"""One layer of the full-size model, eager against three ways of compiling it.

A layer is one across-band slice (:func:`apollo_cli.model.band_slice`) and the three
time updates (:func:`apollo_cli.model.time_update`) on the same tokens, on the slice
shape the model runs (2560 tokens: 16 frames of stereo, or with ``--channels 1`` 32 frames
of mono, as each parallel stream runs). Each way runs in a fresh
process (TorchInductor's settings are process-wide), on ``--threads`` threads:

- ``eager``: what apollo-cli runs without ``--compile``;
- ``between``: what ``--compile`` runs (:mod:`apollo_cli.compiled`): the products stay
  oneDNN's prepacked calls, TorchInductor fuses what lies between them; one graph set
  serves every layer;
- ``plain``: the whole slice traced with plain weights (TorchInductor picks the
  products), one graph set for every layer (``--compile`` before this change);
- ``frozen``: the slice as a module with this layer's weights frozen into its graph
  (``torch._inductor.config.freezing``; TorchInductor prepacks them and fuses the
  epilogues into oneDNN's products): one graph set per layer.

For each: the first call (the compile, or loading it from the kernel cache), the time
per layer call, the model's RTF if all six layers ran at that speed (for stereo), the
graph cache's hits and misses, and the error of the band slice against eager float32.
Kernels are cached in ``--cache`` (default: a temporary folder, so the first column
is a cold compile; give a folder and run twice to see the cached one).

    python benchmarks/compile_layer.py                                   # fp32 and bf16, 1 thread
    python benchmarks/compile_layer.py --precision bf16 --threads 1 2 --cache /tmp/ind
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WAYS = ("eager", "between", "plain", "frozen")


def run_one(precision: str, threads: int, way: str, seconds: float, channels: int) -> dict[str, object]:
    """Child process: one way, one precision, one thread count; returns the measurements."""
    import torch
    from torch import nn

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import make_model

    from apollo_cli import model as M
    from apollo_cli.inference import DTYPES

    dtype = DTYPES[precision]
    torch.set_num_threads(threads)
    model = make_model()
    layer = model.net[0]
    cfg = model.config
    batch, bands, dim = channels, cfg.bands, cfg.feature_dim
    step = M.SLICE_ROWS["cpu"] // (batch * bands)
    tokens = torch.randn(step * batch, bands, dim)
    window = torch.randn(step + M.TIME_KERNEL - 1, batch, bands, dim)
    cpu = torch.device("cpu")
    packed = way in ("eager", "between") and M.packed_products(cpu)
    with torch.no_grad():
        band_p = layer.band_net.params(dtype, cpu, bands, packed)
        time_ps = [block.params(dtype, cpu, packed) for block in layer.seq_net.blocks]

    if way in ("plain", "frozen"):
        # The products traced with the rest (the library never traces ``linear``).
        def traced_linear(x, weight, bias=None, silu=False):  # type: ignore[no-untyped-def]
            y = torch.nn.functional.linear(x, weight, bias)
            return torch.nn.functional.silu(y) if silu else y

        M.linear = traced_linear

    if way == "eager":
        band = lambda x: M.band_slice(x, band_p, M.HEADS, dtype)  # noqa: E731
        times = [lambda w, p=p: M.time_update(w, p, dtype) for p in time_ps]
    elif way in ("between", "plain"):
        options = {"cpp.dynamic_threads": True}
        band_c = torch.compile(M.band_slice, dynamic=False, options=options)
        time_c = torch.compile(M.time_update, dynamic=False, options=options)
        band = lambda x: band_c(x, band_p, M.HEADS, dtype)  # noqa: E731
        times = [lambda w, p=p: time_c(w, p, dtype) for p in time_ps]
    else:
        import torch._inductor.config as inductor

        inductor.freezing = True

        class Frozen(nn.Module):
            """``fn(x, params, *static)`` with ``params`` as this module's (frozen) parameters."""

            def __init__(self, fn, params, *static):  # type: ignore[no-untyped-def]
                super().__init__()
                self.fn, self.static, self.kind = fn, static, type(params)
                for name, value in params._asdict().items():
                    if value is not None:
                        self.register_parameter(
                            name, nn.Parameter(value.detach().clone(), requires_grad=False)
                        )

            def forward(self, x):  # type: ignore[no-untyped-def]
                # Traced whole: the products' weights are this graph's constants.
                return self.fn(
                    x, self.kind(*(getattr(self, f, None) for f in self.kind._fields)), *self.static
                )

        band = torch.compile(Frozen(M.band_slice, band_p, M.HEADS, dtype), dynamic=False)
        times = [torch.compile(Frozen(M.time_update, p, dtype), dynamic=False) for p in time_ps]

    def call() -> None:
        band(tokens.clone())
        for update in times:
            update(window)

    from torch._dynamo.utils import counters

    with torch.inference_mode():
        began = time.perf_counter()
        call()
        first = time.perf_counter() - began
        call()
        runs, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            call()
            runs += 1
        per_call = (time.perf_counter() - began) / runs
        plain32 = layer.band_net.params(torch.float32, cpu, bands, packed=False)
        reference = M.band_slice(tokens.clone(), plain32, M.HEADS, torch.float32)
        error = float((band(tokens.clone()) - reference).norm() / reference.norm())
    frames_per_second = cfg.sample_rate / cfg.hop
    cache = counters["inductor"]
    return {
        "precision": precision,
        "threads": threads,
        "way": way,
        "first_s": first,
        "per_call_ms": per_call * 1e3,
        "rtf": per_call * frames_per_second / step * cfg.layers * 2 / channels,
        "cache": f"{cache['fxgraph_cache_hit']} hit, {cache['fxgraph_cache_miss']} miss, "
        f"{cache['fxgraph_cache_bypass']} bypassed",
        "error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of timed calls per way")
    parser.add_argument(
        "--channels",
        type=int,
        default=2,
        choices=[1, 2],
        help="2: a stereo slice (one stream); 1: a mono one, as each parallel stream runs",
    )
    parser.add_argument("--cache", type=Path, help="TorchInductor's kernel cache (default: a fresh one)")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        precision, threads, way = args.one
        print(json.dumps(run_one(precision, int(threads), way, args.seconds, args.channels)))
        return

    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(args.cache or scratch))
        print(f"{'precision':>9} {'threads':>7} {'way':>8} {'first':>7} {'per layer':>10} "
              f"{'RTF (6 layers)':>14} {'vs eager':>8} {'rel. error':>10}  graph cache")  # fmt: skip
        for precision in args.precision:
            for threads in args.threads:
                eager_ms = None
                for way in args.ways:
                    command = [sys.executable, __file__, "--one", precision, str(threads), way]
                    command += ["--seconds", str(args.seconds), "--channels", str(args.channels)]
                    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
                    if done.returncode != 0:
                        print(f"{precision:>9} {threads:>7} {way:>8}  failed: {done.stderr.strip()[-300:]}")
                        continue
                    r = json.loads(done.stdout.strip().splitlines()[-1])
                    if way == "eager":
                        eager_ms = r["per_call_ms"]
                    ratio = f"{eager_ms / r['per_call_ms']:.2f}×" if eager_ms else ""
                    print(
                        f"{precision:>9} {threads:>7} {way:>8} {r['first_s']:6.1f}s {r['per_call_ms']:8.1f}ms "
                        f"{r['rtf']:14.2f} {ratio:>8} {r['error']:10.1e}  {r['cache']}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
