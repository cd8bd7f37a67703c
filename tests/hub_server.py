"""A tiny local HTTP server that answers like the Hugging Face Hub, for tests.

Standard library only (``http.server.ThreadingHTTPServer`` in a background thread, bound to
127.0.0.1 on an ephemeral port).  It is written against the behaviour of ``huggingface_hub``
2.4.0 (the version pinned in the virtualenv, which uses ``httpx2`` under the hood); everything
below was checked by reading its source and by ``tests/test_hub_server.py``.

Usage::

    with FakeHub() as hub:
        commit = hub.add_file("owner/name", "model.ckpt", b"...")
        path = hf_hub_download("owner/name", "model.ckpt", endpoint=hub.url, cache_dir=tmp_path)

or use the ``fake_hub`` fixture from ``tests/conftest.py`` which also points huggingface_hub at
the server (see "Pointing huggingface_hub at the server" below).

Routes
------
``HEAD|GET /{repo_id}/resolve/{revision}/{filename}``
    ``revision`` is a branch/tag name given to :meth:`FakeHub.add_file` or one of the repo's commit
    shas, url-encoded or not (``refs%2Fpr%2F1``).  Headers as the real Hub sends them:
    ``X-Repo-Commit``, ``ETag``, ``Accept-Ranges: bytes``, ``Content-Length``.

    * non-LFS file (``lfs=False``): ``200`` with the bytes, ``ETag: "<git blob sha1>"``; GET
      supports ``Range`` (``206`` + ``Content-Range``).
    * LFS file (``lfs=True``, default): ``302`` with ``X-Linked-Etag: "<sha256>"``,
      ``X-Linked-Size: <size>`` and ``Location: {cdn_url}/cdn/<sha256>?repo=...&file=...``.

    The "CDN" is a *second listening port of the same FakeHub* (``FakeHub.cdn_url``), named
    ``localhost`` where the Hub is ``127.0.0.1``: a different host, exactly like
    ``cdn-lfs.hf.co`` vs ``huggingface.co``.  That matters: the metadata HEAD
    (``_httpx2_follow_hub_redirects_with_backoff``) *follows* redirects to the same host and
    stops only at a foreign one, reading X-Repo-Commit / X-Linked-* from the 302 itself; 2.4
    compares origins (host and port) but 2.0 and 1.x compare host names only, so the CDN needs a name
    of its own.  A same-host ``/cdn/`` redirect would make the client read the metadata from
    the CDN response instead.  ``/cdn/...`` is nevertheless served on both ports.

    No ``X-Xet-*`` headers and no ``Link: <...>; rel="xet-auth"`` are ever sent, so
    ``parse_xet_file_data_from_response`` returns None and the plain HTTP path (``http_get``)
    is used even though ``hf_xet`` is installed.

``GET|HEAD /cdn/<sha256>``
    The blob bytes, ``200`` or ``206 Partial Content`` for ``Range: bytes=a-b`` / ``a-`` /
    ``-n``; ``416`` for an unsatisfiable range.

``GET /api/models/{repo_id}`` and ``/api/models/{repo_id}/revision/{rev}``
    JSON ``{"id", "sha", "siblings": [{"rfilename"}...], ...}``; with ``?blobs=true`` (what
    ``model_info(files_metadata=True)`` sends) siblings also carry ``size``, ``blobId`` and, for
    LFS files, ``lfs: {"sha256", "size", "pointerSize"}``.

``GET /api/models/{repo_id}/tree/{rev}[/{path}]``  (``?recursive=true``)
    Single-page tree listing (``list_repo_tree``), enough for ``snapshot_download``.  Entries
    never carry ``xetHash``.

Errors (JSON body ``{"error": ...}`` plus ``X-Error-Code`` / ``X-Error-Message``):

* unknown repo        -> 404 ``RepoNotFound``      -> ``RepositoryNotFoundError``
* unknown revision    -> 404 ``RevisionNotFound``  -> ``RevisionNotFoundError``
* unknown file        -> 404 ``EntryNotFound`` (+ ``X-Repo-Commit``, so the client caches the
  non-existence under ``.no_exist/<commit>/``) -> ``RemoteEntryNotFoundError``
* gated repo (resolve only) -> 401 without / 403 with an ``Authorization`` header,
  ``GatedRepo`` -> ``GatedRepoError`` (a subclass of ``RepositoryNotFoundError``)
* anything else       -> 404 without error code -> ``HfHubHTTPError``

Pointing huggingface_hub 2.4 at the server
------------------------------------------
``huggingface_hub.constants`` reads its environment variables **once, at import time**
(``ENDPOINT`` and the derived ``HUGGINGFACE_CO_URL_TEMPLATE``, ``HF_HUB_OFFLINE``,
``HF_HUB_CACHE``, ``HF_HOME``, ``HF_TOKEN_PATH``, ``HF_HUB_DISABLE_XET``...).  Setting
``HF_ENDPOINT`` / ``HF_HUB_OFFLINE`` with ``monkeypatch.setenv`` after huggingface_hub has been
imported (i.e. always, inside pytest) therefore has **no effect**.  What works:

* ``hf_hub_download(..., endpoint=hub.url)`` always works (``hf_hub_url`` swaps the
  ``constants.ENDPOINT`` prefix for ``endpoint``).  ``HfApi(endpoint=hub.url)`` likewise.
* otherwise patch the constants: ``constants.ENDPOINT`` **and**
  ``constants.HUGGINGFACE_CO_URL_TEMPLATE`` (the URL template is built from ENDPOINT at import
  time; patching ENDPOINT alone is not enough), and ``huggingface_hub.hf_api.api.endpoint``
  (the module-level ``HfApi`` behind ``huggingface_hub.model_info`` & co. captured the endpoint
  when it was created).  :func:`point_hf_at` does all of that.
* offline mode: ``constants.HF_HUB_OFFLINE`` is what ``constants.is_offline_mode()`` returns and
  what the httpx2 request hook checks; patch it (``monkeypatch.setattr(constants,
  "HF_HUB_OFFLINE", True)``).  ``local_files_only=True`` needs no patching.
* cache: pass ``cache_dir=`` or patch ``constants.HF_HUB_CACHE`` (default of ``cache_dir``).
* env vars are still worth setting for subprocesses (a CLI run with ``subprocess``) — a fresh
  interpreter reads them at import.  :func:`point_hf_at` sets them too.

Other behaviour of huggingface_hub 2.4 observed against this server (see the tests):

* cache hit on a branch revision: one HEAD on ``/resolve`` (to learn the commit), no GET;
  cache hit on a commit-sha revision or with ``local_files_only`` / offline: zero requests.
* **no sha256 verification**: the blob is stored under ``blobs/<X-Linked-Etag>`` and only its
  *size* is checked against ``X-Linked-Size``/``Content-Length`` (``OSError("Consistency check
  failed...")``).  Serving bytes whose sha256 differs from the advertised ETag succeeds silently.
* **resume happens only inside one call**: ``http_get`` catches ``httpx2.RemoteProtocolError``
  (peer closed before Content-Length bytes) / ``ConnectError`` / timeouts, sleeps 1 s, and
  re-GETs with ``Range: bytes=<bytes written>-`` (up to 5 retries; the counter is reset whenever
  bytes were received), then raises the httpx2 error itself.  Caveat: the body is read with
  ``iter_bytes(chunk_size=constants.DOWNLOAD_CHUNK_SIZE)`` (10 MiB) and a partially filled chunk
  is lost, so a file cut before 10 MiB is re-fetched from 0 *without* a Range header; patch
  ``constants.DOWNLOAD_CHUNK_SIZE`` to see a real ``Range`` resume.  A TCP reset mid-body
  (``httpx2.ReadError``, ``fail_next_transfer(..., reset=True)``) is *not* retried at all.
  There is no resume *across* calls: each download goes to a unique
  ``blobs/<etag>.<8 hex>.incomplete`` file that is deleted when the call fails.
* with telemetry enabled, the first ``build_hf_headers()`` of a process calls
  ``{ENDPOINT}/api/agent-harnesses`` (agent detection for the User-Agent, 3 s timeout, cached in
  ``HF_HOME/.agent_harnesses.json`` for 24 h).  The server answers 404 (harmless), but it shows up
  in ``requests``; :func:`point_hf_at` sets ``constants.HF_HUB_DISABLE_TELEMETRY = True``.

What ``hf_hub_download`` raises (file not in the cache):

* 404 repo -> ``RepositoryNotFoundError``; 404 file -> ``RemoteEntryNotFoundError`` (also an
  ``EntryNotFoundError``); 404 revision -> ``RevisionNotFoundError``; gated 401/403 ->
  ``GatedRepoError`` — all ``HfHubHTTPError`` subclasses with ``.response``.
* connection refused -> ``LocalEntryNotFoundError`` with ``__cause__`` ``httpx2.ConnectError``,
  after a retry round: the HEAD is retried 5 more times with 1+2+4+8+8 s back-off (~23 s).
* timeout -> ``LocalEntryNotFoundError`` with ``__cause__`` ``httpx2.ReadTimeout``; the retry
  round uses a 60 s timeout per attempt (``file_download._ETAG_RETRY_TIMEOUT``) + the back-off.
* offline / ``local_files_only=True`` and not cached -> ``LocalEntryNotFoundError`` (cause
  ``OfflineModeIsEnabled`` in offline mode), with no request sent.
* a transfer interrupted for good -> the raw ``httpx2.RemoteProtocolError`` / ``httpx2.ReadError``
  (not wrapped); a short body -> ``OSError("Consistency check failed ...")``.

When the file *is* cached for that revision, every metadata failure above except 404
file/revision falls back to the cached copy silently.

``FakeHub.requests`` holds ``(method, raw path incl. query string, headers)``; the headers dict
has lower-cased keys and case-insensitive ``[]`` / ``get`` / ``in``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["FakeHub", "HubFile", "point_hf_at"]

_LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n"
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubFile:
    data: bytes
    # LFS file: HEAD answers with a 302 redirect to the CDN, X-Linked-Etag = '"<sha256 hex>"', X-Linked-Size
    lfs: bool = True
    # override the advertised sha256 (simulate a checksum mismatch: served bytes do not match the ETag)
    etag_sha256: str | None = None

    @property
    def sha256(self) -> str:
        """The sha256 the server *advertises* (real one unless overridden)."""
        return self.etag_sha256 or hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def pointer(self) -> bytes:
        return _LFS_POINTER.format(sha=self.sha256, size=self.size).encode()

    @property
    def blob_id(self) -> str:
        """git blob id: of the file itself, or of its LFS pointer file."""
        return _git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        """Value of the HTTP ETag / X-Linked-Etag, without quotes (what ends up in blobs/)."""
        return self.sha256 if self.lfs else _git_blob_sha1(self.data)


@dataclass
class _Revision:
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


@dataclass
class _Repo:
    revisions: dict[str, _Revision] = field(default_factory=dict)  # name -> revision
    gated: bool = False

    def resolve(self, rev: str) -> _Revision | None:
        if rev in self.revisions:
            return self.revisions[rev]
        for r in self.revisions.values():
            if r.commit == rev.lower():
                return r
        return None


class _CIHeaders(dict):
    """dict with lower-cased keys and case-insensitive lookups (``h["Range"] == h["range"]``)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__((str(k).lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # huggingface_hub keeps keep-alive connections open; never join their threads
    hub: FakeHub

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "FakeHub/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server.hub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.hub._track(self.connection, add=False)

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain any body to keep the connection usable
        self.server.hub._handle(self, method)

    # -- response helpers (used by FakeHub._handle) ------------------------------------------
    def send(
        self,
        method: str,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        truncate_at: int | None = None,
        reset: bool = False,
    ) -> None:
        self.send_response(status)
        hdrs = {"Content-Length": str(len(body))}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if method == "HEAD":
            return
        if truncate_at is not None:
            # Send part of the body, then close the connection: the client sees EOF before
            # Content-Length bytes (httpx2.RemoteProtocolError: peer closed connection...).
            # With reset=True the socket is closed with SO_LINGER 0 => TCP RST => httpx2.ReadError.
            self.wfile.write(body[:truncate_at])
            self.wfile.flush()
            self.close_connection = True
            try:
                if reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def send_error_json(
        self, method: str, status: int, code: str | None, message: str, extra: dict[str, str] | None = None
    ) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        self.send(method, status, headers, json.dumps({"error": message}).encode())


class FakeHub:
    """In-process fake of the Hugging Face Hub (see module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._blobs: dict[str, bytes] = {}  # advertised sha256 -> bytes served by the CDN
        self._failures: dict[tuple[str, str], list[tuple[int, bool]]] = {}
        self._conns: set[socket.socket] = set()
        self.requests: list[tuple[str, str, dict]] = []
        self.url: str = ""
        self.cdn_url: str = ""
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # -- content management --------------------------------------------------------------------
    def add_file(
        self,
        repo_id: str,
        filename: str,
        data: bytes,
        *,
        revision: str = "main",
        lfs: bool = True,
        etag_sha256: str | None = None,
    ) -> str:
        """Add (or replace) ``filename`` at ``revision`` of ``repo_id``; returns the revision's commit sha.

        The commit sha is deterministic per (repo_id, revision) and does not change when more files
        are added.  A 40-hex ``revision`` is used as its own commit sha.
        """
        filename = filename.strip("/")
        f = HubFile(data=bytes(data), lfs=lfs, etag_sha256=etag_sha256.lower() if etag_sha256 else None)
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo())
            rev = repo.revisions.get(revision)
            if rev is None:
                commit = (
                    revision.lower()
                    if _SHA1_RE.match(revision.lower())
                    else (hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest())
                )
                rev = repo.revisions[revision] = _Revision(commit=commit)
            rev.files[filename] = f
            if lfs:
                self._blobs[f.sha256] = f.data
            return rev.commit

    def set_gated(self, repo_id: str) -> None:
        """Resolve requests on this repo answer 401 (no token) / 403 (token) with X-Error-Code: GatedRepo."""
        with self._lock:
            self._repos.setdefault(repo_id, _Repo()).gated = True

    def fail_next_transfer(
        self, repo_id: str, filename: str, after_bytes: int, *, times: int = 1, reset: bool = False
    ) -> None:
        """The next GET of that file's content sends only ``after_bytes`` bytes of the body, then closes.

        Applies to the CDN GET of an LFS file or the /resolve GET of a non-LFS file, whatever the
        revision; ``after_bytes`` counts bytes of that response body (i.e. of the requested range).
        Headers announce the full length, so the client sees a truncated body.
        Extras (keyword-only, not part of the base API): ``times`` makes the next ``times`` GETs fail;
        ``reset=True`` aborts with a TCP RST (client: ``httpx2.ReadError``) instead of a clean EOF
        (client: ``httpx2.RemoteProtocolError``).
        """
        with self._lock:
            self._failures.setdefault((repo_id, filename.strip("/")), []).extend(
                [(after_bytes, reset)] * times
            )

    def clear_failures(self) -> None:
        """Drop all pending fail_next_transfer() injections."""
        with self._lock:
            self._failures.clear()

    def content_requests(self) -> list[tuple[str, str, dict]]:
        """Requests that transferred (or tried to transfer) file content: GETs of /cdn/ or of a non-LFS resolve."""
        with self._lock:
            reqs = list(self.requests)
        out = []
        for m, p, h in reqs:
            if m != "GET":
                continue
            path = urlsplit(p).path
            if path.startswith("/cdn/"):
                out.append((m, p, h))
            elif "/resolve/" in path:
                f = self._lookup_resolve(path)
                if f is not None and not f.lfs:
                    out.append((m, p, h))
        return out

    def _lookup_resolve(self, path: str) -> HubFile | None:
        parsed = self._parse_resolve(path)
        if parsed is None:
            return None
        repo_id, rev, filename = parsed
        with self._lock:
            repo = self._repos.get(repo_id)
            r = repo.resolve(rev) if repo else None
            return r.files.get(filename) if r else None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeHub:
        if self._servers:
            return self
        for _ in range(2):  # [0] = hub, [1] = "CDN" (different origin, like cdn-lfs.hf.co)
            srv = _Server(("127.0.0.1", 0), _Handler)
            srv.hub = self
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._servers.append(srv)
            self._threads.append(t)
        self.url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.cdn_url = f"http://localhost:{self._servers[1].server_address[1]}"
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:  # unblock handler threads sitting on idle keep-alive connections
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # -- request handling ----------------------------------------------------------------------
    @staticmethod
    def _parse_resolve(path: str) -> tuple[str, str, str] | None:
        """'/owner/name/resolve/<rev>/<file...>' (raw, still url-encoded) -> (repo_id, rev, filename)."""
        parts = path.lstrip("/").split("/")
        if "resolve" not in parts:
            return None
        i = parts.index("resolve")
        if i == 0 or len(parts) < i + 3:
            return None
        repo_id = unquote("/".join(parts[:i]))
        rev = unquote(parts[i + 1])
        filename = unquote("/".join(parts[i + 2 :]))
        if not filename:
            return None
        return repo_id, rev, filename

    def _handle(self, h: _Handler, method: str) -> None:
        with self._lock:
            self.requests.append((method, h.path, _CIHeaders(h.headers.items())))
        split = urlsplit(h.path)
        path, query = split.path, parse_qs(split.query)
        try:
            if method in ("GET", "HEAD") and path.startswith("/cdn/"):
                return self._serve_cdn(h, method, path, query)
            if method == "GET" and path.startswith("/api/models/"):
                return self._serve_api(h, method, path[len("/api/models/") :], query)
            if method in ("GET", "HEAD") and "/resolve/" in path:
                parsed = self._parse_resolve(path)
                if parsed is not None:
                    return self._serve_resolve(h, method, *parsed)
            h.send_error_json(method, 404, None, "Not Found")
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _find(self, h: _Handler, method: str, repo_id: str, rev: str) -> tuple[_Repo, _Revision] | None:
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None or not repo.revisions:
                h.send_error_json(method, 404, "RepoNotFound", "Repository not found")
                return None
            r = repo.resolve(rev)
            if r is None:
                h.send_error_json(method, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return None
            return repo, r

    def _serve_resolve(self, h: _Handler, method: str, repo_id: str, rev: str, filename: str) -> None:
        with self._lock:
            repo = self._repos.get(repo_id)
            gated = repo is not None and repo.gated
        if gated:
            authed = "authorization" in {k.lower() for k in h.headers}
            msg = (
                f"Access to model {repo_id} is restricted and you are not in the authorized list."
                if authed
                else f"Access to model {repo_id} is restricted. You must have access to it and be authenticated"
                " to access it. Please log in."
            )
            return h.send_error_json(method, 403 if authed else 401, "GatedRepo", msg)
        found = self._find(h, method, repo_id, rev)
        if found is None:
            return
        _, r = found
        f = r.files.get(filename)
        common = {"X-Repo-Commit": r.commit, "Accept-Ranges": "bytes", "Vary": "Origin, Accept"}
        if f is None:
            return h.send_error_json(method, 404, "EntryNotFound", "Entry not found", common)
        if f.lfs:
            location = f"{self.cdn_url}/cdn/{f.sha256}?repo={quote(repo_id, safe='')}&file={quote(filename, safe='')}"
            body = f"Found. Redirecting to {location}".encode()
            headers = {
                **common,
                "Content-Type": "text/plain; charset=utf-8",
                "Location": location,
                "ETag": f'"{f.blob_id}"',
                "X-Linked-Etag": f'"{f.sha256}"',
                "X-Linked-Size": str(f.size),
            }
            return h.send(method, 302, headers, body)
        headers = {
            **common,
            "Content-Type": "application/octet-stream",
            "ETag": f'"{f.etag}"',
            "Content-Disposition": _content_disposition(filename),
        }
        self._send_bytes(h, method, f.data, headers, failure_key=(repo_id, filename))

    def _serve_cdn(self, h: _Handler, method: str, path: str, query: dict[str, list[str]]) -> None:
        sha = path[len("/cdn/") :].strip("/").lower()
        with self._lock:
            data = self._blobs.get(sha)
        if data is None:
            return h.send(method, 404, {"Content-Type": "text/plain"}, b"NoSuchKey")
        repo_id = query.get("repo", [""])[0]
        filename = query.get("file", [""])[0]
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{sha}"',
            "Content-Disposition": _content_disposition(filename.rsplit("/", 1)[-1] or sha),
        }
        key = (repo_id, filename) if repo_id and filename else None
        self._send_bytes(h, method, data, headers, failure_key=key)

    def _send_bytes(
        self,
        h: _Handler,
        method: str,
        data: bytes,
        headers: dict[str, str],
        failure_key: tuple[str, str] | None,
    ) -> None:
        size = len(data)
        headers = {**headers, "Accept-Ranges": "bytes"}
        status, body = 200, data
        rng = h.headers.get("Range")
        if rng and "," not in rng:  # multi-range: ignore the header and answer 200 (allowed by RFC 9110)
            m = _RANGE_RE.match(rng)
            if m and (m.group(1) or m.group(2)):
                start_s, end_s = m.groups()
                if start_s:
                    start = int(start_s)
                    end = min(int(end_s), size - 1) if end_s else size - 1
                else:  # suffix range: last N bytes
                    start, end = max(size - int(end_s), 0), size - 1
                if start >= size or start > end:
                    headers["Content-Range"] = f"bytes */{size}"
                    return h.send(
                        method, 416, {**headers, "Content-Type": "text/plain"}, b"Range Not Satisfiable"
                    )
                status, body = 206, data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        truncate_at, reset = None, False
        if method == "GET" and failure_key is not None:
            with self._lock:
                pending = self._failures.get(failure_key)
                if pending:
                    truncate_at, reset = pending.pop(0)
        h.send(method, status, headers, body, truncate_at=truncate_at, reset=reset)

    def _serve_api(self, h: _Handler, method: str, rest: str, query: dict[str, list[str]]) -> None:
        parts = rest.strip("/").split("/")
        rev, tree_path, mode = "main", None, "info"
        for kw in ("revision", "tree"):
            if kw in parts[1:]:
                i = parts.index(kw, 1)
                if len(parts) < i + 2:
                    return h.send_error_json(method, 404, None, "Not Found")
                mode = kw
                rev = unquote(parts[i + 1])
                if kw == "tree":
                    tree_path = unquote("/".join(parts[i + 2 :])).strip("/")
                elif len(parts) > i + 2:
                    return h.send_error_json(method, 404, None, "Not Found")
                parts = parts[:i]
                break
        repo_id = unquote("/".join(parts))
        found = self._find(h, method, repo_id, rev)
        if found is None:
            return
        repo, r = found
        truthy = {"1", "true", "True"}
        with self._lock:
            files = sorted(r.files.items())
        if mode == "tree":
            recursive = query.get("recursive", ["false"])[0] in truthy
            payload: Any = _tree(files, tree_path or "", recursive)
        else:
            blobs = query.get("blobs", ["false"])[0] in truthy
            siblings = []
            for name, f in files:
                s: dict[str, Any] = {"rfilename": name}
                if blobs:
                    s.update(size=f.size, blobId=f.blob_id)
                    if f.lfs:
                        s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
                siblings.append(s)
            payload = {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0] if "/" in repo_id else None,
                "sha": r.commit,
                "lastModified": "2024-01-01T00:00:00.000Z",
                "createdAt": "2024-01-01T00:00:00.000Z",
                "private": False,
                "gated": "manual" if repo.gated else False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        body = json.dumps(payload).encode()
        h.send(
            method, 200, {"Content-Type": "application/json; charset=utf-8", "X-Repo-Commit": r.commit}, body
        )


def _tree(files: list[tuple[str, HubFile]], prefix: str, recursive: bool) -> list[dict[str, Any]]:
    base = prefix + "/" if prefix else ""
    out: list[dict[str, Any]] = []
    dirs: set[str] = set()
    for name, f in files:
        if not name.startswith(base):
            continue
        rel = name[len(base) :]
        segs = rel.split("/")
        for i in range(1, len(segs) if recursive else min(len(segs), 2)):
            dirs.add(base + "/".join(segs[:i]))
        if recursive or len(segs) == 1:
            entry: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": name}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
            out.append(entry)
    for d in dirs:
        out.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
    return sorted(out, key=lambda e: e["path"])


def _content_disposition(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    return f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"


def point_hf_at(monkeypatch: Any, hub: FakeHub | None, hf_home: Any = None) -> None:
    """Point an already-imported huggingface_hub (2.4) at ``hub`` for the duration of a test.

    Patches the import-time constants (ENDPOINT, HUGGINGFACE_CO_URL_TEMPLATE, the module-level
    ``HfApi`` endpoint, HF_HUB_OFFLINE=False, caches/token path under ``hf_home``) and sets the matching
    environment variables for subprocesses.  ``hub=None`` only isolates the cache/token/offline state.
    """
    import os

    from huggingface_hub import constants, hf_api

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HUGGINGFACE_CO_STAGING"):
        monkeypatch.delenv(var, raising=False)
    # never take the Xet path, even if a server ever advertised it
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    # With telemetry on, build_hf_headers() -> detect_agent() makes a one-off (per process)
    # GET {ENDPOINT}/api/agent-harnesses (3 s timeout) unless a fresh HF_HOME/.agent_harnesses.json exists.
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    if hub is not None:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(hf_api.api, "endpoint", hub.url)
    if hf_home is not None:
        home = os.fspath(hf_home)
        hub_cache = os.path.join(home, "hub")
        monkeypatch.setenv("HF_HOME", home)
        monkeypatch.setenv("HF_HUB_CACHE", hub_cache)
        monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
        monkeypatch.setattr(constants, "HF_HOME", home)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", hub_cache)
        monkeypatch.setattr(constants, "HUGGINGFACE_HUB_CACHE", hub_cache)
        monkeypatch.setattr(constants, "HF_ASSETS_CACHE", os.path.join(home, "assets"))
        monkeypatch.setattr(constants, "HF_XET_CACHE", os.path.join(home, "xet"))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", os.path.join(home, "token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", os.path.join(home, "stored_tokens"))
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", os.path.join(home, ".agent_harnesses.json"))
