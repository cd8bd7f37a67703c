"""The short table that ends benchmarks/gpu_check.sh, and its JSON.

Reads what the check's parts left in RESULTS/parts (pytest's JUnit XML, bench.py's
JSON files, gpu_batch.py's JSON; any of them may be missing, if a part was cut by its
time limit), prints one table, and writes everything to RESULTS/gpu_check.json, with
the issue's targets marked as met or missed.

    python benchmarks/gpu_report.py RESULTS
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

#: Issue 14's targets, in audio seconds per second, on a batch of files (one H100/H200-class card).
TARGETS = {"bf16": 300.0, "fp32": 40.0}
#: The full-size model's cost, GFLOP per second of stereo (bench.py's figure, when it did not write one).
COST_GFLOP = 512.0


def tests(parts: Path) -> dict[str, Any] | None:
    """Counts from pytest's JUnit XML, and the names of tests that failed."""
    path = parts / "pytest.xml"
    if not path.exists():
        return None
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return None
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname', '')}::{case.get('name', '')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "seconds": float(suite.get("time", 0)), "failed": failed}  # fmt: skip


def snr(row: dict[str, Any]) -> float | str | None:
    """SNR against fp32 from either form of bench.py's rows: a number, or the text ``12.3 dB``/``identical``."""
    if row.get("snr_vs_fp32_db") is not None:
        return float(row["snr_vs_fp32_db"])
    text = str(row.get("vs_fp32") or "")
    match = re.match(r"^\s*(-?[\d.]+|inf)\s*dB", text)
    if match:
        return float(match.group(1))
    return text or None


def limits(env: dict[str, Any], parts: Path) -> dict[str, float]:
    """The limit's RTF per precision: the model's cost over the card's big-GEMM peak (gpu_check.sh's)."""
    cost = COST_GFLOP
    for path in parts.glob("bench-*.json"):
        cost = json.loads(path.read_text()).get("machine", {}).get("gflop_per_audio_second") or cost
    return {p: cost / (tflops * 1e3) for p, tflops in (env.get("gemm_tflops") or {}).items() if tflops}


def bench_rows(parts: Path) -> list[dict[str, Any]]:
    rows = []
    order = ["bench-precision", "bench-compile", "bench-batch"]  # as gpu_check.sh runs them
    for path in sorted(
        parts.glob("bench-*.json"), key=lambda p: (order.index(p.stem) if p.stem in order else 9, p.stem)
    ):
        data = json.loads(path.read_text())
        for row in data.get("results", []):
            rows.append({
                "part": path.stem, "seconds": row.get("seconds"), "precision": row.get("precision"),
                "compile": row.get("compile"), "batch_size": row.get("batch_size"), "rtf": row.get("rtf"),
                "audio_s_per_s": row.get("audio_s_per_s"), "first_chunk_s": row.get("first_chunk_s"),
                "peak_gpu_mb": row.get("peak_cuda_mb"), "snr_vs_fp32": snr(row),
            })  # fmt: skip
    return rows


