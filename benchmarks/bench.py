"""Speed and memory of apollo-cli's inference on this machine, against its physical limit.

Three parts, each printed as a table:

1. **The limit.** The machine's big-GEMM peak in each precision (large square matrix
   products fed tensors of that dtype: float32, bfloat16 fed bfloat16, never a float32
   input cast on the way), on one thread, on all threads of one product, and as one
   single-thread product per core at once ("streams"); the best of these is the peak.
   On a shared machine one such measurement moves by 10-20 %, so it is taken in
   ``--peak-rounds`` rounds before the restores and again after them, and the limit
   divides by the best configuration's median over all of them (the last table).
   The model costs a fixed number of FLOP per second of stereo (about 512 G for the
   full-size model: its 1x1 convolutions and its attention), so no implementation on
   this machine can beat ``limit RTF = FLOP per audio second / peak``.
2. **The model's own products**, each shape the model runs, fed its own dtype, on the
   model's slice length, plain and with the epilogue the model fuses into it (SiLU,
   bias) or runs after it (the MLP's SiLU gating); their weighted rate gives the RTF
   the products alone would need.
3. **Restores.** A full-size generator (the official model's shape, random weights:
   no download) restores synthetic stereo music from a WAV file through
   ``apollo_cli.restore_file`` (decode, inference, write: what a user runs), each
   configuration in a fresh process so that its peak resident memory is its own. For
   each: the real-time factor (RTF: processing time / audio duration, below 1 is faster
   than real time) and its ratio to the limit, audio seconds per second, the time to
   the first restored chunk, peak memory, and the output against the first float32
   row's (``identical``, or the SNR).

``--threads`` and ``--streams`` take several values and show the scaling over cores:
``--threads 1 2 --streams 1`` is one product split over 1 or 2 threads, ``--streams 2``
two single-thread streams (:mod:`apollo_cli.streams`), ``auto`` what the library picks.

    python benchmarks/bench.py                        # 6 s stereo, fp32 and bf16 (about a minute)
    python benchmarks/bench.py --seconds 30 --repeat 3                # the README's figures
    python benchmarks/bench.py --precision fp32 --streams 1 2 auto   # streams against threads, and
                                                                      # fp32 outputs compared exactly
    python benchmarks/bench.py --threads 1 2 --streams 1              # one thread against two
    python benchmarks/bench.py --seconds 600 --precision bf16         # memory, 10 min
    python benchmarks/bench.py --chunk-seconds 4 8 16 --batch-size 1 2 --json out.json
    python benchmarks/bench.py --precision fp32 --compile no yes     # torch.compile against eager
    python benchmarks/bench.py --device cuda --precision fp32 fp16 bf16
    python benchmarks/bench.py --quick                # smoke test: a small model, a few seconds

On a shared machine read the ratios, not the seconds: the limit is measured in the
same run, and the load average at the start and end is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: The small model ``--quick`` runs (a smoke test, not a measurement).
QUICK_CONFIG = {"feature_dim": 32, "layers": 1}


def model_config(quick: bool = False):  # type: ignore[no-untyped-def]
    """The full-size configuration, or ``--quick``'s small one."""
    from apollo_cli.model import ApolloConfig

    return ApolloConfig(**QUICK_CONFIG) if quick else ApolloConfig()


def make_model(seed: int = 0, config=None):  # type: ignore[no-untyped-def]
    """A generator (full-size unless ``config``) with random weights at trained-like scales."""
    import torch

    from apollo_cli.model import Apollo

    torch.manual_seed(seed)
    model = Apollo(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and not name.endswith("bias"):
                p.copy_(1 + 0.1 * torch.randn_like(p))  # norm gains
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn_like(p))
            else:  # fan-in scaled, so activations keep their size through the layers
                fan_in = p.shape[1] * p.shape[2]
                p.copy_(torch.randn_like(p) / fan_in**0.5)
    return model.eval()


