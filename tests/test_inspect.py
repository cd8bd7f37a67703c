"""`apollo inspect`, `apollo compare` and `apollo restore --spectrogram`, through the CLI."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import apollo_cli
import apollo_cli.ffprobe
from apollo_cli import analysis, plot
from helpers import TINY_MODEL, make_music
from helpers import run_cli as run

RATE = 44100
NO_MATPLOTLIB = "error: plotting needs matplotlib: pip install 'apollo-cli[plot]'"


def error_lines(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line_error(result, match: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and match in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A clean original (full band), its 128 kbps MP3, and a stand-in "restoration"."""
    rng = np.random.default_rng(0)
    music = make_music(2.0) + 0.02 * rng.standard_normal((2, 2 * RATE)).astype(np.float32)
    original = tmp_path / "original.flac"
    sf.write(original, music.T, RATE, subtype="PCM_24")
    mp3 = tmp_path / "song.mp3"
    sf.write(mp3, music.T, RATE, format="MP3", compression_level=(320 - 128) / 288, bitrate_mode="CONSTANT")
    # Not a real restoration: the MP3 with the original's band above 16 kHz added back.
    decoded = apollo_cli.audio.load_audio(mp3).samples
    highs = np.fft.rfft(music, axis=-1)
    highs[:, np.fft.rfftfreq(music.shape[1], 1 / RATE) < 16000] = 0
    restored = tmp_path / "song.restored.wav"
    sf.write(restored, (decoded + np.fft.irfft(highs, n=music.shape[1], axis=-1)).T, RATE, subtype="FLOAT")
    return {"original": original, "mp3": mp3, "restored": restored}


# ------------------------------------------------------------------------------- inspect


