"""Byte sources: the one way format code reads bytes.

Readers ask for byte ranges (`read_at`) instead of holding file objects, so the same reader works
over a local file, a slice of one (a stored zip member) or, later, a remote range reader.
"""

from __future__ import annotations

import io
import os
import stat
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .errors import FormatError, InputError


class ByteSource(Protocol):
    """Random access to an immutable run of bytes."""

    name: str
    size: int

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset`; shorter only at the end of the source."""
        ...


class OpenedSource(ByteSource, Protocol):
    """A source opened from a path (local or remote): also a stream for libraries, and closable."""

    def open_stream(self) -> BinaryIO: ...

    def close(self) -> None: ...

    def __enter__(self) -> OpenedSource: ...

    def __exit__(self, *exc: object) -> None: ...


def read_exact(source: ByteSource, offset: int, length: int, what: str = "data") -> bytes:
    """Exactly `length` bytes or a FormatError saying what was cut short."""
    if offset < 0 or length < 0 or offset + length > source.size:
        raise FormatError(
            f"{what} at offset {offset} (+{length} bytes) runs past the end of the file "
            f"({source.size} bytes): truncated or corrupt",
            source.name,
        )
    data = source.read_at(offset, length)
    if len(data) != length:
        raise FormatError(f"{what} at offset {offset}: short read, file changed or truncated", source.name)
    return data


def read_up_to(read: Callable[[int], bytes], limit: int, chunk: int = 1 << 20) -> bytes:
    """Up to `limit` bytes from `read` (a stream's read method), asked for `chunk` at a time.

    `BufferedReader.read(n)` allocates n bytes before it reads: reading a 200-byte config.json
    "up to 64 MB" would cost 64 MB. By chunks, memory follows what the stream holds.
    """
    if limit <= chunk:
        return read(limit)
    parts: list[bytes] = []
    left = limit
    while left > 0:
        part = read(min(chunk, left))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class FileSource:
    """A regular local file, read with positioned reads (no shared file position)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(path)
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise InputError("no such file or directory", path) from None
        except PermissionError:
            raise InputError("permission denied", path) from None
        except OSError as exc:
            raise InputError(_os_reason(exc), path) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise InputError(f"not a regular file ({_file_kind(st.st_mode)})", path)
        self._fd = fd
        self.size = st.st_size

    def read_at(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        try:
            return os.pread(self._fd, min(length, self.size - offset), offset)
        except OSError as exc:
            raise InputError(f"read failed: {_os_reason(exc)}", self.name) from None

    def open_stream(self) -> BinaryIO:
        """A fresh file object, for libraries (zipfile, tarfile) that want one."""
        return SourceStream(self)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: str | os.PathLike[str] | Any) -> OpenedSource:
    """The byte source of a file path: a FileSource for a local path; a remote path (hub/remote.py)
    brings its own range-reading source. Format code opens files only through this."""
    opener = getattr(path, "open_source", None)
    if opener is not None:
        return opener()
    return FileSource(path)


def is_remote_path(path: object) -> bool:
    """Whether a path reads its bytes over the network (a remote path brings its own source)."""
    return hasattr(path, "open_source")


def resolve_input(raw: str | os.PathLike[str] | Any) -> Path | Any:
    """What a user typed as a Path, or for `hf://`, `ms://`, `https://` and object-store inputs
    (`s3://`, `gs://`, `az://`) a remote path (hub/remote.py, hub/objectstore.py) that reads its
    bytes by range requests. Path-like objects pass through."""
    if isinstance(raw, str):
        from .hub.refs import is_remote

        if "://" in raw and not is_remote(raw):
            from .hub.objectstore import is_object_url, open_prefix

            if is_object_url(raw):  # s3://, gs://, az://: read by ranges through fsspec
                return open_prefix(raw)
        if is_remote(raw):
            from .hub.remote import open_remote_cached

            return open_remote_cached(raw)
        return Path(raw)
    if isinstance(raw, os.PathLike):
        return Path(raw)
    return raw


class SliceSource:
    """A window [start, start + size) of another source: a stored zip member, read in place."""

    def __init__(self, source: ByteSource, start: int, size: int, name: str) -> None:
        self._source = source
        self._start = start
        self.size = size
        self.name = name

    def read_at(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        return self._source.read_at(self._start + offset, min(length, self.size - offset))

    def open_stream(self) -> BinaryIO:
        return SourceStream(self)


class BytesSource:
    """Bytes already in memory (a decompressed head, a test case)."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self._data = data
        self.name = name
        self.size = len(data)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]

    def open_stream(self) -> BinaryIO:
        return io.BytesIO(self._data)


class CachedSource:
    """A ByteSource that reads whole aligned blocks and keeps the last few.

    Protobuf and flatbuffer walks make thousands of tiny reads close together; without a cache each
    is one pread. Memory is bounded (KEEP × BLOCK) and reads larger than a block go straight through,
    so weight data is never pulled in. Shared by the ONNX,
    TFLite, Caffe and Core ML readers.
    """

    BLOCK = 16 * 1024  # one block per tensor header is read, so small blocks keep that cheap
    KEEP = 64

    def __init__(self, source: ByteSource) -> None:
        self._source = source
        self.name = source.name
        self.size = source.size
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        if length > self.BLOCK:
            return self._source.read_at(offset, length)
        first, last = offset // self.BLOCK, (offset + length - 1) // self.BLOCK
        data = self._block(first) if first == last else self._block(first) + self._block(last)
        start = offset - first * self.BLOCK
        return data[start : start + length]

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            block = self._source.read_at(index * self.BLOCK, self.BLOCK)
            self._blocks[index] = block
            if len(self._blocks) > self.KEEP:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(index)
        return block


class PositionedStream(io.RawIOBase):
    """Base of our read-only raw streams: they keep their own position, and `seek` works from the
    start, the current position, or the end when `_length()` knows it."""

    _pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _length(self) -> int:
        raise io.UnsupportedOperation("this stream does not know its length")

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            base = 0
        elif whence == io.SEEK_CUR:
            base = self._pos
        elif whence == io.SEEK_END:
            base = self._length()
        else:
            raise ValueError(f"invalid whence {whence}")
        self._pos = max(0, base + offset)
        return self._pos


class SourceStream(PositionedStream):
    """A read-only, seekable raw stream over a ByteSource (reads past the end return nothing)."""

    def __init__(self, source: ByteSource) -> None:
        super().__init__()
        self._source = source
        self._pos = 0

    def _length(self) -> int:
        return self._source.size

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read_at(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self._source.size - self._pos)
        data = self._source.read_at(self._pos, size)
        self._pos += len(data)
        return data


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO/pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _os_reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def check_path(path: Path) -> os.stat_result:
    """stat() a path and turn every OS failure into one clear InputError.

    Only regular files and folders pass: reading a FIFO or a device would block or never end.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError("broken symbolic link", path) from None
        raise InputError("no such file or directory", path) from None
    except PermissionError:
        raise InputError("permission denied", path) from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise InputError("symbolic link loop", path) from None
        raise InputError(_os_reason(exc), path) from None
    special = describe_special(st.st_mode)
    if special:
        raise InputError(f"not a regular file ({special})", path)
    return st


def describe_special(mode: int) -> str | None:
    """'a FIFO/pipe' etc. for anything that is neither a regular file nor a directory."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _file_kind(mode)
