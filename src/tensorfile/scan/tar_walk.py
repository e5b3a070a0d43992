"""Walk a tar (plain or inside a compressed stream): members, links, special entries, and
entries hidden after an end-of-archive marker."""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ..errors import FormatError
from ..probe import HEAD_SIZE
from ..source import ByteSource, PositionedStream, SliceSource
from .archive_context import Member, WalkContext, escape_reason
from .archive_sniff import compression_kind
from .archive_streams import GuardedStream, decompressed_reader, member_reader, plain_reader
from .findings import Finding


def walk_tar(
    ctx: WalkContext, opener: Callable[[], BinaryIO], source: ByteSource | None
) -> Iterator[Member | Finding]:
    """Every entry, read on after end-of-archive markers; `source` lets plain members be read in place."""
    with opener() as probe:
        first = probe.read(16)
    outer = compression_kind(first)

    def open_tar() -> BinaryIO:
        if outer is None:
            return opener()
        return decompressed_reader(ctx, opener, outer, ctx.label)[0]

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
    ctx: WalkContext,
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
        escapes = escape_reason(target) or escape_reason(posixpath.normpath(relative))
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
            return plain_reader(ctx, slice_, name)
        if ti.sparse:

            def sparse() -> Any:
                inner = tarfile.TarFile(fileobj=open_tar(), mode="r")
                return inner.extractfile(ti)

            return member_reader(GuardedStream(sparse, ctx, name, counted=False), None, ctx)
        return member_reader(
            GuardedStream(lambda: _Window(open_tar(), ti.offset_data, ti.size), ctx, name, counted=False),
            None,
            ctx,
        )

    yield from ctx.drain()
    yield Member(name, ti.size, head, open_entry, "tar", slice_)


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