def make_music(seconds: float, rate: int = 44100, seed: int = 0) -> np.ndarray:
    """Stereo harmonic tones with vibrato and noise, low-passed like a 128 kbps MP3."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros((2, t.size))
    for ch in range(2):
        for f0 in (110.0, 164.8, 220.0, 329.6):
            vibrato = 1 + 0.003 * np.sin(2 * np.pi * 5 * t + rng.uniform(0, 6))
            for h in range(1, 12):
                out[ch] += np.sin(2 * np.pi * f0 * h * vibrato * t + rng.uniform(0, 6)) / h
        out[ch] += 0.05 * rng.standard_normal(t.size)
    spec = np.fft.rfft(out, axis=-1)
    spec[:, np.fft.rfftfreq(t.size, 1 / rate) > 16000] = 0
    out = np.fft.irfft(spec, n=t.size, axis=-1)
    return (0.25 * out / np.abs(out).max()).astype(np.float32)


def product_flop_per_second(config) -> float:  # type: ignore[no-untyped-def]
    """Matrix-product FLOP per second of stereo audio for ``config`` (all 1x1 convolutions)."""
    n, bands = config.feature_dim, config.bands
    per_token = 3 * n * n + n * n + 8 * n * n + 4 * n * n  # across bands: qkv, output, MLP
    per_token += 3 * (4 * n * n + 4 * n * n)  # along time: three blocks of up and down
    macs = config.layers * bands * per_token
    macs += sum((2 * w + 1) * n + n * 4 * w for w in config.band_widths)  # band encoders, decoders
    frames = config.sample_rate / config.hop
    return 2 * macs * frames * 2  # 2 FLOP a MAC; stereo


def model_flop_per_second(config) -> float:  # type: ignore[no-untyped-def]
    """All the model's FLOP per second of stereo: its products and its attention (q k^T and the weighted sum)."""
    attention_macs = config.layers * 2 * config.bands * config.bands * config.feature_dim
    return product_flop_per_second(config) + 2 * attention_macs * config.sample_rate / config.hop * 2


