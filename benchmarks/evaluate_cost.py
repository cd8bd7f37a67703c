"""What ``apollo evaluate`` costs on this machine, stage by stage, with the full-size model.

Writes a full-size Apollo checkpoint with random weights (``bench.make_model``: the
official model's shape; random weights cost the same to run as trained ones), makes
synthetic full-band stereo music files, and runs :func:`apollo_cli.evaluate.evaluate`
on them with every metric (ViSQOL too, when the ``eval`` extra is installed). It
prints the seconds spent in each stage (segment, encode, decode, align, restore,
score = SI-SNR + SDR + LSD, visqol), the cost per (file, bitrate), and what a run of
``--full-files`` × ``--full-bitrates`` × one model would take, computed from those
per-unit costs (a smaller measured run, scaled: it says so). It also prints the load
average, since the machine may be shared.

    python benchmarks/evaluate_cost.py                    # 2 files × 2 bitrates, 10 s segments
    python benchmarks/evaluate_cost.py --files 10 --bitrates 24,32,48,64,96,128   # the full run itself
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def full_band_music(seconds: float, rate: int = 44100, seed: int = 0) -> np.ndarray:
    """Stereo harmonic tones with vibrato and a little noise, up to 22 kHz; (frames, 2) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros((t.size, 2))
    for ch in range(2):
        for f0 in rng.uniform(100, 400, size=4):
            vibrato = 1 + 0.003 * np.sin(2 * np.pi * 5 * t + rng.uniform(0, 6))
            for h in range(1, 40):
                if f0 * h < rate / 2 - 500:
                    out[:, ch] += np.sin(2 * np.pi * f0 * h * vibrato * t + rng.uniform(0, 6)) / h
        out[:, ch] += 0.05 * rng.standard_normal(t.size)
    return (0.25 * out / np.abs(out).max()).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--bitrates", default="32,128")
    parser.add_argument("--segment-seconds", type=float, default=10.0)
    parser.add_argument("--file-seconds", type=float, default=30.0)
    parser.add_argument("--full-files", type=int, default=10)
    parser.add_argument("--full-bitrates", type=int, default=6)
    args = parser.parse_args()

    import soundfile as sf
    import torch

    import apollo_cli
    from apollo_cli.evaluate import evaluate, parse_bitrates, visqol_available

    sys.path.insert(0, str(Path(__file__).parent))
    from bench import make_model

    bitrates = parse_bitrates(args.bitrates)
    with tempfile.TemporaryDirectory(prefix="apollo-evaluate-cost-") as scratch:
        work = Path(scratch)
        checkpoint = work / "full_random.bin"
        torch.save(make_model().state_dict(), checkpoint)
        clean = work / "clean"
        clean.mkdir()
        for i in range(args.files):
            sf.write(
                clean / f"song{i:02d}.flac",
                full_band_music(args.file_seconds, seed=i),
                44100,
                subtype="PCM_24",
            )
        model = apollo_cli.load_model(checkpoint, device="cpu")
        load_before = os.getloadavg()
        began = time.perf_counter()
        report = evaluate(clean, work / "report", models=[model], bitrates=bitrates,
                          segment_seconds=args.segment_seconds)  # fmt: skip
        wall = time.perf_counter() - began
        load_after = os.getloadavg()

    units = args.files * len(bitrates)
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")  # fmt: skip
    print(f"measured: {args.files} files × {len(bitrates)} bitrates ({args.bitrates} kbps MP3) × 1 full-size "
          f"model, {args.segment_seconds:g} s segments, metrics {','.join(report.metrics)}: {wall:.1f} s wall")  # fmt: skip
    if not visqol_available():
        print("  (ViSQOL not measured: pip install 'apollo-cli[eval]')")
    per_file = {"segment"}
    full = 0.0
    print(
        f"{'stage':<10}{'total s':>10}{'per unit s':>12}   (unit: a file for segment, else a file × bitrate)"
    )
    for stage, seconds in report.timings.items():
        per = seconds / (args.files if stage in per_file else units)
        full += per * (args.full_files if stage in per_file else args.full_files * args.full_bitrates)
        print(f"{stage:<10}{seconds:>10.2f}{per:>12.3f}")
    other = wall - sum(report.timings.values())
    full += other / units * args.full_files * args.full_bitrates
    print(f"{'other':<10}{other:>10.2f}{other / units:>12.3f}   (hashing, cache reads and writes, report)")
    visqol = report.timings.get("visqol", 0.0) / units * args.full_files * args.full_bitrates
    print(f"computed from these per-unit costs, not measured: {args.full_files} files × {args.full_bitrates} "
          f"bitrates × 1 model takes about {full / 60:.1f} min, of which ViSQOL {visqol / 60:.1f} min "
          f"(without ViSQOL: {(full - visqol) / 60:.1f} min)")  # fmt: skip


if __name__ == "__main__":
    main()
