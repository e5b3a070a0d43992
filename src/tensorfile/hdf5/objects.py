"""The h5py-like surface over the structures: File (the root Group), Group, Dataset, Datatype and
their attributes, as the format handlers use them."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from math import prod
from typing import Any, BinaryIO

import numpy as np

from ..errors import FormatError
from ..source import ByteSource
from .structures import (
    ATTRIBUTE,
    ATTRIBUTE_INFO,
    DATASPACE,
    DATATYPE,
    EXTERNAL,
    LAYOUT,
    LINK,
    LINK_INFO,
    MAX_ATTR_VALUE,
    MAX_SCALAR_READ,
    SHARED_FLAG,
    SOFT_LINK_HOPS,
    SYMBOL_TABLE,
    Cursor,
    H5Type,
    Reader,
    StreamSource,
)


class AttributeManager:
    """An object's attributes by name (values decoded on access, as h5py returns them)."""

    def __init__(self, h5: Reader, messages: list[tuple[int, int, bytes]]) -> None:
        self._h5 = h5
        self._raw: dict[str, bytes] = {}
        for kind, flags, body in messages:
            if kind == ATTRIBUTE:
                self._add(h5.shared(body, ATTRIBUTE) if flags & SHARED_FLAG else body)
            elif kind == ATTRIBUTE_INFO:
                self._dense(body)

    def _add(self, body: bytes) -> None:
        cur = Cursor(body, self._h5, "attribute")
        version = cur.u8()
        cur.skip(1)
        name_size = cur.u16()
        cur.skip(4)
        if version == 3:
            cur.skip(1)
        name = cur.take(name_size).split(b"\0", 1)[0].decode("utf-8", "replace")
        self._raw.setdefault(name, body)

    def _dense(self, body: bytes) -> None:
        cur = Cursor(body, self._h5, "attribute info")
        cur.skip(1)
        flags = cur.u8()
        if flags & 1:
            cur.skip(2)
        heap_addr, names = cur.addr(), cur.addr()
        if heap_addr == self._h5.undef or names == self._h5.undef:
            return
        heap = self._h5.fractal_heap(heap_addr)
        for record in self._h5.btree2_records(names):  # type-8 records: heap ID (8), message flags, …
            if len(record) < 9:
                raise FormatError("HDF5 dense attribute record is malformed", self._h5.name)
            # type-8 records: heap ID (8), message flags; a shared attribute's heap object is its pointer
            stored = heap.object(record[:8])
            self._add(self._h5.shared(stored, ATTRIBUTE) if record[8] & SHARED_FLAG else stored)

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._raw))

    def __len__(self) -> int:
        return len(self._raw)

    def keys(self) -> list[str]:
        return sorted(self._raw)

    def __getitem__(self, name: str) -> Any:
        body = self._raw[name]
        return _guard(lambda: self._decode(body), self._h5.name)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._raw else default

    def _decode(self, body: bytes) -> Any:
        h5 = self._h5
        cur = Cursor(body, h5, "attribute")
        version = cur.u8()
        flags = cur.u8() if version >= 2 else (cur.skip(1) or 0)
        name_size, type_size, space_size = cur.u16(), cur.u16(), cur.u16()
        if version == 3:
            cur.skip(1)
        pad = (lambda n: n + (8 - n % 8) % 8) if version == 1 else (lambda n: n)
        cur.skip(pad(name_size))
        type_body = cur.take(pad(type_size))
        space_body = cur.take(pad(space_size))
        dtype = h5.message_type(SHARED_FLAG if flags & 1 else 0, type_body)
        shape = h5.dataspace(h5.shared(space_body, DATASPACE) if flags & 2 else space_body)
        return _values(h5, dtype, shape, body[cur.pos :])


def _values(h5: Reader, dtype: H5Type, shape: tuple[int, ...] | None, data: bytes) -> Any:
    """Attribute (or small dataset) bytes as h5py shows them: numpy scalars/arrays, str for vlen strings."""
    if shape is None:
        return None  # h5py's Empty
    count = prod(shape)
    if count * max(dtype.size, 1) > MAX_ATTR_VALUE or count * dtype.size > len(data):
        raise FormatError("HDF5 attribute value is larger than its message", h5.name)
    if dtype.cls == 9:
        cur = Cursor(data, h5, "variable-length value")
        items: list[Any] = []
        for _ in range(count):
            length, collection, index = cur.u32(), cur.addr(), cur.u32()
            raw = h5.global_object(collection, index) if length else b""
            if dtype.is_str:
                items.append(raw.split(b"\0", 1)[0].decode("utf-8", "replace"))
            else:
                base = dtype.base
                items.append(np.frombuffer(raw, base.dtype) if base and base.dtype.kind != "O" else raw)
        if shape == ():
            return items[0]
        out = np.empty(count, dtype=object)
        out[:] = items
        return out.reshape(shape)
    if dtype.dtype.kind == "O":
        return None  # references: nothing a format handler reads
    array = np.frombuffer(data[: count * dtype.size], dtype.dtype)
    return array[0] if shape == () else array.reshape(shape)


