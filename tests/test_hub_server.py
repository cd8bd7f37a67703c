"""The real huggingface_hub (2.4) client against tests/hub_server.FakeHub.

These tests double as the executable record of how huggingface_hub 2.4 behaves (caching, resume,
checksum, error classes, offline mode).  The ``fake_hub`` fixture lives in tests/conftest.py.
"""

from __future__ import annotations

import hashlib
import os
import socket
import types
from pathlib import Path

import httpx2
import huggingface_hub
import huggingface_hub.utils._http as hf_http
import pytest
from huggingface_hub import (
    HfApi,
    constants,
    file_download,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

try:
    from hub_server import FakeHub, point_hf_at
except ImportError:  # tests/ became a package
    from tests.hub_server import FakeHub, point_hf_at

REPO = "owner/name"
DATA = os.urandom(50_000)


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "hf" / "hub"


def _gets(hub: FakeHub) -> list[tuple[str, str, dict]]:
    return [r for r in hub.requests if r[0] == "GET"]


@pytest.fixture
def no_sleep(monkeypatch):
    """huggingface_hub sleeps 1 s before each in-call download retry and backs off 1,2,4,8,8 s on
    metadata retries; replace `time` in those two modules by a copy whose sleep() is a no-op."""
    import time

    fake_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    fake_time.sleep = lambda seconds: None
    monkeypatch.setattr(file_download, "time", fake_time)
    monkeypatch.setattr(hf_http, "time", fake_time)


# ---------------------------------------------------------------------------------------------
# download / cache layout / cache hits
# ---------------------------------------------------------------------------------------------


def test_first_download_lands_in_standard_cache_layout(fake_hub, tmp_path):
    commit = fake_hub.add_file(REPO, "ckpt/model.ckpt", DATA)
    assert len(commit) == 40 and int(commit, 16) >= 0

    # No endpoint=/cache_dir=: the fixture patched constants.ENDPOINT/HF_HUB_CACHE.
    path = hf_hub_download(REPO, "ckpt/model.ckpt")

    storage = _cache(tmp_path) / "models--owner--name"
    sha256 = hashlib.sha256(DATA).hexdigest()
    assert Path(path) == storage / "snapshots" / commit / "ckpt" / "model.ckpt"
    assert Path(path).read_bytes() == DATA
    assert Path(path).is_symlink() and Path(path).resolve() == storage / "blobs" / sha256
    assert (storage / "refs" / "main").read_text() == commit
    assert not list((storage / "blobs").glob("*.incomplete"))

    # HEAD on the Hub -> 302 to the CDN (other origin, like cdn-lfs.hf.co) -> GET on the CDN.
    assert [(m, p.split("?")[0]) for m, p, _ in fake_hub.requests] == [
        ("HEAD", f"/{REPO}/resolve/main/ckpt/model.ckpt"),
        ("GET", f"/cdn/{sha256}"),
    ]
    assert fake_hub.cdn_url != fake_hub.url
    # the auth header is dropped when following the redirect to another origin
    fake_hub.requests.clear()
    hf_hub_download(REPO, "ckpt/model.ckpt", token="hf_fake", force_download=True)
    (_, _, head_h), (_, _, get_h) = fake_hub.requests
    assert head_h["Authorization"] == "Bearer hf_fake" and "authorization" not in get_h


def test_non_lfs_file_served_directly(fake_hub, tmp_path):
    commit = fake_hub.add_file(REPO, "config.json", b'{"a": 1}', lfs=False)
    path = hf_hub_download(REPO, "config.json", cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b'{"a": 1}'
    git_sha1 = hashlib.sha1(b"blob 8\0" + b'{"a": 1}').hexdigest()
    assert Path(path).resolve().name == git_sha1  # non-LFS blobs are named by git blob sha1
    assert Path(path).parent.name == commit
    assert [(m, p) for m, p, _ in fake_hub.requests] == [
        ("HEAD", f"/{REPO}/resolve/main/config.json"),
        ("GET", f"/{REPO}/resolve/main/config.json"),
    ]


def test_explicit_endpoint_and_cache_dir_without_fixture(tmp_path, monkeypatch):
    # Without patching ENDPOINT, endpoint= + cache_dir= are enough (point_hf_at(hub=None) only
    # isolates token/offline/telemetry state).
    point_hf_at(monkeypatch, None, hf_home=tmp_path / "hf")
    with FakeHub() as hub:
        hub.add_file(REPO, "w.bin", DATA)
        path = hf_hub_download(REPO, "w.bin", endpoint=hub.url, cache_dir=tmp_path, token=False)
        assert Path(path).read_bytes() == DATA
        assert hf_hub_url(REPO, "w.bin", endpoint=hub.url) == f"{hub.url}/{REPO}/resolve/main/w.bin"


def test_second_call_is_cache_hit(fake_hub):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    first = hf_hub_download(REPO, "model.ckpt")
    fake_hub.requests.clear()

    second = hf_hub_download(REPO, "model.ckpt")

    assert second == first
    # Branch revision: one HEAD to learn the current commit, no content transfer.
    assert [(m, p) for m, p, _ in fake_hub.requests] == [("HEAD", f"/{REPO}/resolve/main/model.ckpt")]
    assert fake_hub.content_requests() == []


def test_commit_sha_revision_cache_hit_makes_no_request(fake_hub):
    commit = fake_hub.add_file(REPO, "model.ckpt", DATA)
    hf_hub_download(REPO, "model.ckpt", revision=commit)
    fake_hub.requests.clear()
    path = hf_hub_download(REPO, "model.ckpt", revision=commit)
    assert Path(path).read_bytes() == DATA
    assert fake_hub.requests == []


def test_specific_revisions(fake_hub, tmp_path):
    main_commit = fake_hub.add_file(REPO, "model.ckpt", b"main-bytes")
    v1_commit = fake_hub.add_file(REPO, "model.ckpt", b"v1-bytes", revision="v1")
    pr_commit = fake_hub.add_file(REPO, "model.ckpt", b"pr-bytes", revision="refs/pr/1")
    assert len({main_commit, v1_commit, pr_commit}) == 3
    # several files share a revision (and its commit)
    assert fake_hub.add_file(REPO, "other.txt", b"x", revision="v1", lfs=False) == v1_commit

    p_main = hf_hub_download(REPO, "model.ckpt")
    p_v1 = hf_hub_download(REPO, "model.ckpt", revision="v1")
    p_pr = hf_hub_download(REPO, "model.ckpt", revision="refs/pr/1")
    p_sha = hf_hub_download(REPO, "model.ckpt", revision=v1_commit)

    assert Path(p_main).read_bytes() == b"main-bytes"
    assert Path(p_v1).read_bytes() == b"v1-bytes"
    assert Path(p_pr).read_bytes() == b"pr-bytes"
    assert p_sha == p_v1 and Path(p_v1).parent.name == v1_commit
    storage = _cache(tmp_path) / "models--owner--name"
    assert (storage / "refs" / "v1").read_text() == v1_commit
    assert (storage / "refs" / "refs" / "pr" / "1").read_text() == pr_commit
    # the client url-encodes the revision
    assert ("HEAD", f"/{REPO}/resolve/refs%2Fpr%2F1/model.ckpt") in [(m, p) for m, p, _ in fake_hub.requests]


def test_commit_sha_given_to_add_file_is_the_commit(fake_hub):
    sha = "a" * 40
    assert fake_hub.add_file(REPO, "f.bin", b"abc", revision=sha) == sha
    assert Path(hf_hub_download(REPO, "f.bin", revision=sha)).read_bytes() == b"abc"


def test_metadata_has_no_xet_and_hub_headers(fake_hub):
    commit = fake_hub.add_file(REPO, "model.ckpt", DATA)
    meta = get_hf_file_metadata(hf_hub_url(REPO, "model.ckpt"))
    assert meta.xet_file_data is None
    assert meta.commit_hash == commit
    assert meta.etag == hashlib.sha256(DATA).hexdigest()
    assert meta.size == len(DATA)
    assert meta.location.startswith(fake_hub.cdn_url + "/cdn/")


# ---------------------------------------------------------------------------------------------
# interrupted transfers / resume
# ---------------------------------------------------------------------------------------------


def test_interrupted_transfer_resumes_with_range_within_the_same_call(fake_hub, monkeypatch, no_sleep):
    # http_get iterates the body with iter_bytes(chunk_size=constants.DOWNLOAD_CHUNK_SIZE) (10 MiB);
    # bytes of a partially filled chunk are lost on error. Use 1 KiB chunks so that the retry has
    # something to resume from.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    fake_hub.fail_next_transfer(REPO, "model.ckpt", after_bytes=5000)

    path = hf_hub_download(REPO, "model.ckpt")  # does NOT raise: retried inside http_get

    assert Path(path).read_bytes() == DATA
    gets = _gets(fake_hub)
    assert len(gets) == 2
    assert "range" not in gets[0][2]
    assert gets[1][2]["Range"] == "bytes=4096-"  # 4 full 1 KiB chunks were written before the cut


def test_interrupted_small_file_is_refetched_from_zero_with_default_chunk_size(fake_hub, no_sleep):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    fake_hub.fail_next_transfer(REPO, "model.ckpt", after_bytes=30_000)
    path = hf_hub_download(REPO, "model.ckpt")
    assert Path(path).read_bytes() == DATA
    gets = _gets(fake_hub)
    assert len(gets) == 2 and "range" not in gets[1][2]  # < 10 MiB received => restarts at 0


def test_persistent_failure_raises_then_next_call_starts_over(fake_hub, tmp_path, no_sleep):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    # 0 bytes per attempt => the retry budget (5) is never refilled => gives up after 6 GETs.
    fake_hub.fail_next_transfer(REPO, "model.ckpt", after_bytes=0, times=100)

    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(REPO, "model.ckpt")
    assert len(_gets(fake_hub)) == 6
    storage = _cache(tmp_path) / "models--owner--name"
    assert not list(storage.rglob("*.incomplete"))  # partial file is deleted: no cross-call resume
    assert not list((storage / "snapshots").rglob("model.ckpt"))

    fake_hub.clear_failures()
    fake_hub.requests.clear()
    path = hf_hub_download(REPO, "model.ckpt")
    assert Path(path).read_bytes() == DATA
    assert [h.get("range") for _, _, h in _gets(fake_hub)] == [None]


def test_connection_reset_mid_body_is_not_retried(fake_hub, no_sleep):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    fake_hub.fail_next_transfer(REPO, "model.ckpt", after_bytes=1000, reset=True)
    # http_get only retries ConnectError / TimeoutException / RemoteProtocolError; a RST is a ReadError.
    with pytest.raises(httpx2.ReadError):
        hf_hub_download(REPO, "model.ckpt")
    assert len(_gets(fake_hub)) == 1
    assert Path(hf_hub_download(REPO, "model.ckpt")).read_bytes() == DATA


def test_server_range_support(fake_hub):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    meta = get_hf_file_metadata(hf_hub_url(REPO, "model.ckpt"))
    with httpx2.Client() as client:
        r = client.get(meta.location, headers={"Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == DATA[10:20]
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(DATA)}"
        r = client.get(meta.location, headers={"Range": "bytes=-5"})
        assert r.status_code == 206 and r.content == DATA[-5:]
        r = client.get(meta.location, headers={"Range": f"bytes={len(DATA)}-"})
        assert r.status_code == 416
        r = client.get(meta.location)
        assert r.status_code == 200 and r.content == DATA and r.headers["Accept-Ranges"] == "bytes"
        r = client.get(f"{fake_hub.url}/nope")
        assert r.status_code == 404 and "X-Error-Code" not in r.headers


# ---------------------------------------------------------------------------------------------
# integrity
# ---------------------------------------------------------------------------------------------


def test_checksum_mismatch_is_not_detected(fake_hub, tmp_path):
    bogus = "0" * 64
    fake_hub.add_file(REPO, "model.ckpt", DATA, etag_sha256=bogus)

    path = hf_hub_download(REPO, "model.ckpt")  # no error: 2.4 never hashes downloaded bytes

    assert Path(path).read_bytes() == DATA
    assert Path(path).resolve().name == bogus  # blob named after the advertised X-Linked-Etag
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() != bogus


def test_size_mismatch_is_detected(fake_hub):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    # Test-only: make the CDN serve a shorter (but complete, per Content-Length) body than X-Linked-Size.
    fake_hub._blobs[hashlib.sha256(DATA).hexdigest()] = DATA[:-10]
    with pytest.raises(OSError, match="Consistency check failed"):
        hf_hub_download(REPO, "model.ckpt")


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_missing_repo(fake_hub):
    with pytest.raises(RepositoryNotFoundError) as exc:
        hf_hub_download("nobody/nothing", "model.ckpt")
    assert not isinstance(exc.value, GatedRepoError)
    assert exc.value.response.status_code == 404


def test_missing_file_and_no_exist_cache(fake_hub, tmp_path):
    commit = fake_hub.add_file(REPO, "model.ckpt", DATA)
    with pytest.raises(RemoteEntryNotFoundError) as exc:
        hf_hub_download(REPO, "missing.bin")
    assert isinstance(exc.value, EntryNotFoundError) and isinstance(exc.value, HfHubHTTPError)
    assert exc.value.response.status_code == 404
    # X-Repo-Commit on the 404 lets the client record the non-existence
    storage = _cache(tmp_path) / "models--owner--name"
    assert (storage / ".no_exist" / commit / "missing.bin").exists()
    assert try_to_load_from_cache(REPO, "missing.bin") is file_download._CACHED_NO_EXIST


def test_missing_revision(fake_hub):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "model.ckpt", revision="does-not-exist")


def test_gated_repo(fake_hub):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    fake_hub.set_gated(REPO)
    with pytest.raises(GatedRepoError) as exc:
        hf_hub_download(REPO, "model.ckpt")
    assert exc.value.response.status_code == 401
    assert isinstance(exc.value, RepositoryNotFoundError)  # GatedRepoError subclasses it
    with pytest.raises(GatedRepoError) as exc:
        hf_hub_download(REPO, "model.ckpt", token="hf_fake")
    assert exc.value.response.status_code == 403
    assert fake_hub.requests[-1][2]["authorization"] == "Bearer hf_fake"


def test_connection_refused(tmp_path, monkeypatch, no_sleep):
    point_hf_at(monkeypatch, None, hf_home=tmp_path / "hf")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LocalEntryNotFoundError) as exc:
        hf_hub_download(
            REPO, "model.ckpt", endpoint=f"http://127.0.0.1:{port}", cache_dir=tmp_path, token=False
        )
    assert isinstance(exc.value.__cause__, httpx2.ConnectError)


def test_timeout(tmp_path, monkeypatch, no_sleep):
    point_hf_at(monkeypatch, None, hf_home=tmp_path / "hf")
    # After a first failed HEAD (etag_timeout), hf_hub_download retries the HEAD with a 60 s timeout.
    monkeypatch.setattr(file_download, "_ETAG_RETRY_TIMEOUT", 0.1)
    with socket.socket() as s:  # accepts TCP connections (kernel backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(32)
        port = s.getsockname()[1]
        with pytest.raises(LocalEntryNotFoundError) as exc:
            hf_hub_download(
                REPO,
                "model.ckpt",
                endpoint=f"http://127.0.0.1:{port}",
                cache_dir=tmp_path,
                etag_timeout=0.1,
                token=False,
            )
    assert isinstance(exc.value.__cause__, httpx2.TimeoutException)


# ---------------------------------------------------------------------------------------------
# offline
# ---------------------------------------------------------------------------------------------


def test_local_files_only_serves_cache_without_network(fake_hub):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    path = hf_hub_download(REPO, "model.ckpt")
    fake_hub.requests.clear()

    assert hf_hub_download(REPO, "model.ckpt", local_files_only=True) == path
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "other.ckpt", local_files_only=True)
    assert fake_hub.requests == []