def fmt(value: object, spec: str = ".1f", missing: str = "-") -> str:
    if value is None:
        return missing
    if isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = Path(sys.argv[1])
    parts = results / "parts"
    env = json.loads((parts / "env.json").read_text()) if (parts / "env.json").exists() else {}
    batch = json.loads((parts / "batch.json").read_text()) if (parts / "batch.json").exists() else {}
    report: dict[str, Any] = {
        "gpu": env.get("gpu") or batch.get("device"),
        "environment": env,
        "tests": tests(parts),
        "limit_rtf": limits(env, parts),
        "bench": bench_rows(parts),
        "batch": batch,
        "targets": {},
    }
    for row in batch.get("runs", []):
        precision = row.get("precision")
        if row.get("run", "").startswith("short:") and precision in TARGETS and "audio_s_per_s" in row:
            report["targets"][f"{precision} on a batch of files"] = {
                "target_audio_s_per_s": TARGETS[precision],
                "measured": row["audio_s_per_s"],
                "met": row["audio_s_per_s"] >= TARGETS[precision] and not row.get("error"),
            }
    (results / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print("\n".join(render(report, env, batch)))


def render(report: dict[str, Any], env: dict[str, Any], batch: dict[str, Any]) -> list[str]:
    """The table's lines."""
    limit: dict[str, float] = report["limit_rtf"]

    def x_limit(row: dict[str, Any]) -> str:
        rtf, precision = row.get("rtf"), row.get("precision")
        return fmt(rtf / limit[precision], ".1f") if rtf and precision in limit else "-"

    out = [f"== apollo-cli GPU check: {report['gpu'] or 'no GPU'}; torch {env.get('torch', '?')} =="]
    t = report["tests"]
    if t is None:
        out.append("cuda tests: did not finish (no pytest.xml)")
    else:
        out.append(
            f"cuda tests: {t['passed']} passed, {t['failures'] + t['errors']} failed, {t['skipped']} skipped "
            f"in {t['seconds']:.0f} s" + "".join(f"\n  FAILED {name}" for name in t["failed"])
        )
    if limit:
        peaks = ", ".join(f"{p} {v:.0f}" for p, v in env["gemm_tflops"].items())
        rtfs = ", ".join(f"{p} {r:.5f}" for p, r in limit.items())
        out.append(f"big-GEMM peak (8192³, TF32 off): {peaks} TFLOP/s; the limit's RTF (cost / peak): {rtfs}")
    if report["bench"]:
        out.append("\none file (bench.py: decode, restore, write; a fresh process each, first call included)")
        out.append(
            f"{'audio':>6s} {'precision':9s} {'compile':7s} {'batch':>5s} {'RTF':>8s} {'x limit':>7s} "
            f"{'audio s/s':>9s} {'peak GPU MB':>11s}  SNR vs fp32"
        )
        for r in report["bench"]:
            snr = (
                f"{r['snr_vs_fp32']:.1f} dB" if isinstance(r["snr_vs_fp32"], float) else fmt(r["snr_vs_fp32"])
            )
            out.append(
                f"{fmt(r['seconds'], '.0f'):>5s}s {r['precision'] or '?':9s} {r['compile'] or '?':7s} "
                f"{fmt(r['batch_size'], 'd', 'auto'):>5s} {fmt(r['rtf'], '.4f'):>8s} {x_limit(r):>7s} "
                f"{fmt(r['audio_s_per_s']):>9s} {fmt(r['peak_gpu_mb'], '.0f'):>11s}  {snr}"
            )
    else:
        out.append("\none file (bench.py): no results")
    runs = batch.get("runs", [])
    if runs:
        out.append(
            f"\napollo batch ({batch.get('files')} × {fmt(batch.get('seconds_each'), 'g')} s; 'long': one file "
            f"as long as all of them; warm, in one process; {batch.get('model', '')})"
        )
        out.append(
            f"{'run':14s} {'devices':15s} {'audio s/s':>9s} {'RTF':>8s} {'x limit':>7s} {'GPU busy':>8s} "
            f"{'peak GPU MB':>11s}  SNR vs fp32"
        )
        for r in runs:
            if "skipped" in r or "error" in r:
                why = f"skipped: {r['skipped']}" if "skipped" in r else "FAILED"
                out.append(f"{r['run']:14s} {r['devices']:15s} {why}")
                continue
            busy = f"{r['gpu_util_mean']:.0f} %" if r.get("gpu_util_mean") is not None else "-"
            snr = f"{r['snr_vs_fp32_db']:.1f} dB" if r.get("snr_vs_fp32_db") is not None else "-"
            out.append(
                f"{r['run']:14s} {r['devices']:15s} {r['audio_s_per_s']:9.1f} {r['rtf']:8.4f} {x_limit(r):>7s} "
                f"{busy:>8s} {fmt(r.get('peak_gpu_mb'), '.0f'):>11s}  {snr}"
            )
    else:
        out.append("\napollo batch: no results")
    for name, target in report["targets"].items():
        out.append(
            f"target, {name}: {target['measured']:.0f} audio s/s against {target['target_audio_s_per_s']:.0f}: "
            + ("met" if target["met"] else "MISSED")
        )
    return out


if __name__ == "__main__":
    main()
