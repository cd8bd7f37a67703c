"""Models from the Hub: registry, references, verified downloads, offline use, clear errors.

Every test runs the real huggingface_hub client against tests/hub_server.FakeHub (the
``fake_hub`` fixture points it there and isolates the cache under tmp_path), serving the
tiny fixture checkpoints under the registry's repository and file names.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import types
from pathlib import Path

import huggingface_hub.utils._http as hf_http
import numpy as np
import pytest
import soundfile as sf
from huggingface_hub import constants, file_download
from huggingface_hub.errors import OfflineModeIsEnabled

import apollo_cli
from apollo_cli import api, hub
from apollo_cli.errors import ModelError
from apollo_cli.registry import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    OFFICIAL,
    UNIVERSAL,
    VOCALS,
    VOCALS_V2,
    known_model,
)
from helpers import FIXTURES, TINY_MODEL, assert_one_line_error
from helpers import run_cli as run

MP3 = TINY_MODEL.read_bytes()
UNI = (FIXTURES / "tiny_lightning_format.ckpt").read_bytes()
VOC = (FIXTURES / "tiny_bare.safetensors").read_bytes()


def cache() -> Path:
    return Path(os.environ["HF_HUB_CACHE"])


def storage(repo_id: str) -> Path:
    return cache() / ("models--" + repo_id.replace("/", "--"))


def cached_files(repo_id: str) -> list[Path]:
    """Everything under the repo's blobs/ and snapshots/ (files and links), sorted."""
    root = storage(repo_id)
    return sorted(
        p
        for sub in ("blobs", "snapshots")
        if (root / sub).exists()
        for p in (root / sub).rglob("*")
        if p.is_file() or p.is_symlink()
    )


def gets(fake_hub) -> list[tuple[str, str, dict]]:  # type: ignore[no-untyped-def]
    return [r for r in fake_hub.requests if r[0] == "GET"]