def _parallel_rate(
    make: Callable[[], tuple[Callable[[], object], float]], threads: int, streams: int, seconds: float
) -> float:
    """GFLOP/s of ``make()``'s call (which does the returned FLOP) run back to back for ``seconds``.

    ``streams == 1``: one caller on ``threads`` threads; otherwise ``streams`` callers at
    once, each on its own single thread (what :mod:`apollo_cli.streams` does).
    """
    import torch

    before = torch.get_num_threads()
    done: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(streams)

    failed: list[BaseException] = []

    def loop(own_threads: int) -> None:
        try:
            torch.set_num_threads(own_threads)
            call, flop = make()  # outside inference mode, as a loaded model's weights are
            with torch.inference_mode():
                call()  # warm: packs weights, picks kernels
                barrier.wait()
                runs, began = 0, time.perf_counter()
                while time.perf_counter() - began < seconds:
                    call()
                    runs += 1
                elapsed = time.perf_counter() - began
            with lock:
                done.append(flop * runs / elapsed)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failed.append(exc)
            barrier.abort()

    try:
        if streams == 1:
            loop(threads)
        else:
            workers = [threading.Thread(target=loop, args=(1,)) for _ in range(streams)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    finally:
        torch.set_num_threads(before)
    if failed:
        raise failed[0]
    return sum(done) / 1e9


def _dtype(precision: str):  # type: ignore[no-untyped-def]
    from apollo_cli.inference import DTYPES

    return DTYPES[precision]


def gemm_makers(precision: str, size: int) -> dict[str, Callable[[], tuple[Callable[[], object], float]]]:
    """Big square products in ``precision``, fed tensors of that dtype: torch.mm, and oneDNN's
    prepacked linear (the model's eager path)."""
    import torch

    dtype = _dtype(precision)
    flop = 2.0 * size**3

    def mm() -> tuple[Callable[[], object], float]:
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        return (lambda: torch.mm(a, b)), flop

    makers = {"torch.mm": mm}
    from apollo_cli.model import USE_ONEDNN

    if USE_ONEDNN:

        def packed() -> tuple[Callable[[], object], float]:
            x, w = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
            w = torch.ops.mkldnn._reorder_linear_weight(w, size)
            return (lambda: torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")), flop

        makers["oneDNN packed"] = packed
    return makers


def gemm_peak(
    precision: str, configs: list[tuple[int, int]], size: int, seconds: float
) -> dict[tuple[int, int], float]:
    """Best big-GEMM GFLOP/s over :func:`gemm_makers` for each ``(threads, streams)``."""
    return {
        (threads, streams): max(
            _parallel_rate(make, threads, streams, seconds) for make in gemm_makers(precision, size).values()
        )
        for threads, streams in configs
    }


def peak_rounds(
    precision: str, configs: list[tuple[int, int]], size: int, seconds: float, rounds: int
) -> dict[tuple[int, int], list[float]]:
    """:func:`gemm_peak` ``rounds`` times over: each configuration's rates, round by round.

    On a shared machine one measurement of the peak moves by 10-20 % from run to run;
    the median of a few rounds (:func:`steady_peak`) is the figure to divide by.
    """
    measured: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    for _ in range(rounds):
        for config, rate in gemm_peak(precision, configs, size, seconds).items():
            measured[config].append(rate)
    return measured


def steady_peak(measured: dict[tuple[int, int], list[float]]) -> float:
    """The peak: the best configuration's median rate over its rounds."""
    return max(statistics.median(rates) for rates in measured.values())


def model_products(n: int) -> list[tuple[str, int, int, int, str]]:
    """``(name, in, out, count per token per layer, epilogue)`` of one layer's products."""
    return [
        ("qkv", n, 3 * n, 1, ""),
        ("attention out", n, n, 1, ""),
        ("MLP up", n, 8 * n, 1, "silu+gate"),
        ("MLP down", 4 * n, n, 1, ""),
        ("time up", n, 4 * n, 3, "bias+silu"),
        ("time down", 4 * n, n, 3, "bias"),
    ]


def product_makers(precision: str, dim_in: int, dim_out: int, epilogue: str, rows: int, with_epilogue: bool):  # type: ignore[no-untyped-def]
    """The model's own product code (:func:`apollo_cli.model.linear`, weights as the model makes them)
    on ``rows`` tokens fed the compute dtype; with its epilogue or plain."""
    import torch

    from apollo_cli.model import Conv1x1, gated_mlp, linear, packed_products

    dtype = _dtype(precision)

    def make() -> tuple[Callable[[], object], float]:
        conv = Conv1x1(dim_in, dim_out, bias="bias" in epilogue)
        with torch.no_grad():
            conv.weight.normal_(std=dim_in**-0.5)
        cpu = torch.device("cpu")
        x = torch.randn(rows, dim_in).to(dtype)
        if "gate" in epilogue:  # the MLP's projection runs as its two halves (gated_mlp)
            (gate, _), (value, _) = conv.split_weights(2, dtype, cpu, packed=packed_products(cpu))

            def halves() -> object:
                if with_epilogue:
                    return gated_mlp(x, gate, value)
                return linear(x, gate), linear(x, value)

            return halves, 2.0 * rows * dim_in * dim_out

        weight, bias = conv.weights(dtype, cpu, packed=packed_products(cpu))
        silu = with_epilogue and "silu" in epilogue
        bias = bias if with_epilogue else None

        def call() -> object:
            return linear(x, weight, bias, silu)

        return call, 2.0 * rows * dim_in * dim_out

    return make


def reset_peak_rss() -> None:
    """Start the peak-RSS count afresh, so it covers the restore and not the set-up (Linux)."""
    # Elsewhere ru_maxrss, which also counts building the model, is all there is.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak resident memory since :func:`reset_peak_rss` (VmHWM on Linux), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(args: argparse.Namespace) -> None:
    """Child process: one configuration, one run; prints a JSON line."""
    import soundfile as sf
    import torch

    import apollo_cli
    from apollo_cli.options import RestoreOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    device = apollo_cli.devices.resolve_device(args.device)
    model = make_model(config=model_config(args.quick)).to(device)
    work = Path(args.workdir)
    source = work / f"input-{args.seconds:g}.wav"  # made by the parent: its memory is not ours
    target = work / f"out-{os.getpid()}.wav"
    first: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    options = RestoreOptions(
        chunk_seconds=args.chunk_seconds,
        batch_size=args.batch_size,
        precision=args.precision,
        compile=args.compile == "yes",
        streams=None if args.streams == "auto" else int(args.streams),
    )
    # Progress moves within chunks too: the first chunk is restored once it reaches the first core.
    length = sf.info(str(source)).frames
    first_core = min(length, apollo_cli.inference.chunk_core(model, options, 2, length))

    def progress(done: int, total: int) -> None:
        if not first and done >= first_core:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            first.append(time.perf_counter())

    reset_peak_rss()
    start = time.perf_counter()
    cpu_start = time.process_time()
    result = apollo_cli.restore_file(
        model, source, target, progress=progress, carry_tags=False, options=options
    )
    elapsed = time.perf_counter() - start
    record = {
        "precision": args.precision,
        "compile": args.compile,
        "chunk_seconds": args.chunk_seconds,
        "batch_size": args.batch_size,
        "seconds": args.seconds,
        "threads": torch.get_num_threads(),
        "streams": args.streams,
        "device": str(device),
        "elapsed": elapsed,
        "cpu_seconds": time.process_time() - cpu_start,
        "rtf": elapsed / result.duration,
        "first_chunk_s": first[0] - start if first else None,
        "peak_rss_mb": peak_rss_mb(),
        "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "output": str(target),
    }
    print(json.dumps(record))


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    noise = np.sum((reference.astype(np.float64) - estimate) ** 2)
    return (
        float("inf")
        if noise == 0
        else float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise))
    )


