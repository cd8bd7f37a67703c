"""The restoration controls: --cutoff, --keep-lows and --stereo mid-side, measured."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import apollo_cli
from apollo_cli import OptionError, RestoreOptions, controls, filters
from apollo_cli.analysis import inspect_file
from apollo_cli.analysis.bandwidth import long_term_spectrum, long_term_spectrum_blocks
from apollo_cli.options import CROSSOVER_WIDTH_HZ, CUTOFF_TRANSITION_HZ, parse_frequency
from helpers import snr_db

FIXTURES = Path(__file__).parent / "fixtures"
RATE = 44100


@pytest.fixture(scope="module")
def model() -> apollo_cli.Apollo:
    return apollo_cli.load_model(FIXTURES / "tiny_official_format.bin", device="cpu")


def noise(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Full-band test audio: white noise at about -20 dBFS."""
    return (0.1 * np.random.default_rng(seed).standard_normal((channels, round(seconds * RATE)))).astype(
        np.float32
    )


def through_identity(options: RestoreOptions, audio: np.ndarray, block: int = 10_000) -> np.ndarray:
    """What the control stages make of ``audio`` when the model is replaced by identity."""
    stages = controls.Controls(options, audio.shape[0], RATE)
    out: list[torch.Tensor] = []
    sink = stages.outputs(out.append)
    for piece in stages.inputs(
        torch.from_numpy(audio[:, i : i + block]) for i in range(0, audio.shape[1], block)
    ):
        sink(piece)
    stages.finish()
    return torch.cat(out, dim=1).numpy()


# ------------------------------------------------------------------------------ filters


def test_cutoff_filter_pass_band_and_stop_band() -> None:
    for cutoff in (1000.0, 11000.0, 16000.0, 19500.0, 21550.0):
        taps = controls.cutoff_taps(cutoff, RATE)
        passband = filters.response_db(taps, np.linspace(0, cutoff, 2000), RATE)
        assert np.abs(passband).max() <= 0.01, cutoff  # unchanged below the cutoff
        stop = filters.response_db(taps, np.linspace(cutoff + CUTOFF_TRANSITION_HZ, RATE / 2, 2000), RATE)
        assert stop.max() <= -90, cutoff


