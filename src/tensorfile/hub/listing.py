"""What a hub revision holds, asked of each hub's official client: paths, sizes, hashes, commit.

Hugging Face: `HfApi.model_info(files_metadata=True)` (one request; endpoint from HF_ENDPOINT,
token from `--token`, HF_TOKEN or the stored login). ModelScope: `modelscope_hub.HubApi`'s file
listing (endpoint from MODELSCOPE_ENDPOINT, token from MODELSCOPE_API_TOKEN or the stored login).
Both answers become one `RepoListing`, and the client's exceptions become one-line `HubError`s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

from . import http
from .http import HubAuthError, HubError, HubNotFound
from .refs import HUGGINGFACE, HubRef

TOKEN_VARIABLE = {HUGGINGFACE: "HF_TOKEN", "modelscope": "MODELSCOPE_API_TOKEN"}
# A listing is several requests (pages, retries) inside the client: allow it a few read timeouts.
LISTING_DEADLINE_READS = 3

T = TypeVar("T")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a revision, as the hub lists it."""

    path: str
    size: int
    sha256: str | None = None  # LFS / Xet files on HF, every file on ModelScope
    git_sha1: str | None = None  # HF git blob id: the hash of small (non-LFS) files

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class RepoListing:
    """A repo at one revision: its files and how to fetch them."""

    ref: HubRef  # revision resolved to the name asked for (or the default branch)
    commit: str | None
    endpoint: str
    token: str | None
    files: dict[str, RemoteFile] = field(default_factory=dict)

    @property
    def token_hint(self) -> str:
        return TOKEN_VARIABLE[self.ref.hub]

    def url(self, path: str) -> str:
        """The address that serves a file's bytes (and answers Range requests)."""
        repo = self.ref.repo_id
        rev = self.commit or self.ref.revision_or_default
        if self.ref.hub == HUGGINGFACE:
            return f"{self.endpoint}/{repo}/resolve/{quote(rev, safe='')}/{quote(path)}"
        return (
            f"{self.endpoint}/api/v1/models/{repo}/repo?Revision={quote(rev, safe='')}"
            f"&FilePath={quote(path, safe='')}"
        )

    def headers(self) -> dict[str, str]:
        if not self.token:
            return {}
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.ref.hub != HUGGINGFACE:  # ModelScope's file endpoint also reads the session cookie
            headers["Cookie"] = f"m_session_id={self.token}"
        return headers


def list_repo(ref: HubRef, token: str | None = None) -> RepoListing:
    """The listing of `ref`'s repo at its revision; HubError when it cannot be had."""
    if ref.hub == HUGGINGFACE:
        return _list_huggingface(ref, token)
    return _list_modelscope(ref, token)


def _list_huggingface(ref: HubRef, token: str | None) -> RepoListing:
    import huggingface_hub
    from huggingface_hub import constants, errors

    endpoint = constants.ENDPOINT.rstrip("/")
    token = token or huggingface_hub.get_token()
    api = huggingface_hub.HfApi(endpoint=endpoint, token=token or False)
    where = f"hf://{ref.repo_id}"
    try:
        info = api.model_info(
            ref.repo_id, revision=ref.revision, files_metadata=True, timeout=http.READ_TIMEOUT
        )
    except errors.GatedRepoError:
        raise HubAuthError(
            "this repo is gated: accept its terms on the hub and set HF_TOKEN", where
        ) from None
    except errors.RevisionNotFoundError:
        raise HubNotFound(f"no revision {ref.revision!r} in this repo", where) from None
    except errors.RepositoryNotFoundError:
        hint = "" if token else " (if it is private, set HF_TOKEN or pass --token)"
        raise HubNotFound(f"no such model repo on Hugging Face{hint}", where) from None
    except Exception as exc:
        raise hf_failure(exc, endpoint, where) from None
    files: dict[str, RemoteFile] = {}
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        files[sibling.rfilename] = RemoteFile(
            path=sibling.rfilename,
            size=int(sibling.size if sibling.size is not None else (lfs.size if lfs else 0)),
            sha256=lfs.sha256 if lfs else None,
            git_sha1=None if lfs else sibling.blob_id,
        )
    resolved = HubRef(ref.hub, ref.repo_id, ref.revision, ref.path)
    return RepoListing(resolved, info.sha, endpoint, token or None, files)


