#!/usr/bin/env bash
# Fetch, where there is a network, the wheels that benchmarks/gpu_check.sh installs offline on a
# GPU machine that has Python 3.12 and PyTorch but not all of apollo-cli's needs, into .whl/ at
# the repository's root (ignored by git through .git/info/exclude).
#
# What such a machine (the lent H100/H200: Python 3.12, torch 2.11+cu130, numpy, typer, rich,
# click, tqdm, safetensors, typing-extensions, pytest, huggingface_hub 1.33) lacks:
#   soundfile (its wheel carries libsndfile, MP3 included), cffi and pycparser (soundfile's),
#   soxr, mutagen.
# Not huggingface_hub: its 1.33 is older than our floor (>= 2.0), but a local checkpoint never
# imports it (tests/test_gpu_check.py checks that), and the check uses only local ones.
# The versions are those the project's tests run with here.
#
# Usage:  benchmarks/gpu_wheels.sh      (PYTHON=... to pick the pip; about 2 MB)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
exclude=$(git rev-parse --git-path info/exclude)
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
rm -rf .whl  # one version of each: two would stop the offline install
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 mutagen==1.48.1
ls -l .whl