def test_crossover_bands_meet_at_half_gain_and_sum_to_one() -> None:
    taps = controls.crossover_taps(14500.0, RATE)
    freqs = np.linspace(0, RATE / 2, 4001)
    low = 10 ** (filters.response_db(taps, freqs, RATE) / 20)
    assert filters.response_db(taps, np.array([14500.0]), RATE)[0] == pytest.approx(-6.02, abs=0.01)
    below = freqs <= 14500 - CROSSOVER_WIDTH_HZ / 2
    assert np.abs(20 * np.log10(low[below])).max() <= 0.01
    # The high band is the delayed input minus the low band: the two sum to one exactly.
    delta = np.zeros_like(taps)
    delta[taps.size // 2] = 1
    high = filters.response_db(delta - taps, freqs, RATE)
    assert high[freqs >= 14500 + CROSSOVER_WIDTH_HZ / 2].max() <= 0.01
    assert high[freqs <= 14500 - CROSSOVER_WIDTH_HZ / 2].max() <= -90


@pytest.mark.parametrize("block", [1, 333, 4096, 100_000])
def test_streamed_filter_equals_whole_signal_filter(block: int) -> None:
    x = noise(0.5, seed=1)
    taps = controls.cutoff_taps(8000.0, RATE)
    whole = filters.filter_signal(x, taps)
    streamed = np.concatenate(
        list(filters.filter_blocks((x[:, i : i + block] for i in range(0, x.shape[1], block)), taps, 2)),
        axis=1,
    )
    assert streamed.shape == x.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


# ------------------------------------------------------------------------ stages, identity model


def test_keep_lows_gives_back_the_input_when_both_sides_are_the_same() -> None:
    x = noise(1.0, seed=2)
    out = through_identity(RestoreOptions(keep_lows=12000.0), x)
    assert snr_db(x, out) >= 100


def test_mid_side_round_trip_is_exact() -> None:
    x = noise(1.0, seed=3)
    out = through_identity(RestoreOptions(stereo="mid-side"), x)
    assert snr_db(x, out) >= 130


def test_cutoff_removes_what_lies_above_and_keeps_what_lies_below() -> None:
    t = np.arange(RATE) / RATE
    low = 0.3 * np.sin(2 * np.pi * 5000 * t)
    high = 0.3 * np.sin(2 * np.pi * 18000 * t)
    x = np.stack([low + high, low - high]).astype(np.float32)
    out = through_identity(RestoreOptions(cutoff=16000.0), x)
    middle = slice(2000, -2000)  # away from the signal's own start and end
    expected = np.stack([low, low])
    assert snr_db(expected[:, middle], out[:, middle]) >= 80


def test_all_controls_together_with_identity_round_trip() -> None:
    x = noise(1.0, seed=4)
    # Keep-lows brings the input back below its crossover; mid/side is exact: above the
    # crossover the cutoff's work remains, so compare only the band below both.
    out = through_identity(RestoreOptions(stereo="mid-side", keep_lows=12000.0), x)
    assert snr_db(x, out) >= 100


# ------------------------------------------------------------------------------ with the model


def test_chunked_equals_whole_file_with_every_control_on(model: apollo_cli.Apollo) -> None:
    x = noise(3.0, seed=5)
    settings = {"cutoff": 15000.0, "keep_lows": 12000.0, "stereo": "mid-side"}
    whole = apollo_cli.restore(model, x, RATE, RestoreOptions(chunk_seconds=30.0, **settings))  # type: ignore[arg-type]
    chunked = apollo_cli.restore(model, x, RATE, RestoreOptions(chunk_seconds=0.3, batch_size=2, **settings))  # type: ignore[arg-type]
    assert snr_db(whole, chunked) >= 100


def test_keep_lows_keeps_the_input_below_the_crossover(model: apollo_cli.Apollo) -> None:
    x = noise(2.0, seed=6)
    plain = apollo_cli.restore(model, x, RATE)
    kept = apollo_cli.restore(model, x, RATE, RestoreOptions(keep_lows=10000.0))
    below = controls.crossover_taps(10000.0 - CROSSOVER_WIDTH_HZ, RATE)  # well inside the low band
    middle = slice(2000, -2000)  # the output ends where the input does: the filters' tails are cut there
    changed = filters.filter_signal(plain - x, below)[:, middle]
    left = filters.filter_signal(kept - x, below)[:, middle]
    # What the model changed below the crossover is gone (to the filters' own precision)...
    assert 10 * np.log10(np.sum(changed**2) / np.sum(left**2)) >= 90
    # ... and above it the output is the restoration.
    above = controls.crossover_taps(10000.0 + CROSSOVER_WIDTH_HZ, RATE)
    high_plain = plain - filters.filter_signal(plain, above)
    high_kept = kept - filters.filter_signal(kept, above)
    assert snr_db(high_plain[:, middle], high_kept[:, middle]) >= 90


def test_mid_side_restores_mid_and_side(model: apollo_cli.Apollo) -> None:
    x = noise(1.0, seed=7)
    out = apollo_cli.restore(model, x, RATE, RestoreOptions(stereo="mid-side"))
    mid_side = np.stack([(x[0] + x[1]) / 2, (x[0] - x[1]) / 2])
    restored = apollo_cli.restore(model, mid_side, RATE)
    expected = np.stack([restored[0] + restored[1], restored[0] - restored[1]])
    assert snr_db(expected, out) >= 100


# ------------------------------------------------------------------------------------ auto


def lowpassed_file(path: Path, cutoff: float, seconds: float = 4.0) -> Path:
    x = filters.filter_signal(noise(seconds, seed=8), controls.cutoff_taps(cutoff, RATE)).astype(np.float32)
    sf.write(path, x.T, RATE, subtype="FLOAT")
    return path


def test_auto_uses_the_bandwidth_inspect_reports(model: apollo_cli.Apollo, tmp_path: Path) -> None:
    source = lowpassed_file(tmp_path / "coded.wav", 16000.0)
    measured = inspect_file(source).bandwidth.hz
    assert 15500 < measured < 16600
    result = apollo_cli.restore_file(
        model,
        source,
        tmp_path / "out.flac",
        RestoreOptions(cutoff="auto", keep_lows="auto", chunk_seconds=2.0),
    )
    assert result.notes == (
        f"--cutoff auto: low-passed at {measured / 1000:.1f} kHz, the measured bandwidth",
        (
            f"--keep-lows auto: the input is kept below {(measured - 1500) / 1000:.1f} kHz "
            f"(1.5 kHz under its {measured / 1000:.1f} kHz bandwidth)"
        ),
    )
    # The same file restored with those frequencies given outright.
    given = apollo_cli.restore_file(
        model, source, tmp_path / "given.flac",
        RestoreOptions(cutoff=measured, keep_lows=measured - 1500, chunk_seconds=2.0),
    )  # fmt: skip
    np.testing.assert_array_equal(sf.read(result.output)[0], sf.read(given.output)[0])


def test_auto_cutoff_on_a_full_band_file_says_it_did_nothing(
    model: apollo_cli.Apollo, tmp_path: Path
) -> None:
    source = tmp_path / "full.wav"
    sf.write(source, noise(3.0, seed=9).T, RATE, subtype="FLOAT")
    plain = apollo_cli.restore_file(model, source, tmp_path / "plain.wav")
    auto = apollo_cli.restore_file(model, source, tmp_path / "auto.wav", RestoreOptions(cutoff="auto"))
    assert len(auto.notes) == 1 and "(no codec cutoff found); not low-passed" in auto.notes[0]
    np.testing.assert_array_equal(sf.read(plain.output)[0], sf.read(auto.output)[0])


def test_mid_side_on_mono_says_what_it_does(model: apollo_cli.Apollo, tmp_path: Path) -> None:
    source = tmp_path / "mono.wav"
    sf.write(source, noise(1.0, channels=1, seed=10).T, RATE, subtype="FLOAT")
    result = apollo_cli.restore_file(model, source, tmp_path / "out.wav", RestoreOptions(stereo="mid-side"))
    assert result.notes == (
        "--stereo mid-side is for stereo files; this one is mono, restored channel by channel",
    )


def test_streamed_bandwidth_spectrum_equals_the_whole_signals() -> None:
    x = noise(7.3, seed=11)
    whole = long_term_spectrum(x, RATE)[1]
    for block in (1000, 65536):
        streamed = long_term_spectrum_blocks(
            (x[:, i : i + block] for i in range(0, x.shape[1], block)), RATE, x.shape[1]
        )[1]
        np.testing.assert_array_equal(whole, streamed)


# ------------------------------------------------------------------------------ bad values


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"cutoff": 30000.0}, "--cutoff 30000 Hz is outside 1000-21550 Hz"),
        ({"keep_lows": -5.0}, "--keep-lows -5 Hz is outside"),
        ({"cutoff": float("nan")}, "--cutoff nan Hz is outside"),
        ({"stereo": "surround"}, "unknown stereo mode 'surround'"),
        ({"cutoff": "16k"}, "--cutoff must be auto, off or a frequency in Hz"),
    ],
)
def test_bad_control_values(settings: dict[str, object], match: str) -> None:
    with pytest.raises(OptionError, match=match):
        RestoreOptions(**settings)  # type: ignore[arg-type]


