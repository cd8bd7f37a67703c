"""The benchmark's quick mode runs and prints its three tables (structure only, never timings)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


def test_bench_quick_prints_the_limit_products_and_restores(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(BENCH.parents[1] / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--precision",
            "fp32",
            "--streams",
            "1",
            "2",
            "--peak-rounds",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert re.search(r"^machine: \d+ CPUs .*load average", text, re.M)
    assert re.search(r"^model: .* GFLOP per second of stereo", text, re.M)
    # 1. The limit, before the restores and after them: a row per precision with each
    # configuration's median (lowest-highest of two rounds), the peak and the limit's RTF.
    assert text.count("== big-GEMM peak") == 2
    limit_rows = re.findall(r"^fp32(?:\s+\d+ \(\s*\d+-\s*\d+\))+\s+\d+\s+\d+\.\d\d$", text, re.M)
    assert len(limit_rows) == 2, text
    # 2. The model's products, plain and with epilogues, and the weighted line.
    assert "== the model's products" in text
    assert re.search(r"^fp32\s+MLP up \d+->\d+ \+silu\+gate\s+\d+\s+\d+\s+\d+%$", text, re.M)
    assert re.search(r"^fp32\s+all, weighted as the model .*products alone: RTF \d", text, re.M)
    # 3. A restore per --streams value; the second's fp32 output is the first's exactly.
    restores, _, against = text.partition("== against the limit")
    rows = re.findall(r"^\s+1s fp32 .*$", restores, re.M)
    assert len(rows) == 2, text
    assert rows[0].endswith("(reference)") and rows[1].endswith("identical"), rows
    assert re.search(r"\s1\s+\d+\.\d\d\s+\d+\.\d\d", rows[0])  # streams 1: an RTF and its ratio to the limit
    # 4. Each restore against the limit from every round: its RTF, the peak, the limit, the ratio.
    final = re.findall(r"^\s+1s fp32\s+no\s+[12]\s+(\d+\.\d\d)\s+\d+\s+\d+\.\d\d\s+\d+\.\d\d$", against, re.M)
    assert len(final) == 2, against
    assert "load average" in text.splitlines()[-1]
    assert '"results"' in out.read_text()
