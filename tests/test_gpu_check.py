"""benchmarks/gpu_check.sh and its helpers, off the GPU: what can go wrong there is checked here first.

A GPU machine's time is short, so the script must skip cleanly where there is no GPU,
its report must read what the parts leave (whichever version of bench.py wrote it),
its batch driver must run, and the path it takes must not need huggingface_hub (the
GPU machine's is older than our floor).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def env(**extra: str) -> dict[str, str]:
    """This interpreter, the source tree, and no GPU even on a machine with one."""
    base = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    base.pop("OUT", None)
    return {**base, **extra}


def test_gpu_check_without_a_gpu_says_so_and_exits_0(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env(APOLLO_GPU_CHECK_OUT=str(tmp_path)), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    line = (
        "no CUDA GPU here (torch.cuda.is_available() is False); skipped the GPU parts, nothing was measured"
    )
    assert line in result.stdout
    assert line in (tmp_path / "gpu_check.log").read_text()
    assert json.loads((tmp_path / "gpu_check.json").read_text())["gpu"] is None
    # Without torch at all, the same: nothing to measure, status 0.
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env(APOLLO_GPU_CHECK_OUT=str(tmp_path), PYTHON="/nonexistent/python3"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and "no /nonexistent/python3 here" in result.stdout


def test_gpu_check_writes_under_out(tmp_path: Path) -> None:
    """On the device machine $OUT is the folder that comes back."""
    result = subprocess.run(
        ["bash", str(SCRIPT)], env={**env(), "OUT": str(tmp_path)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert (tmp_path / "gpu_check.log").exists() and (tmp_path / "gpu_check.json").exists()


def parts(tmp_path: Path) -> Path:
    """What the check's parts leave, in the forms both versions of bench.py write."""
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "env.json").write_text(json.dumps({
        "gpu": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu130", "gemm_tflops": {"fp32": 51.2, "bf16": 800.0},
    }))  # fmt: skip
    (folder / "pytest.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" '
        'tests="13" time="61.5"><testcase classname="tests.test_cuda" name="test_a"/>'
        '<testcase classname="tests.test_cuda" name="test_b"><failure message="x"/></testcase>'
        "</testsuite></testsuites>"
    )
    row = {
        "seconds": 300.0,
        "compile": "no",
        "batch_size": None,
        "peak_cuda_mb": 20480.0,
        "first_chunk_s": 0.4,
    }
    (folder / "bench-precision.json").write_text(json.dumps({"results": [
        {**row, "precision": "fp32", "rtf": 0.02, "audio_s_per_s": 50.0, "snr_vs_fp32_db": None},
        {**row, "precision": "bf16", "rtf": 0.004, "audio_s_per_s": 250.0, "snr_vs_fp32_db": 41.23},
    ]}))  # fmt: skip
    (folder / "bench-compile.json").write_text(json.dumps({"results": [
        {**row, "precision": "fp16", "compile": "yes", "rtf": 0.003, "audio_s_per_s": 333.0, "vs_fp32": "40.5 dB"},
        {**row, "precision": "fp32", "compile": "no", "rtf": 0.02, "audio_s_per_s": 50.0, "vs_fp32": "(reference)"},
    ]}))  # fmt: skip
    run = {
        "devices": "cuda:0",
        "compile": False,
        "files": 40,
        "written": 40,
        "exit_code": 0,
        "peak_gpu_mb": 9000.0,
    }
    (folder / "batch.json").write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3", "files": 40,
        "seconds_each": 20.0, "model": "full size, random weights", "runs": [
            {**run, "run": "short:bf16", "precision": "bf16", "audio_s_per_s": 320.0, "rtf": 1 / 320,
             "gpu_util_mean": 93.0, "gpu_util_max": 100.0, "snr_vs_fp32_db": 41.0},
            {**run, "run": "short:fp32", "precision": "fp32", "audio_s_per_s": 35.0, "rtf": 1 / 35},
            {**run, "run": "compile:bf16", "precision": "bf16", "skipped": "over the time budget of 70 s"},
        ]}))  # fmt: skip
    return tmp_path