class _Object:
    def __init__(self, h5: Reader, addr: int, name: str) -> None:
        self._h5, self._addr, self.name = h5, addr, name
        self._messages = h5.messages(addr)
        self._attrs: AttributeManager | None = None

    @property
    def attrs(self) -> AttributeManager:
        if self._attrs is None:
            self._attrs = AttributeManager(self._h5, self._messages)
        return self._attrs


class Dataset(_Object):
    """A dataset's metadata; its data is read only for small contiguous or compact values."""

    def __init__(self, h5: Reader, addr: int, name: str) -> None:
        super().__init__(h5, addr, name)
        self.shape: tuple[int, ...] | None = ()
        self._type: H5Type | None = None
        self.chunks: tuple[int, ...] | None = None
        self.is_virtual = False
        self.external: list[Any] | None = None
        self._layout = (-1, h5.undef, 0)  # class, address, size
        self._compact = b""
        self._chunk_dims = 0
        for kind, flags, body in self._messages:
            if kind == DATATYPE:
                self._type = h5.message_type(flags, body)
            elif kind == DATASPACE:
                self.shape = h5.dataspace(h5.shared(body, kind) if flags & SHARED_FLAG else body)
            elif kind == LAYOUT:
                self._read_layout(body)
            elif kind == EXTERNAL:
                self.external = [True]
        if self._type is None:
            raise FormatError(f"HDF5 dataset {name} has no datatype", h5.name)
        self.id = self

    @property
    def dtype(self) -> np.dtype:
        assert self._type is not None
        return self._type.dtype

    def _read_layout(self, body: bytes) -> None:
        h5 = self._h5
        cur = Cursor(body, h5, "layout message")
        version = cur.u8()
        if version in (1, 2):
            rank, cls = cur.u8(), cur.u8()
            cur.skip(5)
            address = cur.addr() if cls else h5.undef
            dims = [cur.u32() for _ in range(rank)]
            if cls == 2:  # versions 1-2 list one dimension more than the dataspace: the element size
                self.chunks = tuple(dims[:-1])
                self._chunk_dims = rank
            self._layout = (cls, address, 0 if cls == 2 else prod(dims))
            return
        if version not in (3, 4, 5):  # 5 (HDF5 2.0) is laid out as 4
            raise FormatError(f"HDF5 layout message version {version}", h5.name)
        cls = cur.u8()
        if cls == 0:
            size = cur.u16()
            self._compact = cur.take(size)
            self._layout = (0, h5.undef, size)
        elif cls == 1:
            self._layout = (1, cur.addr(), cur.length())
        elif cls == 2:
            if version == 3:
                rank = cur.u8()
                address = cur.addr()
                dims = [cur.u32() for _ in range(rank)]
            else:
                cur.skip(1)  # flags
                rank, width = cur.u8(), cur.u8()
                dims = [cur.uint(width) for _ in range(rank)]
                address = h5.undef  # v4 chunk indexes (fixed/extensible arrays, v2 B-trees): not walked
            self.chunks = tuple(dims[:-1])  # the last dimension is the element size
            self._chunk_dims = rank
            self._layout = (2, address, 0)
        elif cls == 3:
            self.is_virtual = True
            self._layout = (3, h5.undef, 0)
        else:
            raise FormatError(f"HDF5 layout class {cls}", h5.name)

    def get_offset(self) -> int | None:
        """Absolute file offset of contiguous data (user block included), None when not contiguous."""
        cls, address, _size = self._layout
        if cls != 1 or address == self._h5.undef:
            return None
        return self._h5.base + address

    def get_storage_size(self) -> int:
        cls, address, size = self._layout
        if cls == 1:
            return 0 if address == self._h5.undef else size
        if cls == 0:
            return size
        if cls == 2 and address != self._h5.undef:
            return _chunk_bytes(self._h5, address, self._chunk_dims)
        return 0

    def __getitem__(self, key: Any) -> Any:
        if key != ():
            raise TypeError("only ds[()] is supported")
        cls, address, size = self._layout
        if size > MAX_SCALAR_READ or self._type is None:
            raise FormatError(f"HDF5 dataset {self.name} is too large to read here", self._h5.name)
        if cls == 0:
            data = self._compact
        elif cls == 1 and address != self._h5.undef:
            data = self._h5.read(address, size, "dataset")
        else:
            raise FormatError(f"HDF5 dataset {self.name} has no contiguous data", self._h5.name)
        value_type = self._type
        return _guard(lambda: _values(self._h5, value_type, self.shape, data), self._h5.name)


