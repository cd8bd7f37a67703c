"""`apollo batch --ray` and apollo_cli.batch.run_batch_ray, on real local Ray clusters (no mocks).

One Ray instance (two CPUs) is started in this process for the module; the two-node
test starts its own cluster from separate ``ray start`` processes and a separate driver.
Files are short and the model tiny, so the module takes well under two minutes on two
cores. The tests that need Ray skip when it is not installed (``apollo-cli[ray]``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

import apollo_cli
from apollo_cli import batch, locks
from apollo_cli.options import RestoreOptions
from helpers import TINY_MODEL, make_music, run_cli

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="needs Ray: pip install 'apollo-cli[ray]'")

#: The controls exercise the provenance value with ``auto`` resolved, and the notes.
OPTIONS = RestoreOptions(chunk_seconds=0.5, cutoff="auto", keep_lows="auto")
CLI_OPTIONS = ["--model", TINY_MODEL, "--chunk-seconds", "0.5", "--cutoff", "auto", "--keep-lows", "auto"]
GOOD = [f"Album/{i:02d} song.mp3" for i in range(8)] + ["mono.flac", "Other/plain.wav"]
BAD = "Album/truncated.mp3"


def files_under(root: Path) -> list[str]:
    """Every file under root (hidden ones included), as sorted relative POSIX paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def outputs(names: Iterable[str]) -> list[str]:
    return sorted(Path(n).with_suffix(".flac").as_posix() for n in names)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small library: tagged MP3s, a 48 kHz mono FLAC, a WAV and a truncated MP3."""
    root = tmp_path_factory.mktemp("ray") / "lib"
    (root / "Album").mkdir(parents=True)
    (root / "Other").mkdir()
    for i, name in enumerate(GOOD[:8]):
        sf.write(root / name, make_music(1.5, seed=10 + i).T, 44100, format="MP3")
        tagged = mutagen.File(root / name, easy=True)
        tagged.add_tags()
        tagged["title"], tagged["artist"], tagged["tracknumber"] = f"Song {i}", "The Band", str(i + 1)
        tagged.save()
    sf.write(root / "mono.flac", make_music(1.0, 48000, channels=1, seed=2)[0], 48000)
    sf.write(root / "Other/plain.wav", make_music(1.0, seed=3).T, 44100)
    whole = root.parent / "whole.mp3"
    sf.write(whole, make_music(2.0, seed=5).T, 44100, format="MP3")
    (root / BAD).write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return root


@pytest.fixture
def library(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    shutil.copytree(template, root)
    return root


@pytest.fixture(scope="module")
def reference(template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, batch.BatchSummary]:
    """The plain (local) batch's outputs of the library, with one torch thread as each Ray worker has."""
    import torch

    out = tmp_path_factory.mktemp("reference") / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = apollo_cli.load_model(TINY_MODEL, device="cpu")
        summary = batch.run_batch(batch.plan_batch(template, out), model, options=OPTIONS)
    finally:
        torch.set_num_threads(threads)
    return out, summary


@contextlib.contextmanager
def handlers_kept() -> Iterator[None]:
    """Put back the stop signals' handlers that ray.init and ray.shutdown change (the rest of the suite needs them)."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A two-CPU Ray instance in this process, for the module; yields its address."""
    import ray

    with handlers_kept():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        with handlers_kept():
            ray.shutdown()


def assert_same_outputs(a: Path, b: Path) -> None:
    """The same files, with equal samples (np.array_equal), rates, formats and tags (provenance included)."""
    assert files_under(a) == files_under(b)
    for name in files_under(a):
        x, rate_x = sf.read(a / name, dtype="int32")
        y, rate_y = sf.read(b / name, dtype="int32")
        assert rate_x == rate_y and np.array_equal(x, y), name
        assert sf.info(a / name).subtype == sf.info(b / name).subtype
        tags_x, tags_y = dict(mutagen.File(a / name).tags), dict(mutagen.File(b / name).tags)
        assert tags_x == tags_y, name
        value = apollo_cli.tags.read_provenance(b / name)
        assert value == apollo_cli.tags.read_provenance(a / name) and "keep-lows=" in (value or ""), value