def test_report_table_and_json(tmp_path: Path) -> None:
    results = parts(tmp_path)
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_report.py"), str(results)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "== apollo-cli GPU check: NVIDIA H100 80GB HBM3; torch 2.11.0+cu130 ==" in out
    assert "cuda tests: 12 passed, 1 failed, 0 skipped in 62 s\n  FAILED tests.test_cuda::test_b" in out
    assert "41.2 dB" in out and "40.5 dB" in out and "(reference)" in out
    # The limit: 512 GFLOP per audio second over the peak; the rows' RTF against it.
    assert (
        "big-GEMM peak (8192³, TF32 off): fp32 51, bf16 800 TFLOP/s; the limit's RTF (cost / peak): " in out
    )
    assert "fp32 0.01000, bf16 0.00064" in out
    assert "  300s fp32      no       auto   0.0200     2.0      50.0       20480  -" in out
    assert "short:bf16     cuda:0              320.0   0.0031     4.9     93 %        9000  41.0 dB" in out
    assert "compile:bf16   cuda:0          skipped: over the time budget of 70 s" in out
    assert out.rstrip().endswith("target, fp32 on a batch of files: 35 audio s/s against 40: MISSED")
    assert "target, bf16 on a batch of files: 320 audio s/s against 300: met" in out
    report = json.loads((results / "gpu_check.json").read_text())
    assert report["gpu"] == "NVIDIA H100 80GB HBM3"
    assert [r["snr_vs_fp32"] for r in report["bench"]] == [None, 41.23, 40.5, "(reference)"]
    assert report["targets"]["bf16 on a batch of files"]["met"] is True


def test_report_of_a_check_cut_short(tmp_path: Path) -> None:
    """A check stopped by its time limits still gets its table."""
    (tmp_path / "parts").mkdir()
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_report.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "cuda tests: did not finish" in out and "apollo batch: no results" in out


def test_batch_driver_runs_on_the_cpu(tmp_path: Path) -> None:
    """gpu_batch.py's runs, on the tiny model: `apollo batch` through the CLI, two workers, the JSON."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_batch.py"), "--device", "cpu", "--tiny", "--files", "2",
         "--seconds", "0.5", "--runs", "short:fp32", "two:fp32", "long:fp32", "--json", str(tmp_path / "b.json")],
        env=env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "b.json").read_text())
    assert [(r["run"], r["devices"], r["written"]) for r in record["runs"]] == [
        ("short:fp32", "cpu", 2), ("two:fp32", "cpu,cpu", 2), ("long:fp32", "cpu", 1),
    ]  # fmt: skip
    assert all(r["audio_seconds"] == 1.0 and r["audio_s_per_s"] > 0 for r in record["runs"])


@pytest.mark.parametrize("command", ["restore", "batch"])
def test_local_checkpoints_never_import_huggingface_hub(tmp_path: Path, command: str) -> None:
    """The GPU machine's huggingface_hub is older than our floor: a run with a local checkpoint must not need it."""
    import soundfile as sf

    from helpers import TINY_MODEL, make_music

    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "song.wav", make_music(0.5).T, 44100)
    target = (
        [folder / "song.wav", "-o", tmp_path / "song.flac"]
        if command == "restore"
        else [folder, "-o", tmp_path / "out"]
    )
    code = (
        "import sys\n"
        "sys.modules['huggingface_hub'] = None  # any import of it fails\n"
        "from apollo_cli.cli import app\n"
        "app(sys.argv[1:], prog_name='apollo')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, command, *map(str, target), "--model", str(TINY_MODEL), "--device", "cpu",
         "--chunk-seconds", "0.25", "-q"],
        env=env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "song.flac").exists() or (tmp_path / "out" / "song.flac").exists()
