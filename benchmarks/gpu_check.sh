#!/usr/bin/env bash
# The GPU check (issue 14): on a machine with an NVIDIA GPU and this source tree (not
# pip-installed, no network), in under 8 minutes:
#
#   1. the `cuda` tests (python3 -m pytest -m cuda tests/test_cuda.py);
#   2. benchmarks/bench.py --device cuda: fp32/bf16/fp16, --compile no/yes, a few batch sizes
#      (full-size model, random weights, one file);
#   3. benchmarks/gpu_batch.py: `apollo batch --device cuda` on 40 files of 20 s (audio seconds
#      per second, GPU utilisation), against one long file, fp32, two workers on one card, MP3;
#   4. benchmarks/gpu_report.py: a short table, printed last (RTF, audio s/s, peak GPU memory,
#      SNR against fp32), and gpu_check.json.
#
# Usage, from anywhere:  benchmarks/gpu_check.sh
# Results (the full log gpu_check.log, gpu_check.json, parts/) go to $APOLLO_GPU_CHECK_OUT,
# else $OUT, else ./gpu-check. Wheels in .whl/ (benchmarks/gpu_wheels.sh fetches them where
# there is a network) are installed offline into a scratch folder put on PYTHONPATH; the
# project runs from src/. Without a GPU it says so and exits 0 having measured nothing.
#
# Settings (environment): PYTHON (default python3); APOLLO_GPU_CHECK_PARTS (default
# "tests bench batch": a subset re-runs only those); APOLLO_GPU_CHECK_BUDGET (seconds for
# the whole check, default 450); APOLLO_GPU_CHECK_SECONDS (bench.py's audio, default 300);
# APOLLO_GPU_CHECK_FILES / APOLLO_GPU_CHECK_FILE_SECONDS (the batch, default 40 and 20).
# A rehearsal on a machine without a GPU (it checks the script, it measures nothing of use):
#   APOLLO_GPU_CHECK_DEVICE=cpu APOLLO_GPU_CHECK_PRECISIONS=fp32 APOLLO_GPU_CHECK_SECONDS=2 \
#   APOLLO_GPU_CHECK_FILES=2 APOLLO_GPU_CHECK_FILE_SECONDS=1 APOLLO_GPU_CHECK_TINY=1 \
#   APOLLO_GPU_CHECK_RUNS="short:fp32 long:fp32 two:fp32" benchmarks/gpu_check.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
RESULTS=${APOLLO_GPU_CHECK_OUT:-${OUT:-$ROOT/gpu-check}}
mkdir -p "$RESULTS/parts" || exit 1
LOG=$RESULTS/gpu_check.log
exec > >(tee "$LOG") 2>&1

PY=${PYTHON:-python3}
PARTS=" ${APOLLO_GPU_CHECK_PARTS:-tests bench batch} "
BUDGET=${APOLLO_GPU_CHECK_BUDGET:-450}
SECONDS_AUDIO=${APOLLO_GPU_CHECK_SECONDS:-300}
FILES=${APOLLO_GPU_CHECK_FILES:-40}
FILE_SECONDS=${APOLLO_GPU_CHECK_FILE_SECONDS:-20}
DEVICE=${APOLLO_GPU_CHECK_DEVICE:-cuda}
read -r -a PRECISIONS <<<"${APOLLO_GPU_CHECK_PRECISIONS:-fp32 bf16 fp16}"
FAST=${PRECISIONS[1]:-${PRECISIONS[0]}}  # the precision of the --compile and batch-size runs (bf16)
read -r -a RUNS <<<"${APOLLO_GPU_CHECK_RUNS:-}"
TINY=()
[ -n "${APOLLO_GPU_CHECK_TINY:-}" ] && TINY=(--tiny)
START=$SECONDS
FAILED=()

say() { echo "gpu_check [$((SECONDS - START)) s]: $*"; }