def serve_registry(fake_hub) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Put the tiny fixtures where the registry expects the real models; returns name -> commit."""
    return {
        OFFICIAL.name: fake_hub.add_file(OFFICIAL.repo_id, OFFICIAL.filename, MP3),
        UNIVERSAL.name: fake_hub.add_file(UNIVERSAL.repo_id, UNIVERSAL.filename, UNI),
        VOCALS.name: fake_hub.add_file(VOCALS.repo_id, VOCALS.filename, VOC),
        VOCALS_V2.name: fake_hub.add_file(VOCALS_V2.repo_id, VOCALS_V2.filename, MP3),
    }


@pytest.fixture
def no_sleep(monkeypatch):  # type: ignore[no-untyped-def]
    """huggingface_hub sleeps 1 s before each in-call retry; make that free."""
    fake_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    fake_time.sleep = lambda seconds: None
    monkeypatch.setattr(file_download, "time", fake_time)
    monkeypatch.setattr(hf_http, "time", fake_time)


@pytest.fixture
def hash_calls(monkeypatch):  # type: ignore[no-untyped-def]
    """Count full-file hashes."""
    calls: list[Path] = []
    real = hub.cache.hash_file

    def counting(path: Path, *, git_sha1: bool):  # type: ignore[no-untyped-def]
        calls.append(path)
        return real(path, git_sha1=git_sha1)

    monkeypatch.setattr(hub.cache, "hash_file", counting)
    return calls


# ---------------------------------------------------------------------------------- registry


def test_registry_entries() -> None:
    assert DEFAULT_MODEL == "mp3" and known_model("MP3") is OFFICIAL and known_model("official") is OFFICIAL
    assert known_model("uni") is UNIVERSAL and known_model("nope") is None
    assert (OFFICIAL.repo_id, OFFICIAL.filename) == ("JusperLee/Apollo", "pytorch_model.bin")
    assert (UNIVERSAL.repo_id, UNIVERSAL.filename) == (
        "Sucial/MSST-WebUI",
        "All_Models/single_stem_models/apollo_model_uni.ckpt",
    )
    for model in KNOWN_MODELS.values():
        assert model.license and model.description
        assert model.sha256 is None or len(model.sha256) == 64


@pytest.mark.parametrize(
    "text, expected",
    [
        ("owner/repo/model.ckpt", ("owner/repo", "model.ckpt", None)),
        ("owner/repo/sub/dir/model.ckpt@v1", ("owner/repo", "sub/dir/model.ckpt", "v1")),
        ("owner/repo/model.ckpt@refs/pr/1", ("owner/repo", "model.ckpt", "refs/pr/1")),
        ("owner/repo@v2/model.ckpt", ("owner/repo", "model.ckpt", "v2")),
        ("hf://owner/repo/a/b.bin", ("owner/repo", "a/b.bin", None)),
        (
            "https://huggingface.co/owner/repo/resolve/main/a/b.ckpt?download=true",
            ("owner/repo", "a/b.ckpt", "main"),
        ),
        (
            "https://huggingface.co/owner/repo/blob/refs%2Fpr%2F3/b.ckpt",
            ("owner/repo", "b.ckpt", "refs/pr/3"),
        ),
        ("https://example.com/owner/repo/resolve/main/b.ckpt", None),
        ("owner/repo", None),
        ("./owner/repo/file.ckpt", None),
        ("/abs/path/file.ckpt", None),
        ("~/models/x/file.ckpt", None),
        ("owner/repo/../x", None),
        ("owner/repo/x@", None),
    ],
)
def test_parse_reference(text: str, expected) -> None:  # type: ignore[no-untyped-def]
    assert hub.parse_reference(text) == expected


def test_bare_registry_names_beat_local_files(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mp3").mkdir()  # a music folder may well hold one
    (tmp_path / "universal").write_bytes(MP3)
    assert isinstance(hub.locate("mp3"), hub.Target) and isinstance(hub.locate("universal"), hub.Target)
    assert hub.locate("./universal") == Path("./universal")
    with pytest.raises(ModelError, match="is a directory"):
        hub.locate("./mp3")


def test_locate_names_references_and_paths(tmp_path: Path) -> None:
    target = hub.locate("mp3")
    assert isinstance(target, hub.Target) and target.known is OFFICIAL and target.revision is None
    assert hub.locate("mp3@v1").revision == "v1"
    assert hub.locate("universal", "v2").revision == "v2"
    ref = hub.locate("Sucial/MSST-WebUI/All_Models/single_stem_models/apollo_model_uni.ckpt@abc")
    assert isinstance(ref, hub.Target) and ref.known is UNIVERSAL and ref.revision == "abc"
    assert hub.locate(TINY_MODEL) == TINY_MODEL
    with pytest.raises(ModelError, match="names revision 'v1' but --revision is 'v2'"):
        hub.locate("mp3@v1", "v2")
    with pytest.raises(ModelError, match="is a directory"):
        hub.locate(tmp_path)
    with pytest.raises(ModelError, match="--revision applies to models on the Hub"):
        hub.locate(TINY_MODEL, "v1")
    with pytest.raises(ModelError, match=r"checkpoint file missing\.ckpt does not exist"):
        hub.locate("missing.ckpt")
    with pytest.raises(ModelError, match=r"checkpoint file \./a/b/c\.ckpt does not exist"):
        hub.locate("./a/b/c.ckpt")
    with pytest.raises(ModelError, match="name the file too: JusperLee/Apollo/path"):
        hub.locate("JusperLee/Apollo")
    with pytest.raises(ModelError, match=r"unknown model 'nope': .*\(mp3, universal, vocals, vocals-v2\)"):
        hub.locate("nope")
    with pytest.raises(ModelError, match="no model given"):
        hub.locate("  ")


# ------------------------------------------------------------------------- download & cache


def test_first_download_is_verified_and_recorded(fake_hub) -> None:  # type: ignore[no-untyped-def]
    commit = serve_registry(fake_hub)["mp3"]
    seen: list[tuple[int, int]] = []

    path = api.resolve_checkpoint("mp3", progress=lambda done, total: seen.append((done, total)))

    sha = hashlib.sha256(MP3).hexdigest()
    assert path == storage(OFFICIAL.repo_id) / "snapshots" / commit / "pytorch_model.bin"
    assert path.read_bytes() == MP3
    assert path.resolve() == storage(OFFICIAL.repo_id) / "blobs" / sha
    assert (storage(OFFICIAL.repo_id) / "refs" / "main").read_text() == commit
    assert not list(storage(OFFICIAL.repo_id).rglob("*.incomplete"))
    record = json.loads(
        (storage(OFFICIAL.repo_id) / ".apollo-cli" / "verified" / f"blobs%{sha}.json").read_text()
    )
    assert record["sha256"] == sha and record["size"] == len(MP3) and record["expected"] == ["sha256", sha]
    assert seen[-1] == (len(MP3), len(MP3))
    assert [p for _, p, _ in gets(fake_hub)] == [f"/cdn/{sha}?repo=JusperLee%2FApollo&file=pytorch_model.bin"]


def test_cache_hit_is_one_head_and_no_rehash(fake_hub, hash_calls) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    first = api.resolve_checkpoint("mp3")
    assert len(hash_calls) == 1
    fake_hub.requests.clear()

    again = api.resolve_checkpoint("mp3")

    assert again == first
    assert [(m, p) for m, p, _ in fake_hub.requests] == [
        ("HEAD", "/JusperLee/Apollo/resolve/main/pytorch_model.bin")
    ]
    assert len(hash_calls) == 1  # the record (size, mtime, inode, sha256) vouched for it


def test_commit_revision_cache_hit_makes_no_request(fake_hub) -> None:  # type: ignore[no-untyped-def]
    commit = serve_registry(fake_hub)["universal"]
    path = api.resolve_checkpoint(f"universal@{commit}")
    fake_hub.requests.clear()
    assert api.resolve_checkpoint("universal", revision=commit) == path
    assert fake_hub.requests == []


def test_revisions(fake_hub) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    v1 = fake_hub.add_file(OFFICIAL.repo_id, OFFICIAL.filename, UNI, revision="v1")

    main_path = api.resolve_checkpoint("mp3")
    v1_path = api.resolve_checkpoint("mp3", revision="v1")

    assert main_path.read_bytes() == MP3 and v1_path.read_bytes() == UNI
    assert v1_path.parent.name == v1 and (storage(OFFICIAL.repo_id) / "refs" / "v1").read_text() == v1
    assert api.resolve_checkpoint("mp3@v1") == v1_path
    assert api.resolve_checkpoint(f"{OFFICIAL.repo_id}/{OFFICIAL.filename}@v1") == v1_path


def test_hub_reference_to_any_file(fake_hub) -> None:  # type: ignore[no-untyped-def]
    fake_hub.add_file("someone/models", "deep/dir/my-apollo.ckpt", UNI, revision="r2")
    path = api.resolve_checkpoint("someone/models/deep/dir/my-apollo.ckpt@r2")
    assert path.read_bytes() == UNI and path.name == "my-apollo.ckpt"
    url = "https://huggingface.co/someone/models/resolve/r2/deep/dir/my-apollo.ckpt"
    assert api.resolve_checkpoint(url) == path


def test_cache_behind_a_symlink(fake_hub, tmp_path, monkeypatch, hash_calls) -> None:  # type: ignore[no-untyped-def]
    real = tmp_path / "disk" / "hub"
    real.mkdir(parents=True)
    (tmp_path / "linked").symlink_to(real)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "linked"))
    commit = serve_registry(fake_hub)["mp3"]
    fetched = hub.fetch(hub.locate("mp3"))
    assert fetched.commit == commit and fetched.path.read_bytes() == MP3
    assert list(real.glob("models--JusperLee--Apollo/snapshots/*/pytorch_model.bin"))
    assert hub.fetch(hub.locate("mp3"), offline=True).path == fetched.path
    assert hub.cache_status(hub.locate("mp3")).verified
    assert len(hash_calls) == 1


def test_non_lfs_file_is_verified_by_git_blob_sha1(fake_hub) -> None:  # type: ignore[no-untyped-def]
    fake_hub.add_file("someone/small", "m.bin", MP3, lfs=False)
    fetched = hub.fetch(hub.locate("someone/small/m.bin"))
    blob = fetched.path.resolve()
    assert blob.name == hashlib.sha1(b"blob %d\0" % len(MP3) + MP3).hexdigest()
    assert fetched.checked_against == "hub" and fetched.sha256 == hashlib.sha256(MP3).hexdigest()


def test_cache_without_symlinks_is_verified_through_the_hub(fake_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Windows without developer mode: huggingface_hub moves the blob into the snapshot.
    monkeypatch.setattr(file_download, "are_symlinks_supported", lambda *a, **k: False)
    serve_registry(fake_hub)
    fetched = hub.fetch(hub.locate("mp3"))
    assert not fetched.path.is_symlink() and fetched.path.read_bytes() == MP3
    assert fetched.checked_against == "hub"
    fake_hub.requests.clear()
    again = hub.fetch(hub.locate("mp3"), offline=True)
    assert again.sha256 == fetched.sha256 and fake_hub.requests == []


# ------------------------------------------------------------------- interruptions & resume


def test_interrupted_transfer_resumes_within_the_call(fake_hub, monkeypatch, no_sleep) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    serve_registry(fake_hub)
    fake_hub.fail_next_transfer(OFFICIAL.repo_id, OFFICIAL.filename, after_bytes=5000)

    fetched = hub.fetch(hub.locate("mp3"))

    assert fetched.path.read_bytes() == MP3 and fetched.downloaded and fetched.checked_against == "hub"
    ranges = [h.get("range") for _, _, h in gets(fake_hub)]
    assert ranges == [None, "bytes=4096-"]


def test_transfer_that_keeps_failing_leaves_nothing_then_rerun_works(fake_hub, no_sleep) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    fake_hub.fail_next_transfer(OFFICIAL.repo_id, OFFICIAL.filename, after_bytes=100, times=100)

    with pytest.raises(
        hub.DownloadError, match=r"download of JusperLee/Apollo/pytorch_model\.bin was interrupted"
    ):
        api.resolve_checkpoint("mp3")
    assert cached_files(OFFICIAL.repo_id) == []
    assert not list(storage(OFFICIAL.repo_id).rglob("*.incomplete"))

    fake_hub.clear_failures()
    fake_hub.requests.clear()
    assert api.resolve_checkpoint("mp3").read_bytes() == MP3
    assert [h.get("range") for _, _, h in gets(fake_hub)] == [None]


def test_ctrl_c_during_download_leaves_nothing(fake_hub, monkeypatch, music_mp3) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    serve_registry(fake_hub)
    real_bridge = hub.remote._tqdm_reporting_to

    def interrupting(callback):  # type: ignore[no-untyped-def]
        def wrapped(done: int, total: int) -> None:
            callback(done, total)
            if done > 50_000:
                raise KeyboardInterrupt

        return real_bridge(wrapped)

    monkeypatch.setattr(hub.remote, "_tqdm_reporting_to", interrupting)
    result = run("download-model", "mp3")
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert cached_files(OFFICIAL.repo_id) == []
    assert not list(storage(OFFICIAL.repo_id).rglob("*.incomplete"))

    monkeypatch.setattr(hub.remote, "_tqdm_reporting_to", real_bridge)
    result = run("download-model", "mp3")
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.splitlines()[-1].strip()).read_bytes() == MP3


# ---------------------------------------------------------------------------------- integrity


def test_checksum_mismatch_deletes_the_file_and_fails(fake_hub) -> None:  # type: ignore[no-untyped-def]
    bogus = "0" * 64
    fake_hub.add_file(OFFICIAL.repo_id, OFFICIAL.filename, MP3, etag_sha256=bogus)

    with pytest.raises(hub.ChecksumError) as exc:
        api.resolve_checkpoint("mp3")
    message = str(exc.value)
    assert "\n" not in message and "does not match the Hub's record" in message and "was deleted" in message
    assert cached_files(OFFICIAL.repo_id) == []  # neither the blob nor a snapshot link survives
    assert not (storage(OFFICIAL.repo_id) / ".apollo-cli" / "verified" / f"blobs%{bogus}.json").exists()

    fake_hub.add_file(OFFICIAL.repo_id, OFFICIAL.filename, MP3)  # the Hub serves the right record again
    assert api.resolve_checkpoint("mp3").read_bytes() == MP3


def test_damaged_cached_copy_is_rehashed_deleted_and_fetched_again(fake_hub, hash_calls) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    path = api.resolve_checkpoint("mp3")
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * len(MP3))  # same size: only the hash can tell
    fake_hub.requests.clear()

    again = api.resolve_checkpoint("mp3")

    assert again.read_bytes() == MP3
    assert len(gets(fake_hub)) == 1  # downloaded afresh
    assert len(hash_calls) == 3  # first download, the damaged copy, the new download


def test_damaged_cached_copy_offline_is_deleted_with_a_hint(fake_hub) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    fake_hub.add_file(UNIVERSAL.repo_id, UNIVERSAL.filename, UNI, revision="v1")  # same bytes, same blob
    blob = api.resolve_checkpoint("universal").resolve()
    assert api.resolve_checkpoint("universal@v1").resolve() == blob
    blob.chmod(0o644)
    with open(blob, "r+b") as fh:
        fh.seek(100)
        fh.write(b"rot")
    fake_hub.requests.clear()

    with pytest.raises(
        hub.ChecksumError, match="run 'apollo download-model universal' where there is a network"
    ):
        api.resolve_checkpoint("universal", offline=True)
    assert not blob.exists() and cached_files(UNIVERSAL.repo_id) == []  # no dangling link in either snapshot
    assert fake_hub.requests == []


# ------------------------------------------------------------------------------------ offline


def test_offline_uses_the_cache_and_sends_nothing(fake_hub, monkeypatch, hash_calls) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    path = api.resolve_checkpoint("mp3")
    fake_hub.requests.clear()
    # Even with telemetry on, where huggingface_hub would look up its agent registry on the Hub.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr("huggingface_hub.utils._detect_agent._registry", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    assert api.resolve_checkpoint("mp3") == path
    assert api.resolve_checkpoint("mp3", offline=True) == path
    with pytest.raises(
        hub.ModelNotCachedError, match="run 'apollo download-model universal' where there is a network"
    ):
        api.resolve_checkpoint("universal")
    with pytest.raises(hub.ModelNotCachedError, match="apollo download-model mp3 --revision v9"):
        api.resolve_checkpoint("mp3", revision="v9")
    assert fake_hub.requests == []
    assert len(hash_calls) == 1


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "model, error, match",
    [
        ("nobody/nothing/model.ckpt", hub.ModelNotFoundError, "Hub repository nobody/nothing does not exist"),
        (
            "JusperLee/Apollo/missing.bin",
            hub.ModelNotFoundError,
            "file missing.bin does not exist in JusperLee/Apollo",
        ),
        ("mp3@nope", hub.ModelNotFoundError, "revision 'nope' does not exist in JusperLee/Apollo"),
    ],
)
def test_not_found(fake_hub, model: str, error: type, match: str) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    with pytest.raises(error, match=match):
        api.resolve_checkpoint(model)
    assert gets(fake_hub) == []


def test_gated_repository(fake_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    fake_hub.set_gated(UNIVERSAL.repo_id)
    with pytest.raises(hub.ModelAccessError, match="Sucial/MSST-WebUI is gated: accept its terms"):
        api.resolve_checkpoint("universal")
    assert fake_hub.requests[-1][2].get("authorization") is None  # 401
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    with pytest.raises(hub.ModelAccessError, match="hf auth login"):
        api.resolve_checkpoint("universal")
    assert fake_hub.requests[-1][2]["authorization"] == "Bearer hf_fake"  # 403


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_route_fails_fast(fake_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    started = time.monotonic()
    with pytest.raises(hub.HubUnreachableError, match=r"cannot reach the Hugging Face Hub at 127\.0\.0\.1"):
        api.resolve_checkpoint("mp3")
    # huggingface_hub alone retries for ~23 s; the bound leaves room for a loaded machine.
    assert time.monotonic() - started < 10


def test_cached_model_still_works_without_a_route(fake_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    path = api.resolve_checkpoint("mp3")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    assert api.resolve_checkpoint("mp3") == path


def test_timeout_fails_after_the_metadata_timeout(fake_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "0.3")
        started = time.monotonic()
        with pytest.raises(hub.HubUnreachableError, match=r"did not answer within 0\.3 s"):
            api.resolve_checkpoint("mp3")
        assert time.monotonic() - started < 10  # retrying would take far longer; room for a loaded machine


class ConnectError(Exception):
    """Not the network library's ConnectError: a class that only shares its name."""