def no_leftovers(root: Path) -> None:
    """No temporary or lock files anywhere under ``root``."""
    assert not [n for n in files_under(root) if n.endswith((".part", ".lock"))]


# ---------------------------------------------------------------------------------- without Ray


def test_ray_missing_says_what_to_install(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails, as without the extra
    for module in ("apollo_cli.batch.ray_runner", "apollo_cli.batch.ray_worker"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    result = run_cli("batch", library, "--ray", "auto", "--model", TINY_MODEL)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "pip install 'apollo-cli[ray]'" in lines[0]
    assert not (library.parent / "lib-restored").exists()


@pytest.mark.parametrize(
    "args, match",
    [
        (["--workers", "2"], "go with --ray"),
        (["--gpus-per-worker", "1"], "go with --ray"),
        (["--ray", "auto", "--device", "cpu"], "--device is for a run on this machine"),
    ],
)
def test_ray_options_are_checked(library: Path, args: list[str], match: str) -> None:
    if "--ray" in args and not HAVE_RAY:
        pytest.skip("needs Ray")
    result = run_cli("batch", library, *args, "--model", TINY_MODEL)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error:") and match in result.stderr, result.stderr


@needs_ray
def test_dry_run_with_ray_plans_alike_and_writes_nothing(library: Path) -> None:
    plain = run_cli("batch", library, "--dry-run", "--include", "*.mp3")
    on_ray = run_cli("batch", library, "--dry-run", "--include", "*.mp3", "--ray", "auto", "--workers", "2")
    assert on_ray.exit_code == plain.exit_code == 0
    assert on_ray.stdout == plain.stdout
    assert not (library.parent / "lib-restored").exists()


# ---------------------------------------------------------------------------------- on Ray


@needs_ray
def test_ray_gives_the_plain_batch_outputs(
    cluster: str, library: Path, reference: tuple[Path, batch.BatchSummary]
) -> None:
    """Two CPU workers: the same files, samples, tags (provenance value included), failures and notes."""
    expected, plain = reference
    plan = batch.plan_batch(library, library.parent / "out")
    seen: list[batch.BatchEvent] = []
    summary = batch.run_batch_ray(plan, TINY_MODEL, OPTIONS, workers=2, events=seen.append)  # type: ignore[operator]
    assert files_under(library.parent / "out") == outputs(GOOD)
    assert_same_outputs(expected, library.parent / "out")
    # The same reason, naming the input as the driver knows it (not the worker's scratch copy).
    (failed,), (failed_plain,) = summary.failed, plain.failed
    assert failed_plain.job is not None and failed.name == failed_plain.name == BAD
    assert failed.reason == failed_plain.reason.replace(str(failed_plain.job.source), str(library / BAD))
    assert str(library / BAD) in failed.reason
    by_name = {d.job.name: d.result for d in summary.done}
    for done in plain.done:
        mine = by_name[done.job.name]
        assert mine.output == plan.output_dir / done.job.relative.with_suffix(".flac")
        assert mine.input == library / done.job.relative
        assert (mine.duration, mine.notes, mine.tag_warnings, mine.bit_depth, mine.clipped_samples) == (
            done.result.duration, done.result.notes, done.result.tag_warnings, done.result.bit_depth,
            done.result.clipped_samples,
        )  # fmt: skip
    ready = [e for e in seen if isinstance(e, batch.WorkerReady)]
    assert sorted(e.worker for e in ready) == [0, 1]
    assert {e.worker for e in seen if isinstance(e, batch.FileDone)} == {0, 1}  # both took files
    started = [e.job for e in seen if isinstance(e, batch.FileStarted)]
    assert sorted(j.name for j in started) == sorted(GOOD)  # every file started once, before it was done
    assert not summary.ok and summary.not_done == 0 and len(summary.devices) == 2
    no_leftovers(library.parent / "out")


@needs_ray
def test_a_killed_worker_loses_nothing(
    cluster: str, library: Path, reference: tuple[Path, batch.BatchSummary]
) -> None:
    """kill -9 of a worker's process while it holds files: they are done by the other, nothing damaged."""
    (library / BAD).unlink()
    plan = batch.plan_batch(library, library.parent / "out")
    pids: dict[int, int] = {}
    killed: list[int] = []
    lost: list[batch.WorkerLost] = []

    def on(event: batch.BatchEvent) -> None:
        if isinstance(event, batch.WorkerReady):
            pids[event.worker] = event.pid
        elif isinstance(event, batch.WorkerLost):
            lost.append(event)
        elif isinstance(event, batch.FileDone) and event.worker == 0 and not killed:
            # Worker 0 holds its next file now (two in flight per worker): kill it under that file.
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    summary = batch.run_batch_ray(plan, TINY_MODEL, OPTIONS, workers=2, events=on)  # type: ignore[operator]
    assert killed and lost and all(e.worker == 0 for e in lost)
    assert {name for e in lost for name in e.retried}  # files it held were sent again
    assert summary.ok and not summary.failed and len(summary.done) == len(GOOD)
    assert_same_outputs(reference[0], library.parent / "out")
    no_leftovers(library.parent / "out")


@needs_ray
def test_a_file_lost_too_often_fails_and_the_batch_goes_on(cluster: str, library: Path) -> None:
    """With one attempt per file, the files a killed worker held fail (one line each); the rest are done."""
    (library / BAD).unlink()
    plan = batch.plan_batch(library, library.parent / "out")
    pids: dict[int, int] = {}

    def on(event: batch.BatchEvent) -> None:
        if isinstance(event, batch.WorkerReady):
            pids[event.worker] = event.pid
        elif isinstance(event, batch.FileDone) and event.worker == 0 and pids.get(0):
            os.kill(pids.pop(0), signal.SIGKILL)

    summary = batch.run_batch_ray(plan, TINY_MODEL, OPTIONS, workers=2, max_attempts=1, events=on)  # type: ignore[operator]
    assert summary.failed and not summary.ok and summary.not_done == 0
    for failure in summary.failed:
        assert failure.reason.startswith("the Ray worker restoring it was lost once (last: "), failure.reason
    assert len(summary.done) + len(summary.failed) == len(GOOD)
    assert files_under(library.parent / "out") == outputs(d.job.name for d in summary.done)
    no_leftovers(library.parent / "out")


@needs_ray
def test_a_full_disk_stops_the_ray_batch(
    cluster: str, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on one machine: the file that met the full disk fails with the same line, the batch stops, nothing is left."""
    import collections

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    # The driver writes every output (workers only send bytes back): its writes fail.
    monkeypatch.setattr(Path, "write_bytes", no_space)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(apollo_cli.audio.shutil, "disk_usage", lambda path: usage(100, 100, 0))
    out = library.parent / "out"
    summary = batch.run_batch_ray(batch.plan_batch(library, out), TINY_MODEL, OPTIONS, workers=2)
    assert summary.stopped is not None and summary.stopped.startswith(f"the disk of {out} is full")
    full = [f for f in summary.failed if "no space left on device" in f.reason]
    assert full and all(f.reason == str(apollo_cli.audio.NoSpaceError.at(f.job.output)) for f in full)
    assert not summary.done and summary.not_done > 0
    assert files_under(out) == []


@needs_ray
def test_ctrl_c_then_rerun_resumes(
    cluster: str, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGINT to the driver mid-batch (CLI, in this process): exit 130, whole files only; a re-run finishes."""
    from apollo_cli.batch import ray_runner

    (library / BAD).unlink()
    out = library.parent / "lib-restored"
    fired = threading.Event()
    real = ray_runner.audio.atomic_output

    @contextlib.contextmanager
    def interrupt_after_the_first_file(path: Path) -> Iterator[Path]:
        # The driver writes in its main thread: the SIGINT sent here is taken before the next
        # safe point, when at most workers x 2 other files are in flight: no race with the batch.
        with real(path) as tmp:
            yield tmp
        if not fired.is_set():
            fired.set()
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ray_runner.audio, "atomic_output", interrupt_after_the_first_file)
    # As a terminal gives it: a shell without job control (CI's may be one) starts background
    # commands with SIGINT ignored, and Python keeps an ignored SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        first = run_cli("batch", library, "--ray", "auto", "--workers", "2", *CLI_OPTIONS)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(ray_runner.audio, "atomic_output", real)
    assert fired.is_set()
    assert first.exit_code == 130, first.output
    assert "interrupted:" in first.stderr and "run the same command again" in first.stderr
    assert "failed" not in first.stderr and "Traceback" not in first.output
    written = [n for n in files_under(out) if n.endswith(".flac")]
    assert 0 < len(written) < len(GOOD)
    no_leftovers(out)
    for name in written:  # complete files only
        assert sf.info(out / name).frames > 0
    second = run_cli("batch", library, "--ray", "auto", "--workers", "2", *CLI_OPTIONS)
    assert second.exit_code == 0, second.output
    assert f"{len(written)} already done" in second.stderr
    assert files_under(out) == outputs(GOOD)


@needs_ray
def test_the_driver_holds_a_bounded_number_of_files(cluster: str, tmp_path: Path) -> None:
    """Many files: never more than workers × in_flight_per_worker claimed (read, sent, not yet written) at once."""
    library = tmp_path / "many"
    library.mkdir()
    music = make_music(0.3, seed=7).T
    for i in range(40):
        sf.write(library / f"{i:02d}.wav", music, 44100)
    plan = batch.plan_batch(library, tmp_path / "out")
    held: list[int] = []

    def on(event: batch.BatchEvent) -> None:
        held.append(len(locks._held))  # this process's claims: the files in flight

    summary = batch.run_batch_ray(  # type: ignore[operator]
        plan, TINY_MODEL, RestoreOptions(chunk_seconds=0.5), workers=2, in_flight_per_worker=2, events=on
    )
    assert summary.ok and len(summary.done) == 40
    assert max(held) <= 4 and max(held) >= 2  # bounded, and the workers were kept busy
    assert not locks._held
    no_leftovers(tmp_path / "out")


# ---------------------------------------------------------------------------------- two nodes


def cluster_env() -> dict[str, str]:
    """The environment of the cluster's processes and its driver: this source, no other cluster.

    ``ray start`` turns token authentication on; a driver connecting to it must ask for it
    (the token itself is the one ``ray start`` keeps in ``~/.ray``).
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
    }
    env.pop("RAY_ADDRESS", None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def two_node_cluster() -> Iterator[str]:
    """``ray start --head`` and a second ``ray start --address`` (one CPU each), as separate processes.

    Both run with ``--block`` in their own sessions, so they (and everything they started:
    GCS, raylets, workers) are stopped by their process groups afterwards, whatever
    happened; ``ray stop`` would stop every Ray instance on the machine.
    """
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ar", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = cluster_env()
    common = ["--num-cpus", "1", "--num-gpus", "0", "--block", "--disable-usage-stats"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [ray_bin, "start", "--head", "--port", str(port), "--include-dashboard", "false",
             "--temp-dir", temp, *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))  # fmt: skip
        address = f"127.0.0.1:{port}"
        _wait_for_nodes(address, 1, env)
        procs.append(subprocess.Popen(
            [ray_bin, "start", "--address", address, *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))  # fmt: skip
        _wait_for_nodes(address, 2, env)
        yield address
    finally:
        # The whole process group of each node at once: a test cluster needs no graceful drain.
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


NODES = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(sum(1 for n in ray.nodes() if n["Alive"]))
"""


def _wait_for_nodes(address: str, count: int, env: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        proc = subprocess.run([sys.executable, "-c", NODES, address], env=env, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        if proc.returncode == 0 and proc.stdout.strip().isdigit() and int(proc.stdout.strip()) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"the Ray cluster at {address} did not reach {count} nodes")


@needs_ray
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")
def test_a_two_node_cluster_through_host_port(library: Path) -> None:
    """A separate driver process runs the batch on a real two-node cluster through --ray HOST:PORT."""
    (library / BAD).unlink()
    with two_node_cluster() as address:
        proc = subprocess.run(
            [sys.executable, "-m", "apollo_cli", "batch", str(library), "--ray", address, "--workers", "2",
             *map(str, CLI_OPTIONS)],
            env=cluster_env(), capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # One CPU per node and one per worker: the two workers ran on different nodes.
    assert proc.stderr.count(" ready: cpu on ") == 2, proc.stderr
    assert "on 2 × ray:cpu@" in proc.stdout, proc.stdout
    out = library.parent / "lib-restored"
    assert files_under(out) == outputs(GOOD)
    for name in files_under(out):
        assert (apollo_cli.tags.read_provenance(out / name) or "").startswith("apollo-cli ")
