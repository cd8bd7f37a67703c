"""The generator reproduces the reference and loads every checkpoint format safely."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import apollo_cli
from apollo_cli import CheckpointError, UnsafeCheckpointError, load_model
from apollo_cli import model as model_module
from apollo_cli.options import RestoreOptions

FIXTURES = Path(__file__).parent / "fixtures"
FORMATS = ["tiny_official_format.bin", "tiny_lightning_format.ckpt", "tiny_bare.safetensors"]
CASES = ["stereo", "mono", "odd_length"]


@pytest.fixture(scope="module")
def parity() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "tiny_parity_io.npz") as data:
        return dict(data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reproduces_reference(fmt: str, parity: dict[str, np.ndarray]) -> None:
    model = load_model(FIXTURES / fmt, device="cpu")
    assert (model.config.feature_dim, model.config.layers) == (32, 2)
    for case in CASES:
        x = parity[f"{case}_input"]
        with torch.inference_mode():
            whole = model(torch.from_numpy(x)[None])[0].numpy()
        chunked = apollo_cli.restore(
            model, x, 44100, options=RestoreOptions(chunk_seconds=0.25, batch_size=2)
        )
        ref = parity[f"{case}_output"]
        assert whole.shape == ref.shape
        assert np.abs(whole - ref).max() < 1e-4, (fmt, case)
        assert np.abs(chunked - ref).max() < 1e-4, (fmt, case)


def test_eager_runs_the_slice_functions(
    monkeypatch: pytest.MonkeyPatch, parity: dict[str, np.ndarray]
) -> None:
    """Eager inference runs ``band_slice`` and ``time_update``, the functions ``--compile`` compiles.

    On the CPU it hands them oneDNN's prepacked weights, so the one arithmetic keeps the fast path.
    """
    model = load_model(FIXTURES / FORMATS[0], device="cpu")
    calls: list[tuple[str, bool]] = []
    products = {
        "band_slice": ("qkv", "output", "mlp_gate", "mlp_value", "mlp_output"),
        "time_update": ("up", "down"),
    }
    for name, fields in products.items():
        real = getattr(model_module, name)

        def spy(x, p, *rest, _real=real, _name=name, _fields=fields):  # type: ignore[no-untyped-def]
            calls.append((_name, all(getattr(p, f).is_mkldnn for f in _fields)))
            return _real(x, p, *rest)

        monkeypatch.setattr(model_module, name, spy)
    y = apollo_cli.restore(model, parity["stereo_input"], 44100, options=RestoreOptions(chunk_seconds=0.25))
    assert np.abs(y - parity["stereo_output"]).max() < 1e-4
    names = [n for n, _ in calls]
    assert names.count("band_slice") >= model.config.layers
    assert names.count("time_update") >= 3 * model.config.layers
    assert all(packed == model_module.USE_ONEDNN for _, packed in calls)


@pytest.mark.skipif(not model_module.USE_ONEDNN, reason="oneDNN's prepacked products do not work here")
@pytest.mark.parametrize("silu", [False, True])
def test_linear_packed_and_plain_agree(silu: bool) -> None:
    conv = model_module.Conv1x1(16, 24)
    gain = torch.nn.Parameter(torch.rand(16) + 0.5)
    with torch.no_grad():
        conv.weight.normal_()
        conv.bias.normal_()
    x = torch.randn(5, 16)
    plain = model_module.linear(x, *conv.weights(torch.float32, x.device, gain, packed=False), silu=silu)
    weight, bias = conv.weights(torch.float32, x.device, gain, packed=True)
    assert weight.is_mkldnn
    packed = model_module.linear(x, weight, bias, silu=silu)
    expected = torch.nn.functional.linear(x * gain.detach(), conv.weight.detach()[..., 0], conv.bias.detach())
    expected = torch.nn.functional.silu(expected) if silu else expected
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(packed, expected)


def _random_state_dict(keys_file: str) -> dict[str, torch.Tensor]:
    shapes = json.loads((FIXTURES / keys_file).read_text())
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(*shape, generator=gen) * 0.02 for k, shape in shapes.items()}


@pytest.mark.parametrize(
    "keys_file, feature_dim, params",
    [("state_dict_keys_fd256_l6.json", 256, 16_539_308), ("state_dict_keys_fd384_l6.json", 384, 36_604_076)],
)
def test_published_configurations_load(tmp_path: Path, keys_file: str, feature_dim: int, params: int) -> None:
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": _random_state_dict(keys_file), "model_name": "Apollo"}, path)
    model = load_model(path, device="cpu")
    cfg = model.config
    assert (cfg.feature_dim, cfg.layers, cfg.win, cfg.hop, cfg.bins) == (feature_dim, 6, 882, 441, 442)
    assert cfg.band_widths == (5,) * 79 + (47,)
    assert sum(p.numel() for p in model.parameters()) == params
    with torch.inference_mode():
        y = model(torch.randn(1, 2, 4410) * 0.1)
    assert y.shape == (1, 2, 4410) and torch.isfinite(y).all()


def _official_state() -> dict[str, torch.Tensor]:
    return apollo_cli.checkpoint.read_checkpoint(FIXTURES / "tiny_official_format.bin")


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = _official_state()
    del state["net.1.seq_net.blocks.2.conv.4.bias"]
    state["net.1.extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.bin"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path, device="cpu")
    message = str(info.value)
    assert "net.1.seq_net.blocks.2.conv.4.bias" in message and "net.1.extra.weight" in message
    assert "\n" not in message


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    state = _official_state()
    state["net.0.band_net.output.weight"] = torch.zeros(32, 16, 1)
    path = tmp_path / "misshapen.bin"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"net\.0\.band_net\.output\.weight"):
        load_model(path, device="cpu")


def test_rotary_tables_may_be_absent(tmp_path: Path, parity: dict[str, np.ndarray]) -> None:
    state = {k: v for k, v in _official_state().items() if not k.endswith("_freq")}
    path = tmp_path / "norope.safetensors"
    save_file(state, str(path))
    model = load_model(path, device="cpu")
    y = apollo_cli.restore(model, parity["mono_input"], 44100)
    assert np.abs(y - parity["mono_output"]).max() < 1e-4


class TrainingConfig:
    """Stands for the pickled objects some community checkpoints carry."""

    marker: Path | None = None

    def __init__(self, marker: Path) -> None:
        self.marker_path = str(marker)

    def __setstate__(self, state: dict) -> None:  # would run if the loader built the object
        Path(state["marker_path"]).write_text("constructed")


def test_foreign_objects_are_skipped_unbuilt(tmp_path: Path, parity: dict[str, np.ndarray]) -> None:
    marker = tmp_path / "constructed.txt"
    path = tmp_path / "with_config.ckpt"
    torch.save(
        {"state_dict": _official_state(), "hyper_parameters": TrainingConfig(marker), "epoch": 3}, path
    )
    model = load_model(path, device="cpu")
    assert not marker.exists()
    y = apollo_cli.restore(model, parity["stereo_input"], 44100)
    assert np.abs(y - parity["stereo_output"]).max() < 1e-4


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


class _SystemExploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("exploit", [_Exploit, _SystemExploit])
@pytest.mark.parametrize("legacy", [False, True])
def test_code_in_a_checkpoint_is_refused_and_never_runs(tmp_path: Path, exploit: type, legacy: bool) -> None:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.bin"
    payload = {"state_dict": _official_state(), "infos": exploit(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafeCheckpointError, match="tries to run code"):
        load_model(path, device="cpu")
    assert not marker.exists()


def test_plain_pickle_exploit_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Exploit(marker), protocol=2))
    with pytest.raises(CheckpointError):
        load_model(path, device="cpu")
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path: Path) -> None:
    data = (FIXTURES / "tiny_official_format.bin").read_bytes()
    path = tmp_path / "partial.bin"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or incomplete"):
        load_model(path, device="cpu")


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty"),
        (b"this is a text file, not a model\n" * 10, "not a PyTorch or safetensors checkpoint"),
    ],
)
def test_non_checkpoints(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_model(path, device="cpu")


def test_foreign_model_weights(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(CheckpointError, match="no Apollo generator weights"):
        load_model(path, device="cpu")


def test_torchscript_archive_is_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    assert zipfile.is_zipfile(path)
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_model(path, device="cpu")


def test_damaged_safetensors(tmp_path: Path) -> None:
    data = (FIXTURES / "tiny_bare.safetensors").read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="damaged safetensors"):
        load_model(path, device="cpu")