@pytest.mark.parametrize(
    "raised, error, match",
    [
        (
            lambda x: x.ConnectError("[Errno 111] Connection refused"),
            hub.HubUnreachableError,
            r"cannot reach the Hugging Face Hub at .* \(\[Errno 111\] Connection refused\)",
        ),
        (lambda x: x.ConnectTimeout("timed out"), hub.HubUnreachableError, "did not answer within 5 s"),
        (lambda x: x.ReadError("reset"), hub.DownloadError, r"was interrupted \(reset\); nothing was kept"),
        (lambda x: x.ProxyError("407"), hub.HubUnreachableError, "the proxy refused the connection"),
        # a ConnectionError, but huggingface_hub's own: the table tries it first
        (
            lambda x: OfflineModeIsEnabled("offline"),
            hub.ModelNotCachedError,
            "huggingface_hub is in offline mode",
        ),
        (
            lambda x: ConnectionRefusedError(111, "Connection refused"),
            hub.HubUnreachableError,
            "cannot reach",
        ),
        # recognised by type, not by name
        (
            lambda x: ConnectError("lookalike"),
            ModelError,
            "fetching someone/m/x.ckpt failed: ConnectError: lookalike",
        ),
    ],
)
def test_hub_errors_are_mapped_by_type(monkeypatch, raised, error: type, match: str) -> None:  # type: ignore[no-untyped-def]
    transport = pytest.importorskip("httpx2")
    exc = raised(transport)

    def failing(target):  # type: ignore[no-untyped-def]
        raise exc

    monkeypatch.setattr(hub.remote, "metadata", failing)
    with pytest.raises(ModelError, match=match) as caught:
        hub.fetch(hub.locate("someone/m/x.ckpt"))
    assert type(caught.value) is error and "\n" not in str(caught.value)


