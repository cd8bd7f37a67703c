"""`apollo batch` and apollo_cli.batch, on a real folder tree the tests make.

The tree holds MP3, FLAC (48 kHz mono), WAV and an ffmpeg-made M4A, a truncated MP3,
a text file named .mp3, and files that must not be picked up (cover.jpg, notes.txt,
a hidden folder). Audio is short and the model tiny, so each batch takes a second.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

import apollo_cli
from apollo_cli import batch
from apollo_cli.errors import OptionError
from apollo_cli.options import RestoreOptions
from helpers import TINY_MODEL, held, held_elsewhere, make_music, run_cli

FFMPEG = shutil.which("ffmpeg")
GOOD = [
    "Artist A/Album 1/01 one.mp3",
    "Artist A/Album 1/02 two.flac",
    "Artist B/three.wav",
    "Artist B/four.m4a",
]
BAD = ["Artist B/truncated.mp3", "notes.mp3"]


def run(*args: str | os.PathLike[str]):  # type: ignore[no-untyped-def]
    return run_cli("batch", *args)


def tiny(*args: str | os.PathLike[str]) -> list[str | os.PathLike[str]]:
    """Options every CLI run here uses: the tiny model on the CPU, small chunks."""
    return [*args, "--model", TINY_MODEL, "--device", "cpu", "--chunk-seconds", "0.5"]


def files_under(root: Path) -> list[str]:
    """Every file under root (hidden ones included), as sorted relative POSIX paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The music library, made once; tests copy it."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is needed to make the M4A file")
    root = tmp_path_factory.mktemp("template") / "lib"
    (root / "Artist A" / "Album 1").mkdir(parents=True)
    (root / "Artist B").mkdir()
    (root / ".hidden").mkdir()
    sf.write(root / GOOD[0], make_music(1.0, seed=1).T, 44100, format="MP3")
    sf.write(root / GOOD[1], make_music(0.9, 48000, channels=1, seed=2)[0], 48000)
    sf.write(root / GOOD[2], make_music(0.8, seed=3).T, 44100)
    wav = root.parent / "for_m4a.wav"
    sf.write(wav, make_music(1.0, seed=4).T, 44100)
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", wav, "-c:a", "aac", root / GOOD[3]], check=True)
    full = root.parent / "full.mp3"
    sf.write(full, make_music(2.0, seed=5).T, 44100, format="MP3")
    (root / BAD[0]).write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    (root / BAD[1]).write_text("not audio at all\n" * 50)
    (root / "Artist A" / "Album 1" / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("liner notes")
    shutil.copy(root / GOOD[2], root / ".hidden" / "secret.wav")
    return root


@pytest.fixture
def library(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    shutil.copytree(template, root)
    return root


@pytest.fixture
def good_library(library: Path) -> Path:
    for name in BAD:
        (library / name).unlink()
    return library


@pytest.fixture(scope="module")
def model() -> apollo_cli.Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


def expected_outputs(names: list[str], suffix: str = ".flac") -> list[str]:
    return sorted(str(Path(n).with_suffix(suffix).as_posix()) for n in names)


# ----------------------------------------------------------------------------- discovery


def test_plan_finds_audio_and_mirrors_paths(library: Path) -> None:
    plan = batch.plan_batch(library)
    assert sorted(job.name for job in plan.jobs) == sorted(GOOD + BAD)
    assert plan.output_dir == library.resolve().with_name("lib-restored")
    for job in plan.jobs:
        assert job.output == plan.output_dir / Path(job.name).with_suffix(".flac")
    assert plan.found == 6 and not plan.skipped and not plan.collisions
    assert not plan.output_dir.exists()  # planning writes nothing

    wav = batch.plan_batch(library, library.parent / "out", fmt="wav", recursive=False)
    assert [job.name for job in wav.jobs] == ["notes.mp3"]
    assert wav.jobs[0].output == library.parent / "out" / "notes.wav"


def test_batch_takes_what_yt_dlp_saves(tmp_path: Path) -> None:
    """Opus in WebM and Matroska audio are restored like any other file; a video container is left out."""
    if FFMPEG is None:
        pytest.skip("needs ffmpeg")
    root = tmp_path / "downloads"
    root.mkdir()
    wav = tmp_path / "n.wav"
    sf.write(wav, make_music(1.5, 48000, seed=7).T, 48000)
    for name, codec in (("song.webm", "libopus"), ("live.MKA", "libvorbis"), ("clip.mkv", "libvorbis")):
        subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", wav, "-c:a", codec, root / name], check=True)
    plan = batch.plan_batch(root)
    assert sorted(job.name for job in plan.jobs) == ["live.MKA", "song.webm"]
    result = run(root, "--model", TINY_MODEL)
    assert result.exit_code == 0, result.output
    for name in ("song.flac", "live.flac"):
        info = sf.info(root.with_name("downloads-restored") / name)
        assert (info.samplerate, info.channels) == (44100, 2) and abs(info.duration - 1.5) < 0.03, info


@pytest.mark.parametrize(
    "patterns, expected",
    [
        (["*.WAV"], ["Artist B/three.wav"]),
        (
            ["*.m4a", "0?*"],
            ["Artist A/Album 1/01 one.mp3", "Artist A/Album 1/02 two.flac", "Artist B/four.m4a"],
        ),
        (["artist b/*"], ["Artist B/four.m4a", "Artist B/three.wav", "Artist B/truncated.mp3"]),
        (["**/album 1/*.mp3"], ["Artist A/Album 1/01 one.mp3"]),
        (["*.jpg"], []),  # --include narrows the audio files; it never adds others
    ],
)
def test_include(library: Path, patterns: list[str], expected: list[str]) -> None:
    assert sorted(job.name for job in batch.plan_batch(library, include=patterns).jobs) == expected


def test_output_folder_inside_input_is_not_searched(good_library: Path) -> None:
    out = good_library / "restored"
    result = run(*tiny(good_library, "-o", out))
    assert result.exit_code == 0, result.output
    assert files_under(out) == expected_outputs(GOOD)
    plan = batch.plan_batch(good_library, out)
    assert not plan.jobs and len(plan.skipped) == len(GOOD)


# ------------------------------------------------------------------------------ the CLI


def test_batch_end_to_end(library: Path, model: apollo_cli.Apollo) -> None:
    out = library.parent / "lib-restored"
    result = run(*tiny(library))
    assert result.exit_code == 1, result.output  # two bad files
    # Every good file is restored, mirrored, as 24-bit FLAC at 44.1 kHz; nothing else is there.
    assert files_under(out) == expected_outputs(GOOD)
    for name in GOOD:
        decoded = apollo_cli.audio.load_audio(library / name)
        info = sf.info(out / Path(name).with_suffix(".flac"))
        assert (info.format, info.subtype, info.samplerate, info.channels) == (
            "FLAC",
            "PCM_24",
            44100,
            decoded.channels,
        )
        assert info.frames == round(decoded.frames * 44100 / decoded.sample_rate)
    # The file holds what the library computes for the same input.
    decoded = apollo_cli.audio.load_audio(library / GOOD[2])
    expected = apollo_cli.restore(model, decoded.samples, decoded.sample_rate)
    written = sf.read(out / "Artist B/three.flac", dtype="float32")[0].T
    np.testing.assert_allclose(written, expected, atol=2**-22)
    # Each failure is reported with its reason; the summary has the totals.
    for name, why in (("Artist B/truncated.mp3", "truncated"), ("notes.mp3", "not audio")):
        line = next(line for line in result.stderr.splitlines() if name in line)
        assert line.startswith("failed") and why in line, line
    assert "truncated.mp3" in result.stdout and "notes.mp3" in result.stdout  # the failures table
    assert "restored" in result.stdout and "× real time" in result.stdout
    assert "Traceback" not in result.output


def test_rerun_skips_what_is_done(good_library: Path) -> None:
    out = good_library.parent / "lib-restored"
    first = run(*tiny(good_library))
    assert first.exit_code == 0, first.output
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    second = run(*tiny(good_library))
    assert second.exit_code == 0, second.output
    assert "4 already done" in second.stderr and "0 to restore" in second.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")} == stamps  # nothing was redone
    third = run(*tiny(good_library, "--overwrite", "-q"))
    assert third.exit_code == 0, third.output
    assert third.output == ""
    assert all(p.stat().st_mtime_ns != stamps[p] for p in stamps)


def test_dry_run_writes_nothing(library: Path) -> None:
    before = files_under(library.parent)
    result = run(*tiny(library, "--dry-run"))
    assert result.exit_code == 0, result.output
    assert files_under(library.parent) == before
    assert not (library.parent / "lib-restored").exists()
    assert "restore Artist B/three.wav → Artist B/three.flac" in result.stdout
    assert "6 to restore" in result.stdout and "nothing was written" in result.stdout


def test_wav_output_and_bit_depth(good_library: Path) -> None:
    out = good_library.parent / "wavs"
    result = run(
        *tiny(good_library, "-o", out, "--format", "WAV", "--bit-depth", "16", "--include", "*.flac")
    )
    assert result.exit_code == 0, result.output
    assert files_under(out) == ["Artist A/Album 1/02 two.wav"]
    info = sf.info(out / "Artist A/Album 1/02 two.wav")
    assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)


def test_collisions_are_reported_and_nothing_is_overwritten(good_library: Path) -> None:
    folder = good_library / "Artist B"
    sf.write(folder / "song.mp3", make_music(0.7, seed=7).T, 44100, format="MP3")
    sf.write(folder / "Song.flac", make_music(0.7, seed=8).T, 44100)
    out = good_library.parent / "lib-restored"
    result = run(*tiny(good_library))
    assert result.exit_code == 1, result.output
    assert files_under(out) == expected_outputs(GOOD)  # neither song was written
    lines = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert len(lines) == 2 and all("none was restored" in line for line in lines), result.stderr
    # Picking one of them resolves it.
    result = run(*tiny(good_library, "--include", "*.mp3"))
    assert result.exit_code == 0, result.output
    assert (out / "Artist B" / "song.flac").exists()


def test_all_skipped_needs_no_model(good_library: Path) -> None:
    assert run(*tiny(good_library, "-q")).exit_code == 0
    result = run(good_library, "--model", "no-such-model", "--device", "cpu")
    assert result.exit_code == 0, result.output  # the model is not even looked up


def test_no_audio_found(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    result = run(*tiny(tmp_path / "empty"))
    assert result.exit_code == 0, result.output
    assert "found 0 audio files" in result.stderr
    assert not (tmp_path / "empty-restored").exists()


def one_line_error(result, match: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], result.stderr


@pytest.mark.parametrize(
    "args, match",
    [
        (["--shard", "0/4"], "K must be between 1 and N"),
        (["--shard", "5/4"], "K must be between 1 and N"),
        (["--shard", "1/0"], "N must be at least 1"),
        (["--shard", "two"], "use K/N"),
        (["--bit-depth", "32"], "FLAC supports bit depth 16 or 24"),
        (["--device", "cpu,,cpu"], "no empty entries"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_options(library: Path, args: list[str], match: str) -> None:
    result = run(library, "--model", TINY_MODEL, *args)
    one_line_error(result, match)
    assert not (library.parent / "lib-restored").exists()


def test_bad_folders(library: Path) -> None:
    one_line_error(run(library / "nope", "--model", TINY_MODEL), "does not exist")
    one_line_error(run(library / "notes.txt", "--model", TINY_MODEL), "not a folder")
    one_line_error(run(library, "-o", library, "--model", TINY_MODEL), "is the input folder")
    (library.parent / "file").write_text("x")
    one_line_error(run(library, "-o", library.parent / "file", "--model", TINY_MODEL), "not a folder")


def test_format_must_be_flac_or_wav(library: Path) -> None:
    result = run(library, "--format", "mp3", "--model", TINY_MODEL)
    assert result.exit_code == 2 and "mp3" in result.stderr


def test_help_lists_batch() -> None:
    assert "batch" in run_cli("--help").stdout
    text = run_cli("batch", "--help").stdout
    for option in ("--shard", "--dry-run", "--include", "--no-recursive", "--overwrite", "--format"):
        assert option in text


def test_one_bad_file_never_stops_the_batch(good_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = apollo_cli.api.restore

    def flaky(model, samples, rate, *args, **kwargs):  # type: ignore[no-untyped-def]
        if samples.shape[-1] == round(0.8 * 44100):  # three.wav only
            raise RuntimeError("something unexpected\nsecond line")
        return real(model, samples, rate, *args, **kwargs)

    monkeypatch.setattr(apollo_cli.api, "restore", flaky)
    result = run(*tiny(good_library))
    assert result.exit_code == 1, result.output
    assert files_under(good_library.parent / "lib-restored") == expected_outputs(
        sorted(set(GOOD) - {GOOD[2]})
    )
    assert "internal error: RuntimeError: something unexpected (please report it)" in result.stderr


# -------------------------------------------------------------------- interrupt and resume


def test_interrupted_batch_resumes(
    good_library: Path, model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the first file: nothing half written; the re-run does only the rest."""
    out = good_library.parent / "lib-restored"
    plan = batch.plan_batch(good_library)
    seen: list[batch.BatchEvent] = []

    def ctrl_c_after_first_file(event: batch.BatchEvent) -> None:
        seen.append(event)
        if isinstance(event, batch.FileDone):
            raise KeyboardInterrupt

    with pytest.raises(batch.BatchInterrupted) as stopped:
        batch.run_batch(
            plan, model, events=ctrl_c_after_first_file, options=RestoreOptions(chunk_seconds=0.5)
        )
    summary = stopped.value.summary
    assert summary.interrupted and not summary.ok
    done = [d.job.name for d in summary.done]
    assert 1 <= len(done) < len(GOOD) and summary.not_done == len(GOOD) - len(done)
    assert files_under(out) == expected_outputs(done)  # complete outputs only, no temporary files
    assert any(isinstance(e, batch.Stopping) for e in seen)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}

    restored_again: list[int] = []
    real = apollo_cli.api.restore

    def counting(model, samples, rate, *args, **kwargs):  # type: ignore[no-untyped-def]
        restored_again.append(samples.shape[-1])
        return real(model, samples, rate, *args, **kwargs)

    monkeypatch.setattr(apollo_cli.api, "restore", counting)
    plan = batch.plan_batch(good_library)
    assert sorted(job.name for job in plan.skipped) == sorted(done)
    summary = batch.run_batch(plan, model, options=RestoreOptions(chunk_seconds=0.5))
    assert summary.ok and len(summary.done) == len(GOOD) - len(done)
    assert len(restored_again) == len(GOOD) - len(done)  # nothing was redone
    assert files_under(out) == expected_outputs(GOOD)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_ctrl_c_inside_the_pipeline_cli(good_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt raised in an inference thread: exit 130, one line, resumable."""
    real = apollo_cli.api.restore
    calls: list[int] = []

    def interrupted_on_second(model, samples, rate, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(model, samples, rate, *args, **kwargs)

    monkeypatch.setattr(apollo_cli.api, "restore", interrupted_on_second)
    out = good_library.parent / "lib-restored"
    result = run(*tiny(good_library))
    assert result.exit_code == 130, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted: 1 file restored") and "run the same command again" in line
    assert len(files_under(out)) == 1 and files_under(out)[0].endswith(".flac")
    monkeypatch.setattr(apollo_cli.api, "restore", real)
    result = run(*tiny(good_library))
    assert result.exit_code == 0, result.output
    assert files_under(out) == expected_outputs(GOOD)


def _raise(exc: BaseException) -> None:
    raise exc


def test_ctrl_c_while_writing_leaves_no_partial_file(
    good_library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = apollo_cli.audio.AudioWriter.commit
    calls: list[int] = []

    def commit(writer, finalize=None):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            # The temporary file is complete, but the interrupt comes before the rename.
            return real(writer, lambda tmp: (finalize and finalize(tmp), _raise(KeyboardInterrupt())))
        return real(writer, finalize)

    monkeypatch.setattr(apollo_cli.audio.AudioWriter, "commit", commit)
    result = run(*tiny(good_library))
    assert result.exit_code == 130, result.output
    outputs = files_under(good_library.parent / "lib-restored")
    assert len(outputs) == 1 and not any(".part" in name for name in outputs)


def test_second_ctrl_c_drops_restored_files_not_yet_written(
    good_library: Path, model: apollo_cli.Apollo
) -> None:
    def impatient(event: batch.BatchEvent) -> None:
        if isinstance(event, (batch.FileDone, batch.Stopping)):
            raise KeyboardInterrupt

    with pytest.raises(batch.BatchInterrupted) as stopped:
        batch.run_batch(
            batch.plan_batch(good_library), model, events=impatient, options=RestoreOptions(chunk_seconds=0.5)
        )
    out = good_library.parent / "lib-restored"
    assert files_under(out) == expected_outputs([d.job.name for d in stopped.value.summary.done])


def test_real_sigint_is_taken_at_a_safe_point(good_library: Path, model: apollo_cli.Apollo) -> None:
    """A real SIGINT to this process: counted, acted on at a poll, the default handler back after."""
    import signal

    # Python's own handler, as an interactive `apollo batch` has it (a runner started in
    # the background, as CI's may be, inherits SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_twice_with_real_signals(good_library, model)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_twice_with_real_signals(good_library: Path, model: apollo_cli.Apollo) -> None:
    import signal

    sent: list[str] = []

    def ctrl_c(event: batch.BatchEvent) -> None:
        # The first after a file is done, the second while the batch is stopping.
        if (isinstance(event, batch.FileDone) and not sent) or isinstance(event, batch.Stopping):
            sent.append(type(event).__name__)
            os.kill(os.getpid(), signal.SIGINT)
            sent.append("returned")  # not interrupted here, in the middle of whatever ran

    with pytest.raises(batch.BatchInterrupted) as stopped:
        batch.run_batch(
            batch.plan_batch(good_library), model, events=ctrl_c, options=RestoreOptions(chunk_seconds=0.5)
        )
    assert sent == ["FileDone", "returned", "Stopping", "returned"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    summary = stopped.value.summary
    assert summary.interrupted and summary.not_done == len(GOOD) - len(summary.done)
    out = good_library.parent / "lib-restored"
    assert files_under(out) == expected_outputs([d.job.name for d in summary.done])


def test_stale_temporary_files_are_cleaned_up(good_library: Path) -> None:
    out = good_library.parent / "lib-restored" / "Artist B"
    out.mkdir(parents=True)
    stale = out / ".three.flac.0badf00d.part"
    stale.write_bytes(b"left by a run that was killed")
    other = out / ".unrelated.flac.0badf00d.part"
    other.write_bytes(b"not ours to remove")
    assert run(*tiny(good_library, "-q")).exit_code == 0
    assert not stale.exists() and other.exists()


# -------------------------------------------------------------------------------- shards


def test_shards_partition_exactly(tmp_path: Path) -> None:
    root = tmp_path / "many"
    names = [f"Artist {i % 7}/Album {i % 3}/{i:03d} track.mp3" for i in range(120)]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")  # planning never opens the files
    everything = {job.name for job in batch.plan_batch(root).jobs}
    assert everything == set(names)
    for count in (1, 2, 3, 8):
        shares = [{job.name for job in batch.plan_batch(root, shard=batch.Shard(k, count)).jobs}
                  for k in range(1, count + 1)]  # fmt: skip
        assert set().union(*shares) == everything
        assert sum(len(share) for share in shares) == len(everything)  # pairwise disjoint
        if count == 3:
            assert all(25 <= len(share) <= 55 for share in shares), [len(s) for s in shares]
            three = shares
    # Each plan holds exactly the files whose (fixed, see below) shard is its own.
    for k in (1, 2, 3):
        assert all(
            batch.shard_of(job.relative, 3) == k
            for job in batch.plan_batch(root, shard=batch.Shard(k, 3)).jobs
        )
    # Files that would collide are in one shard, which sees (and reports) the collision.
    (root / "Artist 0" / "dup.mp3").write_bytes(b"")
    (root / "Artist 0" / "DUP.flac").write_bytes(b"")
    plans = [batch.plan_batch(root, shard=batch.Shard(k, 8)) for k in range(1, 9)]
    assert sorted(len(p.collisions) for p in plans) == [0] * 7 + [1]
    assert not any(job.name.lower().startswith("artist 0/dup") for p in plans for job in p.jobs)
    (root / "Artist 0" / "dup.mp3").unlink()
    (root / "Artist 0" / "DUP.flac").unlink()
    # Stable: adding files (and listing in another order) moves none of the others.
    for i in range(120, 180):
        (root / f"New/{i}.flac").parent.mkdir(exist_ok=True)
        (root / f"New/{i}.flac").write_bytes(b"")
    again = [{job.name for job in batch.plan_batch(root, shard=batch.Shard(k, 3)).jobs} for k in (1, 2, 3)]
    for before, after in zip(three, again, strict=True):
        assert after & everything == before


def test_shard_assignment_is_fixed_forever() -> None:
    # Machines of one job array may run different versions: the assignment must never change.
    assert [batch.shard_of(f"Artist/Album/{i:02d}.mp3", 4) for i in range(8)] == [3, 3, 1, 4, 3, 1, 4, 1]
    # It depends on the output a file maps to: name case and extension do not matter,
    # so files that collide always land in the same shard.
    assert batch.shard_of("a/Song.MP3", 5) == batch.shard_of("a/song.flac", 5) == batch.shard_of("a/song", 5)


def test_parse_shard() -> None:
    assert batch.parse_shard(" 2 / 8 ") == batch.Shard(2, 8)
    assert str(batch.parse_shard("8/8")) == "8/8"
    for bad in ("0/8", "9/8", "1/0", "-1/2", "1", "a/b", ""):
        with pytest.raises(OptionError):
            batch.parse_shard(bad)


def test_shard_cli(good_library: Path) -> None:
    outputs = []
    for k in (1, 2, 3):
        result = run(*tiny(good_library, "--shard", f"{k}/3", "-o", good_library.parent / f"out{k}"))
        assert result.exit_code == 0, result.output
        outputs.append(
            files_under(good_library.parent / f"out{k}") if (good_library.parent / f"out{k}").exists() else []
        )
        assert f"shard {k}/3" in result.stderr
    assert sorted(name for share in outputs for name in share) == expected_outputs(GOOD)


# ------------------------------------------------------------------------- several devices


def test_parse_devices() -> None:
    import torch

    assert batch.parse_devices("cpu,cpu") == [torch.device("cpu")] * 2
    assert batch.parse_devices(["cpu"]) == [torch.device("cpu")]
    if not torch.cuda.is_available():
        assert batch.parse_devices("auto") == [torch.device("cpu")]
        with pytest.raises(apollo_cli.DeviceError):
            batch.parse_devices("cpu,cuda:1")
    assert batch.describe_devices(["cpu", "cpu"]) == "2 × cpu"


def test_two_cpu_workers_match_one(
    good_library: Path, model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import torch

    threads = torch.get_num_threads()
    one = batch.plan_batch(good_library, good_library.parent / "one", fmt="wav")
    batch.run_batch(one, model, options=RestoreOptions(chunk_seconds=0.5))
    # Each worker's first file waits until the other worker has one too: both take a file (and
    # run at once) whichever thread the scheduler happens to start first.
    real = apollo_cli.api.restore
    both = threading.Barrier(2, timeout=120)
    started: set[int] = set()

    def together(*args, **kwargs):  # type: ignore[no-untyped-def]
        if threading.get_ident() not in started:
            started.add(threading.get_ident())
            both.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(apollo_cli.api, "restore", together)
    two = batch.plan_batch(good_library, good_library.parent / "two", fmt="wav")
    workers: set[int] = set()
    threads_during: list[int] = []

    def note(event: batch.BatchEvent) -> None:
        if isinstance(event, batch.FileStarted):
            workers.add(event.worker)
            threads_during.append(torch.get_num_threads())

    summary = batch.run_batch(
        two, model, devices="cpu,cpu", events=note, options=RestoreOptions(chunk_seconds=0.5)
    )
    assert summary.ok and len(summary.done) == len(GOOD)
    assert workers == {0, 1}  # both workers took files
    assert set(threads_during) == {max(1, threads // 2)} and torch.get_num_threads() == threads
    for name in GOOD:
        a = sf.read(good_library.parent / "one" / Path(name).with_suffix(".wav"), dtype="float32")[0]
        b = sf.read(good_library.parent / "two" / Path(name).with_suffix(".wav"), dtype="float32")[0]
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_two_cpu_workers_cli(good_library: Path) -> None:
    result = run(good_library, "--model", TINY_MODEL, "--device", "cpu,cpu", "--chunk-seconds", "0.5")
    assert result.exit_code == 0, result.output
    assert "2 × cpu" in result.stderr
    assert files_under(good_library.parent / "lib-restored") == expected_outputs(GOOD)


# ---------------------------------------------------------------- progress and file descriptor 2


def test_display_console_survives_fd2_silencing() -> None:
    """While a decode silences fd 2, the batch display's writes still arrive (and a plain console's do not)."""
    code = textwrap.dedent(
        """
        from rich.console import Console
        from apollo_cli import decoding
        from apollo_cli.cli.console import display_console

        plain = Console(stderr=True)
        with display_console() as console:
            with decoding.native_stderr_silenced():
                console.print("display during decode")
                plain.print("plain during decode")
            console.print("display after")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "display during decode" in proc.stderr and "display after" in proc.stderr
    assert "plain during decode" not in proc.stderr  # the hazard is real


def test_progress_output_is_not_lost_while_decoding(good_library: Path) -> None:
    """A real batch on a (pretend) terminal, with slow decodes: every per-file line arrives."""
    driver = textwrap.dedent(
        """
        import contextlib, sys, threading
        from apollo_cli import audio, decoding
        from apollo_cli.cli import app
        from apollo_cli.cli import batch_report

        # Every silenced decode of the k-th file waits until the display has written the
        # "restored" line of file k - 1: that line (and the bars' refreshes meanwhile) is
        # written while fd 2 points at /dev/null.
        silenced, open_audio, display_console = (
            decoding.native_stderr_silenced, audio.open_audio, batch_report.display_console
        )
        opened = restored = 0
        written = threading.Condition()
        late = []

        def counting_open(*args, **kwargs):
            global opened
            opened += 1
            return open_audio(*args, **kwargs)

        class Watched:
            def __init__(self, file):
                self.file = file

            def write(self, text):
                global restored
                count = self.file.write(text)
                with written:
                    restored += text.count("restored")
                    written.notify_all()
                return count

            def __getattr__(self, name):
                return getattr(self.file, name)

        @contextlib.contextmanager
        def watched_console():
            with display_console() as console:
                console.file = Watched(console.file)
                yield console

        @contextlib.contextmanager
        def slowly_silenced():
            with silenced():
                with written:
                    if not written.wait_for(lambda: restored >= opened - 1, timeout=120):
                        late.append(opened)
                yield

        audio.open_audio = counting_open
        decoding.native_stderr_silenced = slowly_silenced
        batch_report.display_console = watched_console
        try:
            app(sys.argv[1:], prog_name="apollo")
        finally:
            print("waits that timed out:", late, flush=True)
        """
    )
    env = {**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "160"}
    args = [
        "batch",
        str(good_library),
        "--model",
        str(TINY_MODEL),
        "--device",
        "cpu",
        "--chunk-seconds",
        "0.5",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", driver, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "waits that timed out: []" in proc.stdout, proc.stdout
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stderr)
    for name in GOOD:
        assert f"restored {name} (" in text, text
    assert "files" in text and "of audio" in text  # the overall bar was drawn


@pytest.mark.skipif(
    FFMPEG is None or not hasattr(os, "killpg"), reason="needs ffmpeg and POSIX process groups"
)
def test_real_ctrl_c_then_resume(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, while the batch is at work."""
    import signal

    library = tmp_path / "lib"
    library.mkdir()
    for i in range(6):
        music = make_music(2.0, seed=20 + i).T
        if i % 2:
            sf.write(tmp_path / "tmp.wav", music, 44100)
            subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", "-i", tmp_path / "tmp.wav", "-c:a", "aac",
                            library / f"{i}.m4a"], check=True)  # fmt: skip
        else:
            sf.write(library / f"{i}.mp3", music, 44100, format="MP3")
    command = [sys.executable, "-m", "apollo_cli", "batch", str(library), "--model", str(TINY_MODEL),
               "--device", "cpu", "--chunk-seconds", "0.2"]  # fmt: skip
    # A shell without job control starts background commands with SIGINT ignored, and
    # Python keeps an ignored SIGINT ignored: give the child the default a terminal gives.
    # The second file's restore waits for our word (helpers.HELD_RESTORE): the batch cannot
    # finish before the signal is taken.
    proc = subprocess.Popen(held(command, 1), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert proc.stderr is not None
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("restored"):  # the first file is done, the second held
                os.killpg(proc.pid, signal.SIGINT)
            if line.startswith("stopping"):  # the signal was taken: let the held file go (it is abandoned)
                break
        _, rest_err = proc.communicate(input="go\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = "".join(lines) + rest_err
    assert proc.returncode == 130, stderr
    assert "interrupted:" in stderr and "run the same command again" in stderr
    assert "failed" not in stderr and "Traceback" not in stderr  # a killed ffmpeg is not a bad file
    out = tmp_path / "lib-restored"
    written = files_under(out)
    assert written and not any(".part" in name for name in written)
    for name in written:  # complete files only
        assert sf.info(out / name).frames == round(2.0 * 44100)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert f"{len(written)} already done" in result.stderr
    assert files_under(out) == [f"{i}.flac" for i in range(6)]


def test_a_full_disk_stops_the_batch(good_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the output disk is full every later file would fail after all its work: stop, say why."""
    import collections

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(apollo_cli.audio.AudioWriter, "_append", no_space)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(apollo_cli.audio.shutil, "disk_usage", lambda path: usage(100, 100, 0))
    result = run(*tiny(good_library))
    assert result.exit_code == 1, result.output
    assert "stopped early: the disk of" in result.stderr and "run the same command again" in result.stderr
    assert result.stderr.count("no space left on device") == 1  # the first file; the rest never started
    assert "not done" in result.stdout
    assert files_under(good_library.parent / "lib-restored") == []  # and no temporary files


# ------------------------------------------------------------------- safety (issue 11)


def test_originals_in_an_output_folder_inside_the_input_are_never_written(good_library: Path) -> None:
    """An input is never written to, wherever it lives: not even one in the (unsearched) output folder."""
    out = good_library / "restored"
    (out / "Artist B").mkdir(parents=True)
    original = out / "Artist B" / "three.flac"  # where three.wav's output goes: someone's own file
    sf.write(original, make_music(0.5, seed=9).T, 44100)
    before = original.read_bytes()
    for extra in ([], ["--overwrite"]):
        result = run(*tiny(good_library, "-o", out, *extra))
        assert result.exit_code == 1, result.output
        assert original.read_bytes() == before
        line = next(line for line in result.stderr.splitlines() if "three.wav" in line)
        assert (
            line.startswith("failed") and "not written by apollo-cli" in line and "never replaced" in line
        ), line
        assert "output exists" not in result.stderr
    # apollo's own outputs there (marked) are skipped, and redone with --overwrite.
    assert apollo_cli.tags.has_provenance(out / "Artist B" / "four.flac")
    plan = batch.plan_batch(good_library, out, overwrite=True)
    assert [c.jobs[0].name for c in plan.collisions] == ["Artist B/three.wav"]
    assert len(plan.jobs) == len(GOOD) - 1
    assert len(batch.plan_batch(good_library, out).skipped) == len(GOOD) - 1


def test_an_output_folder_elsewhere_keeps_the_old_rules(good_library: Path) -> None:
    """Outside the input folder an existing file is an earlier output: skipped, or replaced with --overwrite."""
    out = good_library.parent / "elsewhere"
    (out / "Artist B").mkdir(parents=True)
    sf.write(out / "Artist B" / "three.flac", make_music(0.5, seed=9).T, 44100)
    plan = batch.plan_batch(good_library, out)
    assert [job.name for job in plan.skipped] == ["Artist B/three.wav"] and not plan.collisions


def test_every_output_carries_the_provenance_tag(good_library: Path) -> None:
    out = good_library.parent / "wavs"
    assert run(*tiny(good_library, "-o", out, "--format", "wav", "-q")).exit_code == 0
    assert all(apollo_cli.tags.has_provenance(p) for p in out.rglob("*.wav"))
    native = mutagen.File(out / "Artist B" / "three.wav")
    (value,) = native.tags.getall("TXXX:APOLLO_RESTORED")[0].text
    assert value.startswith(f"apollo-cli {apollo_cli.__version__}; model tiny_official_format.bin sha256:")
    assert value.endswith("; precision=fp32")


def test_a_file_another_run_is_restoring_is_skipped_not_done_twice(good_library: Path) -> None:
    """A claim held by another process: that file is skipped and named, its temporary kept."""
    out = good_library.parent / "lib-restored"
    output = out / "Artist B" / "three.flac"
    output.parent.mkdir(parents=True)
    temp = output.with_name(".three.flac.0badf00d.part")  # the other run's work in progress
    with held_elsewhere(output) as holder:
        temp.write_bytes(b"being written")
        result = run(*tiny(good_library))
        assert result.exit_code == 0, result.output
        assert temp.read_bytes() == b"being written"
        assert not output.exists()
        line = next(line for line in result.stderr.splitlines() if "three.wav" in line)
        assert line == (
            f"skipped Artist B/three.wav: being restored by another apollo run (pid {holder.pid} on "
            f"{socket.gethostname()})"
        ), line
        assert "being restored by another apollo run" in result.stdout  # the summary says why
    # The other run died without finishing: the next run does the file and clears its leftovers.
    result = run(*tiny(good_library))
    assert result.exit_code == 0, result.output
    assert files_under(out) == expected_outputs(GOOD)


def test_two_concurrent_runs_share_the_work(tmp_path: Path) -> None:
    """Two real batches on one output folder: every file restored exactly once, no failures.

    The second runs while the first is restoring 0.wav (held there, helpers.HELD_RESTORE,
    until the second is done): it meets 0.wav in progress and must leave it alone.
    """
    library = tmp_path / "lib"
    library.mkdir()
    for i in range(4):
        sf.write(library / f"{i}.wav", make_music(1.0, seed=40 + i).T, 44100)
    command = [sys.executable, "-m", "apollo_cli", "batch", str(library), "--model", str(TINY_MODEL),
               "--device", "cpu", "--chunk-seconds", "0.2"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(held(command, 0), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert first.stdout is not None
        assert first.stdout.readline() == "holding\n"  # 0.wav is claimed and being restored
        second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
        stderr = first.communicate(input="go\n", timeout=300)[1]
    finally:
        if first.poll() is None:
            first.kill()
    assert "4 to restore" in stderr.splitlines()[0], stderr
    outputs = [stderr, second.stderr]
    for code, stderr in zip((first.returncode, second.returncode), outputs, strict=True):
        assert code == 0, stderr
        assert "failed" not in stderr and "Traceback" not in stderr, stderr
    # The second did not restore 0.wav a second time (only to find the output there when writing).
    assert f"skipped 0.wav: being restored by another apollo run (pid {first.pid} on " in second.stderr, (
        outputs
    )
    restored = [line for stderr in outputs for line in stderr.splitlines() if line.startswith("restored")]
    assert sorted(line.split()[1] for line in restored) == [f"{i}.wav" for i in range(4)], outputs
    assert files_under(tmp_path / "lib-restored") == [
        f"{i}.flac" for i in range(4)
    ]  # no locks, no temporaries


def test_dry_run_marks_dangling_links_and_survives_newlines(good_library: Path) -> None:
    (good_library / "gone.mp3").symlink_to(good_library / "nowhere.mp3")
    shutil.copy(good_library / GOOD[2], good_library / "two\nlines.wav")
    result = run(*tiny(good_library, "--dry-run"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(GOOD) + 2 + 1  # one line per file, then the summary
    gone = next(line for line in lines if "gone.mp3" in line)
    assert gone.startswith("cannot") and "does not exist" in gone, gone
    assert "restore two\\nlines.wav → two\\nlines.flac" in lines
    assert "1 not restorable" in lines[-1]
    result = run(*tiny(good_library))
    assert result.exit_code == 1, result.output  # the dangling link is a problem; the rest is done
    assert (good_library.parent / "lib-restored" / "two\nlines.flac").exists()
    assert "restored two\\nlines.wav" in result.stderr


def test_the_output_folder_is_checked_before_the_model(good_library: Path, fake_hub) -> None:  # type: ignore[no-untyped-def]
    """An unusable output folder fails at once: no Hub request for a model that is not cached."""
    (good_library.parent / "a file").write_text("x")
    result = run(
        good_library, "-o", good_library.parent / "a file" / "out", "--model", "mp3", "--device", "cpu"
    )
    one_line_error(result, "is not a folder")
    assert fake_hub.requests == []