def machine_line() -> str:
    """Cores, torch, the CPU's vector and matrix units, and the load average."""
    import torch

    flags = ""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    amx = "amx_bf16" in flags
    return (
        f"machine: {os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads), {platform.machine()}, "
        f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, "
        f"bf16 {'yes' if bf16 else 'no'}, AMX {'yes' if amx else 'no'}; {load_line()}"
    )


def load_line() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, nargs="+", default=[6.0], help="audio lengths (default 6 s)")
    parser.add_argument(
        "--precision",
        nargs="+",
        default=None,
        choices=["fp32", "bf16", "fp16"],
        help="default: fp32, and bf16 where the CPU has it",
    )
    parser.add_argument(
        "--chunk-seconds", type=float, nargs="+", default=[None], help="default: the library's"
    )
    parser.add_argument("--batch-size", type=int, nargs="+", default=[None], help="default: the library's")
    parser.add_argument(
        "--compile",
        nargs="+",
        default=["no"],
        choices=["no", "yes"],
        help="eager (no) and/or torch.compile (yes); its first run includes the compile",
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[0],
        help="torch threads of each restore (default 0: torch's, all cores)",
    )
    parser.add_argument(
        "--streams",
        nargs="+",
        default=["auto"],
        help="parallel single-thread streams: N, or auto (the library's choice; default)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (median reported)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--measure-seconds",
        type=float,
        default=1.0,
        help="seconds per GEMM and product measurement (default 1)",
    )
    parser.add_argument(
        "--peak-rounds",
        type=int,
        default=None,
        help="rounds of the big-GEMM peak, before the restores and again after them; the limit "
        "divides by the median of every round (default 3, with --quick 1)",
    )
    parser.add_argument(
        "--skip-products", action="store_true", help="measure the limit, not the model's products"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: a small model, 1 s of audio, short measurements (a few seconds)",
    )
    parser.add_argument("--json", type=Path, help="also write all measurements here")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for value in args.streams:
        if value != "auto" and not (value.isdigit() and int(value) >= 1):
            parser.error(f"--streams takes positive numbers or auto, not {value!r}")

    import soundfile as sf

    import apollo_cli  # noqa: F401 - before torch: its OpenMP wait policy (apollo_cli.openmp), as the CLI runs

    if args.one:
        args.seconds, args.precision = args.seconds[0], args.precision[0]
        args.chunk_seconds, args.batch_size = args.chunk_seconds[0], args.batch_size[0]
        args.compile, args.threads, args.streams = args.compile[0], args.threads[0], args.streams[0]
        run_one(args)
        return

    import torch

    from apollo_cli.model import SLICE_ROWS
    from apollo_cli.options import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS

    if args.quick:
        args.seconds = [1.0] if args.seconds == [6.0] else args.seconds
        args.measure_seconds = min(args.measure_seconds, 0.05)
    if args.peak_rounds is None:
        args.peak_rounds = 1 if args.quick else 3
    if args.peak_rounds < 1:
        parser.error("--peak-rounds takes a positive number")
    if args.precision is None:
        args.precision = ["fp32"] + (["bf16"] if torch.ops.mkldnn._is_mkldnn_bf16_supported() else [])
    config = model_config(args.quick)
    cost = model_flop_per_second(config)
    cores = torch.get_num_threads()
    print(machine_line())
    print(
        f"model: feature dim {config.feature_dim}, {config.layers} layers: {cost / 1e9:.1f} GFLOP per second of "
        f"stereo ({product_flop_per_second(config) / cost:.1%} in matrix products, the rest attention)",
        flush=True,
    )

    # 1. The limit: the best big-GEMM rate, on one thread, all threads, and one thread per core at once.
    # Every round of every configuration, start and end: the limit divides by their median.
    peak_log: dict[str, dict[tuple[int, int], list[float]]] = {}
    measures: dict[str, Any] = {"gemm": {}, "gemm_end": {}, "products": {}}
    size = 256 if args.quick else 2048
    configs = list(dict.fromkeys([(1, 1), (cores, 1), (1, cores)]))

    def measure_peaks(when: str, key: str) -> None:
        print(
            f"\n== big-GEMM peak, GFLOP/s ({size}x{size}x{size}, fed its own dtype), {when}: the limit ==\n"
            f"(median of {args.peak_rounds} round(s), lowest-highest in brackets)"
        )
        print(
            f"{'precision':10s}"
            + "".join(f"{_config_name(t, k):>20s}" for t, k in configs)
            + f"{'peak':>8s}{'limit RTF':>11s}"
        )
        for precision in args.precision:
            if precision == "fp16":
                continue
            measured = peak_rounds(precision, configs, size, args.measure_seconds, args.peak_rounds)
            log = peak_log.setdefault(precision, {c: [] for c in configs})
            for config, rates in measured.items():
                log[config].extend(rates)
            peak = steady_peak(measured)
            measures[key][precision] = {_config_name(t, k): r for (t, k), r in measured.items()}
            cells = "".join(
                f"{statistics.median(measured[c]):8.0f} ({min(measured[c]):3.0f}-{max(measured[c]):3.0f})"
                for c in configs
            )
            print(f"{precision:10s}{cells}{peak:8.0f}{cost / 1e9 / peak:11.2f}", flush=True)

    peaks: dict[str, float] = {}
    if args.device == "cpu":
        measure_peaks("before the restores", "gemm")
        # The peak before the restores: what the products and the restores' table divide by.
        peaks = {precision: steady_peak(log) for precision, log in peak_log.items()}

        # 2. The model's own products, fed their own dtype, plain and with their epilogues.
        if not args.skip_products:
            rows = SLICE_ROWS["cpu"] * 256 // config.feature_dim
            if args.quick:
                rows = 256
            streams = 1 if cores == 1 else cores
            print(
                f"\n== the model's products, GFLOP/s ({rows} tokens, own dtype, {streams} single-thread "
                "streams at once) =="
            )
            print(f"{'precision':10s}{'product':28s}{'plain':>8s}{'+epilogue':>11s}{'% of peak':>11s}")
            for precision in args.precision:
                if precision not in peaks:
                    continue
                flop = time_plain = time_full = 0.0
                for name, dim_in, dim_out, count, epilogue in model_products(config.feature_dim):
                    plain = _parallel_rate(
                        product_makers(precision, dim_in, dim_out, epilogue, rows, False),
                        1,
                        streams,
                        args.measure_seconds,
                    )
                    full = (
                        _parallel_rate(
                            product_makers(precision, dim_in, dim_out, epilogue, rows, True),
                            1,
                            streams,
                            args.measure_seconds,
                        )
                        if epilogue
                        else plain
                    )
                    weight = count * dim_in * dim_out
                    flop += weight
                    time_plain += weight / plain
                    time_full += weight / full
                    label = f"{name} {dim_in}->{dim_out}" + (f" +{epilogue}" if epilogue else "")
                    measures["products"].setdefault(precision, {})[label] = {"plain": plain, "epilogue": full}
                    print(
                        f"{precision:10s}{label:28s}{plain:8.0f}{full:11.0f}{full / peaks[precision]:11.0%}"
                    )
                rate_plain, rate_full = flop / time_plain, flop / time_full
                rtf = product_flop_per_second(config) / 1e9 / rate_full
                measures["products"][precision]["weighted"] = {
                    "plain": rate_plain,
                    "epilogue": rate_full,
                    "rtf": rtf,
                }
                print(
                    f"{precision:10s}{'all, weighted as the model':28s}{rate_plain:8.0f}{rate_full:11.0f}"
                    f"{rate_full / peaks[precision]:11.0%}   products alone: RTF {rtf:.2f} "
                    f"({rtf / (cost / 1e9 / peaks[precision]):.2f}x the limit)",
                    flush=True,
                )

    # 3. Restores, each in a fresh process.
    chunks = [c or DEFAULT_CHUNK_SECONDS for c in args.chunk_seconds]
    batches = [b or DEFAULT_BATCH_SIZE for b in args.batch_size]  # None: the library picks
    rows_out = []
    print("\n== restores (decode, inference, write; a fresh process each) ==")
    print(
        f"{'audio':>7s} {'precision':9s} {'compile':7s} {'chunk':>5s} {'batch':>5s} {'threads':>7s} {'streams':>7s} "
        f"{'RTF':>6s} {'x limit':>7s} {'audio s/s':>9s} {'cpu/wall':>8s} {'first':>6s} {'peak RSS':>9s}  vs fp32"
    )
    with tempfile.TemporaryDirectory(prefix="apollo-bench-") as workdir:
        reference: dict[float, np.ndarray] = {}
        for seconds, chunk, batch, precision, comp, threads, streams in itertools.product(
            args.seconds, chunks, batches, args.precision, args.compile, args.threads, args.streams
        ):
            source = Path(workdir) / f"input-{seconds:g}.wav"
            if not source.exists():
                sf.write(source, make_music(seconds).T, 44100, subtype="FLOAT")
            runs = []
            for _ in range(args.repeat):
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    "--workdir",
                    workdir,
                    "--device",
                    args.device,
                    "--seconds",
                    str(seconds),
                    "--precision",
                    precision,
                    "--chunk-seconds",
                    str(chunk),
                    "--threads",
                    str(threads),
                    "--streams",
                    streams,
                    "--compile",
                    comp,
                ]
                cmd += ["--batch-size", str(batch)] if batch else []
                cmd += ["--quick"] if args.quick else []
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    sys.exit(f"benchmark run failed:\n{proc.stderr}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            restored = sf.read(runs[-1]["output"], dtype="float32")[0]
            for r in runs:
                os.unlink(r["output"])
            compared: str = ""
            if precision == "fp32" and comp == "no" and seconds not in reference:
                reference[seconds] = restored
                compared = "(reference)"
            elif seconds in reference:
                same = np.array_equal(reference[seconds], restored)
                snr = snr_db(reference[seconds], restored)
                compared = "identical" if same else f"{snr:.1f} dB"
            rtf = statistics.median(r["rtf"] for r in runs)
            limit = cost / 1e9 / peaks[precision] if precision in peaks else None
            row = {
                "seconds": seconds,
                "precision": precision,
                "chunk_seconds": chunk,
                "batch_size": batch,
                "compile": comp,
                "threads": runs[0]["threads"],
                "streams": streams,
                "device": runs[0]["device"],
                "runs": len(runs),
                "rtf": rtf,
                "limit_rtf": limit,
                "x_limit": rtf / limit if limit else None,
                "audio_s_per_s": statistics.median(1 / r["rtf"] for r in runs),
                "cpu_per_wall": statistics.median(r["cpu_seconds"] / r["elapsed"] for r in runs),
                "first_chunk_s": statistics.median(r["first_chunk_s"] for r in runs),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "peak_cuda_mb": runs[0]["peak_cuda_mb"],
                "vs_fp32": compared,
            }
            rows_out.append(row)
            print(
                f"{seconds:6.0f}s {precision:9s} {comp:7s} {chunk:5.1f} {batch or 'auto':>5} {row['threads']:7d} "
                f"{streams:>7s} {rtf:6.2f} "
                + (f"{row['x_limit']:7.2f}" if limit else f"{'-':>7s}")
                + f" {row['audio_s_per_s']:9.2f} {row['cpu_per_wall']:8.2f} {row['first_chunk_s']:6.1f} "
                f"{row['peak_rss_mb']:6.0f} MB  {compared}"
                + (f"  CUDA peak {row['peak_cuda_mb']:.0f} MB" if row["peak_cuda_mb"] else ""),
                flush=True,
            )
    if peak_log:
        measure_peaks("after the restores", "gemm_end")
        print("\n== against the limit, from every round of the peak (before and after) ==")
        print(
            f"{'audio':>7s} {'precision':9s} {'compile':7s} {'streams':>7s} {'RTF':>6s} {'peak':>6s} {'limit RTF':>9s} {'x limit':>7s}"
        )
        for row in rows_out:
            if row["precision"] not in peak_log:
                continue
            peak = steady_peak(peak_log[row["precision"]])
            row["peak_gflops"] = peak
            row["limit_rtf"] = cost / 1e9 / peak
            row["x_limit"] = row["rtf"] / row["limit_rtf"]
            print(
                f"{row['seconds']:6.0f}s {row['precision']:9s} {row['compile']:7s} {row['streams']:>7s} "
                f"{row['rtf']:6.2f} {peak:6.0f} {row['limit_rtf']:9.2f} {row['x_limit']:7.2f}"
            )
    print(
        f"\nthe limit's RTF = {cost / 1e9:.1f} GFLOP per audio second / the peak; x limit = RTF / that "
        f"(in the restores' table against the peak before them, in the last table against every round). "
        f"End: {load_line()}"
    )
    if args.json:
        meta = {
            "torch": torch.__version__,
            "threads": cores,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpus": os.cpu_count(),
            "machine": machine_line(),
            "gflop_per_audio_second": cost / 1e9,
            "peak_gflops": {p: steady_peak(log) for p, log in peak_log.items()},
        }
        args.json.write_text(
            json.dumps({"machine": meta, "measures": measures, "results": rows_out}, indent=2)
        )


def _config_name(threads: int, streams: int) -> str:
    if streams > 1:
        return f"{streams} streams"
    return f"{threads} thread" + ("s" if threads > 1 else "")


if __name__ == "__main__":
    main()
