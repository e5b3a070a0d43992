"""Member streams: what `Member.open` returns, and the temporary copies nested archives need.

Every member stream is a `GuardedStream` behind a `MemberReader`: it never raises on bad data
(a damaged or hostile member ends its stream early and the damage is reported once through the
walk's context), counts decompressed bytes against `Limits.max_total`, checks the CRC when one is
known, and bounds memory per stream. Temporary copies (a nested zip or 7z inside a compressed
member) live in `SpooledTemporaryFile`s: memory up to `SPOOL_MEMORY`, then the system temp folder.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import tempfile
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from ..decompress import KINDS, DecoderFactory, DecompressedStream, new_decompressor
from ..source import ByteSource, PositionedStream, SourceStream, read_up_to
from .archive_context import ARCHIVE_ADVICE, CHUNK, LZMA_MEMLIMIT, Limits, WalkContext
from .findings import Finding

SPOOL_MEMORY = 32 << 20  # temporary copies stay in memory up to this size
MAX_READ = 64 << 20  # the most one read() of a member stream returns (read() / read(-1) too)


class GuardedStream(PositionedStream):
    """A member's content: never raises on bad data, counts decompressed bytes, checks the CRC.

    A failure (damaged data, a read error) ends the stream and is reported once; with
    `counted`, bytes count against the walk's limits and the stream ends at the cap. Seeks are
    delegated to the inner stream when `cheap_seek`, otherwise done by reading forward (and
    reopening for a backward seek), so every decompressed byte is counted.
    """

    def __init__(
        self,
        opener: Callable[[], Any],
        ctx: WalkContext,
        name: str,
        *,
        counted: bool,
        size: int | None = None,
        crc: int | None = None,
        cheap_seek: bool = False,
        report: bool = True,
    ) -> None:
        super().__init__()
        self._opener = opener
        self._ctx = ctx
        self._name = name
        self._counted = counted
        self._size = size
        self._want_crc = crc
        self._cheap = cheap_seek
        self._report = report
        self._inner: Any = None
        self.failed: str | None = None
        self.crc_ok: bool | None = None
        self._start()

    def _start(self) -> None:
        """Back to byte 0; the inner stream is opened on first use (opening can be costly)."""
        self._close_inner()
        self._pos = 0
        self._done = False
        self._crc = 0
        self._crc_live = self._want_crc is not None

    def _ensure(self) -> bool:
        if self._inner is None and not self._done:
            try:
                self._inner = self._opener()
            except Exception as exc:
                self._fail(exc)
        return self._inner is not None

    def _close_inner(self) -> None:
        inner, self._inner = getattr(self, "_inner", None), None
        if inner is not None:
            with contextlib.suppress(Exception):
                inner.close()

    def _fail(self, exc: BaseException) -> None:
        self._done = True
        if self._counted and self._ctx.limits.exceeded:
            return
        self.failed = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._report:
            self._ctx.corrupt(
                "Part of this member could not be read (damaged or truncated data); it was only "
                "checked up to that point.",
                f"after byte {self._pos}: {self.failed}",
                self._name,
            )

    def _finish(self) -> None:
        self._done = True
        if self._crc_live and self._want_crc is not None and self.crc_ok is None:
            self.crc_ok = (self._crc & 0xFFFFFFFF) == self._want_crc
            if not self.crc_ok and self._report:
                self._ctx.report(
                    Finding(
                        "archive-crc-mismatch",
                        "low",
                        "The member's checksum does not match its bytes. PyTorch loads it anyway; "
                        "scanners that verify checksums skip it (CVE-2025-10156).",
                        f"CRC-32 stored {self._want_crc:08x}, computed {self._crc & 0xFFFFFFFF:08x}",
                        self._name,
                    )
                )

    def readinto(self, buffer: Any) -> int:
        n = len(buffer)
        if self._done or n == 0 or not self._ensure():
            return 0
        limits = self._ctx.limits
        if self._counted:
            room = limits.max_total - limits.used
            if room <= 0:
                self._done = True
                self._ctx.hit_limit()
                return 0
            n = min(n, room)
        try:
            data = self._inner.read(n)
        except Exception as exc:
            self._fail(exc)
            return 0
        if not data:
            self._finish()
            return 0
        m = len(data)
        if m > n:  # a misbehaving inner stream
            data, m = data[:n], n
        if self._counted:
            limits.used += m
        if self._crc_live:
            self._crc = zlib.crc32(data, self._crc)
        buffer[:m] = data
        self._pos += m
        return m

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            if self._size is None:
                self.skip(1 << 62)
                return self._pos
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        if target == self._pos:
            return target
        if self._cheap and self._ensure():
            try:
                self._inner.seek(target)
            except Exception:
                pass
            else:
                self._pos = target
                self._done = False
                self._crc_live = False
                return target
        if target < self._pos:
            self._start()
        self.skip(target - self._pos)
        return self._pos

    def skip(self, count: int) -> int:
        """Read `count` bytes forward (counted, CRC'd) and drop them; how many were there."""
        buf = bytearray(min(max(count, 0), CHUNK))
        view = memoryview(buf)
        skipped = 0
        while skipped < count:
            got = self.readinto(view[: min(CHUNK, count - skipped)])
            if not got:
                break
            skipped += got
        return skipped

    def close(self) -> None:
        self._close_inner()
        super().close()


class MemberReader(io.BufferedReader):
    """What Member.open returns: buffered, seekable; read() without a size stops at MAX_READ."""

    byte_source: ByteSource | None = None
    archive_limits: Limits | None = None

    # The pickle reader's opcode-by-opcode reads (never over 1 MiB) skip the guard of read() below.
    read_small = io.BufferedReader.read

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and 0 <= size <= CHUNK:  # small reads (pickle opcodes through a frame)
            return io.BufferedReader.read(self, size)
        if size is None or size < 0 or size > MAX_READ:
            size = MAX_READ
        return read_up_to(super().read, size, CHUNK)


def member_reader(guard: GuardedStream, source: ByteSource | None, ctx: WalkContext) -> MemberReader:
    """The reader `Member.open` hands out; it carries what a nested walk of the member reuses."""
    reader = MemberReader(guard, buffer_size=64 << 10)
    reader.byte_source = source
    reader.archive_limits = ctx.limits
    return reader


def plain_reader(ctx: WalkContext, source: ByteSource, name: str) -> MemberReader:
    """Bytes that lie uncompressed in a source (a file, a stored member): seeks are free."""
    return member_reader(
        GuardedStream(lambda: SourceStream(source), ctx, name, counted=False, cheap_seek=True), source, ctx
    )


def _decoder(kind: str) -> DecoderFactory:
    if kind == "zip-lzma":
        return _zip_lzma_decoder
    if kind not in KINDS:
        raise ValueError(kind)  # here, not when the member is first read
    return lambda _src: new_decompressor(kind, memlimit=LZMA_MEMLIMIT)


def _zip_lzma_decoder(src: BinaryIO) -> Any:
    """Zip method 14: a 4-byte header (version, properties size), LZMA1 properties, raw data."""
    header = src.read(4)
    if len(header) < 4:
        raise EOFError("LZMA member header cut short")
    props = src.read(int.from_bytes(header[2:4], "little"))
    if len(props) < 5:
        raise EOFError("LZMA properties cut short")
    if int.from_bytes(props[1:5], "little") > LZMA_MEMLIMIT:
        raise ValueError("LZMA dictionary larger than the memory limit")
    filters = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filters])