skip() {  # no GPU: say so, leave a JSON saying so, exit 0
    say "$1; skipped the GPU parts, nothing was measured"
    printf '{"gpu": null, "skipped": "%s"}\n' "$1" >"$RESULTS/gpu_check.json"
    exit 0
}

# A part's time limit: its own cap, or what is left of the budget (less 15 s for the report).
limit() {
    local left=$((BUDGET - (SECONDS - START) - 15))
    if [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}

# run NAME CAP MIN COMMAND...: COMMAND under `timeout`, unless less than MIN seconds are left.
run() {
    local name=$1 cap=$2 min=$3
    shift 3
    local secs
    secs=$(limit "$cap")
    if [ "$secs" -lt "$min" ]; then
        say "$name: skipped, ${secs} s left of the ${BUDGET} s budget"
        FAILED+=("$name (no time)")
        return
    fi
    say "$name (at most ${secs} s): $*"
    timeout -k 10 "$secs" "$@"
    local rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        say "$name: stopped at its ${secs} s limit"
        FAILED+=("$name (time limit)")
    elif [ "$rc" -ne 0 ]; then
        say "$name: failed (exit $rc)"
        FAILED+=("$name (exit $rc)")
    fi
}

# --- is there a GPU? (no wheels needed to ask)
if ! command -v "$PY" >/dev/null 2>&1; then
    skip "no $PY here"
fi
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)" >/dev/null 2>&1
found=$?
if [ "$found" -ne 0 ] && [ "$found" -ne 3 ]; then
    skip "$PY cannot import torch, so no CUDA GPU can be used"
elif [[ $DEVICE != cuda* ]]; then
    say "a rehearsal on $DEVICE: the GPU parts run there, with the settings given"
elif [ "$found" -eq 3 ]; then
    skip "no CUDA GPU here (torch.cuda.is_available() is False)"
fi

# --- the Python packages the machine lacks, offline, from .whl/
if compgen -G ".whl/*.whl" >/dev/null; then
    SITE=${APOLLO_GPU_CHECK_SITE:-${TMPDIR:-/tmp}/apollo-gpu-site}
    say "installing $(ls .whl/*.whl | wc -l) wheels from .whl/ into $SITE (offline)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl ||
        { say "installing .whl/*.whl failed"; exit 1; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# float32 is float32: no TF32 in cuBLAS or cuDNN (PyTorch's default for products already).
export NVIDIA_TF32_OVERRIDE=0
# One kernel cache for every process of the check, so a shape compiled once is compiled once.
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-${TMPDIR:-/tmp}/apollo-gpu-inductor}

# --- what runs here, and whether the project's imports work (it runs from src/, not installed)
"$PY" - "$RESULTS/parts/env.json" "$DEVICE" <<'EOF' || { say "the project cannot run here (above); see benchmarks/gpu_wheels.sh"; exit 1; }
import importlib, importlib.metadata, json, shutil, subprocess, sys
import torch
env = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
       "device": sys.argv[2], "gpu": None}
if torch.cuda.is_available():
    env.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count(),
               memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
               bf16=torch.cuda.is_bf16_supported())
    # The card's big-GEMM peak per precision (TF32 off): the limit the RTFs are read against.
    import time
    torch.backends.cuda.matmul.allow_tf32 = False
    env["gemm_tflops"] = {}
    for name, dtype, runs in (("fp32", torch.float32, 4), ("bf16", torch.bfloat16, 20), ("fp16", torch.float16, 20)):
        a = torch.randn(8192, 8192, device="cuda", dtype=dtype)
        b = torch.randn_like(a)
        for _ in range(2):
            a @ b
        torch.cuda.synchronize()
        began = time.perf_counter()
        for _ in range(runs):
            a @ b
        torch.cuda.synchronize()
        env["gemm_tflops"][name] = round(2 * 8192**3 * runs / (time.perf_counter() - began) / 1e12, 1)
    del a, b
if shutil.which("nvidia-smi"):
    env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True).stdout.strip()
