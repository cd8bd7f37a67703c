"""What `apollo batch --ray` costs against the plain batch, on one machine.

Restores the same N files (synthetic music as MP3, 24-bit FLAC out) four ways: the plain
batch with one and with two single-threaded CPU workers (``run_batch``), and
``run_batch_ray`` on a local Ray instance with one and with two workers of one CPU each.
Each kind runs ``--repeat`` times (the fastest counts, after an uncounted warm-up run); a
run's wall time is the summary's (from the model being loaded, as the CLI reports
it); Ray's start (connecting, starting the workers, loading their models) is timed apart.
Prints the overhead per file (Ray against plain, same number of workers) and the
throughput in audio seconds per second, with the machine's load before and after.

    python benchmarks/ray_overhead.py                      # the tests' tiny model: 8 × 2 s
    python benchmarks/ray_overhead.py --full --files 4     # full-size model, random weights
    python benchmarks/ray_overhead.py --files 32 --seconds 10 --full

The tiny model makes the per-file costs of Ray (sending the input's bytes, returning the
output's, the driver's bookkeeping) stand out; the full-size one shows them against real
inference work. Needs ``pip install 'apollo-cli[ray]'``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

import apollo_cli
from apollo_cli import batch
from apollo_cli.options import RestoreOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_throughput import TINY, music, random_model


def load() -> str:
    """``uptime``'s load averages."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each file")
    parser.add_argument(
        "--full", action="store_true", help="the full-size model (random weights), not the tiny one"
    )
    parser.add_argument("--chunk-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each kind; the fastest counts")
    args = parser.parse_args()

    import ray

    from apollo_cli.batch.ray_runner import run_batch_ray

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        library = root / "lib"
        library.mkdir()
        for i in range(args.files):
            sf.write(library / f"{i:03d}.mp3", music(args.seconds, seed=i), 44100, format="MP3")
        if args.full:
            checkpoint = root / "full.safetensors"
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in random_model().state_dict().items()}, checkpoint)
        else:
            checkpoint = TINY
        model_name = "full-size (random weights)" if args.full else "tiny (tests' fixture)"
        options = RestoreOptions(chunk_seconds=args.chunk_seconds)
        audio = args.files * args.seconds
        print(f"{args.files} files × {args.seconds:g} s, {model_name} model, CPU; {os.cpu_count()} cores")
        print(f"load before: {load()}")

        walls: dict[str, float] = {}

        def keep(name: str, wall: float) -> None:
            walls[name] = min(wall, walls.get(name, float("inf")))

        model = apollo_cli.load_model(checkpoint, device="cpu")
        threads = torch.get_num_threads()
        # A first, uncounted run: torch's and the decoders' first-call costs are not the batch's.
        warm = batch.plan_batch(library, root / "warm", include=["000.mp3"])
        batch.run_batch(warm, model, devices="cpu", options=options)
        run = 0
        for _ in range(args.repeat):
            for workers in (1, 2):
                torch.set_num_threads(1)  # one thread per worker, as each Ray worker of one CPU has
                try:
                    plan = batch.plan_batch(library, root / f"plain{run}")
                    summary = batch.run_batch(
                        plan, model, devices=",".join(["cpu"] * workers), options=options
                    )
                finally:
                    torch.set_num_threads(threads)
                assert summary.ok, summary.failed
                keep(f"plain {workers}", summary.wall_seconds)
                run += 1

        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        began = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        for signum, handler in before.items():
            signal.signal(signum, handler)
        connect = time.perf_counter() - began
        starts: dict[int, float] = {}
        try:
            for _ in range(args.repeat):
                for workers in (1, 2):
                    plan = batch.plan_batch(library, root / f"ray{run}")
                    began = time.perf_counter()
                    summary = run_batch_ray(plan, checkpoint, options, workers=workers)
                    assert summary.ok, summary.failed
                    keep(f"ray {workers}", summary.wall_seconds)
                    starts[workers] = time.perf_counter() - began - summary.wall_seconds
                    run += 1
        finally:
            ray.shutdown()

        print(f"Ray: local instance started in {connect:.1f} s; workers ready (models loaded) in "
              + ", ".join(f"{s:.1f} s ({w} worker{'s' if w > 1 else ''})" for w, s in starts.items()))  # fmt: skip
        print(f"{'run':<10} {'wall s':>8} {'audio s/s':>10}")
        for name, wall in walls.items():
            print(f"{name:<10} {wall:8.2f} {audio / wall:10.3f}")
        for workers in (1, 2):
            extra = (walls[f"ray {workers}"] - walls[f"plain {workers}"]) / args.files
            print(f"overhead per file, {workers} worker{'s' if workers > 1 else ''}: {extra * 1000:+.0f} ms")
        print(f"load after: {load()}")


if __name__ == "__main__":
    main()