def decompressed_reader(
    ctx: WalkContext,
    opener: Callable[[], BinaryIO],
    kind: str,
    name: str,
    *,
    multi: bool = True,
    size: int | None = None,
    crc: int | None = None,
    report: bool = True,
) -> tuple[MemberReader, GuardedStream]:
    """A counted stream of what `opener` decompresses to (`kind`: a decompress kind or "zip-lzma")."""
    make = _decoder(kind)
    guard = GuardedStream(
        lambda: DecompressedStream(opener(), make, multi=multi),
        ctx,
        name,
        counted=True,
        size=size,
        crc=crc,
        report=report,
    )
    return member_reader(guard, None, ctx), guard


class SpoolSource:
    """A ByteSource over a temporary spool (a nested zip or 7z copied out of its container)."""

    def __init__(self, spool: Any, size: int, name: str) -> None:
        self._spool = spool
        self.size = size
        self.name = name

    def read_at(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        self._spool.seek(offset)
        return self._spool.read(min(length, self.size - offset))

    def open_stream(self) -> BinaryIO:
        return io.BufferedReader(SourceStream(self))


def spool_copy(ctx: WalkContext, opener: Callable[[], BinaryIO], name: str) -> ByteSource:
    """Copy a stream into a temporary spool (memory, then the temp folder), at most max_copy bytes."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - lives with the source
    total = 0
    with opener() as stream:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            if total + len(chunk) > ctx.limits.max_copy:
                spool.write(chunk[: ctx.limits.max_copy - total])
                total = ctx.limits.max_copy
                ctx.report(
                    Finding(
                        "archive-too-large",
                        "medium",
                        "A nested archive is larger than the scan's copy limit; only its start was checked.",
                        f"more than {ctx.limits.max_copy} bytes",
                        "",
                        ARCHIVE_ADVICE,
                    )
                )
                break
            spool.write(chunk)
            total += len(chunk)
    return SpoolSource(spool, total, name)