def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
missing = []
for name in ("numpy", "soundfile", "soxr", "mutagen", "typer", "click", "rich", "safetensors", "tqdm",
             "triton", "pytest"):
    try:
        importlib.import_module(name)
        env[name] = version(name) or "?"
    except ImportError as exc:
        env[name] = None
        if name != "triton":  # without it, --compile's test says so
            missing.append(f"{name} ({exc})")
env["huggingface_hub"] = version("huggingface_hub")  # not imported: see below
# The tests read CliRunner's stderr apart from stdout, which click 8.2 and later keep apart.
click = tuple(int(x) for x in (env.get("click") or "0").split(".")[:2] if x.isdigit())
if click < (8, 2):
    print(f"warning: click {env.get('click')} is older than 8.2: tests that read stderr will fail", file=sys.stderr)
if env.get("soundfile"):
    import soundfile
    env["libsndfile"] = soundfile.__libsndfile_version__
    env["mp3"] = "MP3" in soundfile.available_formats()
import apollo_cli, apollo_cli.api, apollo_cli.batch, apollo_cli.cli
env["apollo_cli"] = apollo_cli.__file__
# Local checkpoints never import huggingface_hub (this machine's may be older than our floor).
env["imports_huggingface_hub"] = "huggingface_hub" in sys.modules
json.dump(env, open(sys.argv[1], "w"), indent=2)
print(json.dumps(env))
if missing:
    sys.exit("missing Python packages: " + ", ".join(missing) + "; carry them as wheels in .whl/")
EOF

# --- 1. the cuda tests (each test limited too, where pytest-timeout is there: a slow one fails
# alone, and the JUnit XML is still written)
if [[ $PARTS == *" tests "* ]]; then
    PER_TEST=()
    "$PY" -c "import pytest_timeout" >/dev/null 2>&1 && PER_TEST=(--timeout 100)
    run "cuda tests" 150 30 "$PY" -m pytest -m cuda -q -p no:cacheprovider tests/test_cuda.py "${PER_TEST[@]}" \
        --junitxml "$RESULTS/parts/pytest.xml" --basetemp "${TMPDIR:-/tmp}/apollo-gpu-pytest"
fi

# --- 2. one file, a fresh process per configuration; 3. apollo batch on many short files;
# 4. one file again: --compile and batch sizes. In order of importance: a short budget cuts the last.
BENCH=("$PY" benchmarks/bench.py --device "$DEVICE" --seconds "$SECONDS_AUDIO" --repeat 1)
if [[ $PARTS == *" bench "* ]]; then
    run "bench: ${PRECISIONS[*]}" 75 30 "${BENCH[@]}" --precision "${PRECISIONS[@]}" \
        --json "$RESULTS/parts/bench-precision.json"
fi
if [[ $PARTS == *" batch "* ]]; then
    secs=$(limit 130)
    run "apollo batch, $FILES × $FILE_SECONDS s" 130 30 "$PY" benchmarks/gpu_batch.py --device "$DEVICE" \
        --files "$FILES" --seconds "$FILE_SECONDS" --budget $((secs - 30)) --json "$RESULTS/parts/batch.json" \
        "${TINY[@]}" ${RUNS[@]+--runs "${RUNS[@]}"}
fi
if [[ $PARTS == *" bench "* ]]; then
    run "bench: $FAST --compile" 90 45 "${BENCH[@]}" --precision "$FAST" --compile yes \
        --json "$RESULTS/parts/bench-compile.json"
    run "bench: $FAST batch sizes 1, 4" 45 25 "${BENCH[@]}" --precision "$FAST" --batch-size 1 4 \
        --json "$RESULTS/parts/bench-batch.json"
fi

# --- 5. the table, last
echo
"$PY" benchmarks/gpu_report.py "$RESULTS" || FAILED+=("report")
echo
if [ ${#FAILED[@]} -eq 0 ]; then
    say "done in $((SECONDS - START)) s; results in $RESULTS"
else
    say "done in $((SECONDS - START)) s with problems: $(IFS=';'; echo "${FAILED[*]}"); results in $RESULTS"
    exit 1
fi