def _chunk_bytes(h5: Reader, root: int, dims: int) -> int:
    """Stored bytes of a v1 B-tree chunk index: the chunk sizes in its leaves' keys."""
    return sum(int.from_bytes(key[:4], "little") for key, _ in h5.btree1_leaves(root, 1, 8 + 8 * dims))


class Group(_Object):
    """A group: its links by name (sorted, as h5py lists them), attributes, and a walk."""

    def __init__(self, h5: Reader, addr: int, name: str) -> None:
        super().__init__(h5, addr, name)
        self._links: dict[str, tuple[str, Any, int]] | None = None

    def _link_table(self) -> dict[str, tuple[str, Any, int]]:
        if self._links is None:
            self._links = _guard(self._read_links, self._h5.name)
        return self._links

    def _read_links(self) -> dict[str, tuple[str, Any, int]]:
        links: dict[str, tuple[str, Any, int]] = {}
        tracked = False
        for kind, _flags, body in self._messages:
            if kind == SYMBOL_TABLE:
                _symbol_table(self._h5, body, links)
            elif kind == LINK:
                name, link = _link(self._h5, body)
                links.setdefault(name, link)
            elif kind == LINK_INFO:
                tracked = tracked or bool(_dense_links(self._h5, body, links))
        # h5py lists by name, or by creation order where the group tracks it
        order = (lambda item: (item[1][2], item[0])) if tracked else (lambda item: item[0])
        return dict(sorted(links.items(), key=order))

    def keys(self) -> list[str]:
        return list(self._link_table())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._link_table())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, path: str) -> Group | Dataset:
        found = self.get(path)
        if found is None:
            raise KeyError(path)
        return found

    def get(self, path: str, default: Any = None) -> Any:
        found = self._resolve(path, 0)
        return default if found is None else found

    def _resolve(self, path: str, hops: int) -> Group | Dataset | None:
        node: Group | Dataset | None = _root(self) if path.startswith("/") else self
        for part in (p for p in path.split("/") if p and p != "."):
            if not isinstance(node, Group):
                return None
            link = node._link_table().get(part)
            if link is None:
                return None
            kind, target, _order = link
            if kind == "hard":
                node = _open(node._h5, target, f"{node.name.rstrip('/')}/{part}")
            elif kind == "soft" and hops < SOFT_LINK_HOPS:
                node = node._resolve(target, hops + 1)
            else:
                return None  # external and user-defined links are never followed
        return node

    def visititems(self, func: Callable[[str, Group | Dataset], Any]) -> Any:
        """func(relative name, object) for every object under the group once, through hard links."""
        seen = {self._addr}
        stack: list[tuple[str, Group]] = [("", self)]
        while stack:
            prefix, group = stack.pop()
            children: list[tuple[str, Group]] = []
            for name, (kind, target, _order) in group._link_table().items():
                if kind != "hard" or target in seen:
                    continue
                seen.add(target)
                path = f"{prefix}{name}"
                obj = _open(self._h5, target, f"{self.name.rstrip('/')}/{path}")
                result = func(path, obj)
                if result is not None:
                    return result
                if isinstance(obj, Group):
                    children.append((path + "/", obj))
            stack.extend(reversed(children))
        return None


class File(Group):
    """The root group of an HDF5 file given as a ByteSource or a seekable binary stream."""

    def __init__(self, source: ByteSource | BinaryIO, name: str | None = None) -> None:
        if not hasattr(source, "read_at"):
            source = StreamSource(source, name or getattr(source, "name", "<stream>"))  # type: ignore[arg-type]
        label = name or str(getattr(source, "name", "<hdf5>"))
        h5 = _guard(lambda: Reader(source, label), label)  # type: ignore[arg-type]
        _guard(lambda: Group.__init__(self, h5, h5.root, "/"), label)

    def __enter__(self) -> File:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None