def test_frequencies_from_the_command_line() -> None:
    assert parse_frequency("--cutoff", "auto") == "auto"
    assert parse_frequency("--cutoff", "OFF") is None
    assert parse_frequency("--cutoff", "16000") == 16000.0
    assert parse_frequency("--cutoff", "15.5kHz") == 15500.0
    assert parse_frequency("--cutoff", "16 k") == 16000.0
    for bad in ("-5", "sixteen", "16 MHz", ""):
        with pytest.raises(OptionError, match="--cutoff must be auto, off or a frequency"):
            parse_frequency("--cutoff", bad)


def test_auto_in_the_streaming_core_is_refused(model: apollo_cli.Apollo) -> None:
    from apollo_cli.inference import restore_waveform

    with pytest.raises(OptionError, match="'auto' restoration controls need the whole audio"):
        restore_waveform(model, torch.zeros(2, RATE), RestoreOptions(cutoff="auto"))


# ------------------------------------------------------------------------------ provenance


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_provenance_names_version_model_and_settings(
    model: apollo_cli.Apollo, tmp_path: Path, fmt: str
) -> None:
    import hashlib

    from apollo_cli import tags

    source = lowpassed_file(tmp_path / "coded.wav", 16000.0, seconds=2.0)
    options = RestoreOptions(cutoff="auto", keep_lows=12000.0, stereo="mid-side")
    result = apollo_cli.restore_file(model, source, tmp_path / f"out.{fmt}", options)
    value = tags.read_provenance(result.output)
    digest = hashlib.sha256((FIXTURES / "tiny_official_format.bin").read_bytes()).hexdigest()[:12]
    cutoff = float(result.notes[0].split(" at ")[1].split(" kHz")[0]) * 1000
    assert value is not None
    assert value.startswith(
        f"apollo-cli {apollo_cli.__version__}; model tiny_official_format.bin sha256:{digest}; "
    )
    settings = value.split("; ")[2].split()
    assert settings[0] == "precision=fp32" and settings[2:] == ["keep-lows=12000", "stereo=mid-side"]
    # auto is recorded as the frequency it chose, so the file can be redone the same way
    assert settings[1].startswith("cutoff=") and abs(float(settings[1][7:]) - cutoff) < 100
    assert tags.has_provenance(result.output)


