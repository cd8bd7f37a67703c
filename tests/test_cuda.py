"""The CUDA path, run for real: tests that need an NVIDIA GPU (marker ``cuda``).

Without one every test here is skipped, with the reason shown (``pytest -ra``, the
default). ``benchmarks/gpu_check.sh`` runs them on a GPU machine
(``python3 -m pytest -m cuda tests/test_cuda.py``). They use the suite's tiny checkpoint
and its parity fixtures, so they take seconds, apart from ``--compile``'s first build.

TF32 is off throughout (PyTorch's default for matrix products, not for cuDNN's
convolutions): float32 on the GPU is then float32, and must match the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import apollo_cli
from apollo_cli import compiled
from apollo_cli import model as model_module
from apollo_cli.model import Apollo
from apollo_cli.options import RestoreOptions
from helpers import FIXTURES, TINY_MODEL, assert_one_line_error, make_music, run_cli, snr_db

NO_GPU = (
    "needs an NVIDIA GPU: this PyTorch sees none (torch.cuda.is_available() is False); "
    "benchmarks/gpu_check.sh runs these on a GPU machine"
)
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)]

CASES = ["stereo", "mono", "odd_length"]
#: float32 on two devices (or chunked against whole): the same numbers but for the order of sums.
EXACT_DB = 100.0
#: bf16 and fp16 against float32.
REDUCED_DB = 35.0


@pytest.fixture(autouse=True)
def no_tf32() -> Iterator[None]:
    """float32 products and convolutions in float32 (TF32 off), as the parity targets assume."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.fixture(scope="module")
def parity() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "tiny_parity_io.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def gpu_model() -> Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cuda:0")


@pytest.fixture(scope="module")
def cpu_model() -> Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


def restore(model: Apollo, audio: np.ndarray, **options: object) -> np.ndarray:
    return apollo_cli.restore(model, audio, 44100, options=RestoreOptions(**options))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize("case", CASES)
def test_cuda_fp32_matches_cpu_fp32(
    case: str, parity: dict[str, np.ndarray], gpu_model: Apollo, cpu_model: Apollo
) -> None:
    audio, reference = parity[f"{case}_input"], parity[f"{case}_output"]
    on_gpu = restore(gpu_model, audio, chunk_seconds=0.25, batch_size=2)
    on_cpu = restore(cpu_model, audio, chunk_seconds=0.25, batch_size=2)
    assert on_gpu.dtype == np.float32 and on_gpu.shape == reference.shape
    assert snr_db(on_cpu, on_gpu) >= EXACT_DB
    assert snr_db(reference, on_gpu) >= EXACT_DB


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_stays_close_to_fp32(
    precision: str, parity: dict[str, np.ndarray], gpu_model: Apollo
) -> None:
    audio = parity["stereo_input"]
    exact = restore(gpu_model, audio, chunk_seconds=0.5)
    reduced = restore(gpu_model, audio, chunk_seconds=0.5, precision=precision)
    assert reduced.dtype == np.float32 and np.isfinite(reduced).all()
    assert REDUCED_DB <= snr_db(exact, reduced) < EXACT_DB  # reduced precision, and within the target


@pytest.mark.parametrize("case", CASES)
def test_chunked_equals_whole_file_on_cuda(
    case: str, parity: dict[str, np.ndarray], gpu_model: Apollo
) -> None:
    audio = parity[f"{case}_input"]
    with torch.inference_mode():
        whole = gpu_model(torch.from_numpy(audio)[None].to("cuda:0"))[0].cpu().numpy()
    for batch_size in (1, 3, None):  # None: the automatic size, which fits every chunk in one call here
        chunked = restore(gpu_model, audio, chunk_seconds=0.25, batch_size=batch_size)
        assert snr_db(whole, chunked) >= EXACT_DB, batch_size


