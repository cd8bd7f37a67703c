"""SIGTERM and SIGHUP stop `apollo restore` and `apollo batch` like Ctrl-C, with real signals.

`timeout`, SLURM's time limit, `docker stop` and systemd send SIGTERM; a closed terminal
sends SIGHUP. Each test starts `python -m apollo_cli` as a real process, waits until it
shows progress, sends the signal and checks: exit status 128 + signal (143, 129), a
line saying what was done, no temporary or lock file left, and that a batch re-run
finishes the job.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from helpers import TINY_MODEL, held, make_music

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")

SIGNALS = [pytest.param(signal.SIGTERM, 143, id="SIGTERM"), pytest.param(signal.SIGHUP, 129, id="SIGHUP")]


def _default_signals() -> None:
    # Whatever the test runner inherited (nohup ignores SIGHUP, a background shell SIGINT),
    # the child starts as a program run from a terminal does.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _apollo(*args: str | os.PathLike[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "apollo_cli",
        *map(str, args),
        "--model",
        str(TINY_MODEL),
        "--device",
        "cpu",
    ]


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary and lock files anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob(".*") if p.name.endswith((".part", ".lock")))


@pytest.mark.parametrize("signum, status", SIGNALS)
def test_restore_stops_cleanly(tmp_path: Path, signum: int, status: int) -> None:
    """Progress bars need a terminal: the child's stderr is a pseudo-terminal we read."""
    import pty

    source = tmp_path / "long.wav"
    sf.write(source, make_music(30.0).T, 44100)
    target = tmp_path / "out.flac"
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen(_apollo("restore", source, "-o", target, "--chunk-seconds", "0.2"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env,
                            preexec_fn=_default_signals)  # fmt: skip
    os.close(slave)
    seen = b""
    sent = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its terminal (it exited)
                break
            if not chunk:
                break
            seen += chunk
            if not sent and b"/30.0 s" in seen:  # the bar, drawn once inference reports progress
                proc.send_signal(signum)
                sent = True
    finally:
        os.close(master)
    proc.wait(timeout=60)
    # The bar is redrawn many times: its end is enough, without the terminal's control codes.
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace")[-3000:])
    assert sent, text
    assert proc.returncode == status, text
    name = signal.Signals(signum).name
    assert f"stopped by {name}: nothing was written for the unfinished file" in text, text
    assert "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]  # no output, no .part, no lock


@pytest.mark.parametrize("signum, status", SIGNALS)
def test_batch_stops_cleanly_and_resumes(tmp_path: Path, signum: int, status: int) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    for i in range(4):
        sf.write(library / f"{i}.wav", make_music(2.0, seed=30 + i).T, 44100)
    command = _apollo("batch", library, "--chunk-seconds", "0.2")
    # The second file's restore waits for our word (helpers.HELD_RESTORE): the batch cannot
    # finish before the signal is taken.
    proc = subprocess.Popen(held(command, 1), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)  # fmt: skip
    assert proc.stderr is not None
    lines = []
    try:
        for line in proc.stderr:  # a line per finished file, terminal or not
            lines.append(line)
            if line.startswith("restored"):  # the first file is done, the second held
                proc.send_signal(signum)
            if line.startswith("stopping"):  # the signal was taken: let the held file go (it is abandoned)
                break
        stdout, rest = proc.communicate(input="go\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = "".join(lines) + rest
    assert proc.returncode == status, stderr
    name = signal.Signals(signum).name
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"stopped by {name}: ") and "run the same command again to finish" in last, stderr
    assert "failed" not in stderr and "Traceback" not in stderr
    out = tmp_path / "lib-restored"
    written = sorted(p.name for p in out.iterdir())
    assert 1 <= len(written) < 4 and hidden_leftovers(out) == [], written
    assert "not done" in stdout  # the summary table

    if signum != signal.SIGTERM:
        return  # resuming is the same after either signal: checked once, to keep the suite fast
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert f"{len(written)} already done" in again.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{i}.flac" for i in range(4)]


def test_batch_takes_sigterm_at_a_safe_point(tmp_path: Path) -> None:
    """In-process: under the CLI's handlers a real SIGTERM is counted by run_batch, not raised mid-callback."""
    import apollo_cli
    from apollo_cli import batch
    from apollo_cli.cli import Terminated, stop_signals_interrupt
    from apollo_cli.options import RestoreOptions

    library = tmp_path / "lib"
    library.mkdir()
    for i in range(3):
        sf.write(library / f"{i}.wav", make_music(0.5, seed=50 + i).T, 44100)
    model = apollo_cli.load_model(TINY_MODEL, device="cpu")
    sent: list[str] = []

    def terminate_after_first_file(event: batch.BatchEvent) -> None:
        if isinstance(event, batch.FileDone) and not sent:
            os.kill(os.getpid(), signal.SIGTERM)
            sent.append("returned")  # the handler only counted it

    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with stop_signals_interrupt():
            cli_handler = signal.getsignal(signal.SIGTERM)
            with pytest.raises(batch.BatchInterrupted) as stopped:
                batch.run_batch(
                    batch.plan_batch(library),
                    model,
                    events=terminate_after_first_file,
                    options=RestoreOptions(chunk_seconds=0.5),
                )
            assert signal.getsignal(signal.SIGTERM) is cli_handler  # put back
            with pytest.raises(Terminated):  # and the CLI's handler raises, outside a batch
                os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent == ["returned"]
    assert stopped.value.signum == signal.SIGTERM
    assert stopped.value.summary.interrupted and len(stopped.value.summary.done) >= 1