def test_hf_hub_offline_serves_cache_without_network(fake_hub, monkeypatch):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    path = hf_hub_download(REPO, "model.ckpt")
    fake_hub.requests.clear()

    # The env var alone is read at import time; what counts at runtime is the constant.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert constants.is_offline_mode() is False
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    assert hf_hub_download(REPO, "model.ckpt") == path
    with pytest.raises(LocalEntryNotFoundError) as exc:
        hf_hub_download(REPO, "other.ckpt")
    assert isinstance(exc.value.__cause__, OfflineModeIsEnabled)
    assert fake_hub.requests == []


# ---------------------------------------------------------------------------------------------
# API routes
# ---------------------------------------------------------------------------------------------


def test_model_info(fake_hub):
    commit = fake_hub.add_file(REPO, "model.ckpt", DATA)
    fake_hub.add_file(REPO, "config.json", b"{}", lfs=False)
    v1 = fake_hub.add_file(REPO, "model.ckpt", b"old", revision="v1")

    info = huggingface_hub.model_info(REPO, files_metadata=True)  # module-level HfApi, patched endpoint
    assert info.sha == commit
    sib = {s.rfilename: s for s in info.siblings}
    assert set(sib) == {"model.ckpt", "config.json"}
    assert sib["model.ckpt"].lfs.sha256 == hashlib.sha256(DATA).hexdigest()
    assert sib["model.ckpt"].lfs.size == sib["model.ckpt"].size == len(DATA)
    assert sib["config.json"].lfs is None and sib["config.json"].size == 2

    api = HfApi(endpoint=fake_hub.url)
    assert api.model_info(REPO, revision="v1").sha == v1
    assert api.model_info(REPO).siblings[0].size is None  # no ?blobs=true
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="nope")


