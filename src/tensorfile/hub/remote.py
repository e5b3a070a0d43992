"""Remote files as byte sources, and a hub repo as a folder of paths, so format code reads a repo
by range requests exactly as it reads a local folder.

`RangeSource` is a `ByteSource` over HTTP Range requests with a chunk cache: a miss fetches at
least `MIN_FETCH` bytes forward, so a header parse of many small reads costs one or two requests,
and reads larger than that go straight through. `RemotePath` offers the part of `pathlib.Path`
that format code uses (name, suffix, parent, `/`, is_file, is_dir, stat, iterdir, glob,
read_bytes, open) over a repo's listing; it deliberately has no `__fspath__`, so nothing can
hand it to `open()` or `os.*` by mistake.
"""

from __future__ import annotations

import fnmatch
import io
import stat as stat_module
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from ..source import SourceStream
from . import http
from .listing import RemoteFile, list_repo
from .refs import HubRef, UrlRef

MIN_FETCH = 64 * 1024
CACHE_BYTES = 64 * 1024 * 1024  # per file; headers only, never weights
MAX_READ_BYTES = 64 * 1024 * 1024  # read_bytes() is for configs, indexes and tokenizers


class RangeSource:
    """Random access to one remote file by HTTP Range requests, with a bounded chunk cache."""

    def __init__(
        self, url: str, size: int, name: str, headers: dict[str, str], token_hint: str | None
    ) -> None:
        self.url = url
        self.size = size
        self.name = name
        self._headers = headers
        self._token_hint = token_hint
        self._chunks: OrderedDict[int, bytes] = OrderedDict()  # start -> bytes
        self._cached = 0
        self._lock = threading.Lock()
        self.requests = 0  # fetches made for this file, and the bytes they returned
        self.bytes_read = 0

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) from where the file lives: one HTTP Range request (object stores
        override this; the chunk cache around it is the same)."""
        data, _ = http.get_range(self.url, start, end, self._headers, self._token_hint)
        return data

    def _counted_fetch(self, start: int, end: int) -> bytes:
        data = self._fetch(start, end)
        with self._lock:
            self.requests += 1
            self.bytes_read += len(data)
        return data

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        with self._lock:
            hit = self._lookup(offset, length)
            if hit is not None:
                return hit
            head_start, head = self._covering_head(offset)
        if head:
            # The read starts inside a cached chunk (a header longer than the first fetch, say):
            # fetch only what follows it, and keep the joined run as one chunk.
            tail_from = head_start + len(head)
            need = offset + length - tail_from
            tail = self._counted_fetch(tail_from, min(self.size, tail_from + max(need, MIN_FETCH)))
            data = head + tail
            with self._lock:
                self._store(head_start, data)
            return data[offset - head_start : offset - head_start + length]
        fetch = max(length, MIN_FETCH)
        data = self._counted_fetch(offset, min(self.size, offset + fetch))
        with self._lock:
            self._store(offset, data)
        return data[:length]

    def _covering_head(self, offset: int) -> tuple[int, bytes]:
        """The cached chunk that holds `offset` but ends before the read does ((0, b"") if none)."""
        for start, chunk in self._chunks.items():
            if start <= offset < start + len(chunk):
                return start, chunk
        return 0, b""

    def _lookup(self, offset: int, length: int) -> bytes | None:
        for start, chunk in self._chunks.items():
            if start <= offset and offset + length <= start + len(chunk):
                self._chunks.move_to_end(start)
                return chunk[offset - start : offset - start + length]
        return None

    def _store(self, offset: int, data: bytes) -> None:
        old = self._chunks.pop(offset, None)
        if old is not None:
            self._cached -= len(old)
        self._chunks[offset] = data
        self._cached += len(data)
        while self._cached > CACHE_BYTES and len(self._chunks) > 1:
            _, dropped = self._chunks.popitem(last=False)
            self._cached -= len(dropped)

    def open_stream(self) -> BinaryIO:
        return SourceStream(self)

    def close(self) -> None:
        """Nothing to release: the cache lives as long as the repo object, shared by every reader."""

    def __enter__(self) -> RangeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class RemoteStat:
    st_size: int
    st_mode: int
    st_mtime: float = 0.0


class FileServer(Protocol):
    """What a remote tree needs of where its files live: a hub listing, or one plain URL."""

    @property
    def files(self) -> dict[str, RemoteFile]: ...

    @property
    def token_hint(self) -> str: ...

    def url(self, path: str) -> str: ...

    def headers(self) -> dict[str, str]: ...


class RemoteRepo:
    """A listed revision (or one URL): the tree of its files and one cached source per file."""

    def __init__(self, listing: FileServer, label: str) -> None:
        self.listing = listing
        self.label = label  # "hf://owner/name" (with @rev when one was asked for)
        self.files = listing.files
        self.dirs: set[str] = {""}
        for path in self.files:
            parts = path.split("/")
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]))
        self._sources: dict[str, RangeSource] = {}
        self._lock = threading.Lock()

    def source(self, rel: str) -> RangeSource:
        with self._lock:
            src = self._sources.get(rel)
            if src is None:
                src = self._new_source(rel)
                self._sources[rel] = src
            return src

    def _new_source(self, rel: str) -> RangeSource:
        """The range reader of one listed file (an object store's repo overrides this)."""
        return RangeSource(
            self.listing.url(rel),
            self.files[rel].size,
            f"{self.label}/{rel}",
            self.listing.headers(),
            self.listing.token_hint,
        )

    def children(self, rel: str) -> list[str]:
        prefix = f"{rel}/" if rel else ""
        names = {
            p[len(prefix) :].split("/", 1)[0]
            for p in (*self.files, *self.dirs)
            if p.startswith(prefix) and p != rel
        }
        names.discard("")
        return sorted(names)


class RemotePath:
    """A path inside a remote repo (or the repo itself, rel == ""), with pathlib's reading API."""

    def __init__(self, repo: RemoteRepo, rel: str = "") -> None:
        self._repo = repo
        self._rel = rel.strip("/")

    # --- names -----------------------------------------------------------------------------
    @property
    def repo(self) -> RemoteRepo:
        return self._repo

    @property
    def rel(self) -> str:
        return self._rel

    @property
    def name(self) -> str:
        if not self._rel:
            return self._repo.label.rstrip("/").rsplit("/", 1)[-1].split("@", 1)[0]
        return self._rel.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        i = name.rfind(".")
        return name[i:] if 0 < i < len(name) - 1 else ""

    @property
    def suffixes(self) -> list[str]:
        name = self.name.lstrip(".")
        return ["." + s for s in name.split(".")[1:]] if "." in name else []

    @property
    def stem(self) -> str:
        suffix = self.suffix
        return self.name[: -len(suffix)] if suffix else self.name

    @property
    def parts(self) -> tuple[str, ...]:
        return (self._repo.label, *self._rel.split("/")) if self._rel else (self._repo.label,)

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self._repo, self._rel.rsplit("/", 1)[0] if "/" in self._rel else "")

    def __truediv__(self, other: str | Any) -> RemotePath:
        text = str(other).strip("/")
        if not text:
            return self
        joined = f"{self._rel}/{text}" if self._rel else text
        parts: list[str] = []
        for piece in joined.split("/"):
            if piece in ("", "."):
                continue
            if piece == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(piece)
        return RemotePath(self._repo, "/".join(parts))

    def joinpath(self, *others: str) -> RemotePath:
        path = self
        for other in others:
            path = path / other
        return path

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def with_suffix(self, suffix: str) -> RemotePath:
        return self.with_name(self.stem + suffix)

    def relative_to(self, other: RemotePath) -> Any:
        from pathlib import PurePosixPath

        base = other._rel
        if base and not (self._rel == base or self._rel.startswith(base + "/")):
            raise ValueError(f"{self} is not inside {other}")
        return PurePosixPath(self._rel[len(base) :].lstrip("/") or ".")

    def is_absolute(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"{self._repo.label}/{self._rel}" if self._rel else self._repo.label

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other._repo is self._repo and other._rel == self._rel

    def __hash__(self) -> int:
        return hash((id(self._repo), self._rel))

    def __lt__(self, other: RemotePath) -> bool:
        return self._rel < other._rel

    # --- the tree --------------------------------------------------------------------------
    def is_file(self) -> bool:
        return self._rel in self._repo.files

    def is_dir(self) -> bool:
        return self._rel in self._repo.dirs

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def is_symlink(self) -> bool:
        return False

    def stat(self) -> RemoteStat:
        file = self._repo.files.get(self._rel)
        if file is not None:
            return RemoteStat(file.size, stat_module.S_IFREG | 0o444)
        if self.is_dir():
            return RemoteStat(0, stat_module.S_IFDIR | 0o555)
        raise FileNotFoundError(2, "No such file or directory", str(self))

    lstat = stat

    @property
    def remote_file(self) -> RemoteFile | None:
        return self._repo.files.get(self._rel)

    def iterdir(self) -> Iterator[RemotePath]:
        if not self.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(self))
        for child in self._repo.children(self._rel):
            yield self / child

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        if "/" in pattern or "**" in pattern:
            yield from self.rglob(pattern.rsplit("/", 1)[-1])
            return
        for child in self.iterdir() if self.is_dir() else ():
            if fnmatch.fnmatchcase(child.name, pattern):
                yield child

    def rglob(self, pattern: str) -> Iterator[RemotePath]:
        prefix = f"{self._rel}/" if self._rel else ""
        for rel in sorted({*self._repo.files, *self._repo.dirs}):
            if rel and rel.startswith(prefix) and fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern):
                yield RemotePath(self._repo, rel)

    def walk_files(self) -> Iterator[RemotePath]:
        """Every file under this folder, sorted (os.walk's job for local folders)."""
        prefix = f"{self._rel}/" if self._rel else ""
        for rel in sorted(self._repo.files):
            if rel.startswith(prefix):
                yield RemotePath(self._repo, rel)

    # --- bytes -----------------------------------------------------------------------------
    def open_source(self) -> RangeSource:
        if not self.is_file():
            if self.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(self))
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return self._repo.source(self._rel)

    def open(self, mode: str = "rb") -> BinaryIO:
        if mode not in ("rb", "r"):
            raise io.UnsupportedOperation("remote files are read-only")
        stream = io.BufferedReader(SourceStream(self.open_source()), buffer_size=MIN_FETCH)  # type: ignore[arg-type]
        if mode == "r":
            return io.TextIOWrapper(stream, encoding="utf-8")  # type: ignore[return-value]
        return stream

    def read_bytes(self) -> bytes:
        source = self.open_source()
        if source.size > MAX_READ_BYTES:
            raise OSError(27, f"{source.size:,} bytes is too large to read whole from a hub", str(self))
        return source.read_at(0, source.size) if source.size else b""

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)


