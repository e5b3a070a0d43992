"""Walk a 7z archive through py7zr (an optional dependency, imported only when a 7z is met).

py7zr decompresses in passes over the whole archive: one pass collects every member's head and
CRC, and opening a member later runs another pass that spools only that member.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ..errors import FormatError, UnsupportedError
from ..probe import HEAD_SIZE
from ..source import ByteSource, SourceStream
from .archive_context import Member, WalkContext, looks_pickle_name
from .archive_streams import SPOOL_MEMORY, GuardedStream, SpoolSource, member_reader
from .findings import Finding

_SEVENZIP_HEADS = 64 << 20  # 7z heads are collected in one pass: cap their total


class _LimitHit(Exception):
    pass


def _py7zr() -> Any:
    try:
        import py7zr
        import py7zr.io
    except ImportError:
        raise UnsupportedError("install tensorfile[archives] to scan 7z archives") from None
    if not hasattr(py7zr.io, "WriterFactory"):  # the streaming API came with py7zr 1.0
        raise UnsupportedError(
            "py7zr 1.0 or newer is needed: install tensorfile[archives] to scan 7z archives"
        )
    return py7zr


def _sevenzip_pass(py7zr: Any, src: ByteSource, writers: dict[int, Any]) -> None:
    """Decompress the 7z entries whose ids are in `writers` into those writers (one pass)."""

    class Factory(py7zr.io.WriterFactory):  # type: ignore[misc,name-defined]
        def create(self, filename: str) -> Any:
            return writers[int(filename)]

    factory = Factory()
    with py7zr.SevenZipFile(io.BufferedReader(SourceStream(src)), mode="r") as archive:
        try:
            for f in archive.files:
                f._file_info["digest"] = None  # we check CRCs ourselves; a bad one must not stop the pass
                wanted = f.id in writers
                archive.worker.register_filelike(f.id, py7zr.io.MemIO(str(f.id), factory) if wanted else None)
            archive.worker.extract(archive.fp, None, parallel=False)
        finally:
            # Each folder keeps its decoder (an LZMA dictionary, 16 MB for py7zr's default) in
            # reference cycles that outlive the pass: opening five members held 100 MB until gc ran.
            with contextlib.suppress(AttributeError, TypeError):
                for folder in archive.header.main_streams.unpackinfo.folders:
                    folder.decompressor = None


def _counting_sink(py7zr: Any, ctx: WalkContext) -> type:
    """A py7zr output that charges every byte to the walk's limits and hands it to `take`.

    py7zr is imported lazily, so its base class is only known here.
    """

    class Sink(py7zr.io.Py7zIO):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.total = 0

        def take(self, s: Any) -> None:
            raise NotImplementedError

        def write(self, s: Any) -> int:
            ctx.limits.used += len(s)
            if ctx.limits.used > ctx.limits.max_total:
                ctx.hit_limit()
                raise _LimitHit
            self.total += len(s)
            self.take(s)
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            return None

        def size(self) -> int:
            return self.total

    return Sink


def walk_7z(ctx: WalkContext, src: ByteSource) -> Iterator[Member | Finding]:
    """Members of a 7z with their heads (one decompression pass); encrypted ones only as findings."""
    py7zr = _py7zr()

    class Head(_counting_sink(py7zr, ctx)):  # type: ignore[misc]
        """Keeps the first bytes, counts and CRCs the rest."""

        def __init__(self, keep: int) -> None:
            super().__init__()
            self.keep = keep
            self.data = bytearray()
            self.crc = 0

        def take(self, s: Any) -> None:
            self.crc = zlib.crc32(s, self.crc)
            if len(self.data) < self.keep:
                self.data += bytes(s[: self.keep - len(self.data)])

    try:
        archive = py7zr.SevenZipFile(io.BufferedReader(SourceStream(src)), mode="r")
    except py7zr.exceptions.PasswordRequired:
        ctx.report(
            Finding(
                "archive-encrypted-member",
                "high",
                "The 7z archive is encrypted (even its listing), so nothing in it could be checked.",
                "encrypted headers",
                "",
                "ask for an unencrypted copy; treat the file as unsafe until then",
            )
        )
        yield from ctx.drain()
        return
    except Exception as exc:
        raise FormatError(f"not a readable 7z archive: {exc or type(exc).__name__}", ctx.label) from None
    try:
        files = list(archive.files)
        locked = archive.needs_password()
    except Exception as exc:
        raise FormatError(f"not a readable 7z archive: {exc or type(exc).__name__}", ctx.label) from None
    finally:
        archive.close()

    regular = []
    for f in files:
        if not ctx.count_member():
            break
        name = f.filename
        ctx.check_name(name, "7z archive")
        if f.is_symlink:
            ctx.report(
                Finding(
                    "archive-link-member",
                    "low",
                    "A symbolic-link entry; extracting it creates a link.",
                    f"symlink {name!r}",
                    name,
                )
            )
        elif not f.is_directory and not f.is_socket:
            regular.append(f)
    yield from ctx.drain()
    if locked:
        for f in regular:
            ctx.report(
                Finding(
                    "archive-encrypted-member",
                    "high" if looks_pickle_name(f.filename) else "medium",
                    "The member is encrypted, so its content could not be checked.",
                    "7z AES",
                    f.filename,
                    "ask for an unencrypted copy; treat the file as unsafe until then",
                )
            )
        yield from ctx.drain()
        return

    heads: dict[int, Any] = {}
    kept = 0
    for f in regular:
        keep = HEAD_SIZE if kept < _SEVENZIP_HEADS else 4096
        kept += keep
        heads[f.id] = Head(keep)
    try:
        _sevenzip_pass(py7zr, src, heads)
    except _LimitHit:
        pass
    except Exception as exc:
        ctx.corrupt(
            "The 7z archive is damaged; members after the damage were not checked.",
            f"{type(exc).__name__}: {exc}",
        )
    for f in regular:
        yield from ctx.drain()
        if ctx.stop:
            return
        got = heads[f.id]
        if got.total < (f.uncompressed or 0) and not f.emptystream:
            continue  # not reached: the damage or the limit is reported already
        if f.crc32 is not None and (got.crc & 0xFFFFFFFF) != f.crc32 and not f.emptystream:
            ctx.report(
                Finding(
                    "archive-crc-mismatch",
                    "low",
                    "The member's checksum does not match its bytes.",
                    f"CRC-32 stored {f.crc32:08x}, computed {got.crc & 0xFFFFFFFF:08x}",
                    f.filename,
                )
            )
        yield from ctx.drain()
        yield Member(f.filename, f.uncompressed, bytes(got.data), _sevenzip_opener(ctx, py7zr, src, f), "7z")


def _sevenzip_opener(ctx: WalkContext, py7zr: Any, src: ByteSource, f: Any) -> Callable[[], BinaryIO]:
    name, fid = f.filename, f.id

    class Spool(_counting_sink(py7zr, ctx)):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115

        def take(self, s: Any) -> None:
            self.file.write(s)

    def extract() -> Any:
        spool = Spool()
        try:
            _sevenzip_pass(py7zr, src, {fid: spool})
        except _LimitHit:
            pass
        except Exception as exc:
            ctx.corrupt("A 7z member could not be fully decompressed.", f"{type(exc).__name__}: {exc}", name)
        return SpoolSource(spool.file, spool.total, name).open_stream()

    def open_member() -> BinaryIO:
        return member_reader(GuardedStream(extract, ctx, name, counted=False, cheap_seek=True), None, ctx)

    return open_member
