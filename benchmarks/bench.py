"""Speed and memory of apollo-cli's inference, measured on this machine.

Builds a full-size Apollo generator (feature dim 256, 6 layers: the official
model's shape) with random weights, so no download is needed; makes synthetic
stereo music of the chosen lengths, writes it to a WAV file, and restores it
through ``apollo_cli.restore_file`` (decode, inference, write: what a user runs).
Each configuration runs in a fresh process, so peak resident memory is its own.

For each configuration it prints the real-time factor (processing time / audio
duration; below 1 is faster than real time), audio seconds restored per second,
peak resident memory during the restore (decoded input, output and
inference; not building the model or the test signal), the time until the first
chunk was restored, and for reduced
precision the SNR of its output against float32 on the same input.

It also measures how fast this machine runs the model's matrix products (the
model's own product code, on its slice shapes, in each precision) and prints the
real-time factor those products alone would take: the floor for this machine,
since they are about nine tenths of the work. Machines differ a lot (a 2-core
AVX2 EPYC runs float32 products at about 125 GFLOP/s, an AVX-512 one at about
215), so compare a configuration's RTF with its floor, not with another
machine's RTF.

    python benchmarks/bench.py                       # 30 s, fp32 and bf16, 3 runs each
    python benchmarks/bench.py --seconds 600 --precision bf16 --repeat 1   # memory, 10 min
    python benchmarks/bench.py --chunk-seconds 4 8 16 --batch-size 1 2 --json out.json
    python benchmarks/bench.py --device cuda --precision fp32 fp16 bf16
    python benchmarks/bench.py --precision fp32 --compile no yes    # torch.compile against eager

On 2 CPU cores a default run takes a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_model(seed: int = 0):  # type: ignore[no-untyped-def]
    """A full-size generator with random weights at trained-like scales."""
    import torch

    from apollo_cli.model import Apollo

    torch.manual_seed(seed)
    model = Apollo()
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
    """Matrix-product FLOP per second of stereo audio for ``config`` (all 1×1 convolutions)."""
    n, bands = config.feature_dim, config.bands
    per_token = 3 * n * n + n * n + 8 * n * n + 4 * n * n  # across bands: qkv, output, MLP
    per_token += 3 * (4 * n * n + 4 * n * n)  # along time: three blocks of up and down
    macs = config.layers * bands * per_token
    macs += sum((2 * w + 1) * n + n * 4 * w for w in config.band_widths)  # band encoders, decoders
    frames = config.sample_rate / config.hop
    return 2 * macs * frames * 2  # 2 FLOP a MAC; stereo


def product_rate(precision: str, device: str, seconds: float = 3.0) -> float:
    """GFLOP/s of the model's own 1×1 convolutions on its slice shapes, weighted as in the model."""
    import torch

    from apollo_cli.inference import precision_context
    from apollo_cli.model import SLICE_ROWS, Conv1x1

    dev = torch.device(device)
    n = 256
    rows = SLICE_ROWS.get(dev.type, 1 << 16)
    # (in, out, silu, how many per token per layer): the shapes of one layer.
    shapes = [
        (n, 3 * n, False, 1),
        (n, n, False, 1),
        (n, 8 * n, True, 1),
        (4 * n, n, False, 1),
        (n, 4 * n, True, 3),
        (4 * n, n, False, 3),
    ]
    flop = time_spent = 0.0
    for dim_in, dim_out, silu, count in shapes:
        conv = Conv1x1(dim_in, dim_out).to(dev)  # outside inference mode, as a loaded model's
        torch.nn.init.normal_(conv.weight, std=dim_in**-0.5)
        with torch.inference_mode(), precision_context(dev, precision):
            x = torch.randn(rows, dim_in, device=dev)
            conv(x, silu=silu)  # builds the packed weight
            runs, began = 0, time.perf_counter()
            while time.perf_counter() - began < seconds / len(shapes):
                conv(x, silu=silu)
                runs += 1
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            rate = 2 * rows * dim_in * dim_out * runs / (time.perf_counter() - began)
            flop += count * dim_in * dim_out
            time_spent += count * dim_in * dim_out / rate
    return flop / time_spent / 1e9


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
    import torch

    import apollo_cli
    from apollo_cli.options import RestoreOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    device = apollo_cli.devices.resolve_device(args.device)
    model = make_model().to(device)
    work = Path(args.workdir)
    source = work / f"input-{args.seconds:g}.wav"  # made by the parent: its memory is not ours
    target = work / f"out-{os.getpid()}.wav"
    first: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def progress(done: int, total: int) -> None:
        if not first:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            first.append(time.perf_counter())

    reset_peak_rss()
    start = time.perf_counter()
    result = apollo_cli.restore_file(
        model,
        source,
        target,
        progress=progress,
        carry_tags=False,
        options=RestoreOptions(
            chunk_seconds=args.chunk_seconds,
            batch_size=args.batch_size,
            precision=args.precision,
            compile=args.compile == "yes",
        ),
    )
    elapsed = time.perf_counter() - start
    record = {
        "precision": args.precision,
        "compile": args.compile,
        "chunk_seconds": args.chunk_seconds,
        "batch_size": args.batch_size,
        "seconds": args.seconds,
        "device": str(device),
        "elapsed": elapsed,
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, nargs="+", default=[30.0], help="audio lengths")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
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
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median reported)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write all measurements here")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import soundfile as sf

    from apollo_cli.options import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SECONDS

    if args.one:
        args.seconds, args.precision = args.seconds[0], args.precision[0]
        args.chunk_seconds, args.batch_size = args.chunk_seconds[0], args.batch_size[0]
        args.compile = args.compile[0]
        run_one(args)
        return

    chunks = [c or DEFAULT_CHUNK_SECONDS for c in args.chunk_seconds]
    batches = [b or DEFAULT_BATCH_SIZE for b in args.batch_size]  # None: the library picks
    rows = []
    from apollo_cli.model import ApolloConfig

    floor: dict[str, tuple[float, float]] = {}
    for precision in args.precision:  # measured once, before the runs, on a quiet machine
        rate = product_rate(precision, args.device)
        floor[precision] = (rate, product_flop_per_second(ApolloConfig()) / 1e9 / rate)
        print(
            f"matrix products, {precision}: {rate:5.0f} GFLOP/s here, so RTF >= {floor[precision][1]:4.2f} "
            "from products alone",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="apollo-bench-") as workdir:
        reference: dict[float, np.ndarray] = {}
        for seconds, chunk, batch, precision, comp in itertools.product(
            args.seconds, chunks, batches, args.precision, args.compile
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
                    str(args.threads),
                    "--compile",
                    comp,
                ]
                cmd += ["--batch-size", str(batch)] if batch else []
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    sys.exit(f"benchmark run failed:\n{proc.stderr}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            restored = sf.read(runs[-1]["output"], dtype="float32")[0]
            for r in runs:
                os.unlink(r["output"])
            if precision == "fp32" and comp == "no":
                reference.setdefault(seconds, restored)
            row = {
                "seconds": seconds,
                "precision": precision,
                "chunk_seconds": chunk,
                "batch_size": batch,
                "compile": comp,
                "device": runs[0]["device"],
                "runs": len(runs),
                "rtf": statistics.median(r["rtf"] for r in runs),
                "audio_s_per_s": statistics.median(1 / r["rtf"] for r in runs),
                "first_chunk_s": statistics.median(r["first_chunk_s"] for r in runs),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "peak_cuda_mb": runs[0]["peak_cuda_mb"],
                "snr_vs_fp32_db": (
                    snr_db(reference[seconds], restored)
                    if (precision != "fp32" or comp == "yes") and seconds in reference
                    else None
                ),
                "product_gflops": floor[precision][0],
                "product_floor_rtf": floor[precision][1],
            }
            rows.append(row)
            print(
                f"{seconds:6.0f} s  {precision:4s}{'  compiled' if comp == 'yes' else ''}  chunk {chunk:5.1f} s  "
                f"batch {batch or 'auto'}  RTF {row['rtf']:5.2f} (floor {row['product_floor_rtf']:4.2f})  "
                f"({row['audio_s_per_s']:5.2f} audio s/s)  "
                f"first chunk {row['first_chunk_s']:5.2f} s  peak RSS {row['peak_rss_mb']:6.0f} MB"
                + (f"  CUDA peak {row['peak_cuda_mb']:6.0f} MB" if row["peak_cuda_mb"] else "")
                + (
                    f"  SNR vs fp32 {row['snr_vs_fp32_db']:5.1f} dB"
                    if row["snr_vs_fp32_db"] is not None
                    else ""
                ),
                flush=True,
            )
    if args.json:
        import torch

        meta = {
            "torch": torch.__version__,
            "threads": args.threads or torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpus": os.cpu_count(),
        }
        args.json.write_text(json.dumps({"machine": meta, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
