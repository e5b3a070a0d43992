"""Walk a single compressed stream (gzip, bz2, xz, lzma, zlib): one member, its content."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import FormatError
from ..probe import HEAD_SIZE
from .archive_context import Member, WalkContext
from .archive_streams import decompressed_reader
from .findings import Finding

_SUFFIXES = {
    "gzip": (".gz", ".gzip", ".tgz"),
    "bz2": (".bz2", ".tbz2", ".tbz"),
    "xz": (".xz", ".txz"),
    "lzma": (".lzma",),
    "zlib": (".z", ".zz", ".zlib", ".deflate"),
}


def walk_compressed(
    ctx: WalkContext, opener: Callable[[], BinaryIO], kind: str, label: str
) -> Iterator[Member | Finding]:
    """The one member: the decompressed content, named after `label` without its suffix."""
    base = Path(label).name if label else ""
    stem = f"{base} (decompressed)" if base else "content"
    for suffix in _SUFFIXES[kind]:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            stem = base[: -len(suffix)] + (".tar" if suffix.startswith(".t") else "")
            break

    def open_content() -> BinaryIO:
        return decompressed_reader(ctx, opener, kind, stem)[0]

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