def _list_modelscope(ref: HubRef, token: str | None) -> RepoListing:
    from modelscope_hub import errors
    from modelscope_hub.api import HubApi

    api = HubApi(token=token) if token else HubApi()
    endpoint = api._config.endpoint.rstrip("/") if hasattr(api, "_config") else _ms_endpoint()
    token = token or getattr(getattr(api, "_config", None), "token", None)
    where = f"ms://{ref.repo_id}"
    try:
        revision = ref.revision_or_default
        entries = _within_deadline(
            lambda: api.list_repo_files(ref.repo_id, "model", revision=revision, recursive=True), where
        )
    except errors.NotExistError:
        raise HubNotFound(
            f"no such model repo or revision {ref.revision_or_default!r} on ModelScope", where
        ) from None
    except Exception as exc:
        raise ms_failure(exc, endpoint, where) from None
    files: dict[str, RemoteFile] = {}
    for entry in entries:
        if (entry.type or "blob") != "blob" or not entry.path:
            continue
        files[entry.path] = RemoteFile(
            path=entry.path, size=int(entry.size or 0), sha256=entry.sha256 or None
        )
    resolved = HubRef(ref.hub, ref.repo_id, ref.revision, ref.path)
    return RepoListing(resolved, None, endpoint, token or None, files)


def hf_failure(exc: Exception, endpoint: str, where: str) -> HubError:
    """One line for what huggingface_hub raised: offline mode, an HTTP status, or no answer."""
    from huggingface_hub import errors

    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return HubError("HF_HUB_OFFLINE is set: the hub is not asked", where)
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return HubAuthError("access denied (set HF_TOKEN or pass --token)", where)
        return HubError(f"the hub answered HTTP {status}", where)
    return _unreachable(exc, endpoint, where)  # transport errors of the client's HTTP library


def ms_failure(exc: Exception, endpoint: str, where: str) -> HubError:
    """One line for what modelscope_hub raised: refused, an API error, or no answer."""
    from modelscope_hub import errors

    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, (errors.AuthenticationError, errors.PermissionDeniedError)):
        return HubAuthError("access denied (set MODELSCOPE_API_TOKEN or pass --token)", where)
    if isinstance(exc, errors.APIError):
        return HubError(f"the hub refused the listing ({_first_line(exc)})", where)
    return _unreachable(exc, endpoint, where)  # NetworkError and the transport errors under it


def _within_deadline(call: Callable[[], T], where: str) -> T:
    """Run a client call with a bound on its total time and its log lines kept off stderr.

    modelscope_hub retries a slow listing page by itself (15 s a page, four attempts, warnings on
    its own stream handler), huggingface_hub a 5xx answer (five times, 1 to 8 s apart); a user
    asked for one line within a bounded time, so the call runs in a daemon thread that is abandoned
    when the deadline passes.
    """
    deadline = LISTING_DEADLINE_READS * http.READ_TIMEOUT + http.CONNECT_TIMEOUT
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    # both clients log their retries ("Retrying in 1s", "HTTP Error 500 thrown") to stderr
    client_logs = [logging.getLogger(name) for name in ("modelscope_hub", "huggingface_hub")]
    levels = [log.level for log in client_logs]
    for log in client_logs:
        log.setLevel(logging.CRITICAL)
    try:
        worker = threading.Thread(target=run, name="tensorfile-listing", daemon=True)
        worker.start()
        worker.join(deadline)
    finally:
        for log, level in zip(client_logs, levels, strict=True):
            log.setLevel(level)
    if worker.is_alive():
        raise HubError(f"no listing within {deadline:g} s (timeout); is the hub reachable?", where)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _ms_endpoint() -> str:
    from modelscope_hub.config import get_default_config

    return str(get_default_config().endpoint).rstrip("/")


def _unreachable(exc: Exception, endpoint: str, where: str) -> HubError:
    text = _first_line(exc)
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return HubError(f"no answer from {endpoint} within {http.READ_TIMEOUT:g} s (timeout)", where)
    return HubError(f"cannot reach {endpoint} ({text})", where)


def _first_line(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
