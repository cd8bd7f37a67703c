"""A fast CLI: ``apollo --help``, each command's ``--help`` and ``apollo models`` never import torch.

Importing torch takes most of a second or more, and none of these needs it: the command
modules import the library's heavy modules inside the commands. Checked by what a fresh
interpreter has imported afterwards, not by timing (timings belong to benchmarks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from apollo_cli.cli import app

#: What must stay unimported: torch itself, and the modules of ours that import it.
HEAVY = ("torch", "apollo_cli.api", "apollo_cli.inference", "apollo_cli.model", "apollo_cli.batch")

#: ``python -m apollo_cli ARGS`` in a fresh interpreter; prints its exit status and the heavy
#: modules it imported, as JSON, on the last line of stderr.
RUN = """
import json, runpy, sys
watched = json.loads(sys.argv[2])
sys.argv = ["apollo", *json.loads(sys.argv[1])]
try:
    runpy.run_module("apollo_cli", run_name="__main__", alter_sys=True)
    status = 0
except SystemExit as exc:
    status = exc.code
heavy = [name for name in watched if name in sys.modules]
sys.stdout.flush()
sys.stderr.write("\\n" + json.dumps({"status": status, "heavy": heavy}) + "\\n")
"""

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _apollo(args: list[str], tmp_path: Path) -> tuple[str, dict]:  # type: ignore[type-arg]
    # An empty cache and no network: `apollo models` only looks at the cache.
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(args), json.dumps(HEAVY)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(proc.stderr.splitlines()[-1])


def test_every_command_is_covered() -> None:
    assert {"restore", "batch", "models", "download-model", "inspect", "compare"} <= set(COMMANDS)


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], *[[name, "--help"] for name in COMMANDS]], ids=" ".join
)
def test_help_does_not_import_torch(args: list[str], tmp_path: Path) -> None:
    stdout, seen = _apollo(args, tmp_path)
    assert seen == {"status": 0, "heavy": []}
    assert "apollo" in stdout


def test_listing_the_models_does_not_import_torch(tmp_path: Path) -> None:
    stdout, seen = _apollo(["models"], tmp_path)
    assert seen == {"status": 0, "heavy": []}
    assert "mp3 (default)" in stdout and "download with: apollo download-model NAME" in stdout


def test_the_library_api_is_there_on_first_use() -> None:
    """``import apollo_cli`` is light, yet every public name is there (imported when first used)."""
    code = (
        "import sys, apollo_cli\n"
        "light = 'torch' not in sys.modules\n"
        "names = [getattr(apollo_cli, name) for name in apollo_cli.__all__]\n"
        "print(light, 'torch' in sys.modules, set(apollo_cli.__all__) <= set(dir(apollo_cli)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.split() == ["True", "True", "True"]