def test_inspect_table(files: dict[str, Path]) -> None:
    result = run("inspect", files["mp3"], files["original"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "MP3 128 kbps CBR" in out and "FLAC 24-bit" in out and "44.1 kHz" in out
    assert "song.mp3: restoration likely to help: bandwidth 16." in out
    assert "(encoder lowpass 17.0 kHz)" in out
    assert "original.flac: already full band (22.1 kHz): little to gain" in out


def test_inspect_json(files: dict[str, Path], tmp_path: Path) -> None:
    transcoded = tmp_path / "transcoded.wav"
    sf.write(transcoded, apollo_cli.audio.load_audio(files["mp3"]).samples.T, RATE, subtype="PCM_16")
    result = run("inspect", "--json", files["mp3"], transcoded)
    assert result.exit_code == 0, result.output
    mp3, wav = json.loads(result.stdout)
    assert mp3["codec"] == "MP3" and mp3["bitrate_kbps"] == 128 and mp3["encoder_lowpass_hz"] == 17000
    assert abs(mp3["bandwidth_hz"] - 17000) <= 500 and mp3["bandwidth_sharp"] is True
    assert mp3["restoration_likely_to_help"] is True
    assert (wav["codec"], wav["lossless"], wav["sample_format"]) == ("PCM", True, "16-bit")
    assert abs(wav["bandwidth_hz"] - mp3["bandwidth_hz"]) < 100
    assert "probably transcoded from a lossy source" in wav["verdict"]
    assert (wav["sample_rate"], wav["channels"], wav["duration"]) == (44100, 2, 2.0)


def test_inspect_reports_bad_files_and_goes_on(files: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp3"
    result = run("inspect", missing, files["mp3"])
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: input file {missing} does not exist; check the path"]
    assert "song.mp3: restoration likely to help" in result.stdout
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 50)
    assert_one_line_error(run("inspect", text), "not audio")


def test_inspect_keeps_brackets_in_names(files: dict[str, Path], tmp_path: Path) -> None:
    odd = tmp_path / "[live] song.mp3"
    odd.write_bytes(files["mp3"].read_bytes())
    result = run("inspect", odd)
    assert result.exit_code == 0, result.output
    assert "[live] song.mp3: restoration likely to help" in result.stdout
    result = run("inspect", tmp_path / "[missing].mp3")
    assert_one_line_error(result, f"input file {tmp_path / '[missing].mp3'} does not exist")


def test_inspect_needs_a_file() -> None:
    result = run("inspect")
    assert result.exit_code == 2 and "Missing argument" in result.output


# ------------------------------------------------------------------------------- compare


def test_compare_bandwidths_only(files: dict[str, Path]) -> None:
    result = run("compare", files["mp3"], files["restored"])
    assert result.exit_code == 0, result.output
    assert "16." in result.stdout and "22.1 kHz full" in result.stdout
    assert "SI-SNR" not in result.stdout  # no reference, no metrics


def test_compare_with_reference(files: dict[str, Path]) -> None:
    result = run("compare", files["mp3"], files["restored"], "--reference", files["original"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"before", "after", "reference"}
    before, after = data["before"]["metrics"], data["after"]["metrics"]
    # The library's numbers, and the restored stand-in is closer to the original in every measure.
    ref = apollo_cli.audio.load_audio(files["original"])
    expected = analysis.measure(ref, apollo_cli.audio.load_audio(files["mp3"]))
    assert before["si_snr_db"] == pytest.approx(expected.si_snr, abs=1e-3)
    assert before["lsd_db"] == pytest.approx(expected.lsd, abs=1e-3)
    assert after["si_snr_db"] > before["si_snr_db"] and after["sdr_db"] > before["sdr_db"]
    assert after["lsd_db"] < before["lsd_db"] / 2
    assert data["before"]["bandwidth_hz"] < 17500 and data["after"]["bandwidth_hz"] > 21000

    table = run("compare", files["mp3"], files["restored"], "-r", files["original"])
    assert table.exit_code == 0, table.output
    for label, value in (("SI-SNR", before["si_snr_db"]), ("LSD", after["lsd_db"])):
        assert label in table.stdout and f"{value:.2f} dB" in table.stdout


def test_compare_notes_different_lengths(files: dict[str, Path], tmp_path: Path) -> None:
    short = tmp_path / "short.wav"
    sf.write(short, sf.read(files["original"])[0][:RATE], RATE)
    result = run("compare", files["mp3"], short, "-r", files["original"])
    assert result.exit_code == 0, result.output
    assert "note: the lengths differ" in result.stderr and "first 1.00 s" in result.stderr


def test_compare_bad_input(files: dict[str, Path], tmp_path: Path) -> None:
    assert_one_line_error(run("compare", files["mp3"], tmp_path / "gone.wav"), "does not exist")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((RATE, 2)), RATE)
    assert_one_line_error(
        run("compare", files["mp3"], files["restored"], "-r", silent), "reference is silent"
    )


# ---------------------------------------------------------------------------------- PNGs


def _png(path: Path) -> np.ndarray:
    """The picture as (height, width, 3) floats in 0..1."""
    image = pytest.importorskip("matplotlib.image").imread(path)
    return image[..., :3]


def _panel(image: np.ndarray, box: tuple[float, float, float, float], f_lo: float, f_hi: float,
           nyquist: float = RATE / 2, fmin: float = 50.0) -> np.ndarray:  # fmt: skip
    """The pixels of a panel between two frequencies (the axis is log from fmin to Nyquist)."""
    height, width = image.shape[:2]
    left, bottom, w, h = box
    span = math.log(nyquist / fmin)
    rows = [round(height * (1 - bottom - h * math.log(f / fmin) / span)) for f in (f_hi, f_lo)]
    cols = (round(width * (left + 0.02 * w)), round(width * (left + 0.98 * w)))
    return image[rows[0] : rows[1], cols[0] : cols[1]]


def _cyan_pixels(pixels: np.ndarray) -> int:
    target = np.array([0x3E, 0xE8, 0xFF]) / 255
    return int((np.abs(pixels - target).max(axis=-1) < 0.08).sum())


def test_compare_png(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "compare.png"
    result = run("compare", files["mp3"], files["restored"], "-r", files["original"], "--png", png)
    assert result.exit_code == 0, result.output
    assert f"wrote {png}" in result.stdout
    (width, height), boxes = plot.figure_layout(3)
    image = _png(png)
    assert image.shape[:2] == (height, width) == (1105, 1200)
    before, after, reference = boxes
    # Every panel holds a picture: colourful music below 10 kHz, not the white page.
    for box in boxes:
        music = _panel(image, box, 200, 10000)
        assert music.std() > 0.05 and (music.min(axis=-1) < 0.9).mean() > 0.99
    # The page between panels is white.
    gap_row = round(height * (1 - before[1])) + 15  # below the tick marks, above the next title
    assert image[gap_row, width // 2 : 9 * width // 10].min() > 0.95
    # Above the MP3's cut-off: the bottom of the colour scale (black) before, music after.
    assert _panel(image, before, 18500, 21000).max() < 0.1
    assert _panel(image, after, 18500, 21000).mean() > 0.2
    assert _panel(image, reference, 18500, 21000).mean() > 0.2
    # The dashed bandwidth line is drawn in the "before" panel, and only there.
    assert _cyan_pixels(_panel(image, before, 14000, 18500)) > 300
    assert _cyan_pixels(_panel(image, after, 50, 22000)) == 0

    # Two panels without a reference; an existing picture is kept without --overwrite.
    assert_one_line_error(run("compare", files["mp3"], files["restored"], "--png", png), "--overwrite")
    result = run("compare", files["mp3"], files["restored"], "--png", png, "--overwrite")
    assert result.exit_code == 0, result.output
    assert _png(png).shape[:2] == plot.figure_layout(2)[0][::-1] == (755, 1200)


@pytest.mark.parametrize(
    "name, match", [("out.jpg", "use a .png file name"), ("missing/out.png", "does not exist")]
)
def test_compare_png_bad_path(files: dict[str, Path], tmp_path: Path, name: str, match: str) -> None:
    assert_one_line_error(run("compare", files["mp3"], files["restored"], "--png", tmp_path / name), match)


def test_without_matplotlib_png_fails_before_any_work(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the matplotlib check")

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    monkeypatch.setattr(apollo_cli.audio, "load_audio", no_work)
    monkeypatch.setattr(apollo_cli.api, "load_model", no_work)
    png = tmp_path / "x.png"

    result = run("compare", files["mp3"], files["restored"], "--png", png)
    assert_one_line_error(result, "")
    assert error_lines(result) == [NO_MATPLOTLIB]

    out = tmp_path / "out.wav"
    result = run("restore", files["mp3"], "-o", out, "--model", TINY_MODEL, "--spectrogram", png)
    assert error_lines(result) == [NO_MATPLOTLIB] and result.exit_code == 1
    assert not png.exists() and not out.exists()
    # Without the flags nothing needs matplotlib.
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert run("compare", files["mp3"], files["restored"]).exit_code == 0


def test_restore_spectrogram(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    source = tmp_path / "in48k.wav"  # another rate: the "before" panel is resampled to 44.1 kHz
    sf.write(
        source,
        apollo_cli.audio.resample(apollo_cli.audio.load_audio(files["mp3"]).samples, RATE, 48000).T,
        48000,
    )
    out, png = tmp_path / "out.flac", tmp_path / "pic.png"
    result = run("restore", source, "-o", out, "--model", TINY_MODEL, "--spectrogram", png)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout and f"wrote {png}" in result.stdout
    assert sf.info(out).frames == 2 * RATE
    image = _png(png)
    (width, height), (before, after) = plot.figure_layout(2)
    assert image.shape[:2] == (height, width)
    assert _panel(image, before, 18500, 21000).max() < 0.1  # the MP3's empty band
    assert _cyan_pixels(_panel(image, before, 14000, 18500)) > 300
    for box in (before, after):
        assert _panel(image, box, 200, 10000).std() > 0.02
    # An existing picture stops the run before any work, unless --overwrite.
    again = run("restore", source, "-o", tmp_path / "o2.wav", "--model", TINY_MODEL, "--spectrogram", png)
    assert_one_line_error(again, "--overwrite")
    assert not (tmp_path / "o2.wav").exists()


def test_inspect_judges_quiet_files_and_low_bitrate_opus(tmp_path: Path) -> None:
    """A quiet 128 kbps MP3 shows its cliff; a 48 kbps Opus reaches 20 kHz yet is worth restoring."""
    quiet = make_music(3.0) * 10 ** (-18 / 20)  # -30 dBFS
    mp3 = tmp_path / "quiet.mp3"
    sf.write(mp3, quiet.T, RATE, format="MP3", compression_level=(320 - 128) / 288, bitrate_mode="CONSTANT")
    args = [mp3]
    if shutil.which("ffmpeg"):
        noise = np.random.default_rng(5).standard_normal((2, 3 * RATE)).astype(np.float32) * 0.05
        wav, opus = tmp_path / "n.wav", tmp_path / "low.opus"
        sf.write(wav, noise.T, RATE)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", wav, "-c:a", "libopus", "-b:a", "48k", opus], check=True
        )
        args.append(opus)
    result = run("inspect", *args)
    assert result.exit_code == 0, result.output
    assert "quiet.mp3: restoration likely to help: bandwidth 16." in result.stdout
    if len(args) == 2:
        assert "low.opus: restoration likely to help: full band (20." in result.stdout


def _opus_and_aac_in_matroska(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 48 kbps Opus in WebM, the same in Matroska with a 300 kB cover, and a 96 kbps AAC in Matroska."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("needs ffmpeg and ffprobe")
    noise = np.random.default_rng(5).standard_normal((2, 4 * RATE)).astype(np.float32) * 0.05
    wav, webm, mka, mkv = (tmp_path / n for n in ("n.wav", "song.webm", "covered.mka", "song.mkv"))
    sf.write(wav, noise.T, RATE)
    cover = tmp_path / "cover.png"  # ffmpeg attaches it as it is: only its size matters here
    cover.write_bytes(np.random.default_rng(0).bytes(300_000))
    ffmpeg = ["ffmpeg", "-nostdin", "-v", "error"]
    subprocess.run([*ffmpeg, "-i", wav, "-c:a", "libopus", "-b:a", "48k", webm], check=True)
    subprocess.run(
        [*ffmpeg, "-i", webm, "-attach", cover, "-metadata:s:t", "mimetype=image/png", "-c", "copy", mka],
        check=True,
    )
    subprocess.run([*ffmpeg, "-i", wav, "-c:a", "aac", "-b:a", "96k", mkv], check=True)
    return webm, mka, mkv


def test_inspect_reads_matroska_and_webm(tmp_path: Path) -> None:
    """Containers only ffmpeg reads get their codec and bitrate from ffprobe, and the verdict that goes with them."""
    webm, mka, mkv = _opus_and_aac_in_matroska(tmp_path)
    result = run("inspect", "--json", webm, mka, mkv)
    assert result.exit_code == 0, result.output
    opus, covered, aac = json.loads(result.stdout)
    assert (opus["codec"], opus["container"], opus["lossless"]) == ("Opus", "WebM", False)
    # The stream's own bitrate, counted from its packets: not the file's, which the cover inflates.
    assert 35 <= opus["bitrate_kbps"] <= 55, opus
    assert (covered["codec"], covered["container"]) == ("Opus", "Matroska")
    assert abs(covered["bitrate_kbps"] - opus["bitrate_kbps"]) < 1, covered
    for report in (opus, covered):
        assert report["restoration_likely_to_help"] is True
        assert "folds their detail from lower ones" in report["verdict"], report["verdict"]
    assert (aac["codec"], aac["container"]) == ("AAC", "Matroska") and 80 <= aac["bitrate_kbps"] <= 110, aac
    assert "AAC encoders cut at" in aac["verdict"], aac["verdict"]
    table = run("inspect", mkv)
    assert "AAC (Matroska)" in table.stdout, table.output


def test_inspect_without_ffprobe_says_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    webm, _, _ = _opus_and_aac_in_matroska(tmp_path)
    monkeypatch.setattr(apollo_cli.ffprobe, "find_ffprobe", lambda: None)
    result = run("inspect", "--json", webm)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert (report["codec"], report["container"], report["bitrate_kbps"]) == (None, None, None)
    assert report["duration"] == pytest.approx(4.0, abs=0.05)
