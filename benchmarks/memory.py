"""Peak memory of ``apollo restore`` against the length of the file.

Writes synthetic stereo music of each length to a FLAC file (a block at a time, so
making a three-hour file costs no memory either), runs ``apollo restore`` on it in a
fresh process, and prints that process's peak resident memory (from the kernel's
accounting of the finished child) with its wall time.

Two models: ``tiny`` (the test suite's N=32, L=2 checkpoint: fast, so three hours take
minutes, and what it shows is the part of memory that depends on the file's length)
and ``full`` (the official model's shape with random weights: its per-chunk working
set, which does not depend on the length). A full-size restore of three hours takes
hours on two cores; its peak is the ``full`` peak at any length plus the ``tiny``
growth with length, both printed.

    python benchmarks/memory.py --minutes 10 30 180 --model tiny
    python benchmarks/memory.py --minutes 1 --model full --precision bf16
    python benchmarks/memory.py --minutes 30 --model tiny --apollo /path/to/other/venv/bin/apollo
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tiny_official_format.bin"
RATE = 44100


def write_music(path: Path, minutes: float, block_seconds: int = 60) -> None:
    """Stereo harmonic tones and noise, written a minute at a time."""
    rng = np.random.default_rng(0)
    total = int(minutes * 60 * RATE)
    with sf.SoundFile(path, "w", RATE, 2, "PCM_16", format="FLAC") as out:
        for start in range(0, total, block_seconds * RATE):
            n = min(block_seconds * RATE, total - start)
            t = (start + np.arange(n)) / RATE
            block = np.zeros((n, 2))
            for ch in range(2):
                for f0 in (110.0, 220.0 * (1 + 0.01 * ch), 329.6):
                    for h in range(1, 6):
                        block[:, ch] += np.sin(2 * np.pi * f0 * h * t) / h
                block[:, ch] += 0.05 * rng.standard_normal(n)
            out.write(0.1 * block)


def full_size_checkpoint(folder: Path) -> Path:
    """The official model's shape with random weights, saved where ``--model`` can read it."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from bench import make_model

    path = folder / "full_random.bin"
    torch.save(make_model().state_dict(), path)
    return path


def measure(apollo: list[str], source: Path, model: Path, extra: list[str]) -> tuple[float, float, int]:
    """Peak RSS (MB) and wall seconds of one ``apollo restore`` process, and its exit status."""
    target = source.with_name("restored.flac")
    target.unlink(missing_ok=True)
    cmd = [*apollo, "restore", str(source), "-o", str(target), "--model", str(model), "--quiet", *extra]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    target.unlink(missing_ok=True)
    return usage.ru_maxrss / 1024, wall, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0, 180.0])
    parser.add_argument("--model", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument(
        "--apollo", default=None, help="the apollo executable to measure (default: this tree's)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the long files go (default: a temp dir)"
    )
    args = parser.parse_args()

    apollo = [args.apollo] if args.apollo else [sys.executable, "-m", "apollo_cli"]
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        folder = Path(scratch)
        model = TINY if args.model == "tiny" else full_size_checkpoint(folder)
        print(f"model {args.model}, precision {args.precision}, threads {os.cpu_count()} cores")
        print(f"{'audio':>12} {'peak RSS':>10} {'wall':>9} {'x real time':>12}")
        for minutes in args.minutes:
            source = folder / f"music_{minutes:g}min.flac"
            write_music(source, minutes)
            peak, wall, code = measure(
                apollo, source, model, ["--precision", args.precision, "--device", "cpu"]
            )
            source.unlink()
            flag = "" if code == 0 else f"  (exit status {code})"
            print(
                f"{minutes:9g} min {peak:7.0f} MB {wall:8.1f}s {minutes * 60 / wall:11.2f}×{flag}", flush=True
            )


if __name__ == "__main__":
    main()
