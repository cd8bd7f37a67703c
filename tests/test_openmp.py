"""apollo-cli asks OpenMP for passive waiting, unless it is too late or the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = "import os, apollo_cli; print(os.environ.get('OMP_WAIT_POLICY'))"


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout.strip()


def test_importing_apollo_first_makes_openmp_threads_sleep_while_waiting() -> None:
    assert _run(SHOW) == "PASSIVE"


@pytest.mark.parametrize("policy", ["ACTIVE", "passive"])
def test_a_users_policy_is_kept(policy: str) -> None:
    assert _run(SHOW, OMP_WAIT_POLICY=policy) == policy


def test_a_users_spin_count_is_kept() -> None:
    # libgomp ignores GOMP_SPINCOUNT under a passive policy: setting one would override it.
    assert _run(SHOW, GOMP_SPINCOUNT="20000") == "None"


def test_torch_imported_first_is_left_alone() -> None:
    # libgomp has read its settings by then: setting the variable would only mislead.
    assert _run("import torch\n" + SHOW) == "None"


def test_the_cli_gets_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = "import os, apollo_cli.cli; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _run(code) == "PASSIVE"
