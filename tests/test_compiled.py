"""``--compile``: the torch.compile path gives the eager numbers, and says clearly when it cannot run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import apollo_cli
from apollo_cli import compiled
from apollo_cli import model as model_module
from apollo_cli.options import RestoreOptions
from helpers import TINY_MODEL, assert_one_line_error, make_music, run_cli, snr_db

needs_compiler = pytest.mark.skipif(
    not any(__import__("shutil").which(c) for c in ("g++", "c++")), reason="no C++ compiler for TorchInductor"
)


@pytest.fixture(scope="module", autouse=True)
def inductor_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled kernels go to a folder of the test run, not the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(compiled.CACHE_ENV, str(tmp_path_factory.mktemp("inductor")))
        yield


@pytest.fixture(scope="module")
def model() -> apollo_cli.Apollo:
    return apollo_cli.load_model(TINY_MODEL, device="cpu")


@needs_compiler
@pytest.mark.parametrize("streams", [1, 2])
def test_compiled_matches_eager(
    model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch, streams: int
) -> None:
    """Compiled on all threads (one stream) and in parallel single-thread streams alike."""
    # 1.3 s in 0.5 s chunks: full chunks and a shorter last one, so padded tail slices too.
    audio = make_music(1.3)
    eager = apollo_cli.restore(model, audio, 44100, options=RestoreOptions(chunk_seconds=0.5))
    used: list[str] = []
    real = compiled.compiled

    def counting(fn):  # type: ignore[no-untyped-def]
        # The compiled path runs the model's own slice functions, the ones eager runs.
        assert fn in (model_module.band_slice, model_module.time_update)
        used.append(fn.__name__)
        compiled_fn = real(fn)
        assert compiled_fn is not fn  # a compiled wrapper
        return compiled_fn

    monkeypatch.setattr(compiled, "compiled", counting)
    options = RestoreOptions(chunk_seconds=0.5, compile=True, streams=streams)
    fast = apollo_cli.restore(model, audio, 44100, options=options)
    layers = model.config.layers
    # Every band slice and every time-block slice went through the compiled functions.
    assert used.count("band_slice") >= layers and used.count("time_update") >= 3 * layers
    assert fast.shape == eager.shape
    err = np.abs(fast - eager).max()
    assert err <= 1e-5 * np.abs(eager).max(), err
    assert np.isfinite(fast).all()


@needs_compiler
@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no bfloat16")
def test_compiled_bf16_matches_eager_bf16(model: apollo_cli.Apollo) -> None:
    """bfloat16 compiled: as close to float32 as eager bfloat16 is (they round at other places)."""
    audio = make_music(1.3)
    reference = apollo_cli.restore(model, audio, 44100, options=RestoreOptions(chunk_seconds=0.5))
    eager = apollo_cli.restore(
        model, audio, 44100, options=RestoreOptions(chunk_seconds=0.5, precision="bf16")
    )
    options = RestoreOptions(chunk_seconds=0.5, precision="bf16", compile=True)
    fast = apollo_cli.restore(model, audio, 44100, options=options)
    assert snr_db(reference, fast) > snr_db(reference, eager) - 1.0
    assert snr_db(eager, fast) < 100  # compiled for real: not the eager numbers


@pytest.mark.parametrize("packed", [True, False])
def test_slice_functions_compile_to_one_graph(model: apollo_cli.Apollo, packed: bool) -> None:
    """The products are one operator to the compiler, not graph breaks: each slice is one graph."""
    packed = packed and model_module.packed_products(torch.device("cpu"))
    layer = model.net[0]
    dim, bands = model.config.feature_dim, model.config.bands
    band_params = layer.band_net.params(torch.float32, torch.device("cpu"), bands, packed)
    tokens = torch.randn(16, bands, dim)
    time_params = layer.seq_net.blocks[0].params(torch.float32, torch.device("cpu"), packed)
    window = torch.randn(8 + model_module.TIME_KERNEL - 1, 1, bands, dim)
    torch._dynamo.reset()
    for explained in (
        torch._dynamo.explain(model_module.band_slice)(
            tokens, band_params, model_module.HEADS, torch.float32
        ),
        torch._dynamo.explain(model_module.time_update)(window, time_params, torch.float32),
    ):
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


@needs_compiler
def test_parallel_streams_compile_each_graph_once(
    model: apollo_cli.Apollo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two streams entering a compiled function together: one traces and compiles it, the other waits."""
    monkeypatch.setattr(compiled, "_compiled", {})
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    wave = make_music(1.0, channels=2)
    apollo_cli.restore(model, wave, 44100, options=RestoreOptions(compile=True, streams=2))
    # band_slice and time_update, once each.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2


@needs_compiler
def test_restore_with_compile_cli(tmp_path: Path) -> None:
    source = tmp_path / "song.wav"
    sf.write(source, make_music(1.3).T, 44100)
    for name, extra in (("eager.wav", []), ("compiled.wav", ["--compile"])):
        result = run_cli("restore", source, "-o", tmp_path / name, "--model", TINY_MODEL,
                         "--chunk-seconds", "0.5", "-q", *extra)  # fmt: skip
        assert result.exit_code == 0, result.output
    eager, _ = sf.read(tmp_path / "eager.wav", dtype="float32")
    fast, _ = sf.read(tmp_path / "compiled.wav", dtype="float32")
    assert np.abs(fast - eager).max() <= 1e-5 * np.abs(eager).max()


def test_missing_compiler_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "song.wav"
    sf.write(source, make_music(0.5).T, 44100)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    result = run_cli("restore", source, "-o", tmp_path / "out.wav", "--model", TINY_MODEL, "--compile")
    line = assert_one_line_error(result, "--compile needs a C++ compiler")
    assert "run without --compile" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]
    # The library says the same.
    with pytest.raises(apollo_cli.MissingDependencyError, match="C\\+\\+ compiler"):
        apollo_cli.restore(
            apollo_cli.load_model(TINY_MODEL), make_music(0.5), 44100, options=RestoreOptions(compile=True)
        )


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(compiled.CACHE_ENV, str(tmp_path / "mine"))
    assert compiled.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(compiled.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiled.cache_dir() == tmp_path / "xdg" / "apollo-cli" / "inductor"


def test_pad_rows() -> None:
    x = torch.arange(6.0).view(3, 2)
    padded = compiled.pad_rows(x, 5)
    assert padded.shape == (5, 2) and torch.equal(padded[:3], x) and not padded[3:].any()
    assert compiled.pad_rows(x, 3) is x


@needs_compiler
def test_batch_with_compile(tmp_path: Path, model: apollo_cli.Apollo) -> None:
    """The batch's inference thread runs the compiled model too; mono and stereo in one run."""
    library = tmp_path / "lib"
    library.mkdir()
    music = {"a.wav": make_music(1.3), "b.wav": make_music(0.9, channels=1, seed=3)}
    for name, samples in music.items():
        sf.write(library / name, samples.T, 44100, subtype="FLOAT")  # exactly the samples compared with
    result = run_cli("batch", library, "--format", "wav", "--model", TINY_MODEL, "--device", "cpu",
                     "--chunk-seconds", "0.5", "--compile", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    for name, samples in music.items():
        written, _ = sf.read(tmp_path / "lib-restored" / name, dtype="float32", always_2d=True)
        eager = apollo_cli.restore(model, samples, 44100, options=RestoreOptions(chunk_seconds=0.5))
        assert np.abs(written.T - eager).max() <= 1e-5 * np.abs(eager).max()