def test_compile_on_cuda_matches_eager(
    gpu_model: Apollo, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``--compile`` on CUDA builds Triton kernels of the model's slice functions; eager's numbers."""
    monkeypatch.setenv(compiled.CACHE_ENV, str(tmp_path_factory.mktemp("inductor")))
    audio = make_music(1.3)  # full chunks and a shorter last one, so padded tail slices too
    eager = restore(gpu_model, audio, chunk_seconds=0.5)
    used: list[str] = []
    real = compiled.compiled

    def counting(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        assert fn in (model_module.band_slice, model_module.time_update)
        used.append(fn.__name__)
        return real(fn)

    monkeypatch.setattr(compiled, "compiled", counting)
    fast = restore(gpu_model, audio, chunk_seconds=0.5, compile=True)
    layers = gpu_model.config.layers
    assert used.count("band_slice") >= layers and used.count("time_update") >= 3 * layers
    assert fast.shape == eager.shape and np.isfinite(fast).all()
    assert np.abs(fast - eager).max() <= 1e-5 * np.abs(eager).max()


# ------------------------------------------------------------------------------ batch


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Six short stereo and mono WAV files."""
    folder = tmp_path / "lib"
    folder.mkdir()
    for i in range(6):
        sf.write(folder / f"{i}.wav", make_music(0.8 + 0.1 * i, channels=1 + i % 2, seed=i).T, 44100)
    return folder


@pytest.mark.parametrize("devices, shown", [("cuda:0,cuda:0", "2 × cuda:0"), ("cuda", "cuda:0")])
def test_batch_on_cuda(library: Path, cpu_model: Apollo, devices: str, shown: str) -> None:
    """Two workers on one card (they share its model), and every GPU: the CPU's numbers."""
    out = library.parent / "out"
    result = run_cli(
        "batch", library, "-o", out, "--model", TINY_MODEL, "--device", devices,
        "--chunk-seconds", "0.5", "--format", "wav", "--bit-depth", "32",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    if torch.cuda.device_count() == 1 or devices != "cuda":
        assert shown in result.stderr
    for source in sorted(library.glob("*.wav")):
        audio, _ = sf.read(source, dtype="float32", always_2d=True)
        restored, _ = sf.read(out / source.name, dtype="float32", always_2d=True)
        expected = restore(cpu_model, audio.T, chunk_seconds=0.5)
        assert snr_db(expected, restored.T) >= EXACT_DB, source.name


# ------------------------------------------------------------------------------ memory


@pytest.fixture
def tight_card() -> Iterator[Callable[[float], None]]:
    """Caps this process's share of the GPU (PyTorch's allocator then runs out for real), and lifts it after."""
    total = torch.cuda.get_device_properties(0).total_memory

    def cap(nbytes: float) -> None:
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, nbytes / total), 0)

    yield cap
    torch.cuda.set_per_process_memory_fraction(1.0, 0)
    torch.cuda.empty_cache()


def peak_of_one_chunk(model: Apollo, audio: np.ndarray, chunk_seconds: float) -> int:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(0)
    restore(model, audio, chunk_seconds=chunk_seconds, batch_size=1)
    return torch.cuda.max_memory_allocated(0)


def test_automatic_batch_steps_down_on_a_full_card(
    gpu_model: Apollo, tight_card: Callable[[float], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The automatic size reads the card's free memory; with less really available, it steps down.

    The output is that of a run at the size it settled on, and the chunks were grouped as that run groups them.
    """
    audio = make_music(50.0, seed=3)  # 17 chunks of 3 s, most of them of full length
    peak = peak_of_one_chunk(gpu_model, audio, 3.0)
    calls: list[int] = []
    real = Apollo.forward

    def recording(self: Apollo, wav: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        out = real(self, wav, *args, **kwargs)  # type: ignore[arg-type]
        calls.append(wav.shape[0])  # a call that ran out of memory is not recorded
        return out

    monkeypatch.setattr(Apollo, "forward", recording)
    restore(gpu_model, audio, chunk_seconds=3.0)
    unconstrained = max(calls)  # every full-length chunk in one call
    calls.clear()
    tight_card(2.5 * peak + 2**26)  # room for two chunks at a time or so, not for all of them
    stepped = restore(gpu_model, audio, chunk_seconds=3.0)
    settled, grouped = max(calls), list(calls)
    assert unconstrained >= 8 and settled < unconstrained, (unconstrained, grouped)
    calls.clear()
    direct = restore(gpu_model, audio, chunk_seconds=3.0, batch_size=settled)
    assert calls == grouped
    assert snr_db(direct, stepped) >= EXACT_DB


def test_absurd_batch_size_is_one_line_and_writes_nothing(
    tmp_path: Path, gpu_model: Apollo, tight_card: Callable[[float], None]
) -> None:
    """A --batch-size that does not fit: one error line, exit 1, no CUDA traceback, no file."""
    audio = make_music(50.0, seed=4)
    source = tmp_path / "song.wav"
    sf.write(source, audio.T, 44100)
    out = tmp_path / "out"
    out.mkdir()
    tight_card(2.5 * peak_of_one_chunk(gpu_model, audio, 3.0) + 2**26)
    result = run_cli(
        "restore", source, "-o", out / "song.flac", "--model", TINY_MODEL, "--device", "cuda:0",
        "--chunk-seconds", "3", "--batch-size", "64",
    )  # fmt: skip
    line = assert_one_line_error(result, "out of memory on cuda:0 with --batch-size 64 (3 s chunks; ")
    assert "GiB free): use a smaller --batch-size or --chunk-seconds" in line
    assert "CUDA out of memory" not in result.output
    assert list(out.iterdir()) == []
    # And in a batch: the file fails with that line, nothing is written, the batch ends with status 1.
    folder = tmp_path / "lib"
    folder.mkdir()
    source.rename(folder / source.name)
    result = run_cli(
        "batch", folder, "-o", out, "--model", TINY_MODEL, "--device", "cuda:0,cuda:0",
        "--chunk-seconds", "3", "--batch-size", "64",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "out of memory on cuda:0 with --batch-size 64" in result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert [p for p in out.rglob("*") if p.is_file()] == []
