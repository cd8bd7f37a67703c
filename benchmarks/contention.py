"""How ``apollo restore`` degrades when other programs keep the CPU busy.

Restores a short stereo file with the full-size model (random weights) in a fresh
process, first on a quiet machine and then beside ``--busy`` processes that each spin
one core, under each thread setting given:

- ``default``: what apollo-cli does (its OpenMP wait policy and thread count);
- ``spin``: OpenMP threads that spin while waiting (``OMP_WAIT_POLICY=ACTIVE``);
- ``passive``: threads that sleep while waiting (``OMP_WAIT_POLICY=PASSIVE``);
- ``spin20k``: a short spin, then sleep (``GOMP_SPINCOUNT=20000``, libgomp's own knob);
- ``1thread``: one thread (``OMP_NUM_THREADS=1``).

It prints each run's wall time, its slowdown against the fastest setting on the
quiet machine (what the user gets when nothing else runs), and against the user's
fair share of the CPU: with B busy processes on C cores a program is entitled to
C/(B+1) cores, so a program that used all C cores when quiet should take (B+1)/C
times as long, at best (never less than 1).

    python benchmarks/contention.py                          # 6 s, 2 busy processes
    python benchmarks/contention.py --seconds 10 --busy 1 2 --settings default passive 1thread
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "spin": {"OMP_WAIT_POLICY": "ACTIVE"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin20k": {"GOMP_SPINCOUNT": "20000"},
    "1thread": {"OMP_NUM_THREADS": "1"},
}


def restore_seconds(source: Path, model: Path, env: dict[str, str], precision: str) -> float:
    target = source.with_name("out.flac")
    target.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "apollo_cli", "restore", str(source), "-o", str(target),
           "--model", str(model), "--device", "cpu", "--precision", precision, "--quiet"]  # fmt: skip
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")
    }
    began = time.perf_counter()
    subprocess.run(cmd, env={**clean, **env}, check=True)
    return time.perf_counter() - began


def busy(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that each keep one core busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="audio length")
    parser.add_argument("--busy", type=int, nargs="+", default=[2], help="busy processes beside the restore")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration (median reported)")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    import soundfile as sf
    import torch
    from bench import make_model, make_music

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model = folder / "full_random.bin"
        torch.save(make_model().state_dict(), model)
        source = folder / "music.wav"
        sf.write(source, make_music(args.seconds).T, 44100)
        print(
            f"{args.seconds:g} s stereo, full-size model, {args.precision}, {cores} cores; median of {args.repeat}"
        )
        print(f"{'setting':>8} {'busy':>5} {'wall':>8} {'vs quiet':>9} {'vs fair share':>14}")
        quiet: dict[str, float] = {}
        for count in [0, *args.busy]:
            for setting in args.settings:
                hogs = busy(count)
                try:
                    time.sleep(0.5)  # let the busy processes reach full speed
                    runs = [
                        restore_seconds(source, model, SETTINGS[setting], args.precision)
                        for _ in range(args.repeat)
                    ]
                finally:
                    for hog in hogs:
                        hog.kill()
                        hog.wait()
                wall = statistics.median(runs)
                if count == 0:
                    quiet[setting] = wall
                    print(f"{setting:>8} {count:5d} {wall:7.1f}s {'':>9} {'':>14}", flush=True)
                    continue
                slowdown = wall / min(quiet.values())
                fair = max(1.0, (count + 1) / cores)
                print(
                    f"{setting:>8} {count:5d} {wall:7.1f}s {slowdown:8.2f}× {slowdown / fair:13.2f}×",
                    flush=True,
                )


if __name__ == "__main__":
    main()
