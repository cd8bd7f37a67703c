"""`apollo restore` end to end, through the CLI, on real audio files the tests make."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import apollo_cli
from helpers import TINY_MODEL, assert_one_line_error, make_music
from helpers import run_cli as run


def outputs_in(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.suffix in (".wav", ".flac", ".part") or ".part" in p.name
    )


def test_restore_mp3_to_wav(music_mp3: Path) -> None:
    out = music_mp3.with_name("out.wav")
    result = run(
        "restore", music_mp3, "-o", out, "--model", TINY_MODEL, "--device", "cpu", "--chunk-seconds", "0.5"
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout and "real time" in result.stdout
    info = sf.info(out)
    decoded = apollo_cli.audio.load_audio(music_mp3)
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, decoded.frames)
    assert info.subtype == "FLOAT"
    # The file holds what the library computes for the same input.
    model = apollo_cli.load_model(TINY_MODEL, device="cpu")
    expected = apollo_cli.restore(model, decoded.samples, decoded.sample_rate)
    np.testing.assert_allclose(sf.read(out, dtype="float32")[0].T, expected, atol=1e-6)


def test_default_output_beside_input(music_mp3: Path) -> None:
    result = run("restore", music_mp3, "--model", TINY_MODEL, "-q")
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert (music_mp3.parent / "song.restored.wav").exists()


def test_flac_at_other_rate_and_mono(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    sf.write(source, make_music(1.5, 48000, channels=1)[0], 48000)
    out = tmp_path / "o.FLAC"
    result = run(
        "restore", source, "-o", out, "--model", TINY_MODEL, "--batch-size", "3", "--chunk-seconds", "0.3"
    )
    assert result.exit_code == 0, result.output
    info = sf.info(out)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_24", 44100, 1)
    assert info.frames == round(1.5 * 44100)
    assert "mono" in result.stdout


def test_clipping_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "loud.wav"
    sf.write(source, make_music(1.0).T, 44100)
    # A stand-in model output that goes beyond full scale: the CLI must say so.
    real = apollo_cli.api.restore_stream

    def loud(model, blocks, sink, *args, **kw):  # type: ignore[no-untyped-def]
        return real(model, blocks, lambda core: sink(core * 1000), *args, **kw)

    monkeypatch.setattr(apollo_cli.api, "restore_stream", loud)
    out = tmp_path / "o.wav"
    result = run("restore", source, "-o", out, "--model", TINY_MODEL, "--bit-depth", "16")
    assert result.exit_code == 0, result.output
    assert "limited" in result.stderr and "samples" in result.stderr
    assert np.abs(sf.read(out)[0]).max() <= 1.0


def test_python_dash_m(music_mp3: Path) -> None:
    out = music_mp3.with_name("m.flac")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "apollo_cli",
            "restore",
            str(music_mp3),
            "-o",
            str(out),
            "--model",
            str(TINY_MODEL),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    assert "wrote" in proc.stdout


def test_version_and_help() -> None:
    assert apollo_cli.__version__ in run("--version").stdout
    assert "restore" in run("--help").stdout


# ------------------------------------------------------------------------- existing outputs


def test_existing_output_is_kept_without_overwrite(music_mp3: Path) -> None:
    out = music_mp3.with_name("o.wav")
    out.write_bytes(b"precious")
    assert_one_line_error(run("restore", music_mp3, "-o", out, "--model", TINY_MODEL), "--overwrite")
    assert out.read_bytes() == b"precious"
    result = run("restore", music_mp3, "-o", out, "--model", TINY_MODEL, "--overwrite")
    assert result.exit_code == 0, result.output
    assert sf.info(out).frames > 0


def test_output_equal_to_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "song.wav"
    sf.write(source, make_music(1.0).T, 44100)
    before = source.read_bytes()
    assert_one_line_error(
        run("restore", source, "-o", source, "--model", TINY_MODEL, "--overwrite"), "is the input file"
    )
    assert source.read_bytes() == before


# ------------------------------------------------------------------------------ bad input


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("definitely not audio\n" * 100)
    full = tmp_path / "full.mp3"
    sf.write(full, make_music(3.0).T, 44100, format="MP3")
    truncated = tmp_path / "truncated.mp3"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    nan = tmp_path / "nan.wav"
    samples = make_music(1.0)
    samples[0, 1000] = np.nan
    sf.write(nan, samples.T, 44100, subtype="FLOAT")
    silent = tmp_path / "zero.wav"
    sf.write(silent, np.zeros((0, 2), np.float32), 44100)
    (tmp_path / "folder.wav").mkdir()
    return {
        "missing": (tmp_path / "nope.mp3", "does not exist"),
        "directory": (tmp_path / "folder.wav", "is a directory"),
        "empty": (empty, "is empty"),
        "zero-length": (silent, "contains no audio"),
        "not audio": (text, "not audio"),
        "truncated": (truncated, "truncated"),
        "nan": (nan, "NaN or infinite"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "directory", "empty", "zero-length", "not audio", "truncated", "nan"]
)
def test_bad_input_files(tmp_path: Path, case: str) -> None:
    path, match = _bad_inputs(tmp_path)[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run("restore", path, "-o", out_dir / "o.wav", "--model", TINY_MODEL)
    assert_one_line_error(result, match)
    assert outputs_in(out_dir) == []


def test_missing_ffmpeg_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to make an M4A file")
    source = tmp_path / "in.wav"
    sf.write(source, make_music(1.0).T, 44100)
    m4a = tmp_path / "song.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c:a", "aac", str(m4a)], check=True)
    monkeypatch.setattr(apollo_cli.decoding, "find_ffmpeg", lambda: None)
    result = run("restore", m4a, "-o", tmp_path / "o.wav", "--model", TINY_MODEL)
    assert_one_line_error(result, "ffmpeg is needed")
    assert "apt-get install ffmpeg" in result.stderr
    monkeypatch.undo()
    result = run("restore", m4a, "-o", tmp_path / "o.wav", "--model", TINY_MODEL)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args, match",
    [
        (["-o", "{tmp}/o.mp3"], "not a supported output format"),
        (["-o", "{tmp}/o"], "not a supported output format"),
        (["-o", "{tmp}/o.flac", "--bit-depth", "32"], "FLAC supports bit depth 16 or 24"),
        (["-o", "{tmp}/o.wav", "--bit-depth", "8"], "WAV supports bit depth 16, 24 or 32"),
        (["-o", "{tmp}/missing/o.wav"], "does not exist"),
        (["-o", "/proc/o.wav"], "cannot write"),
        (["--device", "cuda"], "not available"),
        (["--device", "cuda:3"], "not available"),
        (["--device", "tpu"], "unknown device"),
        (["--precision", "fp16"], "fp16 is for GPUs"),
        (["--precision", "fp64"], "unknown precision"),
    ],
)
def test_bad_options(music_mp3: Path, args: list[str], match: str) -> None:
    tmp = music_mp3.parent
    before = set(tmp.iterdir())
    if torch.cuda.is_available() and args[0] == "--device" and args[1].startswith("cuda"):
        pytest.skip("this machine has CUDA")
    result = run("restore", music_mp3, "--model", TINY_MODEL, *[a.format(tmp=tmp) for a in args])
    assert_one_line_error(result, match)
    assert set(tmp.iterdir()) == before


@pytest.mark.skipif(torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has bfloat16")
def test_bf16_on_a_cpu_without_it(music_mp3: Path) -> None:
    result = run("restore", music_mp3, "--model", TINY_MODEL, "--precision", "bf16", "-d", "cpu")
    assert_one_line_error(result, "this CPU has no bfloat16 support")
    assert "--precision fp32" in result.stderr


def test_unknown_model_name(music_mp3: Path) -> None:
    result = run("restore", music_mp3, "--model", "no-such-model")
    assert_one_line_error(result, "unknown model 'no-such-model'")


@pytest.mark.parametrize(
    "content, match",
    [(b"\x80\x02garbage" * 50, "corrupt"), (b"hello, I am a text file\n" * 10, "not a PyTorch")],
)
def test_corrupt_or_foreign_checkpoint(music_mp3: Path, content: bytes, match: str) -> None:
    ckpt = music_mp3.with_name("model.ckpt")
    ckpt.write_bytes(content)
    result = run("restore", music_mp3, "--model", ckpt, "-o", music_mp3.with_name("o.wav"))
    assert_one_line_error(result, match)
    assert not music_mp3.with_name("o.wav").exists()


def test_debug_shows_traceback(music_mp3: Path) -> None:
    result = run("restore", music_mp3, "--model", "no-such-model", "--debug")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_interrupted_run_leaves_nothing(music_mp3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(apollo_cli.audio.AudioWriter, "_append", interrupted)
    out = music_mp3.with_name("o.wav")
    result = run("restore", music_mp3, "-o", out, "--model", TINY_MODEL)
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert [p.name for p in music_mp3.parent.iterdir()] == [music_mp3.name]


# --------------------------------------------------------------------- models from the Hub


def test_known_model_downloads_once_then_works_offline(
    fake_hub, music_mp3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    fake_hub.add_file("JusperLee/Apollo", "pytorch_model.bin", TINY_MODEL.read_bytes())
    result = run("restore", music_mp3, "-o", music_mp3.with_name("a.wav"))
    assert result.exit_code == 0, result.output
    cached = list(
        Path(os.environ["HF_HUB_CACHE"]).glob("models--JusperLee--Apollo/snapshots/*/pytorch_model.bin")
    )
    assert len(cached) == 1 and cached[0].read_bytes() == TINY_MODEL.read_bytes()

    served = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run("restore", music_mp3, "-o", music_mp3.with_name("b.wav"))
    assert result.exit_code == 0, result.output
    assert len(fake_hub.requests) == served  # the network was not touched
    np.testing.assert_array_equal(
        sf.read(music_mp3.with_name("a.wav"))[0], sf.read(music_mp3.with_name("b.wav"))[0]
    )


def test_offline_and_not_cached(fake_hub, music_mp3: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run("restore", music_mp3)
    assert_one_line_error(result, "apollo download-model")
    assert fake_hub.requests == []


def test_names_with_brackets_are_printed_verbatim(music_mp3: Path) -> None:
    source = music_mp3.rename(music_mp3.with_name("[live] song.mp3"))
    out = source.with_name("[live] song.wav")
    result = run("restore", source, "-o", out, "--model", TINY_MODEL)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    result = run("restore", source, "-o", out, "--model", TINY_MODEL)
    assert_one_line_error(result, f"{out} already exists")


# ------------------------------------------------------------------- safety (issue 11)


def test_restore_removes_what_a_killed_run_left(music_mp3: Path) -> None:
    out = music_mp3.with_name("o.flac")
    stale = out.with_name(".o.flac.0badf00d.part")
    stale.write_bytes(b"left by a run killed with -9")
    other = out.with_name(".other.flac.0badf00d.part")
    other.write_bytes(b"not ours")
    result = run("restore", music_mp3, "-o", out, "--model", TINY_MODEL)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in music_mp3.parent.iterdir()) == sorted(
        [music_mp3.name, "o.flac", other.name]
    )
    assert apollo_cli.tags.has_provenance(out)


def test_restore_refuses_an_output_another_run_is_writing(music_mp3: Path) -> None:
    from test_locks import held_elsewhere

    out = music_mp3.with_name("o.flac")
    temp = out.with_name(".o.flac.0badf00d.part")
    with held_elsewhere(out) as holder:
        temp.write_bytes(b"the other run's work in progress")
        result = run("restore", music_mp3, "-o", out, "--model", TINY_MODEL, "--overwrite")
        assert_one_line_error(result, f"is being written by another apollo run (pid {holder.pid} on ")
        assert temp.exists() and not out.exists()


def test_spectrogram_never_replaces_the_input_or_the_output(tmp_path: Path) -> None:
    source = tmp_path / "song.png"  # audio with an odd name: decoded by content
    sf.write(source, make_music(1.0).T, 44100, format="WAV")
    link = tmp_path / "picture.png"
    link.symlink_to(source)
    before = source.read_bytes()
    out = tmp_path / "out.wav"
    for picture in (source, link):
        result = run(
            "restore", source, "-o", out, "--model", TINY_MODEL, "--spectrogram", picture, "--overwrite"
        )
        assert_one_line_error(result, "is the input file")
    result = run("restore", source, "-o", out, "--model", TINY_MODEL, "--spectrogram", out, "--overwrite")
    assert_one_line_error(result, "is the output file")
    assert source.read_bytes() == before and not out.exists()


def test_compare_png_never_replaces_an_input(tmp_path: Path) -> None:
    before = tmp_path / "before.png"
    sf.write(before, make_music(1.0).T, 44100, format="WAV")
    after = tmp_path / "after.wav"
    sf.write(after, make_music(1.0, seed=3).T, 44100)
    content = before.read_bytes()
    assert_one_line_error(run("compare", before, after, "--png", before, "--overwrite"), "is the before file")
    assert before.read_bytes() == content


def test_models_piped_keeps_each_row_on_one_line() -> None:
    """CliRunner's output is not a terminal, like a pipe: nothing is wrapped at 80 columns."""
    from apollo_cli.registry import KNOWN_MODELS

    result = run("models")
    assert result.exit_code == 0, result.output
    for model in KNOWN_MODELS.values():
        row = next(line for line in result.stdout.splitlines() if line.startswith(model.name))
        assert model.filename in row and model.description in row, row
