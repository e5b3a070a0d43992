"""What detectors look at: a file's first bytes, its zip directory, or a folder's listing.

A probe reads lazily and caches, so twenty detectors asking for the zip listing cost one read
of the central directory. Nothing here grows with the size of the weights.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zipfile
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import FormatError
from .source import ByteSource, OpenedSource, open_source

HEAD_SIZE = 64 * 1024
MAX_ZIP_MEMBER_READ = 64 * 1024 * 1024  # data.pkl of a huge checkpoint is a few MB at most
MAX_JSON_READ = 32 * 1024 * 1024


MAX_JSON_DEPTH = 200  # model configs nest a few dozen levels at most


def load_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, where nesting deeper than `max_depth` is a ValueError like any other bad JSON.

    The json module itself raises RecursionError past Python's recursion limit ([[[[… about a
    thousand deep), and a document just under it would still overflow the stack of the
    recursive walks that read configs. Every caller already turns ValueError into "not valid JSON".
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= max_depth:
                    raise ValueError(f"JSON nested deeper than {max_depth} levels")
                pending.append((child, depth + 1))
    return value


class FileProbe:
    """A regular file, opened for positioned reads."""

    kind = "file"

    def __init__(self, path: Path, source: OpenedSource | None = None) -> None:
        self.path = path
        self.source = source or open_source(path)
        self.size = self.source.size
        self.ext = path.suffix.lower()
        self.name = path.name

    @cached_property
    def head(self) -> bytes:
        return self.source.read_at(0, HEAD_SIZE)

    @cached_property
    def tail(self) -> bytes:
        start = max(0, self.size - HEAD_SIZE)
        return self.source.read_at(start, self.size - start)

    def read(self, offset: int, length: int) -> bytes:
        return self.source.read_at(offset, length)

    @cached_property
    def proto_fields(self) -> tuple[list[Any], bool]:
        """Top-level protobuf fields and whether the whole file parsed as one message."""
        from .protowire import top_level_numbers

        return top_level_numbers(self.source)

    # --- zip -------------------------------------------------------------------------------

    @cached_property
    def _zip(self) -> tuple[zipfile.ZipFile | None, str | None]:
        """(open ZipFile, None), (None, why the zip is corrupt), or (None, None) if not a zip."""
        looks_zip = self.head[:4] == b"PK\x03\x04" or b"PK\x05\x06" in self.tail
        if not looks_zip:
            return None, None
        try:
            zf = zipfile.ZipFile(self.source.open_stream())
        except zipfile.BadZipFile as exc:
            return None, f"zip central directory is unreadable ({exc})"
        except (OSError, ValueError, EOFError, struct.error, NotImplementedError) as exc:
            return None, f"zip central directory is unreadable ({exc})"
        return zf, None

    @property
    def zip_archive(self) -> zipfile.ZipFile | None:
        return self._zip[0]

    @property
    def is_zip(self) -> bool:
        return self._zip[0] is not None

    @property
    def zip_error(self) -> str | None:
        return self._zip[1]

    @cached_property
    def zip_names(self) -> list[str]:
        zf = self._zip[0]
        if zf is not None:
            return zf.namelist()
        if self.zip_error and self.head[:4] == b"PK\x03\x04":
            return self._local_header_names()
        return []

    def _local_header_names(self) -> list[str]:
        """Entry names from local headers in the head: a fallback when the central directory lies."""
        names: list[str] = []
        pos = 0
        head = self.head
        while pos + 30 <= len(head) and head[pos : pos + 4] == b"PK\x03\x04":
            (_, _, flags, _, _, _, _, csize, _, nlen, xlen) = struct.unpack_from("<IHHHHHIIIHH", head, pos)
            name = head[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
            names.append(name)
            data_start = pos + 30 + nlen + xlen
            if flags & 0x08 and csize == 0:
                # Size only in the trailing data descriptor: resume at the next local header.
                nxt = head.find(b"PK\x03\x04", data_start)
                if nxt < 0:
                    break
                pos = nxt
            else:
                pos = data_start + csize
        return names

    def zip_read(self, member: str, limit: int = MAX_ZIP_MEMBER_READ) -> bytes:
        """A member's bytes, refusing members larger than `limit` (weights are never read)."""
        return self._read_member(member, limit, refuse_larger=True)

    def zip_read_head(self, member: str, length: int = 4096) -> bytes:
        """The first `length` bytes of a member (decompressing only that much)."""
        return self._read_member(member, length, refuse_larger=False)

    def _read_member(self, member: str, length: int, refuse_larger: bool) -> bytes:
        zf = self._zip[0]
        if zf is None:
            raise FormatError("not a readable zip archive", self.path)
        try:
            info = zf.getinfo(member)
            if refuse_larger and info.file_size > length:
                raise FormatError(
                    f"zip member {member} is {info.file_size} bytes, over the read limit", self.path
                )
            with zf.open(info) as fh:
                return fh.read(length)
        except KeyError:
            raise FormatError(f"zip member {member} missing", self.path) from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise FormatError(f"zip member {member} is unreadable ({exc})", self.path) from None

    def sibling(self, name: str) -> Path | None:
        candidate = self.path.with_name(name)
        return candidate if candidate.is_file() else None

    def close(self) -> None:
        zf = self._zip[0] if "_zip" in self.__dict__ else None
        if zf is not None:
            zf.close()
        self.source.close()


def stored_member_offset(source: ByteSource, info: zipfile.ZipInfo) -> int | None:
    """Where a stored (uncompressed) zip member's bytes start in the archive file, or None.

    The local header's name and extra lengths may differ from the central directory's, so the
    local header itself is read. None for compressed or encrypted members and bad local headers.
    """
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    local = source.read_at(info.header_offset, 30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack_from("<HH", local, 26)
    return info.header_offset + 30 + name_len + extra_len


class DirProbe:
    """A folder that may be one model (HF repo, SavedModel, .mlpackage, Diffusers pipeline)."""

    kind = "directory"
    size = 0

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.ext = path.suffix.lower()

    @cached_property
    def _entries(self) -> tuple[list[str], list[str]]:
        """(regular files, folders) directly inside, each sorted by name."""
        if not isinstance(self.path, Path):  # a remote folder: its listing is the directory
            children = list(self.path.iterdir())
            return sorted(c.name for c in children if c.is_file()), sorted(
                c.name for c in children if c.is_dir()
            )
        try:
            with os.scandir(self.path) as it:
                entries = list(it)
        except OSError:
            return [], []
        return sorted(e.name for e in entries if _is_file(e)), sorted(e.name for e in entries if _is_dir(e))

    @property
    def files(self) -> list[str]:
        """Names of regular files directly inside, sorted."""
        return self._entries[0]

    @property
    def dirs(self) -> list[str]:
        return self._entries[1]

    def has(self, name: str) -> bool:
        return name in self.files

    def matching(self, suffix: str) -> list[str]:
        return [f for f in self.files if f.lower().endswith(suffix)]

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A small JSON file inside the folder, or None if missing, too big or not a JSON object."""
        path = self.path / name
        try:
            if path.stat().st_size > MAX_JSON_READ:
                return None
            data = load_json(path.read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @cached_property
    def total_size(self) -> int:
        total = 0
        if not isinstance(self.path, Path):
            return sum(f.stat().st_size for f in self.path.walk_files())
        for root, _dirs, names in os.walk(self.path):
            for n in names:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, n)).st_size
        return total


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
