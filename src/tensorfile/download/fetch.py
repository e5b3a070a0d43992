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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..atomic import same_file, try_lock
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
    VerifyError naming the file (and nothing left behind). A file an earlier run verified and
    staged, but did not place, is checked again and kept."""
    staged = staging / file.path
    part = staged.with_name(staged.name + ".part")
    staged.parent.mkdir(parents=True, exist_ok=True)
    kind, want = expected_hash(file)
    kept = _staged_digest(staged, file, kind)
    if kept is not None and kept == (want or kept):
        return Fetched(file.path, staged, file.size, kind, kept, file.size, 0, 0)
    fetched_total = 0
    for attempt in (1, 2):
        with _locked_part(part) as out:
            digest, fetched, had = _download(listing, file, out, kind, progress, cancel)
            fetched_total += fetched
            problem = _problem(out, file, kind, want, digest)
            if problem is None:
                os.replace(part, staged)  # still locked: no sweep takes it meanwhile
                resumed = had if attempt == 1 else 0
                return Fetched(file.path, staged, file.size, kind, digest, resumed, fetched_total, attempt)
            with contextlib.suppress(OSError):
                part.unlink()
        if progress is not None:
            progress(-fetched)  # the bar goes back: these bytes come again
        if attempt == 2:
            raise VerifyError(f"{problem} after a fresh second download; nothing was kept", file.path)
    raise AssertionError("unreachable")


def file_digest(path: Path, file: RemoteFile, kind: str) -> str:
    """The hex digest of the file at `path` in the hub's terms (`kind` from expected_hash)."""
    hasher = _hasher(kind, file.size)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _staged_digest(staged: Path, file: RemoteFile, kind: str) -> str | None:
    """The digest of a file already staged with the listed size; None when there is none."""
    try:
        if not staged.is_file() or staged.stat().st_size != file.size:
            return None
        return file_digest(staged, file, kind)
    except OSError:
        return None


def _problem(part: BinaryIO, file: RemoteFile, kind: str, want: str | None, digest: str) -> str | None:
    size = os.fstat(part.fileno()).st_size
    if size != file.size:
        return f"size {size:,} bytes, the hub lists {file.size:,}"
    if want is not None and digest != want:
        return f"{kind} {digest[:16]}… differs from the hub's {want[:16]}…"
    return None


def _download(
    listing: RepoListing,
    file: RemoteFile,
    out: BinaryIO,
    kind: str,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> tuple[str, int, int]:
    """Fill the part file `out` up to the file's size, resuming from what it holds; (hex digest of
    the part, bytes fetched now, bytes it held already)."""
    hasher = _hasher(kind, file.size)
    have = _hash_existing(out, hasher, file.size)
    had = have
    fetched = 0
    cuts = 0
    url = listing.url(file.path)
    asked = False  # an empty file is still asked for once: the hub must have it
    while have < file.size or (file.size == 0 and not asked):
        asked = True
        try:
            with http.stream(url, have, listing.headers(), listing.token_hint) as (response, body_start):
                if body_start != have:  # the server ignored Range: start the part again
                    hasher = _hasher(kind, file.size)
                    have = 0
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
    return hasher.hexdigest(), fetched, had


def _hash_existing(out: BinaryIO, hasher: hashlib._Hash, size: int) -> int:
    """Feed what an earlier run left in the part file to the hasher; its length (0 if unusable)."""
    have = os.fstat(out.fileno()).st_size
    if have > size:
        out.truncate(0)
        return 0
    out.seek(0)
    while chunk := out.read(CHUNK):
        hasher.update(chunk)
    return have


@contextlib.contextmanager
def _locked_part(part: Path) -> Iterator[BinaryIO]:
    """The part file, created when new, open to read and write and locked while this run uses it
    (a sweep never removes a locked part); InputError when another live run holds it."""
    while True:
        try:
            fd = os.open(part, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise InputError(f"cannot write the download: {exc.strerror or exc}", part) from None
        if not try_lock(fd):
            os.close(fd)
            raise InputError("another download is writing this file now; wait for it to end", part)
        if same_file(fd, part):
            break
        os.close(fd)  # a sweep removed it between the open and the lock: open it again
    fh = os.fdopen(fd, "r+b")
    try:
        yield fh
    except OSError as exc:
        raise InputError(f"writing the download failed: {exc.strerror or exc}", part) from None
    finally:
        fh.close()