def open_remote(text: str, token: str | None = None) -> RemotePath:
    """`hf://…`, `ms://…` or an https:// address as a RemotePath (a repo, a folder or a file in it)."""
    from . import refs

    ref = refs.parse(text)
    if isinstance(ref, UrlRef):
        return _open_url(ref)
    listing = list_repo(ref, token)
    repo = RemoteRepo(listing, HubRef(ref.hub, ref.repo_id, ref.revision).url())
    path = RemotePath(repo, ref.path)
    if ref.path and not path.exists():
        raise http.HubNotFound(f"no file or folder {ref.path!r} in this revision", str(path))
    return path


_OPENED: dict[tuple[str, str | None], RemotePath] = {}
_OPENED_LOCK = threading.Lock()


def open_remote_cached(text: str, token: str | None = None) -> RemotePath:
    """open_remote, listed once per process: identify, inspect and scan of one input share the
    listing and every block already fetched."""
    key = (text, token)
    with _OPENED_LOCK:
        path = _OPENED.get(key)
    if path is None:
        path = open_remote(text, token)
        with _OPENED_LOCK:
            _OPENED[key] = path
    return path


def _open_url(ref: UrlRef) -> RemotePath:
    """A plain https:// file: one range request learns its size and fetches its head at once."""
    from urllib.parse import unquote, urlsplit

    split = urlsplit(ref.url)
    name = unquote(split.path.rstrip("/").rsplit("/", 1)[-1]) or split.hostname or "download"
    head, total = http.get_range(ref.url, 0, MIN_FETCH, {}, None)
    if total is None:
        total = len(head) if len(head) < MIN_FETCH else None
    if total is None:
        raise http.HubError("the server tells no file size (no Content-Range or Content-Length)", ref.url)
    folder = f"{split.scheme}://{split.netloc}{split.path.rsplit('/', 1)[0]}"
    repo = RemoteRepo(_UrlFile(ref.url, name, total), folder)
    path = RemotePath(repo, name)
    path.open_source()._store(0, head)
    return path


@dataclass(frozen=True)
class _UrlFile:
    """A plain URL as a one-file server: the file's own address serves its bytes, no token."""

    address: str
    name: str
    size: int
    token_hint: str = ""

    @property
    def files(self) -> dict[str, RemoteFile]:
        return {self.name: RemoteFile(self.name, self.size)}

    def url(self, path: str) -> str:
        return self.address

    def headers(self) -> dict[str, str]:
        return {}
