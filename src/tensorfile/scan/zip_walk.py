"""Walk a zip the way torch.load (miniz) reads it, hostile zips included.

Members are read from their local headers, not through `zipfile`: encryption flag bits, wrong
CRCs and local names that differ from the central directory do not hide a member (the picklescan
bypasses CVE-2025-1944, CVE-2025-1945, CVE-2025-10156), and members present only in local headers
(hidden from the central directory) are found and walked too.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from ..errors import FormatError
from ..probe import HEAD_SIZE
from ..source import ByteSource, SliceSource, SourceStream
from .archive_context import Member, WalkContext, looks_pickle_name
from .archive_streams import GuardedStream, MemberReader, decompressed_reader, member_reader
from .findings import Finding
from .zip_records import (
    ZipDirectoryError,
    ZipEntry,
    entry_from_local,
    read_central,
    read_eocd,
    read_local,
    scan_locals,
)

_FLAG_HIDING = 0x1 | 0x20 | 0x40  # encrypted, patched data, strong encryption
_METHODS = {0: "stored", 8: "deflate", 12: "bz2", 14: "zip-lzma"}


def walk_zip(ctx: WalkContext, src: ByteSource) -> Iterator[Member | Finding]:
    """The members the central directory lists, then those hidden from it (all, when it is unusable)."""
    try:
        cd_start, cd_size, concat = read_eocd(src)
        entries, cd_error = read_central(src, cd_start, cd_size, concat, ctx.limits.max_members)
    except ZipDirectoryError as exc:
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
        local = read_local(src, entry.offset)
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
    ctx: WalkContext, src: ByteSource, spans: list[tuple[int, int]], cd_start: int
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
        for local, data_end in scan_locals(src, start, end):
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
            entry = entry_from_local(local, data_end)
            yield from _zip_member(ctx, src, entry, local.flags, local.data_start)


def _walk_zip_locals(ctx: WalkContext, src: ByteSource, why: str) -> Iterator[Member | Finding]:
    """No usable central directory: recover members from local headers, front to back."""
    found = False
    for local, data_end in scan_locals(src, 0, src.size):
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
        entry = entry_from_local(local, data_end)
        yield from _zip_member(ctx, src, entry, local.flags, local.data_start)
    if not found:
        raise FormatError(f"not a readable zip archive: {why}", ctx.label)


def _zip_member(
    ctx: WalkContext, src: ByteSource, entry: ZipEntry, local_flags: int, data_start: int
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
    severity = "high" if looks_pickle_name(name) else "medium"
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

    def open_member(report: bool = not hiding) -> tuple[MemberReader, GuardedStream]:
        if method == "stored":
            guard = GuardedStream(
                lambda: SourceStream(data),
                ctx,
                name,
                counted=False,
                size=csize,
                crc=entry.crc,
                cheap_seek=True,
                report=report,
            )
            return member_reader(guard, data, ctx), guard
        return decompressed_reader(
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