def _guard(fn: Callable[[], Any], name: str) -> Any:
    try:
        return fn()
    except (
        struct.error,
        IndexError,
        ValueError,
        TypeError,
        OverflowError,
        RecursionError,
        MemoryError,
    ) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"HDF5 structure is corrupt ({type(exc).__name__})", name) from None


def _root(group: Group) -> Group:
    return Group(group._h5, group._h5.root, "/")


class Datatype(_Object):
    """A committed (named) datatype: attributes only, as far as the handlers care."""


def _open(h5: Reader, addr: int, name: str) -> Group | Dataset | Datatype:
    return _guard(lambda: _object(h5, addr, name), h5.name)


def _object(h5: Reader, addr: int, name: str) -> Group | Dataset | Datatype:
    kinds = {kind for kind, _flags, _body in h5.messages(addr)}
    if LAYOUT in kinds:
        return Dataset(h5, addr, name)
    if kinds & {SYMBOL_TABLE, LINK, LINK_INFO, 0x0A} or not kinds - {ATTRIBUTE, ATTRIBUTE_INFO, 0x16}:
        return Group(h5, addr, name)
    return Datatype(h5, addr, name)  # a committed datatype (or an object of no other kind)


def _symbol_table(h5: Reader, body: bytes, links: dict[str, tuple[str, Any, int]]) -> None:
    """Old-style group: v1 B-tree of symbol-table nodes, names in a local heap."""
    cur = Cursor(body, h5, "symbol table message")
    tree, heap = cur.addr(), cur.addr()
    head = h5.cursor(heap, 8 + 2 * h5.sl + h5.so, "local heap")
    head.signature(b"HEAP")
    head.skip(4)
    size = head.length()
    head.skip(h5.sl)
    names = h5.read(head.addr(), size, "local heap") if size else b""

    def text(offset: int) -> str:
        end = names.find(b"\0", offset)
        if offset >= len(names) or end < 0:
            raise FormatError("HDF5 link name outside its local heap", h5.name)
        return names[offset:end].decode("utf-8", "replace")

    entry = 2 * h5.so + 24

    def symbols(address: int) -> None:
        head = h5.cursor(address, 8, "symbol table node")
        head.signature(b"SNOD")
        head.skip(2)
        count = head.u16()
        cur = h5.cursor(address + 8, count * entry, "symbol table node")
        h5.spend(count)
        for _ in range(count):
            name_offset, target, cache = cur.addr(), cur.addr(), cur.u32()
            cur.skip(4)
            scratch = cur.take(16)
            name = text(name_offset)
            if cache == 2:  # a soft link: the scratch pad holds the offset of its value
                links.setdefault(name, ("soft", text(int.from_bytes(scratch[:4], "little")), 0))
            else:
                links.setdefault(name, ("hard", target, 0))

    if tree != h5.undef:
        for _key, child in h5.btree1_leaves(tree, 0, h5.sl):
            symbols(child)


def _link(h5: Reader, body: bytes) -> tuple[str, tuple[str, Any, int]]:
    """A link message: name and (kind, target, creation order)."""
    cur = Cursor(body, h5, "link message")
    if cur.u8() != 1:
        raise FormatError("HDF5 link message of an unknown version", h5.name)
    flags = cur.u8()
    kind = cur.u8() if flags & 0x08 else 0
    order = cur.uint(8) if flags & 0x04 else 0
    if flags & 0x10:
        cur.skip(1)  # character set
    name = cur.take(cur.uint(1 << (flags & 3))).decode("utf-8", "replace")
    if kind == 0:
        return name, ("hard", cur.addr(), order)
    if kind == 1:
        return name, ("soft", cur.take(cur.u16()).decode("utf-8", "replace"), order)
    return name, ("external" if kind == 64 else "user", None, order)


def _dense_links(h5: Reader, body: bytes, links: dict[str, tuple[str, Any, int]]) -> int:
    """Links kept in a fractal heap (when the link info message names one); returns the info flags."""
    cur = Cursor(body, h5, "link info message")
    cur.skip(1)
    flags = cur.u8()
    if flags & 1:
        cur.skip(8)
    heap_addr, names = cur.addr(), cur.addr()
    if heap_addr == h5.undef or names == h5.undef:
        return flags & 1
    heap = h5.fractal_heap(heap_addr)
    for record in h5.btree2_records(names):
        name, link = _link(h5, heap.object(record[4:]))  # type-5 records: name hash (4), heap ID
        links.setdefault(name, link)
    return flags & 1
