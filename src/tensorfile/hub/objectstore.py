"""Object storage (`s3://`, `gs://`, `az://`) as range-reading sources and remote paths, through fsspec.

fsspec and its official backends (s3fs, gcsfs, adlfs) do the talking: endpoints and credentials
come from where each backend's users already put them (AWS_* variables and profiles, gcloud, Azure
variables; an S3-compatible endpoint from AWS_ENDPOINT_URL or FSSPEC_S3_ENDPOINT_URL). Bytes are
read with `cat_file(key, start, end)` behind the same chunk cache as a hub file (`RangeSource`):
a header parse costs a request or two, never the whole object. An object becomes a `RemotePath`,
so every format reader, identify, inspect and scan work on it unchanged.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .listing import RemoteFile
from .remote import RangeSource, RemotePath, RemoteRepo

# fsspec protocol -> the package that implements it (named in the error when it is missing)
BACKENDS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
}
CONNECT_TIMEOUT = 10.0  # seconds: an unreachable endpoint fails in about this long
READ_TIMEOUT = 60.0
ATTEMPTS = 3
_FS: dict[str, Any] = {}
_FS_LOCK = threading.Lock()


def is_object_url(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in BACKENDS


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing: its full URL, size and ETag (None when the store gives none)."""

    url: str
    size: int
    etag: str | None


def _split(url: str) -> tuple[str, str]:
    scheme, _, rest = url.partition("://")
    return scheme.lower(), rest.strip("/")


def _options(protocol: str) -> dict[str, Any]:
    """Bounded timeouts and retries, so a dead endpoint is a one-line error in seconds."""
    if BACKENDS[protocol] == "s3fs":
        return {
            "config_kwargs": {
                "connect_timeout": CONNECT_TIMEOUT,
                "read_timeout": READ_TIMEOUT,
                "retries": {"max_attempts": ATTEMPTS, "mode": "standard"},
            }
        }
    if BACKENDS[protocol] == "gcsfs":
        return {"timeout": READ_TIMEOUT}
    return {}


def filesystem(protocol: str) -> Any:
    """The fsspec filesystem of a protocol, made once per process (credentials resolved once)."""
    with _FS_LOCK:
        fs = _FS.get(protocol)
        if fs is None:
            try:
                import fsspec

                fs = fsspec.filesystem(protocol, **_options(protocol))
            except ImportError:
                package = BACKENDS[protocol]
                raise InputError(
                    f"{protocol}:// needs {package} (pip install {package})", f"{protocol}://"
                ) from None
            # the backends log their retries on stderr (gcsfs each with a traceback); a failure
            # is reported once, as one line (describe)
            logging.getLogger(BACKENDS[protocol]).setLevel(logging.CRITICAL)
            _FS[protocol] = fs
        return fs


def describe(exc: BaseException) -> str:
    """An object store's failure in one line, without the backend's traceback."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if isinstance(exc, FileNotFoundError) or name in ("NoSuchBucket", "NoSuchKey"):
        return "no such bucket, object or prefix"
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return f"access denied ({text})"
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
        return "no credentials for this store (set them as its own client expects, e.g. AWS_ACCESS_KEY_ID)"
    if "Could not connect" in text or "Connect" in name or "Timeout" in name or isinstance(exc, OSError):
        return f"cannot reach the object store ({text})"
    return f"{name}: {text}"


def _etag(info: dict[str, Any]) -> str | None:
    for key in ("ETag", "etag", "md5Hash", "content_md5"):
        value = info.get(key)
        if value:
            return str(value).strip('"')
    return None


def _call(url: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(describe(exc), url) from None


def list_objects(url: str) -> Iterator[StoredObject]:
    """Every object under a prefix (or the one object a URL names), sorted by key within each
    folder. A missing bucket, an empty prefix or a store that cannot be reached is an InputError."""
    protocol, key = _split(url)
    fs = filesystem(protocol)
    info = _call(url, _info_or_none, fs, key)
    if info is not None and info.get("type") == "file":
        yield StoredObject(f"{protocol}://{key}", int(info["size"]), _etag(info))
        return
    found = False
    for root, _dirs, files in _call(url, lambda: list(fs.walk(key, detail=True))):
        for name in sorted(files):
            entry = files[name]
            if entry.get("type", "file") != "file":
                continue
            found = True
            path = entry.get("name") or posixpath.join(root, name)
            yield StoredObject(f"{protocol}://{path.strip('/')}", int(entry["size"]), _etag(entry))
    if not found:
        raise InputError("no objects under this prefix (or no such bucket)", url)


def _info_or_none(fs: Any, key: str) -> dict[str, Any] | None:
    try:
        return fs.info(key)
    except FileNotFoundError:
        return None


class ObjectSource(RangeSource):
    """One object read by ranges (`cat_file`) through RangeSource's chunk cache; counts requests."""

    def __init__(self, fs: Any, key: str, size: int, name: str) -> None:
        super().__init__(name, size, name, {}, None)
        self._fs = fs
        self._key = key

    def _fetch(self, start: int, end: int) -> bytes:
        try:
            return bytes(self._fs.cat_file(self._key, start=start, end=end))
        except Exception as exc:
            raise InputError(f"read failed: {describe(exc)}", self.name) from None


class _Objects:
    """The listing an object repo offers RemoteRepo: paths relative to its root, with sizes."""

    token_hint = ""

    def __init__(self, files: dict[str, RemoteFile]) -> None:
        self.files = files

    def url(self, path: str) -> str:
        return path

    def headers(self) -> dict[str, str]:
        return {}


class ObjectRepo(RemoteRepo):
    """Objects under one prefix, as a tree of RemotePaths whose sources read from the store."""

    def __init__(self, fs: Any, root: str, files: dict[str, RemoteFile], label: str) -> None:
        super().__init__(_Objects(files), label)
        self._fs = fs
        self._root = root

    def _new_source(self, rel: str) -> RangeSource:
        key = f"{self._root}/{rel}" if self._root else rel
        return ObjectSource(self._fs, key, self.files[rel].size, f"{self.label}/{rel}")


def open_object(url: str, size: int | None = None) -> RemotePath:
    """One object as a RemotePath (its folder holds only it); `size` from a listing saves a request."""
    protocol, key = _split(url)
    fs = filesystem(protocol)
    if size is None:
        info = _call(url, _info_or_none, fs, key)
        if info is None or info.get("type") != "file":
            raise InputError("no such object", url)
        size = int(info["size"])
    parent, _, name = key.rpartition("/")
    if not parent or not name:
        raise InputError("an object URL names a bucket and a key (s3://bucket/key)", url)
    repo = ObjectRepo(fs, parent, {name: RemoteFile(name, size)}, f"{protocol}://{parent}")
    return RemotePath(repo, name)


def open_prefix(url: str) -> RemotePath:
    """An object or every object under a prefix, as a RemotePath (a file, or a folder to walk)."""
    protocol, key = _split(url)
    objects = list(list_objects(url))
    if len(objects) == 1 and objects[0].url == f"{protocol}://{key}":
        return open_object(objects[0].url, objects[0].size)
    fs = filesystem(protocol)
    base = f"{protocol}://{key}/"
    files = {o.url[len(base) :]: RemoteFile(o.url[len(base) :], o.size) for o in objects}
    return RemotePath(ObjectRepo(fs, key, files, f"{protocol}://{key}"))
