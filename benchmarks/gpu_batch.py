"""`apollo batch` on a GPU: audio seconds per second and how busy the card is, for many short files.

Makes a full-size generator with random weights (benchmarks/bench.py's, saved as a
checkpoint file, so no download), synthetic stereo music as ``--files`` files of
``--seconds`` each (and, for comparison, one file as long as all of them), and runs
``apollo batch`` on them in this process, through the CLI's own entry point, after a
warm-up restore (CUDA's start, kernel loading and the first call of each shape are not
part of what a long batch costs). Meanwhile a thread samples the GPU's utilisation
(``torch.cuda.utilization``, else ``nvidia-smi``) every 0.1 s.

Each run is a spec ``WHAT:PRECISION``; WHAT is one of
``short`` (the short WAV files), ``long`` (the one long WAV file), ``mp3`` (the short
files as MP3: decoding is part of the work), ``two`` (the short files on two workers
sharing the first device, ``cuda:0,cuda:0``) and ``compile`` (the short files with
``--compile``). The JSON (``--json``) is rewritten after every run, so a run stopped
by a time limit keeps what was measured; ``--budget`` skips the runs that would start
after that many seconds.

    python benchmarks/gpu_batch.py --device cuda --json batch.json        # 40 x 20 s, the default runs
    python benchmarks/gpu_batch.py --device cpu --tiny --files 2 --seconds 1 --runs short:fp32 long:fp32
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
TINY = HERE.parent / "tests" / "fixtures" / "tiny_official_format.bin"
#: In order of importance: a time budget cuts the last ones.
DEFAULT_RUNS = ["short:bf16", "long:bf16", "short:fp32", "two:bf16", "mp3:bf16", "long:fp32", "compile:bf16"]
WHATS = ("short", "long", "mp3", "two", "compile")
#: The run whose fp32 output each run's is compared with: the same input audio (none for the MP3s).
SAME_INPUT = {"short": "short", "long": "long", "two": "short", "compile": "short", "mp3": None}


class Sampler:
    """GPU utilisation (percent) of one device, sampled in a thread while a run is under way."""

    def __init__(self, index: int, period: float = 0.1) -> None:
        self.index, self.period = index, period
        self.samples: list[float] = []
        self.source = self._pick()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pick(self) -> str | None:
        import torch

        try:
            torch.cuda.utilization(self.index)
        except Exception:  # noqa: BLE001 - no pynvml (or no NVML): try nvidia-smi
            if shutil.which("nvidia-smi") and self._smi() is not None:
                return "nvidia-smi"
            return None
        return "torch.cuda.utilization"

    def _smi(self) -> float | None:
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", str(self.index)],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout  # fmt: skip
            return float(out.strip().splitlines()[0])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    def _read(self) -> float | None:
        import torch

        if self.source == "torch.cuda.utilization":
            return float(torch.cuda.utilization(self.index))
        return self._smi()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            value = self._read()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> Sampler:
        if self.source is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self) -> dict[str, Any]:
        s = self.samples
        return {
            "gpu_util_source": self.source,
            "gpu_util_samples": len(s),
            "gpu_util_mean": float(np.mean(s)) if s else None,
            "gpu_util_max": float(np.max(s)) if s else None,
        }


def read_all(folder: Path) -> np.ndarray:
    """Every output under ``folder``, in name order, as one long (frames, channels) array."""
    import soundfile as sf

    return np.concatenate(
        [sf.read(p, dtype="float32", always_2d=True)[0] for p in sorted(folder.rglob("*.flac"))]
    )


def make_inputs(root: Path, files: int, seconds: float, mp3: bool) -> dict[str, Path]:
    """The input folders: short WAVs, one long WAV of them all, and (``mp3``) the short ones as MP3s."""
    from concurrent.futures import ThreadPoolExecutor

    import soundfile as sf
    from bench import make_music

    folders = {name: root / name for name in ("short", "long", "mp3")}
    for folder in folders.values():
        folder.mkdir()

    def one(i: int) -> np.ndarray:
        music = make_music(seconds, seed=i).T
        sf.write(folders["short"] / f"{i:03d}.wav", music, 44100, subtype="FLOAT")
        if mp3:  # LAME is slow: in parallel, one file a thread
            sf.write(folders["mp3"] / f"{i:03d}.mp3", music, 44100, format="MP3")
        return music

    with ThreadPoolExecutor() as pool:
        pieces = list(pool.map(one, range(files)))
    sf.write(folders["long"] / "long.wav", np.concatenate(pieces), 44100, subtype="FLOAT")
    return folders


def make_checkpoint(root: Path, tiny: bool) -> Path:
    if tiny:
        return TINY
    from bench import make_model
    from safetensors.torch import save_file

    path = root / "apollo-random-full.safetensors"
    save_file({k: v.contiguous() for k, v in make_model().state_dict().items()}, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device of every run but 'two' (default cuda)")
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each short file")
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, metavar="WHAT:PRECISION")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny model (a smoke run)")
    parser.add_argument(
        "--budget", type=float, default=float("inf"), help="start no run after this many seconds"
    )
    parser.add_argument("--json", type=Path, help="write the results here (after every run)")
    args = parser.parse_args()
    for spec in args.runs:
        what, _, precision = spec.partition(":")
        if what not in WHATS or precision not in ("fp32", "bf16", "fp16"):
            parser.error(f"a run is WHAT:PRECISION, WHAT one of {', '.join(WHATS)}; not {spec!r}")

    sys.path.insert(0, str(HERE))
    import bench
    import torch
    from typer.testing import CliRunner

    import apollo_cli
    from apollo_cli.cli import app
    from apollo_cli.devices import resolve_device
    from apollo_cli.options import RestoreOptions

    began = time.perf_counter()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    index = (device.index or 0) if cuda else None
    record: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else str(device),
        "torch": torch.__version__,
        "model": "tiny (tests)" if args.tiny else "full size, random weights",
        "files": args.files,
        "seconds_each": args.seconds,
        "runs": [],
    }

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(record, indent=2))

    outputs: dict[tuple[str, str], Path] = {}

    def compare(row: dict[str, Any]) -> None:
        """The SNR of a run's outputs against fp32's on the same input, once both exist."""
        what, _, precision = row["run"].partition(":")
        reference = outputs.get((SAME_INPUT[what] or "", "fp32"))
        if precision != "fp32" and "snr_vs_fp32_db" not in row and reference and (what, precision) in outputs:
            row["snr_vs_fp32_db"] = bench.snr_db(read_all(reference), read_all(outputs[(what, precision)]))

    with tempfile.TemporaryDirectory(prefix="apollo-gpu-batch-") as tmp:
        root = Path(tmp)
        checkpoint = make_checkpoint(root, args.tiny)
        folders = make_inputs(root, args.files, args.seconds, any(r.startswith("mp3:") for r in args.runs))
        print(
            f"{record['device']}: {args.files} × {args.seconds:g} s of stereo, {record['model']}; "
            f"inputs made in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        warm: set[tuple[str, bool]] = set()
        runner = CliRunner()
        for n, spec in enumerate(args.runs):
            what, _, precision = spec.partition(":")
            compile_ = what == "compile"
            devices = f"{device},{device}" if what == "two" else str(device)
            row: dict[str, Any] = {
                "run": spec,
                "precision": precision,
                "devices": devices,
                "compile": compile_,
            }
            if time.perf_counter() - began > args.budget:
                row["skipped"] = f"over the time budget of {args.budget:g} s"
                record["runs"].append(row)
                save()
                print(f"{spec}: skipped ({row['skipped']})", flush=True)
                continue
            if (precision, compile_) not in warm:
                # Warm-up: CUDA's start, kernel loading, the first call of the chunk shapes; not timed.
                t = time.perf_counter()
                model = apollo_cli.load_model(checkpoint, device=device)
                options = RestoreOptions(precision=precision, compile=compile_)
                # As long as a short file: the warm-up runs the shapes of their chunks.
                noise = np.random.default_rng(0).standard_normal((2, round(44100 * args.seconds)))
                warmup = (0.1 * noise).astype(np.float32)
                apollo_cli.restore(model, warmup, 44100, options=options)
                if cuda:
                    torch.cuda.synchronize(device)
                del model
                warm.add((precision, compile_))
                row["warmup_s"] = time.perf_counter() - t
            source = folders["long" if what == "long" else "mp3" if what == "mp3" else "short"]
            out = root / f"out-{n}"
            cli = ["batch", str(source), "-o", str(out), "--model", str(checkpoint), "--device", devices,
                   "--precision", precision, "-q"] + (["--compile"] if compile_ else [])  # fmt: skip
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            with Sampler(index) if cuda else _Nothing() as sampler:
                t = time.perf_counter()
                result = runner.invoke(app, cli)
                wall = time.perf_counter() - t
            written = len(list(out.rglob("*.flac"))) if out.exists() else 0
            expected = 1 if what == "long" else args.files
            audio = args.files * args.seconds
            row.update(
                exit_code=result.exit_code,
                files=expected,
                written=written,
                audio_seconds=audio,
                wall_s=wall,
                audio_s_per_s=audio / wall,
                rtf=wall / audio,
                peak_gpu_mb=torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
                **(sampler.summary() if cuda else {}),
            )
            if result.exit_code != 0 or written != expected:
                row["error"] = (result.output or repr(result.exception)).strip()[-2000:]
            else:
                outputs[(what, precision)] = out
            compare(row)
            record["runs"].append(row)
            save()
            util = (
                f", GPU busy {row['gpu_util_mean']:.0f} % (max {row['gpu_util_max']:.0f})"
                if row.get("gpu_util_mean") is not None
                else ""
            )
            print(
                f"{spec:14s} {devices:14s} {row['audio_s_per_s']:8.1f} audio s/s (RTF {row['rtf']:.4f}), "
                f"{written}/{expected} files{util}"
                + (f", peak {row['peak_gpu_mb']:.0f} MB" if row["peak_gpu_mb"] else "")
                + (f", SNR vs fp32 {row['snr_vs_fp32_db']:.1f} dB" if "snr_vs_fp32_db" in row else "")
                + (f"\n  FAILED (exit {result.exit_code}): {row['error']}" if "error" in row else ""),
                flush=True,
            )
        for row in record["runs"]:  # those whose fp32 reference ran after them
            compare(row)
        record["total_s"] = time.perf_counter() - began
        save()
    failed = [r["run"] for r in record["runs"] if "error" in r]
    sys.exit(f"gpu_batch: failed runs: {', '.join(failed)}" if failed else 0)


class _Nothing:
    """A stand-in for :class:`Sampler` off the GPU."""

    def __enter__(self) -> _Nothing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