# ------------------------------------------------------------------------ the CLI: download


def test_download_model_default_then_cached(fake_hub, hash_calls) -> None:  # type: ignore[no-untyped-def]
    commit = serve_registry(fake_hub)["mp3"]
    result = run("download-model")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "mp3: JusperLee/Apollo/pytorch_model.bin" in lines[0] and "downloaded" in lines[0]
    assert "matches the Hub's record" in lines[0]
    expected = storage(OFFICIAL.repo_id) / "snapshots" / commit / "pytorch_model.bin"
    assert lines[-1].strip() == str(expected) and expected.read_bytes() == MP3
    # The tiny stand-in is not the file the registry lists: said on stderr, not an error.
    assert "not the file apollo-cli's registry lists for mp3" in result.stderr

    result = run("download-model", "mp3")
    assert result.exit_code == 0, result.output
    assert "already cached" in result.stdout and result.stdout.splitlines()[-1].strip() == str(expected)
    assert len(hash_calls) == 2  # download-model re-hashes what is cached
    assert len(gets(fake_hub)) == 1


def test_download_model_all_and_revision(fake_hub) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    result = run("download-model", "--all", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    for model, data in ((OFFICIAL, MP3), (UNIVERSAL, UNI), (VOCALS, VOC), (VOCALS_V2, MP3)):
        [snapshot] = storage(model.repo_id).glob(f"snapshots/*/{model.filename}")
        assert snapshot.read_bytes() == data

    v1 = fake_hub.add_file(UNIVERSAL.repo_id, UNIVERSAL.filename, VOC, revision="v1")
    result = run("download-model", "universal", "--revision", "v1")
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.splitlines()[-1].strip())
    assert (
        path == storage(UNIVERSAL.repo_id) / "snapshots" / v1 / UNIVERSAL.filename
        and path.read_bytes() == VOC
    )
    assert "registry" not in result.stderr  # the registry describes main only


