"""Walk archives the way loaders read them, to find every member that could hold a pickle.

`archive_kind(head)` (archive_sniff) tells a container by its bytes; `walk_archive(path, kind)`
(or `walk_archive_stream` for a member that is itself an archive) yields one `Member` per file in
it and archive-level `Finding`s (rule ids "archive-…"). Nested archives are not recursed here: the
caller sniffs `member.head` with `archive_kind` and walks the member again.

This module only picks the walker for a kind; each format has its own: `zip_walk` (over the
tamper-tolerant record reader `zip_records`), `tar_walk`, `sevenzip_walk`, `compressed_walk`. They
share `archive_context` (limits, names, findings) and `archive_streams` (member streams).

Costs: walking reads the directory and the first `HEAD_SIZE` bytes of each member, nothing more;
`member.open()` streams the rest on demand. Every decompressing stream counts its output against
`Limits.max_total` (shared by nested walks), memory per stream is bounded, and a damaged or
hostile member ends its stream early instead of raising: member streams never raise on bad data.
Whatever such a stream finds out while the caller reads it (a CRC mismatch, damage past the
head, the decompression limit) is yielded as a Finding when the iteration resumes, so scan each
member before asking for the next.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import UnsupportedError
from ..source import ByteSource, OpenedSource, open_source
from .archive_context import Limits, Member, WalkContext
from .archive_sniff import archive_kind
from .archive_streams import GuardedStream, member_reader, plain_reader, spool_copy
from .compressed_walk import walk_compressed
from .findings import Finding
from .sevenzip_walk import walk_7z
from .tar_walk import walk_tar
from .zip_walk import walk_zip

INCOMPLETE_RULES = frozenset(
    {
        "archive-encrypted-member",
        "archive-unsupported-method",
        "archive-corrupt",
        "archive-too-large",
        "archive-too-many-members",
    }
)
_SINGLE_KINDS = ("gzip", "bz2", "xz", "lzma", "zlib")


def walk_archive(path: Path, kind: str, *, limits: Limits | None = None) -> Iterator[Member | Finding]:
    """Members and archive findings of the archive file at `path` (`kind` from archive_kind).

    Raises FormatError when nothing at all could be read, UnsupportedError for a kind this
    module does not walk (or 7z without py7zr).
    """
    path = Path(path) if isinstance(path, str) else path
    source = _FileBytes(path)
    ctx = WalkContext(limits or Limits(), str(path))
    try:
        yield from _dispatch(ctx, kind, lambda: plain_reader(ctx, source, str(path)), source, path.name)
    finally:
        source.close()


class _FileBytes:
    """The archive file: one descriptor while walking, reopened if a member is read afterwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._file: OpenedSource | None = open_source(path)
        self.size = self._file.size

    def read_at(self, offset: int, length: int) -> bytes:
        if self._file is None:
            self._file = open_source(self.path)
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
    ctx = WalkContext(limits or Limits(), label)

    def opener() -> BinaryIO:
        return member_reader(
            GuardedStream(open_stream, ctx, label, counted=False, cheap_seek=True), source, ctx
        )

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
    ctx: WalkContext, kind: str, opener: Callable[[], BinaryIO], source: ByteSource | None, name: str
) -> Iterator[Member | Finding]:
    if kind in ("zip", "7z"):
        if source is None:
            source = spool_copy(ctx, opener, name)
            yield from ctx.drain()
        walk = walk_zip(ctx, source) if kind == "zip" else walk_7z(ctx, source)
    elif kind == "tar":
        walk = walk_tar(ctx, opener, source)
    elif kind in _SINGLE_KINDS:
        walk = walk_compressed(ctx, opener, kind, name)
    else:
        raise UnsupportedError(f"cannot walk archives of kind {kind!r}", ctx.label)
    yield from walk
    yield from ctx.drain()
