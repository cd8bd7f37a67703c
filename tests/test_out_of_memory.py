"""A batch of chunks that does not fit in the device's memory: an automatic batch size steps down,
a chosen one is a one-line error, and neither leaves a traceback or a partial file.

These run on the CPU: the model's forward is wrapped so that it raises a real
``torch.cuda.OutOfMemoryError`` from inside the model call for batches larger than a
limit, as PyTorch's CUDA allocator does, after some of the work. What is tested is
our handling of that exception; tests/test_cuda.py runs the same on a GPU, where the
allocator itself runs out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import apollo_cli
from apollo_cli import inference
from apollo_cli.errors import OptionError
from apollo_cli.model import Apollo
from apollo_cli.options import RestoreOptions
from helpers import TINY_MODEL, assert_one_line_error, make_music, run_cli

CHUNK = 0.25  # seconds: 3 s of audio is 12 chunks, most of them in full-length batches


@pytest.fixture
def model() -> Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


@pytest.fixture
def calls() -> list[int]:
    """The batch size of every model call that ran to the end."""
    return []


def fits_up_to(limit: int, calls: list[int]) -> Callable[..., torch.Tensor]:
    """Apollo.forward, raising CUDA's out-of-memory error for batches of more than ``limit`` windows.

    It ignores ``carry``: on a GPU, where batches step down, chunks never share their context
    (apollo_cli.carry), so a run at the settled size computes each window whole too.
    """
    real = Apollo.forward

    def forward(
        self: Apollo,
        wav: torch.Tensor,
        keep: tuple[int, int] | None = None,
        use_compiled: bool = False,
        carry: object = None,
    ):  # type: ignore[no-untyped-def]
        if wav.shape[0] > limit:
            self.stft(wav.reshape(-1, wav.shape[-1]))  # some of the work, then the allocation that fails
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 20.00 GiB (a batch of {wav.shape[0]} windows)"
            )
        calls.append(wav.shape[0])
        return real(self, wav, keep, use_compiled)

    return forward


@pytest.mark.parametrize(
    "auto, limit, settles",
    [(8, 3, 2), (9, 4, 3), (6, 2, 1)],  # halving, a divisor that is not a half, down to one
)
def test_automatic_batch_steps_down_to_what_fits(
    model: Apollo, calls: list[int], monkeypatch: pytest.MonkeyPatch, auto: int, limit: int, settles: int
) -> None:
    """The step-down's output, and how it grouped the chunks, are those of a run at the size it settles on."""
    audio = make_music(3.0, channels=1)  # 12 chunks: 10 of full length between two clipped ones
    monkeypatch.setattr(Apollo, "forward", fits_up_to(limit, calls))
    monkeypatch.setattr(inference, "auto_batch_size", lambda *args: auto)
    stepped = apollo_cli.restore(model, audio, 44100, options=RestoreOptions(chunk_seconds=CHUNK))
    grouped = list(calls)
    calls.clear()
    direct = apollo_cli.restore(
        model, audio, 44100, options=RestoreOptions(chunk_seconds=CHUNK, batch_size=settles)
    )
    np.testing.assert_array_equal(stepped, direct)
    # The same calls; in the same order too where no parallel CPU streams interleave them.
    assert Counter(grouped) == Counter(calls)
    assert max(calls) == settles


def test_a_chosen_batch_size_that_does_not_fit_is_an_error(
    model: Apollo, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Apollo, "forward", fits_up_to(2, calls))
    with pytest.raises(OptionError) as caught:
        apollo_cli.restore(  # one stream: no other batch runs beside the one that fails
            model,
            make_music(3.0),
            44100,
            options=RestoreOptions(chunk_seconds=CHUNK, batch_size=8, streams=1),
        )
    message = str(caught.value)
    assert message == (
        "out of memory on cpu with --batch-size 8 (0.25 s chunks): use a smaller --batch-size or "
        "--chunk-seconds, or leave --batch-size out to let apollo choose"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__ is False
    assert calls == [1]  # the first, clipped chunk (a batch of its own); nothing at another size than asked


def test_one_chunk_that_does_not_fit_is_an_error(
    model: Apollo, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Apollo, "forward", fits_up_to(0, calls))
    monkeypatch.setattr(inference, "auto_batch_size", lambda *args: 4)
    with pytest.raises(
        OptionError, match=r"^out of memory on cpu with one chunk at a time \(0.25 s chunks\): "
    ):
        apollo_cli.restore(model, make_music(1.0), 44100, options=RestoreOptions(chunk_seconds=CHUNK))
    # A chosen size of 1 says the same: the chunk is what is too large.
    with pytest.raises(OptionError, match=r"with one chunk at a time .*use a smaller --chunk-seconds"):
        apollo_cli.restore(
            model, make_music(1.0), 44100, options=RestoreOptions(chunk_seconds=CHUNK, batch_size=1)
        )


def test_other_errors_are_not_taken_for_memory(model: Apollo, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Apollo, *args: object, **kwargs: object) -> torch.Tensor:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(Apollo, "forward", broken)
    monkeypatch.setattr(inference, "auto_batch_size", lambda *args: 4)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        apollo_cli.restore(model, make_music(1.0), 44100, options=RestoreOptions(chunk_seconds=CHUNK))


def test_restore_cli_with_a_batch_size_that_does_not_fit(
    tmp_path: Path, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One error line, exit 1, no output and no temporary file left beside it."""
    source = tmp_path / "in" / "song.wav"
    source.parent.mkdir()
    sf.write(source, make_music(3.0).T, 44100)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(Apollo, "forward", fits_up_to(2, calls))
    result = run_cli(
        "restore", source, "-o", out / "song.flac", "--model", TINY_MODEL, "--device", "cpu",
        "--chunk-seconds", str(CHUNK), "--batch-size", "8",
    )  # fmt: skip
    assert_one_line_error(result, "out of memory on cpu with --batch-size 8 (0.25 s chunks)")
    assert list(out.iterdir()) == []


def test_restore_cli_steps_down_by_itself(
    tmp_path: Path, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --batch-size the file is restored, as a run at the size that fits restores it."""
    source = tmp_path / "song.wav"
    sf.write(source, make_music(3.0).T, 44100)
    monkeypatch.setattr(Apollo, "forward", fits_up_to(3, calls))
    monkeypatch.setattr(inference, "auto_batch_size", lambda *args: 8)
    common = ["--model", TINY_MODEL, "--device", "cpu", "--chunk-seconds", str(CHUNK), "-q"]
    assert run_cli("restore", source, "-o", tmp_path / "auto.wav", *common).exit_code == 0
    assert run_cli("restore", source, "-o", tmp_path / "two.wav", *common, "--batch-size", "2").exit_code == 0
    np.testing.assert_array_equal(sf.read(tmp_path / "auto.wav")[0], sf.read(tmp_path / "two.wav")[0])


def test_batch_cli_with_a_batch_size_that_does_not_fit(
    tmp_path: Path, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file fails with the one line, nothing is written, the batch ends with status 1."""
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(folder / name, make_music(3.0).T, 44100)
    monkeypatch.setattr(Apollo, "forward", fits_up_to(2, calls))
    result = run_cli(
        "batch", folder, "-o", tmp_path / "out", "--model", TINY_MODEL, "--device", "cpu,cpu",
        "--chunk-seconds", str(CHUNK), "--batch-size", "8",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.stderr.count("out of memory on cpu with --batch-size 8 (0.25 s chunks)") == 2
    assert "Traceback" not in result.output and "internal error" not in result.output
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert written == []