@pytest.mark.parametrize("streamed", [False, True], ids=["decoded ahead", "streamed"])
def test_batch_chooses_auto_as_restore_does(
    model: apollo_cli.Apollo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    """Files at other rates than the model's: ``auto`` is measured at the file's own rate in both."""
    from apollo_cli import batch

    library = tmp_path / "library"
    library.mkdir()
    # Full band at 22.05 kHz (measured after resampling, the bandwidth read 10.8 kHz, not 11.0),
    # and a 15 kHz cutoff at 48 kHz.
    sf.write(library / "a.wav", noise(2.0, seed=13).T, 22050, subtype="FLOAT")
    x = filters.filter_signal(noise(2.0, seed=14), controls.cutoff_taps(15000.0, 48000))
    sf.write(library / "b.wav", x.astype(np.float32).T, 48000, subtype="FLOAT")
    options = RestoreOptions(cutoff="auto", keep_lows="auto", chunk_seconds=1.0)
    if streamed:
        monkeypatch.setattr(batch.runner, "PREFETCH_SECONDS", 0.0)
    summary = batch.run_batch(batch.plan_batch(library, tmp_path / "out"), model, options=options)
    assert summary.ok and len(summary.done) == 2
    for done in summary.done:
        alone = apollo_cli.restore_file(
            model, done.job.source, tmp_path / f"{done.job.source.stem}.flac", options
        )
        assert done.result.notes == alone.notes and len(alone.notes) == 2
        np.testing.assert_array_equal(sf.read(done.result.output)[0], sf.read(alone.output)[0])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is needed to make and decode the MKA file")
def test_auto_on_a_stated_length_that_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container that states its length 1 % long: the file is measured as the whole signal is."""
    from apollo_cli import api, audio, decoding

    source = lowpassed_file(tmp_path / "long.wav", 15000.0, seconds=75.0)  # past 1500 analysis frames
    mka = tmp_path / "long.mka"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", source, "-c:a", "pcm_f32le", mka], check=True)
    monkeypatch.setattr(decoding, "_container_frames", lambda path, rate: round(75.75 * rate))
    options = RestoreOptions(cutoff="auto", keep_lows="auto")
    with audio.open_audio(mka) as opened:
        assert opened.frames == round(75.75 * RATE) and not opened.frames_exact
        streamed, _ = api.resolve_controls(options, opened)
    whole, _ = api.resolve_controls(options, audio.load_audio(mka).samples, RATE)
    assert (streamed.cutoff, streamed.keep_lows) == (whole.cutoff, whole.keep_lows)


def test_batch_can_skip_inputs_that_are_restorations(model: apollo_cli.Apollo, tmp_path: Path) -> None:
    from apollo_cli import batch

    library = tmp_path / "library"
    library.mkdir()
    sf.write(library / "original.wav", noise(0.6, seed=12).T, RATE)
    apollo_cli.restore_file(model, library / "original.wav", library / "restored earlier.flac")
    plan = batch.plan_batch(library, tmp_path / "out", skip_restored=True)
    assert [job.name for job in plan.jobs] == ["original.wav"]
    assert [job.name for job in plan.already_restored] == ["restored earlier.flac"]
    summary = batch.run_batch(plan, model)
    assert [(s.name, s.reason) for s in summary.skipped] == [
        ("restored earlier.flac", "already restored (it carries apollo-cli's provenance tag)")
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["original.flac"]
    # Without the option both are restored, as before.
    assert len(batch.plan_batch(library, tmp_path / "out2").jobs) == 2


def test_spectrograms_draw_the_cutoff_and_crossover(model: apollo_cli.Apollo, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from apollo_cli import plot
    from apollo_cli.analysis import compare_files

    source = lowpassed_file(tmp_path / "coded.wav", 16000.0, seconds=2.0)
    plain = apollo_cli.restore_file(model, source, tmp_path / "plain.flac")
    controlled = apollo_cli.restore_file(
        model, source, tmp_path / "controlled.flac", RestoreOptions(cutoff=15000.0, keep_lows=13000.0)
    )
    assert plot.control_marks(apollo_cli.tags.read_provenance(controlled.output)) == (
        (15000.0, "cutoff 15.0 kHz"),
        (13000.0, "keep-lows crossover 13.0 kHz"),
    )

    def control_pixels(restored: Path, png: Path) -> int:
        plot.save_comparison_png(compare_files(source, restored), png)
        rgb = imread(png)[..., :3]
        line = np.array([0x9D, 0xFF, 0x6E]) / 255
        return int((np.abs(rgb - line).max(axis=-1) < 0.05).sum())

    assert control_pixels(plain.output, tmp_path / "plain.png") == 0
    assert control_pixels(controlled.output, tmp_path / "controlled.png") > 200  # two dotted lines and labels


# ------------------------------------------------------------------------------------- CLI


def test_cli_bad_control_values_are_one_line_each(tmp_path: Path) -> None:
    from helpers import assert_one_line_error, run_cli

    source = tmp_path / "in.wav"
    sf.write(source, noise(0.5).T, RATE)
    out = tmp_path / "out.flac"
    cases = [
        (("--cutoff", "30000"), "--cutoff 30000 Hz is outside 1000-21550 Hz"),
        (
            ("--keep-lows", "-5"),
            "--keep-lows must be auto, off or a frequency such as 16000 or 16k, not '-5'",
        ),
        (("--cutoff", "loud"), "--cutoff must be auto, off or a frequency"),
        (("--stereo", "surround"), "unknown stereo mode 'surround'; use lr or mid-side"),
    ]
    for args, message in cases:
        # A model that does not exist: the options are refused before any model is looked for.
        result = run_cli("restore", source, "-o", out, "--model", tmp_path / "missing.ckpt", *args)
        assert_one_line_error(result, message)
        batch_result = run_cli(
            "batch", tmp_path, "-o", tmp_path / "lib", "--model", tmp_path / "missing.ckpt", *args
        )
        assert_one_line_error(batch_result, message)
        assert not out.exists() and not (tmp_path / "lib").exists()


def test_cli_says_what_auto_did(tmp_path: Path) -> None:
    from helpers import TINY_MODEL, run_cli

    full = tmp_path / "full.wav"
    sf.write(full, noise(2.0, seed=13).T, RATE, subtype="FLOAT")
    result = run_cli("restore", full, "-o", tmp_path / "a.flac", "--model", TINY_MODEL, "--cutoff", "auto")
    assert result.exit_code == 0, result.output
    assert "note: --cutoff auto: the audio reaches" in result.stderr and "not low-passed" in result.stderr
    coded = lowpassed_file(tmp_path / "coded.wav", 16000.0, seconds=2.0)
    result = run_cli("restore", coded, "-o", tmp_path / "b.flac", "--model", TINY_MODEL,
                     "--cutoff", "auto", "--keep-lows", "auto", "--stereo", "mid-side")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: --cutoff auto: low-passed at 16." in result.stderr
    assert "note: --keep-lows auto: the input is kept below 14." in result.stderr
    report = run_cli("inspect", tmp_path / "b.flac")
    assert "b.flac: restored by apollo-cli" in report.stdout
    assert "cutoff=16" in report.stdout and "stereo=mid-side" in report.stdout


def test_cli_batch_skip_restored(tmp_path: Path) -> None:
    from helpers import TINY_MODEL, run_cli

    library = tmp_path / "library"
    library.mkdir()
    sf.write(library / "song.wav", noise(0.6, seed=14).T, RATE)
    assert (
        run_cli(
            "restore", library / "song.wav", "-o", library / "song restored.flac", "--model", TINY_MODEL
        ).exit_code
        == 0
    )
    dry = run_cli("batch", library, "-o", tmp_path / "out", "--skip-restored", "--dry-run")
    assert "skip    song restored.flac · already a restoration (apollo-cli's tag)" in dry.stdout
    result = run_cli("batch", library, "-o", tmp_path / "out", "--model", TINY_MODEL, "--skip-restored")
    assert result.exit_code == 0, result.output
    assert "1 restoration left alone" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["song.flac"]


def test_provenance_names_the_hub_commit_a_cached_model_came_from(tmp_path: Path) -> None:
    from apollo_cli.provenance import ModelSource

    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "models--JusperLee--Apollo" / "snapshots" / commit / "pytorch_model.bin"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(b"weights")
    digest = "9a129038d9a0"  # sha256(b"weights")[:12]
    assert ModelSource("mp3", None, snapshot).describe() == f"model mp3@0123456789ab sha256:{digest}"
    assert ModelSource("mp3", "v2", snapshot).describe() == f"model mp3@v2 sha256:{digest}"
    assert ModelSource("mp3@v2", "v2", snapshot).describe() == f"model mp3@v2 sha256:{digest}"
