"""Walk archives the way loaders read them, to find every member that could hold a pickle.

`archive_kind(head)` tells a container by its bytes; `walk_archive(path, kind)` (or
`walk_archive_stream` for a member that is itself an archive) yields one `Member` per file in it
and archive-level `Finding`s (rule ids "archive-…"). Nested archives are not recursed here: the
caller sniffs `member.head` with `archive_kind` and walks the member again.

Zip members are read from their local headers by this module, not by `zipfile`, because the
loader that matters (torch.load, through miniz) ignores what `zipfile` refuses: encryption flag
bits, wrong CRCs, local names that differ from the central directory (the picklescan bypasses
CVE-2025-1944, CVE-2025-1945, CVE-2025-10156). Members present only in local headers (hidden from
the central directory) are found and walked too.

Costs: walking reads the directory and the first `HEAD_SIZE` bytes of each member, nothing more;
`member.open()` streams the rest on demand. Every decompressing stream counts its output against
`Limits.max_total` (shared by nested walks), memory per stream is bounded, and a damaged or
hostile member ends its stream early instead of raising: member streams never raise on bad data.
Whatever such a stream finds out while the caller reads it (a CRC mismatch, damage past the
head, the decompression limit) is yielded as a Finding when the iteration resumes, so scan each
member before asking for the next. Temporary copies (a nested zip or 7z inside a compressed
member) live in `SpooledTemporaryFile`s: memory up to `SPOOL_MEMORY`, then the system temp folder.

Findings whose rule is in `INCOMPLETE_RULES` mean part of the archive could not be checked: the
caller sets `FileResult.status = "incomplete"` (fail closed). The rules:

    archive-path-traversal     high    entry name escapes the extraction folder (zip slip)
    archive-encrypted-member   high*   encrypted (or fails its CRC while flagged encrypted)  [incomplete]
    archive-unsupported-method high*   compression method not readable here                 [incomplete]
    archive-encryption-flag    medium  flagged encrypted/patched but plain (CVE-2025-1945); still scanned
    archive-name-mismatch      medium  local-header name differs from the directory (CVE-2025-1944)
    archive-hidden-member      medium  zip entry missing from the directory / tar entry after the end
    archive-corrupt            medium  damaged or truncated; read as far as it goes          [incomplete]
    archive-too-large          medium  decompression or copy limit reached (bomb)            [incomplete]
    archive-too-many-members   medium  member-count limit reached                            [incomplete]
    archive-link-member        high if the link escapes the folder, else low (tar/7z links)
    archive-crc-mismatch       low     checksum wrong; loaders that skip it still load it (CVE-2025-10156)
    archive-duplicate-name     low     two entries share a name
    archive-special-member     low     device or FIFO entry in a tar

    * high when the name suggests a pickle (.pkl .pickle .pt .pth .bin .ckpt .joblib), else medium.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import posixpath
import re
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..decompress import DECODE_ERRORS, KINDS, DecoderFactory, DecompressedStream, new_decompressor
from ..errors import FormatError, UnsupportedError
from ..probe import HEAD_SIZE
from ..source import ByteSource, FileSource, PositionedStream, SliceSource, SourceStream
from .findings import Finding

MAX_TOTAL = 16 << 30  # decompressed bytes per archive, nested walks included
MAX_MEMBERS = 100_000
MAX_COPY = 4 << 30  # a nested zip/7z copied out of a compressed member
SPOOL_MEMORY = 32 << 20  # temporary copies stay in memory up to this size
MAX_READ = 64 << 20  # the most one read() of a member stream returns (read() / read(-1) too)
LZMA_MEMLIMIT = 320 << 20
CHUNK = 1 << 20
_SEVENZIP_HEADS = 64 << 20  # 7z heads are collected in one pass: cap their total

INCOMPLETE_RULES = frozenset(
    {
        "archive-encrypted-member",
        "archive-unsupported-method",
        "archive-corrupt",
        "archive-too-large",
        "archive-too-many-members",
    }
)
_ADVICE = "share and load model weights as safetensors (see `tensorfile convert`), not inside archives"
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib")
_SINGLE_KINDS = ("gzip", "bz2", "xz", "lzma", "zlib")
_SUFFIXES = {
    "gzip": (".gz", ".gzip", ".tgz"),
    "bz2": (".bz2", ".tbz2", ".tbz"),
    "xz": (".xz", ".txz"),
    "lzma": (".lzma",),
    "zlib": (".z", ".zz", ".zlib", ".deflate"),
}


@dataclass
class Limits:
    """Caps for one archive walk; pass the same instance to nested walks to share the budget."""

    max_total: int = MAX_TOTAL
    max_members: int = MAX_MEMBERS
    max_copy: int = MAX_COPY
    used: int = 0  # decompressed bytes so far
    exceeded: bool = False


@dataclass
class Member:
    """One file inside an archive, readable without extracting anything to disk."""

    name: str  # the name a loader would use (zip: central directory name)
    size: int | None  # uncompressed size when known
    head: bytes  # first up to HEAD_SIZE bytes of the decompressed content
    open: Callable[[], BinaryIO]  # fresh stream of the decompressed content, from byte 0
    container: str  # "zip" | "tar" | "7z" | "gzip" | "bz2" | "xz" | "lzma" | "zlib"
    # Random access to the content when it lies uncompressed in the file (stored zip member,
    # plain tar member): a nested zip is then walked in place instead of copied.
    source: ByteSource | None = field(default=None, repr=False)


# --- sniffing -----------------------------------------------------------------------------


def archive_kind(head: bytes) -> str | None:
    """The container `head` (a file's first bytes) opens, by content; None for anything else.

    A compressed stream whose content is a tar is "tar" (walk_archive reads both layers).
    """
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or (
        head[:4] == b"PK\x07\x08" and head[4:8] == b"PK\x03\x04"
    ):
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if _is_tar_header(head):
        return "tar"
    kind = _compression_kind(head)
    if kind is None:
        return None
    inner = _peek_decompressed(head, kind)
    if inner is None:
        return None
    return "tar" if _is_tar_header(inner) else kind


def _compression_kind(head: bytes) -> str | None:
    """gzip / bz2 / xz / lzma / zlib by magic bytes and header sanity (no decompression)."""
    if len(head) >= 10 and head[:3] == b"\x1f\x8b\x08" and not head[3] & 0xE0:
        return "gzip"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if (
        len(head) >= 10
        and head[:3] == b"BZh"
        and 0x31 <= head[3] <= 0x39
        and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
    ):
        return "bz2"
    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7
    if zlib_header and ((head[0] << 8) | head[1]) % 31 == 0 and not head[1] & 0x20:
        return "zlib"
    if len(head) >= 14 and head[0] < 225 and head[13] == 0:  # the range coder's first byte is 0
        dict_size = int.from_bytes(head[1:5], "little")
        size = int.from_bytes(head[5:13], "little")
        top = 1 << (dict_size.bit_length() - 1) if dict_size else 0
        as_encoders_write = 4096 <= dict_size <= (1 << 30) and dict_size in (top, top | top >> 1)
        if as_encoders_write and (size == (1 << 64) - 1 or size < (1 << 40)):
            return "lzma"
    return None


def _peek_decompressed(head: bytes, kind: str) -> bytes | None:
    """The first bytes `head` decompresses to; None when it does not decompress.

    All of `head` must decode without error (stopping at 1 MiB of output): tensor data that
    happens to start like a zlib or lzma header fails within a few hundred bytes.
    """
    try:
        out = new_decompressor(kind, memlimit=LZMA_MEMLIMIT).decompress(head, 1 << 20)
    except (*DECODE_ERRORS, MemoryError):
        return None
    if not out and kind in ("zlib", "lzma"):
        return None  # the weak magics must prove themselves with some output
    return out


def _is_tar_header(block: bytes) -> bool:
    if len(block) < 512:
        return False
    field_ = block[148:156].replace(b"\x00", b" ").strip()
    if not field_ or any(c not in b"01234567" for c in field_):
        return False
    stored = int(field_, 8)
    unsigned = sum(block[:148]) + 256 + sum(block[156:512])
    signed = unsigned - 2 * sum(1 for b in (*block[:148], *block[156:512]) if b >= 128) * 128
    return stored in (unsigned, signed)


# --- entry points -------------------------------------------------------------------------


def walk_archive(path: Path, kind: str, *, limits: Limits | None = None) -> Iterator[Member | Finding]:
    """Members and archive findings of the archive file at `path` (`kind` from archive_kind).

    Raises FormatError when nothing at all could be read, UnsupportedError for a kind this
    module does not walk (or 7z without py7zr).
    """
    path = Path(path)
    source = _FileBytes(path)
    ctx = _Ctx(limits or Limits(), str(path))
    try:
        yield from _dispatch(ctx, kind, lambda: _plain_reader(ctx, source, str(path)), source, path.name)
    finally:
        source.close()


class _FileBytes:
    """The archive file: one descriptor while walking, reopened if a member is read afterwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._file: FileSource | None = FileSource(path)
        self.size = self._file.size

    def read_at(self, offset: int, length: int) -> bytes:
        if self._file is None:
            self._file = FileSource(self.path)
        return self._file.read_at(offset, length)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def walk_archive_stream(
    open_stream: Callable[[], BinaryIO],
    kind: str,
    label: str,
    *,
    source: ByteSource | None = None,
    limits: Limits | None = None,
) -> Iterator[Member | Finding]:
    """Like walk_archive, over a stream factory (a member that is itself an archive).

    `label` names it in messages (its last " › " part names a single compressed stream's
    content). Streams from `Member.open` carry their random-access source and the outer walk's
    limits, which are used when not given here; otherwise a zip or 7z is copied to a temporary
    spool first (at most `Limits.max_copy` bytes).
    """
    if source is None or limits is None:
        probe = open_stream()
        try:
            source = source or getattr(probe, "byte_source", None)
            limits = limits or getattr(probe, "archive_limits", None)
        finally:
            probe.close()
    ctx = _Ctx(limits or Limits(), label)

    def opener() -> BinaryIO:
        return _reader(_Guarded(open_stream, ctx, label, counted=False, cheap_seek=True), source, ctx)

    name = label.rsplit(" › ", 1)[-1]
    yield from _dispatch(ctx, kind, opener, source, name)


def walk_member(member: Member, kind: str | None = None) -> Iterator[Member | Finding]:
    """Walk a member that is itself an archive (kind sniffed from its head when not given)."""
    kind = kind or archive_kind(member.head)
    if kind is None:
        raise UnsupportedError(f"{member.name} is not an archive")
    return walk_archive_stream(member.open, kind, member.name, source=member.source)


def is_incomplete(finding: Finding) -> bool:
    """Whether this finding means part of the archive was not checked."""
    return finding.rule in INCOMPLETE_RULES


def _dispatch(
    ctx: _Ctx, kind: str, opener: Callable[[], BinaryIO], source: ByteSource | None, name: str
) -> Iterator[Member | Finding]:
    if kind in ("zip", "7z"):
        if source is None:
            source = _spool(ctx, opener, name)
            yield from ctx.drain()
        walk = _walk_zip(ctx, source) if kind == "zip" else _walk_7z(ctx, source)
    elif kind == "tar":
        walk = _walk_tar(ctx, opener, source)
    elif kind in _SINGLE_KINDS:
        walk = _walk_single(ctx, opener, kind, name)
    else:
        raise UnsupportedError(f"cannot walk archives of kind {kind!r}", ctx.label)
    yield from walk
    yield from ctx.drain()


# --- shared state and findings ------------------------------------------------------------


class _Ctx:
    """One walk: its limits, and findings that streams report while the caller reads them."""

    def __init__(self, limits: Limits, label: str) -> None:
        self.limits = limits
        self.label = label
        self.members = 0
        self._pending: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()
        self._names: set[str] = set()

    def report(self, finding: Finding) -> None:
        key = (finding.rule, finding.location)
        if key not in self._seen:
            self._seen.add(key)
            self._pending.append(finding)

    def drain(self) -> Iterator[Finding]:
        while self._pending:
            yield self._pending.pop(0)

    @property
    def stop(self) -> bool:
        return self.limits.exceeded

    def hit_limit(self) -> None:
        if not self.limits.exceeded:
            self.limits.exceeded = True
            self.report(
                Finding(
                    "archive-too-large",
                    "medium",
                    "The archive decompresses to more data than the scan limit (a possible "
                    "decompression bomb); the rest was not checked.",
                    f"more than {self.limits.max_total} decompressed bytes",
                    "",
                    _ADVICE,
                )
            )

    def count_member(self) -> bool:
        """Count one more member; False (and a finding) once the cap is passed."""
        self.members += 1
        if self.members > self.limits.max_members:
            self.report(
                Finding(
                    "archive-too-many-members",
                    "medium",
                    "The archive holds more entries than the scan limit; the rest was not checked.",
                    f"more than {self.limits.max_members} entries",
                    "",
                    _ADVICE,
                )
            )
            return False
        return True

    def check_name(self, name: str, container: str) -> None:
        """Path-traversal and duplicate-name findings for one entry name."""
        reason = _escape_reason(name)
        if reason:
            self.report(
                Finding(
                    "archive-path-traversal",
                    "high",
                    "An entry's name points outside the folder the archive is extracted to "
                    "(zip slip): extracting it can overwrite any file the user can write.",
                    f"{name!r}: {reason}",
                    name,
                    f"do not extract this {container} with a tool that trusts entry names",
                )
            )
        if name in self._names:
            self.report(
                Finding(
                    "archive-duplicate-name",
                    "low",
                    "Two entries share this name; tools disagree on which one they read.",
                    name,
                    name,
                )
            )
        self._names.add(name)

    def corrupt(self, message: str, evidence: str, location: str = "") -> None:
        self.report(Finding("archive-corrupt", "medium", message, evidence, location))


def _escape_reason(name: str) -> str | None:
    norm = name.replace("\\", "/")
    if norm.startswith("/"):
        return "absolute path"
    if re.match(r"[A-Za-z]:", norm):
        return "Windows drive path"
    for part in norm.split("/"):
        if part == ".." or (".." in part and not part.rstrip(" .")):
            return "'..' component" + (" (with backslashes)" if "\\" in name else "")
    return None


def _looks_pickle_name(name: str) -> bool:
    return name.lower().endswith(_PICKLE_SUFFIXES)


# --- streams ------------------------------------------------------------------------------


class _Guarded(PositionedStream):
    """A member's content: never raises on bad data, counts decompressed bytes, checks the CRC.

    A failure (damaged data, a read error) ends the stream and is reported once; with
    `counted`, bytes count against the walk's limits and the stream ends at the cap. Seeks are
    delegated to the inner stream when `cheap_seek`, otherwise done by reading forward (and
    reopening for a backward seek), so every decompressed byte is counted.
    """

    def __init__(
        self,
        opener: Callable[[], Any],
        ctx: _Ctx,
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


class _Reader(io.BufferedReader):
    """What Member.open returns: buffered, seekable; read() without a size stops at MAX_READ."""

    byte_source: ByteSource | None = None
    archive_limits: Limits | None = None

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > MAX_READ:
            size = MAX_READ
        return super().read(size)


def _reader(guard: _Guarded, source: ByteSource | None, ctx: _Ctx) -> _Reader:
    reader = _Reader(guard, buffer_size=64 << 10)
    reader.byte_source = source
    reader.archive_limits = ctx.limits
    return reader


def _plain_reader(ctx: _Ctx, source: ByteSource, name: str) -> _Reader:
    """Bytes that lie uncompressed in a source (a file, a stored member): seeks are free."""
    return _reader(
        _Guarded(lambda: SourceStream(source), ctx, name, counted=False, cheap_seek=True), source, ctx
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


def _decompressed_reader(
    ctx: _Ctx,
    opener: Callable[[], BinaryIO],
    kind: str,
    name: str,
    *,
    multi: bool = True,
    size: int | None = None,
    crc: int | None = None,
    report: bool = True,
) -> tuple[_Reader, _Guarded]:
    make = _decoder(kind)
    guard = _Guarded(
        lambda: DecompressedStream(opener(), make, multi=multi),
        ctx,
        name,
        counted=True,
        size=size,
        crc=crc,
        report=report,
    )
    return _reader(guard, None, ctx), guard


class _Window(PositionedStream):
    """Bytes [start, start + size) of a seekable stream (a member of a compressed tar)."""

    def __init__(self, inner: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._inner = inner
        self._start = start
        self._size = size
        self._pos = 0

    def _length(self) -> int:
        return self._size

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        if self._inner.tell() != self._start + self._pos:
            self._inner.seek(self._start + self._pos)
        data = self._inner.read(want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


class _SpoolSource:
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


def _spool(ctx: _Ctx, opener: Callable[[], BinaryIO], name: str) -> ByteSource:
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
                        _ADVICE,
                    )
                )
                break
            spool.write(chunk)
            total += len(chunk)
    return _SpoolSource(spool, total, name)


# --- zip ----------------------------------------------------------------------------------

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_EOCD = b"PK\x05\x06"
_SIGS = (b"\x03\x04", b"\x01\x02", b"\x07\x08", b"\x05\x06", b"\x06\x06", b"\x06\x07")
_U32 = 0xFFFFFFFF
_FLAG_HIDING = 0x1 | 0x20 | 0x40  # encrypted, patched data, strong encryption
_METHODS = {0: "stored", 8: "deflate", 12: "bz2", 14: "zip-lzma"}


class _ZipBad(Exception):
    """The central directory cannot be used."""


@dataclass
class _Entry:
    """A zip entry as the central directory (or, for hidden ones, its local header) gives it."""

    name: str
    flags: int
    method: int
    crc: int
    csize: int | None
    usize: int | None
    offset: int  # of the local header


@dataclass
class _Local(_Entry):
    """A local header: the entry as it describes itself, and where its data starts."""

    data_start: int


def _entry_from_local(local: _Local, data_end: int) -> _Entry:
    """The entry of a member known only by its local header; an unknown size runs to `data_end`."""
    csize = max(0, data_end - local.data_start) if local.csize is None else local.csize
    return _Entry(local.name, local.flags, local.method, local.crc, csize, local.usize, local.offset)


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8", "surrogateescape") if flags & 0x800 else raw.decode("cp437")


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 1:
            values = [v[0] for v in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            if usize == _U32 and values:
                usize = values.pop(0)
            if csize == _U32 and values:
                csize = values.pop(0)
            if offset == _U32 and values:
                offset = values.pop(0)
            break
        pos += 4 + length
    return usize, csize, offset


def _read_eocd(src: ByteSource) -> tuple[int, int, int]:
    """(central directory start, its size, prepended bytes) from the end records, as zipfile does."""
    if src.size < 22:
        raise _ZipBad("too short to hold a zip directory")
    tail_start = max(0, src.size - (22 + 0xFFFF + 20 + 56))
    tail = src.read_at(tail_start, src.size - tail_start)
    pos = tail.rfind(_EOCD)
    while pos >= 0:
        if pos + 22 <= len(tail):
            _, _, _, _, _, cd_size, cd_off, _ = struct.unpack_from("<4s4H2LH", tail, pos)
            cd_end = tail_start + pos  # where the directory should end (zip64 records come before)
            loc = pos - 20
            if loc >= 0 and tail[loc : loc + 4] == b"PK\x06\x07":
                rec = loc - 56
                if rec >= 0 and tail[rec : rec + 4] == b"PK\x06\x06":
                    cd_size, cd_off = struct.unpack_from("<QQ", tail, rec + 40)
                    cd_end = tail_start + rec
            concat = cd_end - cd_size - cd_off
            if concat >= 0 and cd_size >= 0:
                return cd_off + concat, cd_size, concat
        pos = tail.rfind(_EOCD, 0, pos)
    raise _ZipBad("no end-of-central-directory record (not a zip, or cut short)")


def _read_central(
    src: ByteSource, start: int, size: int, concat: int, cap: int
) -> tuple[list[_Entry], str | None]:
    """Central directory entries, and why reading stopped early (None when it did not)."""
    entries: list[_Entry] = []
    end = start + size
    if end > src.size:
        return entries, f"central directory runs past the end of the file ({end} > {src.size})"
    buf, buf_at = b"", start
    pos = start

    def get(n: int) -> bytes:
        nonlocal buf, buf_at
        if pos < buf_at or pos + n > buf_at + len(buf):
            buf, buf_at = src.read_at(pos, max(n, CHUNK)), pos
        return buf[pos - buf_at : pos - buf_at + n]

    while pos + 46 <= end:
        fixed = get(46)
        if fixed[:4] != _CENTRAL:
            return entries, f"central directory entry at offset {pos} is damaged"
        (_, _, _, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _, off) = (
            struct.unpack("<4s4B4HL2L5H2L", fixed)
        )
        whole = get(46 + nlen + xlen + clen)
        if len(whole) < 46 + nlen + xlen + clen or pos + len(whole) > end:
            return entries, f"central directory entry at offset {pos} is cut short"
        raw = whole[46 : 46 + nlen]
        usize, csize, off = _zip64_sizes(whole[46 + nlen : 46 + nlen + xlen], usize, csize, off)
        entries.append(_Entry(_decode_name(raw, flags), flags, method, crc, csize, usize, off + concat))
        if len(entries) > cap:
            break
        pos += 46 + nlen + xlen + clen
    return entries, None


def _read_local(src: ByteSource, offset: int) -> _Local | None:
    fixed = src.read_at(offset, 30)
    if len(fixed) < 30 or fixed[:4] != _LOCAL:
        return None
    (_, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen) = struct.unpack("<4s2B4HL2L2H", fixed)
    rest = src.read_at(offset + 30, nlen + xlen)
    if len(rest) < nlen + xlen:
        return None
    usize, csize, _ = _zip64_sizes(rest[nlen:], usize, csize, 0)
    unknown = bool(flags & 0x08) and csize == 0
    return _Local(
        _decode_name(rest[:nlen], flags),
        flags,
        method,
        crc,
        None if unknown else csize,
        None if unknown else usize,
        offset,
        offset + 30 + nlen + xlen,
    )


def _find(src: ByteSource, start: int, end: int, any_record: bool = False) -> int:
    """Offset of the next local header signature (or, `any_record`, any zip record) in [start, end)."""
    pos = start
    while pos < end:
        chunk = src.read_at(pos, min(CHUNK, end - pos) + 3)
        if len(chunk) < 4:
            return -1
        if any_record:
            at = chunk.find(b"PK")
            while at >= 0:
                if chunk[at + 2 : at + 4] in _SIGS and pos + at < end:
                    return pos + at
                at = chunk.find(b"PK", at + 1)
        else:
            at = chunk.find(_LOCAL)
            if at >= 0 and pos + at < end:
                return pos + at
        pos += len(chunk) - 3
    return -1


def _scan_locals(src: ByteSource, start: int, end: int) -> Iterator[tuple[_Local, int]]:
    """Local headers found in [start, end), each with where its data ends."""
    pos = start
    while pos < end:
        at = _find(src, pos, end)
        if at < 0:
            return
        local = _read_local(src, at)
        if local is None or local.data_start > end:
            pos = at + 4
            continue
        if local.csize is not None:
            data_end = min(local.data_start + local.csize, end)
        else:
            nxt = _find(src, local.data_start, end, any_record=True)
            data_end = nxt if nxt >= 0 else end
        yield local, data_end
        pos = max(data_end, at + 4)


def _walk_zip(ctx: _Ctx, src: ByteSource) -> Iterator[Member | Finding]:
    try:
        cd_start, cd_size, concat = _read_eocd(src)
        entries, cd_error = _read_central(src, cd_start, cd_size, concat, ctx.limits.max_members)
    except _ZipBad as exc:
        yield from _walk_zip_locals(ctx, src, str(exc))
        return
    if cd_error:
        ctx.corrupt(
            "The zip's central directory (its table of contents) is damaged; entries after the "
            "damage were recovered from their local headers.",
            cd_error,
        )
    spans: list[tuple[int, int]] = []
    for entry in entries:
        yield from ctx.drain()
        if ctx.stop or not ctx.count_member():
            yield from ctx.drain()
            return
        local = _read_local(src, entry.offset)
        if local is None:
            ctx.corrupt(
                "A member's local header is missing or damaged; no loader can read this member.",
                f"no local header at offset {entry.offset}",
                entry.name,
            )
            continue
        spans.append((entry.offset, local.data_start + (entry.csize or 0)))
        if local.name != entry.name:
            ctx.report(
                Finding(
                    "archive-name-mismatch",
                    "medium",
                    "The member's name in its local header differs from the central directory; "
                    "tools disagree on what it is called (CVE-2025-1944). It was checked anyway.",
                    f"central directory {entry.name!r}, local header {local.name!r}",
                    entry.name,
                )
            )
        yield from _zip_member(ctx, src, entry, local.flags, local.data_start)
    yield from _hidden_members(ctx, src, spans, cd_start)


def _hidden_members(
    ctx: _Ctx, src: ByteSource, spans: list[tuple[int, int]], cd_start: int
) -> Iterator[Member | Finding]:
    """Local-header records in the gaps the central directory does not account for."""
    gaps: list[tuple[int, int]] = []
    cursor = 0
    for start, end in sorted(spans):
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cd_start > cursor:
        gaps.append((cursor, min(cd_start, src.size)))
    for start, end in gaps:
        for local, data_end in _scan_locals(src, start, end):
            yield from ctx.drain()
            if ctx.stop or not ctx.count_member():
                yield from ctx.drain()
                return
            ctx.report(
                Finding(
                    "archive-hidden-member",
                    "medium",
                    "A member is present in the zip's data but missing from its table of contents: "
                    "most tools never show it, some extractors and loaders still read it. It was checked.",
                    f"local header at offset {local.offset}",
                    local.name,
                )
            )
            entry = _entry_from_local(local, data_end)
            yield from _zip_member(ctx, src, entry, local.flags, local.data_start)


def _walk_zip_locals(ctx: _Ctx, src: ByteSource, why: str) -> Iterator[Member | Finding]:
    """No usable central directory: recover members from local headers, front to back."""
    found = False
    for local, data_end in _scan_locals(src, 0, src.size):
        if not found:
            found = True
            ctx.corrupt(
                "The zip's central directory (its table of contents) is unreadable; members were "
                "recovered from their local headers.",
                why,
            )
        yield from ctx.drain()
        if ctx.stop or not ctx.count_member():
            yield from ctx.drain()
            return
        entry = _entry_from_local(local, data_end)
        yield from _zip_member(ctx, src, entry, local.flags, local.data_start)
    if not found:
        raise FormatError(f"not a readable zip archive: {why}", ctx.label)


def _zip_member(
    ctx: _Ctx, src: ByteSource, entry: _Entry, local_flags: int, data_start: int
) -> Iterator[Member | Finding]:
    name = entry.name
    ctx.check_name(name, "zip archive")
    if name.endswith("/") and not entry.csize:
        return  # a directory entry
    csize = entry.csize or 0
    if data_start + csize > src.size:
        ctx.corrupt(
            "A member's data runs past the end of the file (truncated archive); it was checked "
            "as far as it goes.",
            f"{data_start + csize - src.size} bytes missing",
            name,
        )
    data = SliceSource(src, data_start, max(0, min(csize, src.size - data_start)), name)
    hiding = (entry.flags | local_flags) & _FLAG_HIDING
    method = _METHODS.get(entry.method)
    severity = "high" if _looks_pickle_name(name) else "medium"
    if method is None:
        encrypted = entry.method == 99
        ctx.report(
            Finding(
                "archive-encrypted-member" if encrypted else "archive-unsupported-method",
                severity,
                "The member is encrypted (AES), so its content could not be checked."
                if encrypted
                else "The member uses a compression method this scan cannot read, so its content "
                "was not checked.",
                f"compression method {entry.method}",
                name,
                "ask for an unencrypted, uncompressed copy; treat the file as unsafe until then",
            )
        )
        yield from ctx.drain()
        return

    def open_member(report: bool = not hiding) -> tuple[_Reader, _Guarded]:
        if method == "stored":
            guard = _Guarded(
                lambda: SourceStream(data),
                ctx,
                name,
                counted=False,
                size=csize,
                crc=entry.crc,
                cheap_seek=True,
                report=report,
            )
            return _reader(guard, data, ctx), guard
        return _decompressed_reader(
            ctx,
            lambda: io.BufferedReader(SourceStream(data), 64 << 10),
            method,  # type: ignore[arg-type]
            name,
            multi=False,
            size=entry.usize,
            crc=entry.crc,
            report=report,
        )

    reader, guard = open_member()
    with reader:
        head = reader.read(HEAD_SIZE)
        if hiding:
            guard.skip(1 << 62)  # rare and hostile: verify the whole member now
        elif len(head) == HEAD_SIZE and entry.usize == HEAD_SIZE:
            reader.read(1)  # reach the end so the CRC is checked
    if hiding:
        really = guard.failed is not None or guard.crc_ok is False
        if really:
            ctx.report(
                Finding(
                    "archive-encrypted-member",
                    severity,
                    "The member is encrypted (or its bytes do not match its checksum), so its "
                    "content could not be checked.",
                    f"flag bits {entry.flags | local_flags:#06x}"
                    + (f"; {guard.failed}" if guard.failed else "; CRC-32 does not match"),
                    name,
                    "ask for an unencrypted copy; treat the file as unsafe until then",
                )
            )
        else:
            ctx.report(
                Finding(
                    "archive-encryption-flag",
                    "medium",
                    "The member is marked encrypted but its bytes are plain: a trick that hides it "
                    "from scanners while PyTorch still loads it (CVE-2025-1945). It was checked.",
                    f"flag bits {entry.flags | local_flags:#06x}",
                    name,
                )
            )
    yield from ctx.drain()
    yield Member(
        name,
        entry.usize if method != "stored" else csize,
        head,
        lambda: open_member()[0],
        "zip",
        data if method == "stored" else None,
    )


# --- tar ----------------------------------------------------------------------------------


def _walk_tar(
    ctx: _Ctx, opener: Callable[[], BinaryIO], source: ByteSource | None
) -> Iterator[Member | Finding]:
    with opener() as probe:
        first = probe.read(16)
    outer = _compression_kind(first)

    def open_tar() -> BinaryIO:
        if outer is None:
            return opener()
        return _decompressed_reader(ctx, opener, outer, ctx.label)[0]

    base = open_tar()
    try:
        try:
            tf = tarfile.TarFile(fileobj=base, mode="r", ignore_zeros=True)
        except Exception as exc:
            if ctx.stop:
                yield from ctx.drain()
                return
            raise FormatError(f"not a readable tar archive: {exc}", ctx.label) from None
        after = 0  # where the next header should start
        # A pax global header is consumed silently (the first one while opening): a gap, not a hiding place.
        globals_seen: dict[str, str] = {}
        while True:
            yield from ctx.drain()
            if ctx.stop:
                return
            try:
                ti = tf.next()
            except Exception as exc:
                if not ctx.stop:
                    ctx.corrupt(
                        "The tar archive is damaged or cut short; entries after the damage were not checked.",
                        str(exc) or type(exc).__name__,
                    )
                break
            if ti is None:
                break
            del tf.members[:]  # no index of all entries: memory stays flat
            if not ctx.count_member():
                break
            if ti.offset > after and tf.pax_headers == globals_seen:
                ctx.report(
                    Finding(
                        "archive-hidden-member",
                        "medium",
                        "This entry comes after an end-of-archive marker or a damaged header: tar "
                        "and Python stop before it, other tools read on. It was checked.",
                        f"header at offset {ti.offset}, expected {after}",
                        ti.name,
                    )
                )
            after = tf.offset
            globals_seen = dict(tf.pax_headers)
            yield from _tar_entry(ctx, tf, ti, outer, source, open_tar)
    finally:
        base.close()


def _tar_entry(
    ctx: _Ctx,
    tf: tarfile.TarFile,
    ti: tarfile.TarInfo,
    outer: str | None,
    source: ByteSource | None,
    open_tar: Callable[[], BinaryIO],
) -> Iterator[Member | Finding]:
    name = ti.name
    ctx.check_name(name, "tar archive")
    if ti.issym() or ti.islnk():
        target = ti.linkname
        # A symlink's target is relative to the link's folder, a hard link's to the archive root.
        relative = posixpath.join(posixpath.dirname(name), target) if ti.issym() else target
        escapes = _escape_reason(target) or _escape_reason(posixpath.normpath(relative))
        kind = "symlink" if ti.issym() else "hard link"
        ctx.report(
            Finding(
                "archive-link-member",
                "high" if escapes else "low",
                f"A {kind} entry that points outside the extraction folder: extracting it lets later "
                "entries write anywhere."
                if escapes
                else f"A {kind} entry; extracting it creates a link inside the extraction folder.",
                f"{kind} {name!r} -> {target!r}",
                name,
                "extract with tarfile's 'data' filter, or not at all",
            )
        )
        return
    if ti.ischr() or ti.isblk() or ti.isfifo():
        ctx.report(
            Finding(
                "archive-special-member",
                "low",
                "A device or FIFO entry; model archives never need one.",
                f"type {ti.type!r}",
                name,
            )
        )
        return
    if not ti.isreg():
        return
    try:
        extracted = tf.extractfile(ti)
        head = extracted.read(HEAD_SIZE) if extracted is not None else b""
    except Exception as exc:
        if not ctx.stop:
            ctx.corrupt("A tar entry's data is cut short.", str(exc) or type(exc).__name__, name)
        head = b""
    in_place = outer is None and source is not None and not ti.sparse
    slice_ = SliceSource(source, ti.offset_data, ti.size, name) if in_place and source is not None else None

    def open_entry() -> BinaryIO:
        if slice_ is not None:
            return _plain_reader(ctx, slice_, name)
        if ti.sparse:

            def sparse() -> Any:
                inner = tarfile.TarFile(fileobj=open_tar(), mode="r")
                return inner.extractfile(ti)

            return _reader(_Guarded(sparse, ctx, name, counted=False), None, ctx)
        return _reader(
            _Guarded(lambda: _Window(open_tar(), ti.offset_data, ti.size), ctx, name, counted=False),
            None,
            ctx,
        )

    yield from ctx.drain()
    yield Member(name, ti.size, head, open_entry, "tar", slice_)


# --- single compressed streams ------------------------------------------------------------


def _walk_single(
    ctx: _Ctx, opener: Callable[[], BinaryIO], kind: str, label: str
) -> Iterator[Member | Finding]:
    base = Path(label).name if label else ""
    stem = f"{base} (decompressed)" if base else "content"
    for suffix in _SUFFIXES[kind]:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            stem = base[: -len(suffix)] + (".tar" if suffix.startswith(".t") else "")
            break

    def open_content() -> BinaryIO:
        return _decompressed_reader(ctx, opener, kind, stem)[0]

    with open_content() as stream:
        head = stream.read(HEAD_SIZE)
    if not head and not ctx.stop:
        pending = list(ctx.drain())
        damaged = [f for f in pending if f.rule == "archive-corrupt"]
        if damaged:
            raise FormatError(f"not a readable {kind} stream: {damaged[0].evidence}", ctx.label)
        yield from pending
    yield from ctx.drain()
    yield Member(stem, None, head, open_content, kind)


# --- 7z -----------------------------------------------------------------------------------


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
        for f in archive.files:
            f._file_info["digest"] = None  # we check CRCs ourselves; a bad one must not stop the pass
            wanted = f.id in writers
            archive.worker.register_filelike(f.id, py7zr.io.MemIO(str(f.id), factory) if wanted else None)
        archive.worker.extract(archive.fp, None, parallel=False)


def _counting_sink(py7zr: Any, ctx: _Ctx) -> type:
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


def _walk_7z(ctx: _Ctx, src: ByteSource) -> Iterator[Member | Finding]:
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
                    "high" if _looks_pickle_name(f.filename) else "medium",
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


def _sevenzip_opener(ctx: _Ctx, py7zr: Any, src: ByteSource, f: Any) -> Callable[[], BinaryIO]:
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
        return _SpoolSource(spool.file, spool.total, name).open_stream()

    def open_member() -> BinaryIO:
        return _reader(_Guarded(extract, ctx, name, counted=False, cheap_seek=True), None, ctx)

    return open_member
