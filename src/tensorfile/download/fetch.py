"""One file from the hub into a staging name: resumable, hashed while it streams, verified.

The bytes go to `<staging>/<path>.part`; a cut connection resumes there with a Range request (in
this run, up to a few times, and in the next run from whatever the part file holds). Only when
the size and the hub's hash both match is the part renamed to `<staging>/<path>`. Neither
official client re-hashes Hugging Face downloads (huggingface_hub#2364, #3643); we always do:
sha256 for LFS/Xet files and every ModelScope file, the git blob sha1 for small HF files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..hub import http
from ..hub.http import HubError
from ..hub.listing import RemoteFile, RepoListing

CHUNK = 1024 * 1024
RESUMES = 5  # cut connections survived per attempt


class VerifyError(HubError):
    """The bytes differ from what the hub says the file is."""


@dataclass
class Fetched:
    path: str
    staged: Path
    size: int
    hash_kind: str  # sha256 | git-sha1 | size-only
    digest: str
    resumed_from: int  # bytes the part file already held at the start
    fetched: int  # body bytes received in this run
    attempts: int


Progress = Callable[[int], None]  # called with the number of new bytes


def expected_hash(file: RemoteFile) -> tuple[str, str | None]:
    if file.sha256:
        return "sha256", file.sha256.lower()
    if file.git_sha1:
        return "git-sha1", file.git_sha1.lower()
    return "size-only", None


def _hasher(kind: str, size: int) -> hashlib._Hash:
    if kind == "git-sha1":
        h = hashlib.sha1(usedforsecurity=False)
        h.update(f"blob {size}\0".encode())
        return h
    return hashlib.sha256()


class Cancelled(Exception):
    """The run was interrupted; the part file stays for a resume."""


def fetch_file(
    listing: RepoListing,
    file: RemoteFile,
    staging: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Fetched:
    """Download `file` to `staging/<path>`, verified; one fresh retry after a mismatch, then
    VerifyError naming the file (and nothing left behind)."""
    staged = staging / file.path
    part = staged.with_name(staged.name + ".part")
    staged.parent.mkdir(parents=True, exist_ok=True)
    kind, want = expected_hash(file)
    fetched_total = 0
    resumed_from = part.stat().st_size if part.is_file() else 0
    for attempt in (1, 2):
        digest, fetched = _download(listing, file, part, kind, progress, cancel)
        fetched_total += fetched
        problem = _problem(part, file, kind, want, digest)
        if problem is None:
            os.replace(part, staged)
            return Fetched(file.path, staged, file.size, kind, digest, resumed_from, fetched_total, attempt)
        with contextlib.suppress(OSError):
            part.unlink()
        if progress is not None:
            progress(-fetched)  # the bar goes back: these bytes come again
        resumed_from = 0
        if attempt == 2:
            raise VerifyError(f"{problem} after a fresh second download; nothing was kept", file.path)
    raise AssertionError("unreachable")


def _problem(part: Path, file: RemoteFile, kind: str, want: str | None, digest: str) -> str | None:
    size = part.stat().st_size
    if size != file.size:
        return f"size {size:,} bytes, the hub lists {file.size:,}"
    if want is not None and digest != want:
        return f"{kind} {digest[:16]}… differs from the hub's {want[:16]}…"
    return None


def _download(
    listing: RepoListing,
    file: RemoteFile,
    part: Path,
    kind: str,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> tuple[str, int]:
    """Fill `part` up to the file's size, resuming; returns (hex digest of the part, bytes fetched)."""
    hasher = _hasher(kind, file.size)
    have = _hash_existing(part, hasher, file.size)
    fetched = 0
    cuts = 0
    url = listing.url(file.path)
    while have < file.size or (file.size == 0 and not part.exists()):
        try:
            with http.stream(url, have, listing.headers(), listing.token_hint) as (response, body_start):
                if body_start != have:  # the server ignored Range: start the part again
                    hasher = _hasher(kind, file.size)
                    have = 0
                mode = "r+b" if have else "wb"
                with _open_part(part, mode) as out:
                    out.seek(have)
                    out.truncate()
                    for chunk in response.iter_raw(CHUNK):
                        if cancel is not None and cancel.is_set():
                            out.flush()
                            raise Cancelled(file.path)
                        if have + len(chunk) > file.size:
                            raise VerifyError(
                                f"the server sent more than the {file.size:,} bytes the hub lists", file.path
                            )
                        out.write(chunk)
                        hasher.update(chunk)
                        have += len(chunk)
                        fetched += len(chunk)
                        http.STATS.add(nbytes=len(chunk))
                        if progress is not None:
                            progress(len(chunk))
                    out.flush()
                    os.fsync(out.fileno())
            if have < file.size:
                raise HubError(f"connection closed after {have:,} of {file.size:,} bytes", file.path)
        except VerifyError:
            raise
        except HubError as exc:
            if isinstance(exc, (http.HubAuthError, http.HubNotFound)):
                raise
            cuts += 1
            if cuts > RESUMES:
                raise HubError(f"download kept failing ({exc.message})", file.path) from None
            http._backoff(min(cuts, 3))
        except Exception as exc:
            if not http.is_transport_error(exc):
                raise
            cuts += 1
            if cuts > RESUMES:
                raise HubError(f"download kept failing ({exc})", file.path) from None
            http._backoff(min(cuts, 3))
        if file.size == 0:
            break
    return hasher.hexdigest(), fetched


def _hash_existing(part: Path, hasher: hashlib._Hash, size: int) -> int:
    """Feed what an earlier run left in the part file to the hasher; its length (0 if unusable)."""
    try:
        have = part.stat().st_size
    except OSError:
        return 0
    if have > size:
        part.unlink()
        return 0
    with part.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return have


@contextlib.contextmanager
def _open_part(part: Path, mode: str):  # type: ignore[no-untyped-def]
    try:
        fh = part.open(mode)
    except OSError as exc:
        raise InputError(f"cannot write the download: {exc.strerror or exc}", part) from None
    try:
        yield fh
    except OSError as exc:
        raise InputError(f"writing the download failed: {exc.strerror or exc}", part) from None
    finally:
        fh.close()
