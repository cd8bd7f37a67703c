"""Throughput of `apollo batch`: many short files against one long file of the same length.

The batch runner decodes the next files and writes finished ones in background
threads, so the device should not wait on I/O: restoring N short files should cost no
more per second of audio than restoring one long file of the same total length. This
script measures both (and, for contrast, a plain loop of ``restore_file`` calls, where
decoding, inference and writing take turns) and prints audio seconds per wall-clock
second.

    python benchmarks/batch_throughput.py                    # full-size model, random weights
    python benchmarks/batch_throughput.py --files 8 --seconds 4 --device cuda
    python benchmarks/batch_throughput.py --tiny             # the tests' tiny model: a smoke run

The full-size model (``ApolloConfig()``: feature dim 256, 6 layers, as the official
checkpoint) gets random weights, which cost the same to run as trained ones, so no
download is needed. Inputs are synthetic music encoded as MP3, so decoding is part of
the work, and outputs are 24-bit FLAC, as ``apollo batch`` writes by default.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import apollo_cli
from apollo_cli import batch
from apollo_cli.model import Apollo
from apollo_cli.options import RestoreOptions

TINY = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny_official_format.bin"


def music(seconds: float, seed: int, rate: int = 44100) -> np.ndarray:
    """Synthetic stereo music, (frames, 2): harmonic tones and a little noise, about -12 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    out = np.zeros((t.size, 2))
    for ch in range(2):
        for f0 in (220.0 * (1 + 0.01 * ch), 277.2, 329.6):
            for k in range(1, 5):
                out[:, ch] += np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k
        out[:, ch] += 0.05 * rng.standard_normal(t.size)
    return (out * 10 ** (-12 / 20) / np.abs(out).max()).astype(np.float32)


def random_model() -> Apollo:
    """The full-size generator with random weights of sensible scale (no denormals, no NaN)."""
    model = Apollo().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if p.dim() == 1 and name.endswith("weight"):  # norm gains
                p.copy_(1 + 0.1 * noise)
            elif p.dim() == 1:  # biases
                p.copy_(0.01 * noise)
            else:
                p.copy_(noise / math.sqrt(p[0].numel()))
    return model


def timed_batch(
    folder: Path, out: Path, model: Apollo, devices: list[torch.device], args: argparse.Namespace
) -> float:
    """Audio seconds per second for `apollo batch`'s runner on every file in ``folder``."""
    plan = batch.plan_batch(folder, out)
    began = time.perf_counter()
    summary = batch.run_batch(
        plan,
        model,
        devices=devices,
        options=RestoreOptions(chunk_seconds=args.chunk_seconds, batch_size=args.batch_size),
    )
    wall = time.perf_counter() - began
    assert summary.ok and len(summary.done) == len(plan.jobs), summary.failed
    return summary.audio_seconds / wall


def timed_loop(folder: Path, out: Path, model: Apollo, args: argparse.Namespace) -> float:
    """Audio seconds per second for a plain loop of restore_file: nothing overlaps.

    The loop runs in a thread of its own, as the batch runner's inference does, so the
    rows differ only in the overlapping (on a busy shared CPU, inference in the main
    thread was seen to run far slower than in any other thread).
    """
    out.mkdir()
    audio: list[float] = []

    def loop() -> None:
        for source in sorted(folder.glob("*.mp3")):
            result = apollo_cli.restore_file(
                model,
                source,
                out / f"{source.stem}.flac",
                options=RestoreOptions(chunk_seconds=args.chunk_seconds, batch_size=args.batch_size),
            )
            audio.append(result.duration)

    began = time.perf_counter()
    worker = threading.Thread(target=loop)
    worker.start()
    worker.join()
    return sum(audio) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="number of short files (default 4)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each short file (default 2 s)")
    parser.add_argument("--device", default="cpu", help="as for apollo batch: cpu, cuda, cuda:0,cuda:1, ...")
    parser.add_argument("--chunk-seconds", type=float, default=4.0)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: as apollo batch (1 on a CPU, auto on a GPU)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="use the tests' tiny model instead of the full-size one"
    )
    parser.add_argument("--no-loop", action="store_true", help="skip the plain restore_file loop")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds, interleaved; the best of each is shown (default 1)"
    )
    args = parser.parse_args()

    devices = batch.parse_devices(args.device)
    model = apollo_cli.load_model(TINY, device=devices[0]) if args.tiny else random_model().to(devices[0])
    total = args.files * args.seconds
    print(
        f"model: {'tiny (tests)' if args.tiny else 'full size, random weights'}; devices: "
        f"{batch.describe_devices(devices)}; torch threads: {torch.get_num_threads()}; "
        f"{args.files} × {args.seconds:g} s against 1 × {total:g} s of stereo MP3",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="apollo-bench-") as tmp:
        root = Path(tmp)
        short, long = root / "short", root / "long"
        short.mkdir()
        long.mkdir()
        for i in range(args.files):
            sf.write(short / f"{i:03d}.mp3", music(args.seconds, seed=i), 44100, format="MP3")
        sf.write(long / "long.mp3", music(total, seed=99), 44100, format="MP3")
        # Warm up (one-time set-up such as packed weights) before anything is timed.
        apollo_cli.restore(
            model, music(1.0, seed=7).T, 44100, options=RestoreOptions(chunk_seconds=args.chunk_seconds)
        )

        names = ["1 long file, apollo batch", f"{args.files} short files, apollo batch"]
        if not args.no_loop:
            names.append(f"{args.files} short files, restore_file loop")
        best = [0.0] * len(names)
        for round_ in range(args.repeat):  # interleaved, so a busy moment of a shared machine hits all alike
            speeds = [
                timed_batch(long, root / f"out-long-{round_}", model, devices, args),
                timed_batch(short, root / f"out-short-{round_}", model, devices, args),
            ]
            if not args.no_loop:
                speeds.append(timed_loop(short, root / f"out-loop-{round_}", model, args))
            best = [max(b, s) for b, s in zip(best, speeds, strict=True)]
        rows = list(zip(names, best, strict=True))
    width = max(len(name) for name, _ in rows)
    for name, speed in rows:
        print(f"{name:<{width}}  {speed:6.3f} audio s / s")
    ratio = rows[1][1] / rows[0][1]
    print(
        f"short files vs one long file: {ratio:.2f}× the throughput ({'not slower' if ratio >= 0.95 else 'slower'})"
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
