"""Clear, one-line messages from ``apollo restore`` (and ``batch``) for mistakes users make.

Each test runs the CLI in-process (helpers.run_cli) on real audio files it writes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import apollo_cli
from helpers import TINY_MODEL, assert_one_line_error, make_music, run_cli


@pytest.fixture
def song(tmp_path: Path) -> Path:
    path = tmp_path / "song.wav"
    sf.write(path, make_music(0.5).T, 44100)
    return path


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400", "0", "-1"])
@pytest.mark.parametrize("command", ["restore", "batch"])
def test_chunk_seconds_that_are_not_a_length(song: Path, command: str, value: str) -> None:
    target = song.parent if command == "batch" else song
    before = set(song.parent.iterdir())
    result = run_cli(command, target, "--model", TINY_MODEL, "--device", "cpu", "--chunk-seconds", value)
    line = assert_one_line_error(result, "--chunk-seconds must be a number of seconds, at least 0.01")
    assert "Usage" not in result.output
    assert f"not {float(value):g}" in line
    assert set(song.parent.iterdir()) == before


def test_chunk_seconds_that_are_fine_pass() -> None:
    from apollo_cli.cli.options import _check_chunk_seconds

    assert _check_chunk_seconds(0.01) == 0.01
    assert _check_chunk_seconds(600.0) == 600.0


@pytest.mark.parametrize(
    "kind", ["existing folder", "existing folder/", "new folder/", "existing.wav folder"]
)
def test_output_that_is_a_folder(song: Path, kind: str) -> None:
    folder = song.parent / "out"
    if kind.startswith("existing"):
        folder = song.parent / ("out.wav" if kind.endswith("wav folder") else "out")
        folder.mkdir()
    given = str(folder) + ("/" if kind.endswith("/") else "")
    before = set(song.parent.iterdir())
    result = run_cli("restore", song, "-o", given, "--model", TINY_MODEL)
    line = assert_one_line_error(
        result, "names a folder, not a file" if kind == "new folder/" else "it is a directory, not a file"
    )
    assert f"cannot write {given}:" in line and str(folder / "song.flac") in line
    assert "extension" not in line
    assert set(song.parent.iterdir()) == before


@pytest.mark.parametrize("inside", ["x.flac", "deeper/x.flac"])
def test_output_under_a_file(song: Path, inside: str) -> None:
    blocker = song.parent / "file.wav"
    blocker.write_bytes(b"not a folder")
    result = run_cli("restore", song, "-o", f"{blocker}/{inside}", "--model", TINY_MODEL)
    line = assert_one_line_error(result, f"{blocker} is a file, not a folder")
    assert "does not exist" not in line
    assert blocker.read_bytes() == b"not a folder"


def test_output_in_a_missing_folder_still_says_so(song: Path) -> None:
    result = run_cli("restore", song, "-o", song.parent / "missing" / "o.wav", "--model", TINY_MODEL)
    assert_one_line_error(result, "does not exist")


def test_too_short_names_the_file(tmp_path: Path) -> None:
    short = tmp_path / "blip.wav"
    sf.write(short, np.zeros((100, 2), dtype=np.float32) + 0.1, 44100)
    result = run_cli("restore", short, "-o", tmp_path / "o.wav", "--model", TINY_MODEL)
    line = assert_one_line_error(result, "too short to restore")
    assert str(short) in line
    assert not (tmp_path / "o.wav").exists()


def test_quiet_restore_prints_nothing_but_errors(
    fake_hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """-q with everything that prints otherwise: a download, clipping, a tag not carried, a spectrogram."""
    pytest.importorskip("matplotlib")
    from mutagen.flac import FLAC

    from apollo_cli.cli import progress

    fake_hub.add_file("JusperLee/Apollo", "pytorch_model.bin", TINY_MODEL.read_bytes())
    source = tmp_path / "loud.flac"
    sf.write(source, make_music(0.6).T, 44100)
    # A stand-in model output beyond full scale, so that 16-bit output clips.
    monkeypatch.setattr(apollo_cli.api, "restore", lambda model, samples, rate, **kw: samples * 8)
    tags = FLAC(source)
    tags["TITLE"], tags["REPLAYGAIN_TRACK_GAIN"] = "Loud", "-9.1 dB"
    tags.save()
    # Pretend stderr is a terminal, so progress bars would be drawn if -q let them.
    monkeypatch.setattr(progress.Console, "is_terminal", property(lambda self: True))
    args = [
        "restore",
        source,
        "-o",
        tmp_path / "o.flac",
        "--bit-depth",
        "16",
        "--spectrogram",
        tmp_path / "s.png",
    ]
    result = run_cli(*args, "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "o.flac").exists() and (tmp_path / "s.png").exists()
    # Without -q the same run has things to say.
    result = run_cli(*args, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "note:" in result.stderr


def test_the_help_and_readme_agree_on_bf16() -> None:
    result = run_cli("restore", "--help")
    help_text = " ".join(result.stdout.split())
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"`bf16` \(CPUs with [^)]*: about ([\d.]+)× faster on our CPUs", readme)
    assert stated, "the README's --precision row no longer states bf16's speed"
    speedup = stated.group(1)
    assert f"about {speedup}x faster on such CPUs" in help_text
    # The help's share of the time is the same figure, rounded.
    share = re.search(r"faster on such CPUs, ([\d.]+) of the time", help_text)
    assert share and abs(float(share.group(1)) - 1 / float(speedup)) < 0.05


def test_a_command_that_exits_with_a_status_is_not_an_internal_error() -> None:
    """typer.Exit raised inside reported_errors keeps its status (typer's Exit is not click's)."""
    import typer

    from apollo_cli.cli import reported_errors

    for status in (0, 3, 130):
        with pytest.raises(typer.Exit) as stopped, reported_errors(debug=False):
            raise typer.Exit(status)
        assert stopped.value.exit_code == status