def test_snapshot_download(fake_hub, tmp_path):
    commit = fake_hub.add_file(REPO, "model.ckpt", DATA)
    fake_hub.add_file(REPO, "sub/dir/config.json", b"{}", lfs=False)
    folder = Path(snapshot_download(REPO))
    assert folder == _cache(tmp_path) / "models--owner--name" / "snapshots" / commit
    assert (folder / "model.ckpt").read_bytes() == DATA
    assert (folder / "sub" / "dir" / "config.json").read_bytes() == b"{}"


def test_stop_is_fast_with_keepalive_connections():
    import time

    hub = FakeHub().start()
    hub.add_file(REPO, "a", b"x", lfs=False)
    with httpx2.Client() as client:  # keeps the connection open
        assert client.get(f"{hub.url}/{REPO}/resolve/main/a").content == b"x"
        t = time.monotonic()
        hub.stop()
        assert time.monotonic() - t < 2


def test_metadata_errors_fall_back_to_cached_copy(fake_hub):
    fake_hub.add_file(REPO, "model.ckpt", DATA)
    path = hf_hub_download(REPO, "model.ckpt")
    fake_hub.set_gated(REPO)  # any non-404-entry/revision HEAD failure => cached copy is returned
    assert hf_hub_download(REPO, "model.ckpt") == path
    assert fake_hub.requests[-1][0] == "HEAD" and fake_hub.content_requests() == _gets(fake_hub)[:1]