def test_download_model_reports_each_failure_and_goes_on(fake_hub) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    result = run("download-model", "nobody/none/x.ckpt", "universal", "nope")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "Hub repository nobody/none does not exist" in errors[0] and "unknown model 'nope'" in errors[1]
    assert "universal: Sucial/MSST-WebUI" in result.stdout


@pytest.mark.parametrize(
    "args, match",
    [
        (["--all", "mp3"], "give model names or --all, not both"),
        (["--all", "--revision", "v1"], "--revision cannot be used with --all"),
        ([str(TINY_MODEL)], "is a local file"),
        (["nobody/nothing/model.ckpt"], "Hub repository nobody/nothing does not exist"),
        (["JusperLee/Apollo/missing.bin"], "file missing.bin does not exist in JusperLee/Apollo"),
        (["mp3", "--revision", "nope"], "revision 'nope' does not exist in JusperLee/Apollo"),
        (["universal", "--offline"], "run 'apollo download-model universal' where there is a network"),
    ],
)
def test_download_model_errors_are_one_line(fake_hub, args: list[str], match: str) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    assert_one_line_error(run("download-model", *args), match)
    assert cached_files(UNIVERSAL.repo_id) == []


def test_download_model_gated_and_no_route(fake_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    fake_hub.set_gated(OFFICIAL.repo_id)
    assert_one_line_error(run("download-model", "mp3"), "JusperLee/Apollo is gated")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    assert_one_line_error(run("download-model", "mp3"), "cannot reach the Hugging Face Hub")


def test_download_model_checksum_mismatch(fake_hub) -> None:  # type: ignore[no-untyped-def]
    fake_hub.add_file(UNIVERSAL.repo_id, UNIVERSAL.filename, UNI, etag_sha256="f" * 64)
    assert_one_line_error(run("download-model", "universal"), "does not match the Hub's record")
    assert cached_files(UNIVERSAL.repo_id) == []


# -------------------------------------------------------------------------- the CLI: models


def test_models_table(fake_hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "400")
    serve_registry(fake_hub)
    result = run("models")
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if line.split() and line.split()[0] in KNOWN_MODELS
    }
    assert set(rows) == set(KNOWN_MODELS)
    assert "(default)" in rows["mp3"] and "66.5 MB" in rows["mp3"] and "CC BY-SA 4.0" in rows["mp3"]
    assert "146.9 MB" in rows["universal"] and " no " in rows["universal"]
    assert f"{UNIVERSAL.repo_id}/{UNIVERSAL.filename}" in rows["universal"]
    assert f"cache: {cache()}" in result.stdout

    path = api.resolve_checkpoint("universal")
    fake_hub.requests.clear()
    result = run("models")
    row = next(line for line in result.stdout.splitlines() if line.startswith("universal"))
    assert "yes, verified" in row and str(path) in row and "894.0 kB" in row
    assert fake_hub.requests == []  # listing never touches the network


