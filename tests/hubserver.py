"""A local stand-in for the Hugging Face Hub and the ModelScope hub, for tests.

`HubServer(root)` serves the folders `root/<owner>/<name>/...` (nested folders allowed) as model repos
over both hubs' HTTP protocols on 127.0.0.1, so that the official clients (huggingface_hub 2.4,
modelscope 1.40 / modelscope_hub 0.5) work against it unmodified::

    from tests.hubserver import HubServer

    with HubServer(root) as hub:
        env = {**os.environ, **hub.env(cache_dir=tmp_path / "caches")}
        subprocess.run([sys.executable, "-c", "..."], env=env)

Pointing a client at it
-----------------------
`hub.env()` returns the variables; pass them to a child process (what tests/test_hubserver.py does):

- huggingface_hub reads every setting once, when `huggingface_hub.constants` is imported
  (`HF_ENDPOINT`, `HF_HOME`/`HF_HUB_CACHE`, `HF_TOKEN` is read per call, `HF_HUB_DISABLE_XET`,
  `HF_HUB_DISABLE_TELEMETRY`, `HF_HUB_OFFLINE`, timeouts). `utils/_http.py` also freezes the set of
  "Hub origins" from `HF_ENDPOINT` at import. Setting `os.environ` after the import has no effect, so
  run the client in a child process with the env (or pass `endpoint=` to every call and monkeypatch
  `huggingface_hub.constants`, which is fragile).
- modelscope / modelscope_hub read `MODELSCOPE_ENDPOINT`, `MODELSCOPE_CACHE`, `MODELSCOPE_HOME` and
  `MODELSCOPE_API_TOKEN` when the process-wide `HubConfig` is first built (the first API call, not
  the import; it is then cached for the process). The download tunables (`MODELSCOPE_DOWNLOAD_*`,
  `MODELSCOPE_API_*`) are read when `modelscope_hub.constants` is imported. An explicit `endpoint=`
  argument wins over the variable. `import modelscope` imports torch (about 1 s).

Variables set by `env()`: `HF_ENDPOINT` and `MODELSCOPE_ENDPOINT` (= `hub.url`); `HF_HUB_DISABLE_XET=1`
(hf_xet is installed but is only used when a response carries `X-Xet-*` headers, which this server
never sends; the variable makes sure); `HF_HUB_DISABLE_TELEMETRY=1` (otherwise every client fetches
`GET /api/agent-harnesses` from the endpoint to build its user agent; it is served anyway);
`HF_HUB_DISABLE_PROGRESS_BARS=1`, `HF_HUB_DISABLE_SYMLINKS_WARNING=1`, `HF_HUB_DISABLE_UPDATE_CHECK=1`,
`HF_HUB_OFFLINE=0`, `HUGGINGFACE_CO_STAGING=0` (staging mode would override HF_ENDPOINT);
`MODELSCOPE_DOWNLOAD_INTRA_CLOUD=false` (otherwise each ModelScope downloader probes
`GET /api/v1/repos/internalAccelerationInfo` for an Alibaba Cloud region; served anyway) and
`MODELSCOPE_DOWNLOAD_INTER_CLOUD_REGIONS=` (empty); `NO_PROXY`/`no_proxy` for 127.0.0.1.
With `cache_dir=` also `HF_HOME` (and so the HF cache `HF_HOME/hub`), `MODELSCOPE_CACHE` and
`MODELSCOPE_HOME` (ModelScope writes an install id to `MODELSCOPE_HOME/credentials/session` on the
first call; without it that lands in `~/.modelscope`). With `token=` also `HF_TOKEN` and
`MODELSCOPE_API_TOKEN`. `MODELSCOPE_DOMAIN` is not set: it only feeds modelscope's legacy
`get_file_download_url`/`http_get_file` helpers, which hard-code https.

Endpoints
---------
Hugging Face (repo ids are always `owner/name`; the revision segment is URL-quoted):

- `GET /api/models/{repo}` and `GET /api/models/{repo}/revision/{rev}`: model info, with `sha`,
  `siblings` (`rfilename`; with `blobs=true` also `size`, `blobId`, `lfs {size, sha256, pointerSize}`),
  `lastModified`, `createdAt`, `usedStorage`, `safetensors {parameters, total}` (from the headers of the
  top-level `*.safetensors` files), `config` (a few keys of config.json); `expand=` selects properties.
- `GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=&expand=`: entries
  `{type: file|directory, oid, size, path[, lfs {oid: sha256, size, pointerSize}]}` (+ `lastCommit`,
  `securityFileStatus` with expand). Paginated like the Hub (1000 entries a page, 50 with expand;
  `tree_page_size=` changes it) with a `Link: <...&cursor=...>; rel="next"` header.
- `POST /api/models/{repo}/paths-info/{rev}` (form `paths`, `expand`), `GET /api/models/{repo}/refs`.
- `HEAD`/`GET /{repo}/resolve/{rev}/{path}`: headers `X-Repo-Commit`, `ETag`, `Content-Length`,
  `Accept-Ranges: bytes`, `Content-Disposition`; single ranges `bytes=a-b`, `bytes=a-`, `bytes=-n` give
  206 with `Content-Range`, an unsatisfiable one 416 with `Content-Range: bytes */size`; multiple or
  malformed ranges are ignored (200). For an LFS file the answer is a 302 (HEAD and GET) with
  `X-Linked-Etag: "<sha256>"`, `X-Linked-Size`, `ETag` and `Location: {cdn_url}/cdn/{owner}/{name}/
  {sha256}?file=...&Expires=...&Signature=...`, like the real Hub's redirect to its CDN.
- `HEAD`/`GET /cdn/{owner}/{name}/{sha256}?file=...`: the bytes of an LFS file (Range as above),
  `ETag: "<sha256>"`, `Content-Disposition: inline; filename="...";`. No token is checked there (a
  signed URL). By default the CDN listens on a second port (`hub.cdn_url`): huggingface_hub keeps the
  Authorization header on same-origin redirects and drops it only when the redirect leaves the Hub's
  origin (scheme, host, port), so a CDN on the hub's own port would never show the drop.
  `HubServer(root, separate_cdn=False)` puts it on the main port (it then also sends `X-Repo-Commit`,
  because the client reads the file metadata from the final response of a followed redirect).
- `GET /api/models?author=OWNER` (what `HfApi.list_models(author=)` asks; without `author`, every
  repo): `[{id, modelId, author, sha, private, lastModified, createdAt, downloads, likes, tags}]`
  sorted by id, paginated like the Hub (1000 a page, `models_page_size=` changes it) with a `Link:
  <...&cursor=...>; rel="next"` header. No token is checked (the real Hub leaves out private repos).
- `GET /api/agent-harnesses` (empty registry).

Errors, as `huggingface_hub.utils.hf_raise_for_status` maps them: unknown repo: 401 without an
Authorization header, 404 with one, both `X-Error-Code: RepoNotFound` (RepositoryNotFoundError);
unknown revision: 404 `X-Error-Code: RevisionNotFound` (RevisionNotFoundError); unknown file or tree
path: 404 `X-Error-Code: EntryNotFound` with `X-Repo-Commit` (RemoteEntryNotFoundError; the client
then caches `.no_exist/<commit>/<file>`). Revisions: `main`, `refs/heads/main` and the commit id.

ModelScope (models only; JSON envelopes `{"Code", "Data", "Message", "RequestId", "Success"}`):

- `GET /api/v1/models/{owner}/{name}`: model info (`Id`, `Name`, `Path`, `Revision`, ...).
- `GET /api/v1/models/{owner}/{name}/revisions`: `Data.RevisionMap.Branches = [{Revision: master,
  CommitId, CreatedAt}]`, `Tags = []` (modelscope's `model_file_download` asks it when no revision
  is given).
- `GET /api/v1/models/{owner}/{name}/repo/files?Revision=&Root=&Recursive=`: `Data.Files = [{Name,
  Path, Type: blob|tree, Size, Sha256, Id, IsLFS, Revision, CommittedDate, CommitMessage,
  CommitterName, Mode, InCheck}]`. Like the real endpoint (as modelscope_hub 0.5 describes it) it
  ignores PageNumber/PageSize and truncates at 3000 entries (`ms_files_limit=`); `Root` scopes it.
- `HEAD`/`GET /api/v1/models/{owner}/{name}/repo?Revision=&FilePath=`: the bytes, Range as above. LFS
  files also carry `X-Linked-ETag: "<sha256>"` (what ModelScope's CDN sends after its redirect; the
  client checks a single-file download against it).
- `GET /openapi/v1/models/{owner}/{name}`, `GET /api/v1/repos/internalAccelerationInfo` (no region).
- `GET /openapi/v1/models?owner=OWNER&page_number=&page_size=` (what `modelscope_hub.HubApi
  .list_repos("model", owner=)` asks): `data = {models: [{id, owner, name, private, ...}],
  total_count, page_number, page_size}`, sorted by id.

Errors: unknown repo, revision (anything but `master` and the commit id), file or Root: HTTP 404
with `Code: 404` (the client raises `modelscope_hub.errors.NotExistError`; the modelscope
`snapshot_download`/`model_file_download` wrappers re-raise it as `requests.HTTPError`).

Files, hashes and commits
-------------------------
A file is "LFS" when it is larger than 10 MiB (`lfs_threshold=`) or its name ends in one of
`LFS_SUFFIXES` (.safetensors .bin .pt .pth .ckpt .gguf .onnx .h5 .msgpack .pkl .npz). For LFS files
the ETag and `lfs.oid` are the sha256 of the content, and `oid`/`blobId` are the git blob sha1 of the
LFS pointer text (as on the real Hub); for other files `oid`, `blobId` and the ETag are the git blob
sha1 of the content. ModelScope listings carry the sha256 of every file. sha256 digests are computed
when first needed and cached by (path, size, mtime_ns); `HubServer(root, sha256={relpath: hex})`
supplies them instead (keys relative to root, `owner/name/file`, or just the file path to apply in
every repo), so sparse multi-GB files need not be read. Bodies are sent with `os.pread` in 64 KiB
chunks. The commit id of a repo is the sha1 of its sorted listing: path and size of every file, the
git blob id of each non-LFS file and the mtime_ns of each LFS file (so it is stable while the files
are left alone, and changes when any file is rewritten).

Auth: with `hub.require_token = "secret"`, repo requests of both hubs need `Authorization: Bearer
secret` (ModelScope: or the cookie `m_session_id=secret`). Missing: HF 401 `X-Error-Code: GatedRepo`
(GatedRepoError); wrong: HF 401 `X-Error-Message: Invalid credentials in Authorization header` (a
plain HfHubHTTPError); ModelScope 401 (AuthenticationError). The CDN and the two probe endpoints do
not check tokens.

Faults (`hub.add_fault(kind, path_glob="*", times=1, **params)`, `times=None` = forever): a fault
applies to file-content requests (HF `/resolve`, the CDN, ModelScope `/repo?FilePath=`) whose file
matches `path_glob` (fnmatch, `*` crosses `/`; tried against the path in the repo and against
`owner/name/path`). A glob starting with `/` is matched against the URL path instead and then
applies to any request, API calls included (e.g. `add_fault("status", "/api/models/*", code=503)`).
Each request that a fault acts on uses up one of its `times`.

- `status` (code=401/403/404/500/503/...; optional `error_code`, `message`, `retry_after`): that
  status with a small JSON body; on HF routes 401/403 carry `X-Error-Code: GatedRepo` (GatedRepoError)
  and 404 `EntryNotFound` unless `error_code` says otherwise. HEAD and GET.
- `slow` (delay=seconds before the response; with per_chunk=True, before each 64 KiB body chunk
  instead, GET only).
- `cut` (after=N; optional reset=True): full Content-Length in the headers, N body bytes, then the
  connection is closed (FIN; with reset=True an RST). GET responses with a body only.
- `corrupt` (optional at=absolute file offset; default the middle byte of the served body): that
  byte is flipped (xor 0xFF). GET with a body only.
- `no_range`: the Range header is ignored (200, whole file). GET with a body only.
- `wrong_hash`: listings, model info, ETag/X-Linked-Etag and ModelScope Sha256/X-Linked-ETag advertise
  a different sha256 (LFS) or git sha1 for the file while the true bytes are served. Every response
  that advertises it uses up one time, so it usually wants `times=None`.

The 302 of an LFS `/resolve` has no body, so body faults pass it by and act on the CDN request.
`hub.requests` lists every request, once the handlers still running have recorded theirs: method,
path (path+query), range, status, body_bytes_sent, authorization (whether an Authorization header
came), server ("hub"/"cdn"), faults (kinds applied).

Placing files into the official caches by hand
----------------------------------------------
(checked against this server with huggingface_hub 2.4.0 and modelscope 1.40.2 / modelscope_hub 0.5.1,
see tests/test_hubserver.py::test_hand_made_caches_are_found_offline)

Hugging Face, cache dir `$HF_HUB_CACHE` (default `$HF_HOME/hub`, `~/.cache/huggingface/hub`)::

    models--{owner}--{name}/
        refs/main                       the 40-hex commit id, no newline
        snapshots/{commit}/{path}       the files (nested folders as in the repo); the client makes
                                        relative symlinks to ../../blobs/{etag}, but
                                        local_files_only=True only checks that the paths exist,
                                        so plain files work
        blobs/{etag}                    content, named by sha256 (LFS) or git blob sha1 (others);
                                        not needed offline
        trees/{commit}.json             optional: {"format_version": 1, "files": {path: {"size",
                                        "blob_id"[, "lfs_sha256", "lfs_size"]}}}; when it exists,
                                        offline snapshot_download raises IncompleteSnapshotError
                                        unless every listed file is in the snapshot
        .no_exist/{commit}/{path}       empty files recording files known to be absent
    .locks/models--{owner}--{name}/{etag}.lock, CACHEDIR.TAG   written by the client; not needed

`snapshot_download(repo, revision="main", local_files_only=True)` reads `refs/main` to get the commit
(a 40-hex revision is used as is) and returns `snapshots/{commit}` if that folder exists (checked
against `trees/{commit}.json` when present); `hf_hub_download(..., local_files_only=True)` returns
`snapshots/{commit}/{path}` if it exists.

ModelScope 1.40 (all of it delegated to modelscope_hub 0.5), cache dir `$MODELSCOPE_CACHE` (default
`~/.cache/modelscope`)::

    models/{owner}--{name}/snapshots/{revision}/{path}   plain files; {revision} is the name asked
                                                         for, "master" by default (not a commit id)
    .lock/file_<sha256>.lock                             written by the client; not needed

There is no .msc/.mv metadata and no `._____temp` folder in this layout (a download in progress is
`{path}.incomplete` next to the target). `snapshot_download(model_id, local_files_only=True)`
(the flag exists) returns `snapshots/{revision}` when it is a non-empty folder; without a revision
it takes `snapshots/master`, then `snapshots/main`, then the only non-empty snapshot folder; it checks
nothing else. `model_file_download(..., local_files_only=True)` returns the file if it exists. Online,
a file already there is kept when its size and, if the listing gives one, its sha256 match.
Older layouts are still found (and then used instead): `models/{owner}/{name with . as ___}/{path}`,
`hub/models/{owner}/{name___}/...`, `{owner}/{name}/...` and `hub/{owner}/{name}/...`.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".onnx",
    ".h5",
    ".msgpack",
    ".pkl",
    ".npz",
)
LFS_THRESHOLD = 10 * 1024 * 1024
CHUNK = 64 * 1024
FAULT_KINDS = ("cut", "corrupt", "no_range", "status", "slow", "wrong_hash")
_BODY_KINDS = ("cut", "corrupt", "no_range")
HF_REVISIONS = ("main", "refs/heads/main")
MS_REVISIONS = ("master",)
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Fault:
    """One injected fault; `used` counts the requests it acted on."""

    kind: str
    path_glob: str
    times: int | None
    params: dict[str, Any]
    used: int = 0

    @property
    def active(self) -> bool:
        return self.times is None or self.used < self.times

    def matches(self, candidates: list[str], url_path: str) -> bool:
        if self.path_glob.startswith("/"):
            return fnmatch.fnmatchcase(url_path, self.path_glob)
        return any(fnmatch.fnmatchcase(c, self.path_glob) for c in candidates)


@dataclass
class _File:
    rel: str
    abs: str
    size: int
    mtime_ns: int
    lfs: bool


@dataclass
class _Repo:
    owner: str
    name: str
    files: dict[str, _File]
    dirs: list[str]
    commit: str = ""
    mtime: float = 0.0

    @property
    def repo_id(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class _Faults:
    """The faults acting on one response."""

    status: Fault | None = None
    slow: Fault | None = None
    chunk_delay: float = 0.0
    cut: Fault | None = None
    corrupt: Fault | None = None
    no_range: bool = False
    applied: list[str] = field(default_factory=list)


class _HTTPError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer text of a file (its git blob is what the Hub's `oid` names)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _wrong(digest: str) -> str:
    h = hashlib.sha256 if len(digest) == 64 else hashlib.sha1
    return h(b"hubserver-wrong-hash:" + digest.encode()).hexdigest()


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end inclusive), "unsatisfiable", or None (no range, or one to ignore)."""
    if not header:
        return None
    header = header.strip()
    if not header.lower().startswith("bytes=") or "," in header:
        return None
    spec = header[6:].strip()
    first, sep, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if (
        not sep
        or (first and not first.isdigit())
        or (last and not last.isdigit())
        or (not first and not last)
    ):
        return None
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _content_type(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        return "application/json; charset=utf-8"
    if suffix in (".md", ".txt", ".py", ".yaml", ".yml", ".gitattributes", ".csv"):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _disposition(rel: str, kind: str = "inline") -> str:
    base = rel.rsplit("/", 1)[-1]
    ascii_name = base.encode("ascii", "replace").decode().replace('"', "_")
    return f"{kind}; filename*=UTF-8''{quote(base)}; filename=\"{ascii_name}\";"


class HubServer:
    """Both hubs' protocols over the repos under `root`; see the module docstring."""

    def __init__(
        self,
        root: Path | str,
        *,
        sha256: Mapping[str, str] | None = None,
        port: int = 0,
        separate_cdn: bool = True,
        lfs_threshold: int = LFS_THRESHOLD,
        tree_page_size: int = 1000,
        ms_files_limit: int = 3000,
        models_page_size: int = 1000,
    ) -> None:
        self.root = Path(root).resolve()
        self.sha256_overrides = dict(sha256 or {})
        self.lfs_threshold = lfs_threshold
        self.tree_page_size = tree_page_size
        self.ms_files_limit = ms_files_limit
        self.models_page_size = models_page_size
        self.require_token: str | None = None
        self._requests: list[dict[str, Any]] = []
        self._in_flight = 0
        self._settled = threading.Condition()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._hash_cache: dict[tuple[str, int, int, str], str] = {}
        self._hash_locks: dict[tuple[str, int, int, str], threading.Lock] = {}
        self._threads: list[threading.Thread] = []
        self._servers: list[ThreadingHTTPServer] = []
        self._hub_httpd = self._make_server(port, "hub")
        self.url = f"http://127.0.0.1:{self._hub_httpd.server_address[1]}"
        if separate_cdn:
            cdn_httpd = self._make_server(0, "cdn")
            self.cdn_url = f"http://127.0.0.1:{cdn_httpd.server_address[1]}"
        else:
            self.cdn_url = self.url
        self.separate_cdn = separate_cdn
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def _make_server(self, port: int, role: str) -> ThreadingHTTPServer:
        handler = type(f"_{role.title()}Handler", (_Handler,), {"hub": self, "role": role})
        httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._servers.append(httpd)
        return httpd

    def start(self) -> HubServer:
        if not self._started:
            for httpd in self._servers:
                t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
                t.start()
                self._threads.append(t)
            self._started = True
        return self

    def stop(self) -> None:
        for httpd in self._servers:
            if self._started:
                httpd.shutdown()
            httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._started = False

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ public helpers

    def env(self, cache_dir: Path | str | None = None, token: str | None = None) -> dict[str, str]:
        """Environment variables that point both official clients at this server."""
        env = {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_SYMLINKS_WARNING": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_OFFLINE": "0",
            "HUGGINGFACE_CO_STAGING": "0",
            "MODELSCOPE_ENDPOINT": self.url,
            "MODELSCOPE_DOWNLOAD_INTRA_CLOUD": "false",
            "MODELSCOPE_DOWNLOAD_INTER_CLOUD_REGIONS": "",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        if cache_dir is not None:
            base = Path(cache_dir)
            env["HF_HOME"] = str(base / "huggingface")
            env["MODELSCOPE_CACHE"] = str(base / "modelscope")
            env["MODELSCOPE_HOME"] = str(base / "modelscope-home")
        if token is not None:
            env["HF_TOKEN"] = token
            env["MODELSCOPE_API_TOKEN"] = token
        return env

    def commit(self, owner_name: str) -> str:
        """The commit id served for `owner/name` now."""
        owner, _, name = owner_name.partition("/")
        repo = self._scan(owner, name)
        if repo is None:
            raise KeyError(f"no repo {owner_name!r} under {self.root}")
        return repo.commit

    def add_fault(self, kind: str, path_glob: str = "*", times: int | None = 1, **params: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        if kind == "cut" and "after" not in params:
            raise ValueError("cut needs after=N (body bytes sent before the connection is closed)")
        if kind == "status" and "code" not in params:
            raise ValueError("status needs code=")
        if kind == "slow" and "delay" not in params:
            raise ValueError("slow needs delay= (seconds)")
        fault = Fault(kind, path_glob, times, dict(params))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The requests recorded so far, once every handler now running has recorded its own.

        A client may see a response end (or a cut connection) a moment before the handler's
        record is appended, so reading without waiting would race.
        """
        with self._settled:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout=5)
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._settled:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout=5)
            self._requests.clear()

    # ------------------------------------------------------------------ faults

    def _take(
        self, kind: str, candidates: list[str], url_path: str, *, scope: str, has_body: bool = True
    ) -> Fault | None:
        """Use up and return the first active fault of `kind` acting on this request.

        scope "request": the URL-glob faults that act on any request (status, slow before the response);
        scope "content": the faults acting on a file-content response (URL-glob body faults included).
        """
        with self._lock:
            for fault in self._faults:
                if fault.kind != kind or not fault.active:
                    continue
                url_glob = fault.path_glob.startswith("/")
                body_kind = kind in _BODY_KINDS or (kind == "slow" and bool(fault.params.get("per_chunk")))
                if scope == "request":
                    if not url_glob or body_kind:
                        continue
                elif (url_glob and not body_kind) or (body_kind and not has_body):
                    continue
                if fault.matches(candidates, url_path):
                    fault.used += 1
                    return fault
        return None

    def _wrong_hash_faults(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.kind == "wrong_hash" and f.active]

    def _use(self, faults: set[int], pool: list[Fault]) -> None:
        with self._lock:
            for f in pool:
                if id(f) in faults:
                    f.used += 1

    # ------------------------------------------------------------------ repos and hashes

    def _repo_dir(self, owner: str, name: str) -> Path | None:
        for part in (owner, name):
            if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
                return None
        path = self.root / owner / name
        return path if path.is_dir() else None

    def _scan(self, owner: str, name: str) -> _Repo | None:
        repo_dir = self._repo_dir(owner, name)
        if repo_dir is None:
            return None
        files: dict[str, _File] = {}
        dirs: list[str] = []
        newest = 0.0
        for dirpath, dirnames, filenames in os.walk(repo_dir):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, repo_dir).replace(os.sep, "/")
            for d in dirnames:
                dirs.append(d if rel_dir == "." else f"{rel_dir}/{d}")
            for fn in filenames:
                abs_path = os.path.join(dirpath, fn)
                try:
                    st = os.stat(abs_path)
                except OSError:
                    continue
                if not os.path.isfile(abs_path):
                    continue
                rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
                lfs = st.st_size > self.lfs_threshold or fn.lower().endswith(LFS_SUFFIXES)
                files[rel] = _File(rel, abs_path, st.st_size, st.st_mtime_ns, lfs)
                newest = max(newest, st.st_mtime)
        repo = _Repo(owner, name, dict(sorted(files.items())), sorted(dirs), mtime=newest or time.time())
        h = hashlib.sha1()
        for f in repo.files.values():
            ident = str(f.mtime_ns) if f.lfs else self._git_sha1(f)
            h.update(f"{f.rel}\0{f.size}\0{ident}\n".encode())
        repo.commit = h.hexdigest()
        return repo

    def _hash(self, f: _File, algo: str) -> str:
        key = (f.abs, f.size, f.mtime_ns, algo)
        with self._lock:
            if key in self._hash_cache:
                return self._hash_cache[key]
            key_lock = self._hash_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._hash_cache:
                    return self._hash_cache[key]
            h = hashlib.sha256() if algo == "sha256" else hashlib.sha1(b"blob %d\0" % f.size)
            fd = os.open(f.abs, os.O_RDONLY)
            try:
                pos = 0
                while pos < f.size:
                    block = os.pread(fd, min(1 << 20, f.size - pos), pos)
                    if not block:
                        break
                    h.update(block)
                    pos += len(block)
            finally:
                os.close(fd)
            digest = h.hexdigest()
            with self._lock:
                self._hash_cache[key] = digest
            return digest

    def _sha256(self, repo: _Repo, f: _File) -> str:
        override = self.sha256_overrides.get(f"{repo.repo_id}/{f.rel}") or self.sha256_overrides.get(f.rel)
        return override.lower() if override else self._hash(f, "sha256")

    def _git_sha1(self, f: _File) -> str:
        return self._hash(f, "sha1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"
    timeout = 60
    hub: HubServer
    role: str

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message or _REASONS.get(code))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        with self.hub._settled:
            self.hub._in_flight += 1
        self._method = method
        self._status = 0
        self._sent = 0
        self._applied: list[str] = []
        self._request_id = uuid.uuid4().hex
        self._proto = "hf"
        try:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                self._body_in = self.rfile.read(length) if length > 0 else b""
                self._route()
            except _HTTPError as err:
                self._send_json(err.status, err.body, err.headers)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            record = {
                "method": method,
                "path": self.path,
                "range": self.headers.get("Range"),
                "status": self._status,
                "body_bytes_sent": self._sent,
                "authorization": self.headers.get("Authorization") is not None,
                "server": self.role,
                "faults": list(self._applied),
            }
            with self.hub._settled:
                self.hub._requests.append(record)
                self.hub._in_flight -= 1
                self.hub._settled.notify_all()

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", self._request_id)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self._method != "HEAD":
            self.wfile.write(data)
            self._sent += len(data)

    # ------------------------------------------------------------------ errors of each hub

    def _hf_error(self, status: int, code: str | None, message: str, **headers: str) -> _HTTPError:
        hdrs = {"X-Error-Message": message, **headers}
        if code:
            hdrs["X-Error-Code"] = code
        return _HTTPError(status, {"error": message}, hdrs)

    def _ms_error(self, status: int, message: str, code: int | None = None) -> _HTTPError:
        body = {
            "Code": code if code is not None else status,
            "Message": message,
            "RequestId": self._request_id,
            "Success": False,
        }
        return _HTTPError(status, body)

    def _not_found_repo(self, repo_id: str) -> _HTTPError:
        if self._proto == "ms":
            return self._ms_error(404, f"Model does not exist: {repo_id}")
        status = 404 if self.headers.get("Authorization") else 401
        return self._hf_error(status, "RepoNotFound", "Repository not found")

    # ------------------------------------------------------------------ auth

    def _check_token(self, repo_id: str) -> None:
        need = self.hub.require_token
        if not need:
            return
        auth = self.headers.get("Authorization")
        if auth == f"Bearer {need}":
            return
        if self._proto == "ms":
            cookies = self.headers.get("Cookie") or ""
            if f"m_session_id={need}" in [c.strip() for c in cookies.split(";")]:
                return
            raise self._ms_error(401, "Unauthorized: a valid token is required")
        if auth:
            raise self._hf_error(401, None, "Invalid credentials in Authorization header")
        raise self._hf_error(
            401,
            "GatedRepo",
            f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to "
            "access it. Please log in.",
        )

    # ------------------------------------------------------------------ routing

    def _route(self) -> None:
        split = urlsplit(self.path)
        raw = split.path.split("/")[1:]
        segs = [unquote(s) for s in raw]
        self._url_path = split.path
        self._query = parse_qs(split.query, keep_blank_values=True)
        method = self._method
        is_cdn = len(segs) >= 4 and segs[0] == "cdn" and (self.role == "cdn" or not self.hub.separate_cdn)
        if is_cdn:
            self._proto = "cdn"
        elif segs[:2] in (["api", "v1"], ["openapi", "v1"]):
            self._proto = "ms"
        self._api_faults()
        if self.role == "cdn" or is_cdn:
            if is_cdn and method in ("GET", "HEAD"):
                return self._cdn(segs[1], segs[2])
            raise _HTTPError(404, {"error": "NoSuchKey"})
        if segs in (["api", "models"], ["api", "models", ""]) and method == "GET":
            return self._hf_list_models()
        if segs in (["openapi", "v1", "models"], ["openapi", "v1", "models", ""]) and method == "GET":
            return self._ms_list_models()
        if segs[:2] == ["api", "agent-harnesses"] and method == "GET":
            return self._send_json(200, {"standardEnvVars": [], "harnesses": {}})
        if len(segs) >= 4 and segs[0] == "api" and segs[1] == "models":
            return self._hf_api(segs[2], segs[3], raw[4:], method)
        if segs[:2] == ["api", "v1"]:
            if segs[2:4] == ["repos", "internalAccelerationInfo"] and method == "GET":
                body = {"Code": 200, "Data": {"InternalRegionQueryAddress": ""}, "Success": True}
                return self._send_json(200, body)
            if len(segs) >= 5 and segs[2] == "models":
                return self._ms_api(segs[3], segs[4], segs[5:], method)
            raise self._ms_error(404, "Not Found")
        if len(segs) >= 5 and segs[:2] == ["openapi", "v1"] and segs[2] == "models" and method == "GET":
            return self._openapi_model(segs[3], segs[4])
        if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            rev = segs[3]
            path = "/".join(unquote(s) for s in raw[4:])
            return self._hf_resolve(segs[0], segs[1], rev, path)
        raise self._hf_error(404, None, "Sorry, we can't find the page you are looking for.")

    def _owner_repos(self, owner: str) -> list[_Repo]:
        """The repos of one owner (every owner's when `owner` is empty), sorted by id."""
        if owner in (".", "..") or "/" in owner or "\\" in owner or "\0" in owner:
            return []
        owners = [owner] if owner else sorted(p.name for p in self.hub.root.iterdir() if p.is_dir())
        repos = []
        for who in owners:
            base = self.hub.root / who
            names = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
            repos.extend(r for r in (self.hub._scan(who, n) for n in names) if r is not None)
        return repos

    def _hf_list_models(self) -> None:
        repos = self._owner_repos(self._q("author"))
        page_size = self.hub.models_page_size
        cursor = self._q("cursor")
        start = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        body = [
            {
                "_id": repo.commit[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.owner,
                "sha": repo.commit,
                "private": bool(self.hub.require_token),
                "lastModified": _iso(repo.mtime),
                "createdAt": _iso(repo.mtime),
                "downloads": 0,
                "likes": 0,
                "tags": [],
            }
            for repo in repos[start : start + page_size]
        ]
        headers: dict[str, str] = {}
        if start + page_size < len(repos):
            nxt = base64.urlsafe_b64encode(str(start + page_size).encode()).decode()
            query = urlencode({"author": self._q("author"), "cursor": nxt})
            headers["Link"] = f'<{self.hub.url}{self._url_path}?{query}>; rel="next"'
        self._send_json(200, body, headers)

    def _ms_list_models(self) -> None:
        repos = self._owner_repos(self._q("owner"))
        number = max(int(self._q("page_number") or 1), 1)
        size = max(int(self._q("page_size") or 10), 1)
        models = [self._openapi_entry(repo) for repo in repos[(number - 1) * size : number * size]]
        data = {"models": models, "total_count": len(repos), "page_number": number, "page_size": size}
        self._send_json(200, {"success": True, "data": data, "request_id": self._request_id})

    def _api_faults(self) -> None:
        """Faults with a URL-path glob act on any request."""
        fault = self.hub._take("status", [], self._url_path, scope="request")
        if fault is not None:
            self._applied.append("status")
            raise self._status_fault(fault, None, None)
        slow = self.hub._take("slow", [], self._url_path, scope="request")
        if slow is not None:
            self._applied.append("slow")
            time.sleep(float(slow.params["delay"]))

    def _status_fault(self, fault: Fault, repo: _Repo | None, f: _File | None) -> _HTTPError:
        code = int(fault.params["code"])
        message = fault.params.get("message")
        extra: dict[str, str] = {}
        if fault.params.get("retry_after") is not None:
            extra["Retry-After"] = str(fault.params["retry_after"])
        if self._proto == "ms":
            err = self._ms_error(code, message or f"injected HTTP {code}")
            err.headers.update(extra)
            return err
        if self._proto == "cdn":
            return _HTTPError(code, {"error": message or f"injected HTTP {code}"}, extra)
        repo_id = repo.repo_id if repo else "this repo"
        error_code = fault.params.get("error_code")
        if code == 401:
            error_code = error_code or "GatedRepo"
            message = message or (
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in."
            )
        elif code == 403:
            error_code = error_code or "GatedRepo"
            message = message or (
                f"Access to model {repo_id} is restricted and you are not in the authorized list. "
                f"Visit {self.hub.url}/{repo_id} to ask for access."
            )
        elif code == 404:
            error_code = error_code or "EntryNotFound"
            message = message or "Entry not found"
            if repo is not None:
                extra["X-Repo-Commit"] = repo.commit
        else:
            message = message or _REASONS.get(code, f"HTTP {code}")
        return self._hf_error(code, error_code, message, **extra)

    # ------------------------------------------------------------------ Hugging Face API

    def _repo(self, owner: str, name: str) -> _Repo:
        repo_id = f"{owner}/{name}"
        if self.hub._repo_dir(owner, name) is None:
            raise self._not_found_repo(repo_id)
        self._check_token(repo_id)
        repo = self.hub._scan(owner, name)
        if repo is None:
            raise self._not_found_repo(repo_id)
        return repo

    def _hf_rev(self, repo: _Repo, rev: str) -> None:
        if rev not in HF_REVISIONS and rev != repo.commit:
            raise self._hf_error(404, "RevisionNotFound", f"Invalid rev id: {rev}")

    def _q(self, key: str, default: str = "") -> str:
        values = self._query.get(key)
        return values[0] if values else default

    def _qbool(self, key: str) -> bool:
        return self._q(key).lower() in ("1", "true", "yes")

    def _hf_api(self, owner: str, name: str, rest_raw: list[str], method: str) -> None:
        rest = [unquote(s) for s in rest_raw]
        if method == "POST" and len(rest) >= 2 and rest[0] == "paths-info":
            repo = self._repo(owner, name)
            self._hf_rev(repo, "/".join(rest[1:]))
            return self._hf_paths_info(repo)
        if method != "GET":
            raise self._hf_error(405, None, "Method not allowed")
        repo = self._repo(owner, name)
        if not rest:
            return self._hf_model_info(repo)
        if rest[0] == "revision" and len(rest) >= 2:
            rev = "/".join(rest[1:])
            self._hf_rev(repo, rev)
            return self._hf_model_info(repo)
        if rest[0] == "tree" and len(rest) >= 2:
            rev = rest[1]
            self._hf_rev(repo, rev)
            path = "/".join(rest[2:]).strip("/")
            return self._hf_tree(repo, rev, path)
        if rest == ["refs"]:
            branch = {"name": "main", "ref": "refs/heads/main", "targetCommit": repo.commit}
            body: dict[str, Any] = {"branches": [branch], "converts": [], "tags": []}
            if self._q("include_prs"):
                body["pullRequests"] = []
            return self._send_json(200, body)
        raise self._hf_error(404, None, "Sorry, we can't find the page you are looking for.")

    def _hf_file_entry(self, repo: _Repo, f: _File, wrong: bool, expand: bool) -> dict[str, Any]:
        if f.lfs:
            sha = self.hub._sha256(repo, f)
            if wrong:
                sha = _wrong(sha)
            pointer = lfs_pointer(sha, f.size)
            entry: dict[str, Any] = {
                "type": "file",
                "oid": _git_blob_sha1(pointer),
                "size": f.size,
                "lfs": {"oid": sha, "size": f.size, "pointerSize": len(pointer)},
                "path": f.rel,
            }
        else:
            oid = self.hub._git_sha1(f)
            entry = {"type": "file", "oid": _wrong(oid) if wrong else oid, "size": f.size, "path": f.rel}
        if expand:
            entry["lastCommit"] = self._last_commit(repo, f.mtime_ns / 1e9)
            entry["securityFileStatus"] = {
                "status": "safe",
                "avScan": {"virusFound": False, "virusNames": None},
                "pickleImportScan": None,
            }
        return entry

    def _last_commit(self, repo: _Repo, ts: float) -> dict[str, str]:
        return {"id": repo.commit, "title": "hubserver stand-in commit", "date": _iso(ts)}

    def _hf_dir_entry(self, repo: _Repo, rel: str, expand: bool) -> dict[str, Any]:
        oid = hashlib.sha1(f"tree\0{repo.commit}\0{rel}".encode()).hexdigest()
        entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": rel}
        if expand:
            entry["lastCommit"] = self._last_commit(repo, repo.mtime)
        return entry

    def _wrong_set(self, repo: _Repo, files: list[_File]) -> tuple[set[str], list[Fault]]:
        """Files of this response whose hash is to be misreported, and the faults to charge."""
        pool = self.hub._wrong_hash_faults()
        wrong: set[str] = set()
        used: set[int] = set()
        for f in files:
            cands = [f.rel, f"{repo.repo_id}/{f.rel}"]
            for fault in pool:
                if fault.matches(cands, self._url_path):
                    wrong.add(f.rel)
                    used.add(id(fault))
                    break
        if used:
            self.hub._use(used, pool)
            self._applied.append("wrong_hash")
        return wrong, pool

    def _hf_tree(self, repo: _Repo, rev: str, path: str) -> None:
        recursive = self._qbool("recursive")
        expand = self._qbool("expand")
        if path and path not in repo.dirs:
            raise self._hf_error(
                404, "EntryNotFound", f"{path} does not exist on {rev!r}", **{"X-Repo-Commit": repo.commit}
            )
        prefix = f"{path}/" if path else ""
        items: list[tuple[str, _File | None]] = []
        for d in repo.dirs:
            if d.startswith(prefix) and (recursive or "/" not in d[len(prefix) :]):
                items.append((d, None))
        for rel, f in repo.files.items():
            if rel.startswith(prefix) and (recursive or "/" not in rel[len(prefix) :]):
                items.append((rel, f))
        items.sort(key=lambda item: item[0])
        page_size = 50 if expand else self.hub.tree_page_size
        cursor = self._q("cursor")
        start = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        page = items[start : start + page_size]
        wrong, _ = self._wrong_set(repo, [f for _, f in page if f is not None])
        body = [
            self._hf_dir_entry(repo, rel, expand)
            if f is None
            else self._hf_file_entry(repo, f, rel in wrong, expand)
            for rel, f in page
        ]
        headers: dict[str, str] = {}
        if start + page_size < len(items):
            nxt = base64.urlsafe_b64encode(str(start + page_size).encode()).decode()
            query = urlencode({"recursive": str(recursive), "expand": str(expand), "cursor": nxt})
            headers["Link"] = f'<{self.hub.url}{self._url_path}?{query}>; rel="next"'
        self._send_json(200, body, headers)

    def _hf_paths_info(self, repo: _Repo) -> None:
        form = parse_qs(self._body_in.decode(errors="replace"), keep_blank_values=True)
        paths = [p.strip("/") for p in form.get("paths", [])]
        expand = (form.get("expand") or ["false"])[0].lower() in ("1", "true")
        files = [repo.files[p] for p in paths if p in repo.files]
        wrong, _ = self._wrong_set(repo, files)
        body = []
        for p in paths:
            if p in repo.files:
                body.append(self._hf_file_entry(repo, repo.files[p], p in wrong, expand))
            elif p in repo.dirs:
                body.append(self._hf_dir_entry(repo, p, expand))
        self._send_json(200, body)

    def _hf_model_info(self, repo: _Repo) -> None:
        blobs = self._qbool("blobs")
        expand = self._query.get("expand", []) + self._query.get("expand[]", [])
        files = list(repo.files.values())
        wrong, _ = self._wrong_set(repo, files) if blobs else (set(), [])
        siblings = []
        for f in files:
            sib: dict[str, Any] = {"rfilename": f.rel}
            if blobs:
                entry = self._hf_file_entry(repo, f, f.rel in wrong, False)
                sib["size"] = f.size
                sib["blobId"] = entry["oid"]
                if "lfs" in entry:
                    lfs = entry["lfs"]
                    sib["lfs"] = {
                        "size": lfs["size"],
                        "sha256": lfs["oid"],
                        "pointerSize": lfs["pointerSize"],
                    }
            siblings.append(sib)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.owner,
            "sha": repo.commit,
            "lastModified": _iso(repo.mtime),
            "createdAt": _iso(repo.mtime),
            "private": bool(self.hub.require_token),
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "library_name": None,
            "siblings": siblings,
            "spaces": [],
            "usedStorage": sum(f.size for f in files),
        }
        config = self._config_summary(repo)
        if config is not None:
            info["config"] = config
        safetensors = self._safetensors_summary(repo)
        if safetensors is not None:
            info["safetensors"] = safetensors
        if expand:
            info = {k: v for k, v in info.items() if k in ("_id", "id") or k in expand}
        self._send_json(200, info)

    def _config_summary(self, repo: _Repo) -> dict[str, Any] | None:
        f = repo.files.get("config.json")
        if f is None or f.size > 1 << 20:
            return None
        try:
            data = json.loads(Path(f.abs).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        keys = ("architectures", "model_type", "quantization_config")
        return {k: data[k] for k in keys if k in data}

    def _safetensors_summary(self, repo: _Repo) -> dict[str, Any] | None:
        params: dict[str, int] = {}
        for f in repo.files.values():
            if "/" in f.rel or not f.rel.endswith(".safetensors") or f.size < 8:
                continue
            try:
                with open(f.abs, "rb") as fh:
                    (n,) = struct.unpack("<Q", fh.read(8))
                    if n > min(f.size - 8, 100_000_000):
                        continue
                    header = json.loads(fh.read(n))
            except (OSError, ValueError, struct.error):
                continue
            for key, value in header.items():
                if key == "__metadata__" or not isinstance(value, dict):
                    continue
                count = 1
                for dim in value.get("shape", []):
                    count *= int(dim)
                dtype = str(value.get("dtype"))
                params[dtype] = params.get(dtype, 0) + count
        if not params:
            return None
        return {"parameters": params, "total": sum(params.values())}

    # ------------------------------------------------------------------ file content

    def _content_faults(self, candidates: list[str], has_body: bool) -> _Faults:
        """Take the faults that act on this file-content response (status first: it ends it)."""
        out = _Faults()

        def take(kind: str) -> Fault | None:
            fault = self.hub._take(kind, candidates, self._url_path, scope="content", has_body=has_body)
            if fault is not None:
                out.applied.append(kind)
            return fault

        out.status = take("status")
        if out.status is not None:
            return out
        out.slow = take("slow")
        if out.slow is not None and out.slow.params.get("per_chunk"):
            out.chunk_delay = float(out.slow.params["delay"])
        out.no_range = take("no_range") is not None
        out.cut = take("cut")
        out.corrupt = take("corrupt")
        return out

    def _hf_resolve(self, owner: str, name: str, rev: str, path: str) -> None:
        repo = self._repo(owner, name)
        self._hf_rev(repo, rev)
        f = repo.files.get(path)
        if f is None:
            raise self._hf_error(404, "EntryNotFound", "Entry not found", **{"X-Repo-Commit": repo.commit})
        candidates = [f.rel, f"{repo.repo_id}/{f.rel}"]
        redirect = f.lfs
        faults = self._content_faults(candidates, has_body=not redirect and self._method == "GET")
        self._applied.extend(faults.applied)
        if faults.status is not None:
            raise self._status_fault(faults.status, repo, f)
        if faults.slow is not None and not faults.chunk_delay:
            time.sleep(float(faults.slow.params["delay"]))
        wrong, _ = self._wrong_set(repo, [f])
        common = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes", "X-Request-Id": self._request_id}
        if redirect:
            sha = self.hub._sha256(repo, f)
            if f.rel in wrong:
                sha = _wrong(sha)
            expires = int(time.time()) + 3600
            query = urlencode({"file": f.rel, "Expires": expires, "Signature": "hubserver-stand-in"})
            location = f"{self.hub.cdn_url}/cdn/{quote(repo.owner)}/{quote(repo.name)}/{sha}?{query}"
            self.send_response(302)
            for k, v in common.items():
                self.send_header(k, v)
            self.send_header("ETag", f'"{sha}"')
            self.send_header("X-Linked-Etag", f'"{sha}"')
            self.send_header("X-Linked-Size", str(f.size))
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        oid = self.hub._git_sha1(f)
        if f.rel in wrong:
            oid = _wrong(oid)
        headers = {**common, "ETag": f'"{oid}"', "Content-Disposition": _disposition(f.rel)}
        self._send_file(f, headers, faults)

    def _cdn(self, owner: str, name: str) -> None:
        repo = self.hub._scan(owner, name) if self.hub._repo_dir(owner, name) else None
        rel = self._q("file")
        f = repo.files.get(rel) if repo is not None else None
        if repo is None or f is None:
            raise _HTTPError(404, {"error": "NoSuchKey"})
        candidates = [f.rel, f"{repo.repo_id}/{f.rel}"]
        faults = self._content_faults(candidates, has_body=self._method == "GET")
        self._applied.extend(faults.applied)
        if faults.status is not None:
            raise self._status_fault(faults.status, repo, f)
        if faults.slow is not None and not faults.chunk_delay:
            time.sleep(float(faults.slow.params["delay"]))
        wrong, _ = self._wrong_set(repo, [f])
        sha = self.hub._sha256(repo, f)
        if f.rel in wrong:
            sha = _wrong(sha)
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": f'"{sha}"',
            "Content-Disposition": _disposition(f.rel),
            "X-Request-Id": self._request_id,
            "Cache-Control": "public, max-age=604800, immutable",
        }
        if not self.hub.separate_cdn:
            headers["X-Repo-Commit"] = repo.commit
        self._send_file(f, headers, faults, content_type="application/octet-stream")

    def _send_file(
        self, f: _File, headers: Mapping[str, str], faults: _Faults, content_type: str | None = None
    ) -> None:
        size = f.size
        rng = None if faults.no_range else _parse_range(self.headers.get("Range"), size)
        if rng == "unsatisfiable":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            return
        if isinstance(rng, tuple):
            start, end = rng
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            start, end = 0, size - 1
            self.send_response(200)
        length = end - start + 1
        self.send_header("Content-Type", content_type or _content_type(f.rel))
        self.send_header("Content-Length", str(length))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self._method == "HEAD" or length <= 0:
            return
        cut_after = int(faults.cut.params["after"]) if faults.cut is not None else None
        corrupt_at: int | None = None
        if faults.corrupt is not None:
            at = faults.corrupt.params.get("at")
            corrupt_at = int(at) if at is not None and start <= int(at) <= end else start + length // 2
        for chunk in self._chunks(f, start, end):
            if corrupt_at is not None and self._sent <= corrupt_at - start < self._sent + len(chunk):
                i = corrupt_at - start - self._sent
                chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
            if cut_after is not None and self._sent + len(chunk) >= cut_after:
                part = chunk[: cut_after - self._sent]
                if part:
                    self.wfile.write(part)
                    self._sent += len(part)
                assert faults.cut is not None
                return self._abort(bool(faults.cut.params.get("reset")))
            if faults.chunk_delay:
                time.sleep(faults.chunk_delay)
            self.wfile.write(chunk)
            self._sent += len(chunk)

    def _chunks(self, f: _File, start: int, end: int) -> Iterator[bytes]:
        fd = os.open(f.abs, os.O_RDONLY)
        try:
            pos = start
            while pos <= end:
                data = os.pread(fd, min(CHUNK, end + 1 - pos), pos)
                if not data:  # the file shrank under us: the client sees a short body
                    self.close_connection = True
                    return
                yield data
                pos += len(data)
        finally:
            os.close(fd)

    def _abort(self, reset: bool) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        sock = self.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ ModelScope

    def _ms_rev(self, repo: _Repo) -> str:
        rev = self._q("Revision") or "master"
        if rev not in MS_REVISIONS and rev != repo.commit:
            raise self._ms_error(404, f"Revision {rev} of model {repo.repo_id} does not exist")
        return rev

    def _ms_api(self, owner: str, name: str, rest: list[str], method: str) -> None:
        if method not in ("GET", "HEAD"):
            raise self._ms_error(405, "Method not allowed")
        repo = self._repo(owner, name)
        if not rest:
            if method != "GET":
                raise self._ms_error(405, "Method not allowed")
            return self._ms_ok(self._ms_model(repo))
        if rest == ["revisions"]:
            branch = {
                "Revision": "master",
                "CommitId": repo.commit,
                "CreatedAt": int(repo.mtime),
                "CreatedBy": repo.owner,
                "Message": "hubserver stand-in commit",
            }
            return self._ms_ok({"RevisionMap": {"Branches": [branch], "Tags": []}})
        if rest == ["repo", "files"]:
            return self._ms_files(repo)
        if rest == ["repo"]:
            return self._ms_download(repo)
        raise self._ms_error(404, "Not Found")

    def _ms_ok(self, data: Any) -> None:
        body = {
            "Code": 200,
            "Data": data,
            "Message": "success",
            "RequestId": self._request_id,
            "Success": True,
        }
        self._send_json(200, body)

    def _ms_model(self, repo: _Repo) -> dict[str, Any]:
        return {
            "Id": int(hashlib.sha1(repo.repo_id.encode()).hexdigest()[:8], 16),
            "Name": repo.name,
            "Path": repo.owner,
            "ChineseName": "",
            "Description": "hubserver stand-in",
            "Visibility": 1 if self.hub.require_token else 5,
            "Downloads": 0,
            "Stars": 0,
            "License": "",
            "Tags": [],
            "CreatedTime": int(repo.mtime),
            "LastUpdatedTime": int(repo.mtime),
            "Revision": repo.commit,
        }

    def _openapi_model(self, owner: str, name: str) -> None:
        if self.hub._repo_dir(owner, name) is None:
            body = {"success": False, "code": "NotFound", "message": "model not found"}
            raise _HTTPError(404, {**body, "request_id": self._request_id})
        data = self._openapi_entry(self._repo(owner, name))
        self._send_json(200, {"success": True, "data": data, "request_id": self._request_id})

    def _openapi_entry(self, repo: _Repo) -> dict[str, Any]:
        return {
            "id": repo.repo_id,
            "owner": repo.owner,
            "name": repo.name,
            "private": bool(self.hub.require_token),
            "downloads": 0,
            "likes": 0,
            "last_modified": _iso(repo.mtime),
        }

    def _ms_files(self, repo: _Repo) -> None:
        self._ms_rev(repo)
        recursive = self._q("Recursive").lower() in ("1", "true", "yes")
        root = self._q("Root").strip("/")
        if root and root not in repo.dirs:
            raise self._ms_error(404, f"Root {root} does not exist")
        prefix = f"{root}/" if root else ""
        entries: list[tuple[str, _File | None]] = []
        for d in repo.dirs:
            if d.startswith(prefix) and (recursive or "/" not in d[len(prefix) :]):
                entries.append((d, None))
        for rel, f in repo.files.items():
            if rel.startswith(prefix) and (recursive or "/" not in rel[len(prefix) :]):
                entries.append((rel, f))
        entries.sort(key=lambda e: e[0])
        entries = entries[: self.hub.ms_files_limit]
        wrong, _ = self._wrong_set(repo, [f for _, f in entries if f is not None])
        files = []
        for rel, f in entries:
            item: dict[str, Any] = {
                "CommitMessage": "hubserver stand-in commit",
                "CommittedDate": int((f.mtime_ns / 1e9) if f else repo.mtime),
                "CommitterName": repo.owner,
                "InCheck": False,
                "Name": rel.rsplit("/", 1)[-1],
                "Path": rel,
                "Revision": repo.commit,
            }
            if f is None:
                item.update(
                    {"Id": "", "IsLFS": False, "Mode": "40000", "Sha256": "", "Size": 0, "Type": "tree"}
                )
            else:
                sha = self.hub._sha256(repo, f)
                blob = _git_blob_sha1(lfs_pointer(sha, f.size)) if f.lfs else self.hub._git_sha1(f)
                if rel in wrong:
                    sha, blob = _wrong(sha), _wrong(blob)
                item.update({"Id": blob, "IsLFS": f.lfs, "Mode": "100644", "Sha256": sha, "Size": f.size})
                item["Type"] = "blob"
            files.append(item)
        latest = {"CommitterName": repo.owner, "CommittedDate": int(repo.mtime), "Id": repo.commit}
        self._ms_ok({"Files": files, "LatestCommitter": latest})

    def _ms_download(self, repo: _Repo) -> None:
        self._ms_rev(repo)
        path = self._q("FilePath").strip("/")
        f = repo.files.get(path)
        if f is None:
            raise self._ms_error(404, f"File {path} does not exist in model {repo.repo_id}")
        candidates = [f.rel, f"{repo.repo_id}/{f.rel}"]
        faults = self._content_faults(candidates, has_body=self._method == "GET")
        self._applied.extend(faults.applied)
        if faults.status is not None:
            raise self._status_fault(faults.status, repo, f)
        if faults.slow is not None and not faults.chunk_delay:
            time.sleep(float(faults.slow.params["delay"]))
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": _disposition(f.rel, "attachment"),
            "X-Request-Id": self._request_id,
        }
        if f.lfs:
            wrong, _ = self._wrong_set(repo, [f])
            sha = self.hub._sha256(repo, f)
            headers["X-Linked-ETag"] = f'"{_wrong(sha) if f.rel in wrong else sha}"'
        self._send_file(f, headers, faults, content_type="application/octet-stream")
