"""The README's pictures of the restoration controls, made by the code they illustrate.

``pytest`` draws them into a temporary folder and checks each shows what the README
says; ``python tests/test_readme_figures.py`` redraws the committed copies in
``docs/images/``. The model is the tiny test checkpoint (random weights), so the
pictures show what each control does to the signal, not how good a restoration is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import apollo_cli
from apollo_cli import RestoreOptions, audio, controls, filters, plot

TINY_MODEL = Path(__file__).parent / "fixtures" / "tiny_official_format.bin"
RATE = 44100
#: Each control, with the options the README's example command gives.
FIGURES = {
    "control-cutoff.png": RestoreOptions(cutoff="auto"),
    "control-keep-lows.png": RestoreOptions(keep_lows="auto"),
    "control-mid-side.png": RestoreOptions(stereo="mid-side"),
}
FLAGS = {
    "control-cutoff.png": "--cutoff auto",
    "control-keep-lows.png": "--keep-lows auto",
    "control-mid-side.png": "--stereo mid-side",
}


def coded_music(path: Path, seconds: float = 6.0) -> Path:
    """Stand-in for a 128 kbps MP3: tones and noise low-passed at 16 kHz, with faint dither above."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * RATE)) / RATE
    music = np.zeros((2, t.size))
    for ch in range(2):
        for k, fundamental in enumerate((110.0, 164.8, 220.0 * (1 + 0.01 * ch))):
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (0.3 + 0.1 * k) * t + ch)
            for harmonic in range(1, 40):
                music[ch] += (
                    envelope * np.sin(2 * np.pi * fundamental * harmonic * t + rng.uniform(0, 6.3)) / harmonic
                )
        music[ch] += 0.3 * rng.standard_normal(t.size)
    music *= 0.25 / np.abs(music).max()
    coded = filters.filter_signal(music, controls.cutoff_taps(16000.0, RATE))
    coded += 10 ** (-90 / 20) * rng.standard_normal(coded.shape)  # dither: the noise above the cutoff
    sf.write(path, coded.T.astype(np.float32), RATE, subtype="FLOAT")
    return path


def make_figures(folder: Path) -> dict[str, tuple[tuple[float, str], ...]]:
    """Draw each control's before/after picture into ``folder``; returns the lines each shows."""
    folder.mkdir(parents=True, exist_ok=True)
    model = apollo_cli.load_model(TINY_MODEL, device="cpu")
    work = folder / ".work"
    work.mkdir(exist_ok=True)
    source = coded_music(work / "song.wav")
    drawn = {}
    for name, options in FIGURES.items():
        result = apollo_cli.restore_file(
            model, source, work / f"{Path(name).stem}.flac", options, overwrite=True
        )
        marks = plot.control_marks(apollo_cli.tags.read_provenance(result.output))
        plot.save_restore_png(
            folder / name, audio.load_audio(source), "song.mp3 (decoded)", audio.load_audio(result.output),
            f"apollo restore {FLAGS[name]}", overwrite=True,
            marks=marks,
        )  # fmt: skip
        drawn[name] = marks
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()
    return drawn


def test_readme_figures_show_each_control(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    drawn = make_figures(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIGURES)
    ((cutoff_hz, cutoff_label),) = drawn["control-cutoff.png"]
    assert 15500 < cutoff_hz < 16600 and cutoff_label.startswith("cutoff ")
    ((crossover_hz, crossover_label),) = drawn["control-keep-lows.png"]
    assert crossover_hz == pytest.approx(cutoff_hz - 1500) and crossover_label.startswith(
        "keep-lows crossover"
    )
    assert drawn["control-mid-side.png"] == ()
    # The README links to these names.
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for name in FIGURES:
        assert f"docs/images/{name}" in readme


if __name__ == "__main__":
    out = Path(__file__).parent.parent / "docs" / "images"
    for name, marks in make_figures(out).items():
        print(out / name, marks, file=sys.stderr)