# ------------------------------------------------------------------- the CLI: restore


def test_restore_with_a_downloaded_model_then_offline(fake_hub, music_mp3: Path) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    online = music_mp3.with_name("online.wav")
    result = run("restore", music_mp3, "-o", online, "--model", "universal", "--chunk-seconds", "1")
    assert result.exit_code == 0, result.output
    [snapshot] = storage(UNIVERSAL.repo_id).glob(f"snapshots/*/{UNIVERSAL.filename}")
    assert snapshot.read_bytes() == UNI
    served = len(fake_hub.requests)

    offline = music_mp3.with_name("offline.wav")
    result = run("restore", music_mp3, "-o", offline, "--model", "universal", "--offline", "-q")
    assert result.exit_code == 0, result.output
    assert len(fake_hub.requests) == served

    local = music_mp3.with_name("local.wav")
    result = run("restore", music_mp3, "-o", local, "--model", FIXTURES / "tiny_lightning_format.ckpt", "-q")
    assert result.exit_code == 0, result.output
    reference = sf.read(local)[0]
    np.testing.assert_array_equal(sf.read(online)[0], reference)
    np.testing.assert_array_equal(sf.read(offline)[0], reference)


def test_restore_with_hub_reference_and_revision(fake_hub, music_mp3: Path) -> None:  # type: ignore[no-untyped-def]
    fake_hub.add_file("someone/apollo-ft", "ckpt/model.bin", MP3, revision="v3")
    out = music_mp3.with_name("o.flac")
    result = run(
        "restore",
        music_mp3,
        "-o",
        out,
        "--model",
        "someone/apollo-ft/ckpt/model.bin",
        "--revision",
        "v3",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert sf.info(out).frames > 0


def test_restore_errors_from_the_hub_are_one_line(fake_hub, music_mp3: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake_hub.add_file(OFFICIAL.repo_id, OFFICIAL.filename, MP3, etag_sha256="e" * 64)
    out = music_mp3.with_name("o.wav")
    assert_one_line_error(run("restore", music_mp3, "-o", out), "does not match the Hub's record")
    assert not out.exists() and cached_files(OFFICIAL.repo_id) == []
    assert_one_line_error(run("restore", music_mp3, "-o", out, "--offline"), "apollo download-model mp3")
    assert_one_line_error(
        run("restore", music_mp3, "-o", out, "--model", "mp3@v7"), "revision 'v7' does not exist"
    )
    assert_one_line_error(
        run("restore", music_mp3, "-o", out, "--model", "nobody/x/y.ckpt"),
        "Hub repository nobody/x does not exist",
    )
    assert_one_line_error(
        run("restore", music_mp3, "-o", out, "--model", "gone.ckpt"),
        "checkpoint file gone.ckpt does not exist",
    )
    assert not out.exists()


def test_load_model_passes_offline_and_revision(fake_hub) -> None:  # type: ignore[no-untyped-def]
    serve_registry(fake_hub)
    fake_hub.add_file(UNIVERSAL.repo_id, UNIVERSAL.filename, MP3, revision="v2")
    with pytest.raises(hub.ModelNotCachedError):
        apollo_cli.load_model("universal", device="cpu", offline=True)
    model = apollo_cli.load_model("universal", device="cpu", revision="v2")
    assert (model.config.feature_dim, model.config.layers) == (32, 2)
