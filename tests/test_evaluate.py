"""``apollo evaluate`` and :mod:`apollo_cli.evaluate`: codec baseline, ViSQOL, alignment, resume, errors.

Short segments (2 s), two bitrates, the tiny checkpoint and synthetic music: fast, no network.
ffmpeg (with libmp3lame) encodes, as in use.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import apollo_cli
from apollo_cli.errors import InputError, OptionError
from apollo_cli.evaluate import alignment, coding, evaluate, segments
from helpers import TINY_MODEL, assert_one_line_error, make_music, run_cli

pytestmark = pytest.mark.skipif(coding.find_ffmpeg() is None, reason="needs ffmpeg")

BITRATES = (32, 128)


def clean_folder(root: Path, files: int = 2, seconds: float = 3.0) -> Path:
    folder = root / "clean"
    folder.mkdir()
    for i in range(files):
        sf.write(folder / f"song{i}.wav", make_music(seconds, seed=i).T, 44100, subtype="PCM_24")
    return folder


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return clean_folder(tmp_path)


@pytest.fixture(scope="module")
def tiny() -> apollo_cli.Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


def test_the_codec_baseline_improves_with_bitrate_on_every_metric(clean: Path, tmp_path: Path) -> None:
    report = evaluate(clean, tmp_path / "report", bitrates=BITRATES, segment_seconds=2)
    assert report.systems == ("codec",) and len(report.files) == 2
    means = {(s.bitrate, s.metric): s.mean for s in report.summaries()}
    for metric in report.metrics:
        low, high = means[(32, metric)], means[(128, metric)]
        assert (high > low) if metric != "lsd" else (high < low), (metric, low, high)
    assert {"si-snr", "sdr", "lsd"} <= set(report.metrics)


def test_visqol_is_at_the_top_for_the_signal_itself_and_falls_when_low_passed() -> None:
    pytest.importorskip("visqol")
    from apollo_cli.evaluate.scoring import Scorer

    clean = make_music(3.0)
    spectrum = np.fft.rfft(clean, axis=-1)
    spectrum[:, np.fft.rfftfreq(clean.shape[1], 1 / 44100) > 4000] = 0
    low_passed = np.fft.irfft(spectrum, n=clean.shape[1], axis=-1).astype(np.float32)
    scorer = Scorer(["visqol"])
    itself = scorer.visqol(clean, clean, 44100)
    assert itself > 4.5  # audio mode's scale tops out at about 4.73
    assert scorer.visqol(clean, low_passed, 44100) < itself - 1.0


def test_a_shifted_file_is_refused_naming_it(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = coding.decode

    def late(path: Path) -> np.ndarray:  # as if the decoder kept 0.3 s of something in front
        decoded = real(path)
        return np.pad(decoded, ((0, 0), (13230, 0)))

    monkeypatch.setattr(coding, "decode", late)
    with pytest.raises(InputError, match=r"song0\.wav at 32 kbps MP3: the coded audio is \+300 ms off"):
        evaluate(clean, tmp_path / "report", bitrates=BITRATES, segment_seconds=2)


def test_an_encoder_delay_is_compensated_and_a_drift_refused() -> None:
    clean = make_music(2.0)
    delayed = np.pad(clean, ((0, 0), (1105, 0)))  # LAME's delay, had the decoder kept it
    assert np.array_equal(alignment.align(clean, delayed, 44100, "x"), clean)
    stretched = np.concatenate([clean[:, :44100], np.pad(clean[:, 44100:], ((0, 0), (30, 0)))], axis=1)
    with pytest.raises(InputError, match=r"x: after the encoder's delay .* still drifts"):
        alignment.align(clean, stretched, 44100, "x")


def test_a_rerun_redoes_nothing_and_a_new_bitrate_only_its_own_work(
    clean: Path, tmp_path: Path, tiny: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apollo_cli import api

    calls = {"encode": 0, "restore": 0}
    real_encode, real_restore = coding.encode, api.restore

    def encode(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["encode"] += 1
        return real_encode(*args, **kwargs)

    def restore(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["restore"] += 1
        return real_restore(*args, **kwargs)

    monkeypatch.setattr(coding, "encode", encode)
    monkeypatch.setattr(api, "restore", restore)
    settings = {"models": [tiny], "segment_seconds": 2, "metrics": "si-snr,sdr,lsd"}
    first = evaluate(clean, tmp_path / "report", bitrates=BITRATES, **settings)
    assert calls == {"encode": 4, "restore": 4} and first.counts == {"encoded": 4, "restored": 4, "scored": 8}
    again = evaluate(clean, tmp_path / "report", bitrates=BITRATES, **settings)
    assert calls == {"encode": 4, "restore": 4} and again.counts == {"encoded": 0, "restored": 0, "scored": 0}
    assert [r.scores for r in again.rows] == [r.scores for r in first.rows]
    evaluate(clean, tmp_path / "report", bitrates=(*BITRATES, 64), **settings)
    assert calls == {"encode": 6, "restore": 6}


def test_the_segment_is_music_not_silence_and_always_the_same(tmp_path: Path) -> None:
    music = make_music(4.0)
    quiet_start = np.concatenate([np.zeros((2, 3 * 44100), np.float32), music], axis=1)  # 7 s
    path = tmp_path / "late.flac"
    sf.write(path, quiet_start.T, 44100, subtype="PCM_24")
    chosen = segments.choose_segment(path, 2.0)
    assert chosen.start >= 3.0 and chosen.seconds == 2.0 and chosen.samples.shape == (2, 88200)
    assert segments.choose_segment(path, 2.0).start == chosen.start
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((3 * 44100, 2), np.float32), 44100)
    with pytest.raises(InputError, match=r"silent\.wav is silent"):
        segments.choose_segment(silent, 2.0)


def test_a_reference_at_another_rate_is_resampled(tmp_path: Path) -> None:
    path = tmp_path / "hi.wav"
    sf.write(path, make_music(3.0, sample_rate=48000).T, 48000, subtype="FLOAT")
    assert segments.choose_segment(path, 2.0).samples.shape == (2, 88200)


def test_bitrates_and_codecs_are_checked() -> None:
    mp3 = coding.get_codec("MP3")
    assert coding.check_bitrates(mp3, coding.parse_bitrates("128k, 24,64")) == (24, 64, 128)
    with pytest.raises(OptionError, match="MP3 has no 100 kbps"):
        coding.check_bitrates(mp3, [100])
    with pytest.raises(OptionError, match="unknown codec 'wma'"):
        coding.get_codec("wma")


# --- the command ------------------------------------------------------------------------------------


def test_the_command_prints_tables_writes_the_report_and_draws_the_figure(
    clean: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    report_dir = tmp_path / "report"
    result = run_cli(
        "evaluate", clean, "-o", report_dir, "-m", TINY_MODEL, "-b", "32,128", "--segment-seconds", "2",
        "--metrics", "si-snr,lsd", "--group-by", "genre", "--png", report_dir / "fig.png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "MP3 at 32 kbps" in result.stdout and "MP3 at 128 kbps" in result.stdout
    assert "MP3 (no restoration)" in result.stdout and "tiny_official_format.bin" in result.stdout
    assert "genre = (no genre)" in result.stdout
    assert (report_dir / "fig.png").stat().st_size > 0
    assert (report_dir / "fig.genre-_no_genre_.png").is_file()
    rows = (report_dir / "scores.csv").read_text().splitlines()
    assert (
        rows[0] == "file,group,bitrate_kbps,system,start_s,seconds,si-snr,lsd" and len(rows) == 1 + 2 * 2 * 2
    )
    again = run_cli("evaluate", clean, "-o", report_dir, "-m", TINY_MODEL, "-b", "32,128",
                    "--segment-seconds", "2", "--metrics", "si-snr,lsd", "--json")  # fmt: skip
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["counts"] == {"encoded": 0, "restored": 0, "scored": 0}
    assert {s["system"] for s in data["summary"]} == {"codec", "tiny_official_format.bin"}
    assert "all from the cache" in again.stderr


def test_ctrl_c_exits_130_and_the_rerun_continues(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apollo_cli import api

    real, calls = api.restore, []

    def restore(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "restore", restore)
    args = ("evaluate", clean, "-o", tmp_path / "r", "-m", TINY_MODEL, "-b", "32,128",
            "--segment-seconds", "2", "--metrics", "sdr")  # fmt: skip
    stopped = run_cli(*args)
    assert stopped.exit_code == 130, stopped.output
    assert "interrupted: 1 of 4 done" in stopped.stderr and "run the same command again" in stopped.stderr
    finished = run_cli(*args)
    assert finished.exit_code == 0, finished.output
    assert len(calls) == 2 + 3  # the one restored before Ctrl-C was not redone


def test_an_empty_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("evaluate", tmp_path / "empty"), "no WAV, FLAC or AIFF files")


def test_a_file_that_is_not_audio_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "clean"
    folder.mkdir()
    (folder / "notes.wav").write_text("not audio at all\n" * 100)
    result = run_cli("evaluate", folder, "-m", TINY_MODEL, "-b", "32", "--segment-seconds", "2")
    assert_one_line_error(result, "notes.wav")


def test_an_unknown_codec_is_one_line(clean: Path) -> None:
    assert_one_line_error(
        run_cli("evaluate", clean, "--codec", "wma"), "unknown codec 'wma'; use mp3, aac, opus"
    )


def test_a_missing_ffmpeg_is_one_line(clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    line = assert_one_line_error(run_cli("evaluate", clean, "--codec", "aac"), "encoding AAC needs ffmpeg")
    assert "install it with" in line


def test_a_segment_shorter_than_a_second_is_one_line(clean: Path) -> None:
    result = run_cli("evaluate", clean, "--segment-seconds", "0.5")
    assert_one_line_error(result, "--segment-seconds must be at least 1, got 0.5")
