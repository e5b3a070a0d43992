"""HDF5 on-disk structures (File Format Specification 3.0/4.0): superblock, object headers and
their messages, datatypes and dataspaces, local/global/fractal heaps, v1 and v2 B-trees.

Every read goes through `Reader.read` (checked against the file size, capped at MAX_CHUNK) and
spends from a budget, so no structure a hostile file declares can allocate or loop without bound.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from ..errors import FormatError
from ..source import ByteSource, read_exact
from .fields import MAX_CHUNK, MAX_DEPTH, Cursor, enc_size
from .fractal_heap import FractalHeap

MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_ATTR_VALUE = 64 << 20
MAX_SCALAR_READ = 1 << 20
BUDGET = 4_000_000  # reads + records + messages per file: a real Keras file uses a few thousand
SOFT_LINK_HOPS = 16  # libhdf5's default H5L_NUM_LINKS

# object header message types
DATASPACE, LINK_INFO, DATATYPE, LINK, EXTERNAL, LAYOUT = 0x1, 0x2, 0x3, 0x6, 0x7, 0x8
ATTRIBUTE, CONTINUATION, SYMBOL_TABLE, ATTRIBUTE_INFO = 0xC, 0x10, 0x11, 0x15
SHARED_FLAG = 0x02
SHARED_TABLE = 0xF  # superblock extension: the shared object header message table
# message type -> its bit in a shared-message index's type flags
_SOHM_TYPE_BITS = {0x1: 0x1, 0x3: 0x2, 0x5: 0x4, 0xB: 0x8, 0xC: 0x10}


def find_superblock(source: ByteSource, first: int = 0, max_reads: int | None = None) -> int | None:
    """Where the superblock is: offset 0 or a power of two from 512 (libhdf5's search), or None.

    One 8-byte read per candidate from `first` (0, or a power of two from 512) up to the file size:
    at most 56 reads for any size, the user block may be as large as the file allows. `max_reads`
    stops the search earlier (a remote source pays a request per read).
    """
    offset = first
    reads = 0
    while offset + 8 <= source.size and (max_reads is None or reads < max_reads):
        reads += 1
        if source.read_at(offset, 8) == MAGIC:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


class StreamSource:
    """A seekable binary stream as a ByteSource (a deflated zip member, for instance)."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self.name = name
        self.size = stream.seek(0, io.SEEK_END)

    def read_at(self, offset: int, length: int) -> bytes:
        self._stream.seek(offset)
        return self._stream.read(length)


class H5Type:
    """A decoded HDF5 datatype: class, element size, the numpy dtype h5py would show."""

    __slots__ = ("base", "cls", "dtype", "is_str", "size")

    def __init__(
        self, cls: int, size: int, dtype: np.dtype, base: H5Type | None = None, is_str: bool = False
    ):
        self.cls, self.size, self.dtype, self.base, self.is_str = cls, size, dtype, base, is_str


_IEEE = {(2, 5, 10): "f2", (4, 8, 23): "f4", (8, 11, 52): "f8"}


class Reader:
    """One open HDF5 file: address arithmetic, bounded reads, parsed-structure caches."""

    def __init__(self, source: ByteSource, name: str) -> None:
        self.src, self.name = source, name
        self.budget = BUDGET
        start = find_superblock(source)
        if start is None:
            raise FormatError("no HDF5 superblock", name)
        self.base = start  # libhdf5 takes addresses relative to where the superblock is
        self.so, self.sl = 8, 8
        head = self._raw(start, 24, "superblock")
        version = head[8]
        if version in (0, 1):
            self.so, self.sl = head[13], head[14]
            self._check_sizes()
            fixed = 24 + (4 if version == 1 else 0)
            body = Cursor(
                self._raw(start + fixed, 4 * self.so + 2 * self.so + 24, "superblock"), self, "superblock"
            )
            body.skip(4 * self.so)  # base, free-space info, end of file, driver info addresses
            body.skip(self.so)  # root symbol table entry: link name offset
            self.root = body.addr()
        elif version in (2, 3):
            self.so, self.sl = head[9], head[10]
            self._check_sizes()
            body = Cursor(self._raw(start + 12, 4 * self.so, "superblock"), self, "superblock")
            body.skip(self.so)  # base address
            self.extension = body.addr()  # an object header: shared-message table, …
            body.skip(self.so)  # end of file address
            self.root = body.addr()
        else:
            raise FormatError(f"HDF5 superblock version {version} is not supported", name)
        self.undef = (1 << (8 * self.so)) - 1
        if version in (0, 1):
            self.extension = self.undef
        self._sohm: list[tuple[int, int]] | None = None  # (message type flags, fractal heap address)
        self._headers: OrderedDict[int, list[tuple[int, int, bytes]]] = OrderedDict()
        self._global: OrderedDict[int, tuple[bytes, dict[int, tuple[int, int]]]] = OrderedDict()
        self._heaps: dict[int, FractalHeap] = {}

    def _check_sizes(self) -> None:
        if self.so not in (2, 4, 8) or self.sl not in (2, 4, 8):
            raise FormatError(f"HDF5 superblock: offset/length sizes {self.so}/{self.sl}", self.name)

    def spend(self, units: int = 1) -> None:
        self.budget -= units
        if self.budget < 0:
            raise FormatError("HDF5 structure is too large or cyclic to walk", self.name)

    def _raw(self, offset: int, n: int, what: str) -> bytes:
        self.spend()
        return read_exact(self.src, offset, n, f"HDF5 {what}")

    def read(self, addr: int, n: int, what: str) -> bytes:
        if addr == getattr(self, "undef", -1) or n > MAX_CHUNK:
            raise FormatError(f"HDF5 {what}: undefined address or {n} bytes over the limit", self.name)
        return self._raw(self.base + addr, n, what)

    def cursor(self, addr: int, n: int, what: str) -> Cursor:
        return Cursor(self.read(addr, n, what), self, what)

    # --- object headers ---

    def messages(self, addr: int) -> list[tuple[int, int, bytes]]:
        """(type, flags, body) of every message of the object header at `addr`, continuations followed."""
        cached = self._headers.get(addr)
        if cached is not None:
            self._headers.move_to_end(addr)
            return cached
        first = self.read(addr, 4, "object header")
        found = self._messages_v2(addr) if first == b"OHDR" else self._messages_v1(addr)
        self._headers[addr] = found
        if len(self._headers) > 4096:
            self._headers.popitem(last=False)
        return found

    def _messages_v1(self, addr: int) -> list[tuple[int, int, bytes]]:
        head = self.cursor(addr, 16, "object header")
        if head.u8() != 1:
            raise FormatError(f"HDF5 object header at {addr}: unknown version", self.name)
        head.skip(1)
        count = head.u16()
        head.skip(4)
        chunks = [(addr + 16, head.u32())]
        found: list[tuple[int, int, bytes]] = []
        seen: set[int] = set()
        read = 0
        while chunks and read < count:
            start, size = chunks.pop(0)
            if start in seen:
                raise FormatError("HDF5 object header continues into itself", self.name)
            seen.add(start)
            data = Cursor(self.read(start, size, "object header"), self, "object header")
            while data.pos + 8 <= len(data.data) and read < count:
                kind, length, flags = data.u16(), data.u16(), data.u8()
                data.skip(3)
                body = data.take(length)
                read += 1
                self.spend()
                if kind == CONTINUATION:
                    chunks.append(self._continuation(body))
                elif kind:
                    found.append((kind, flags, body))
        return found

    def _messages_v2(self, addr: int) -> list[tuple[int, int, bytes]]:
        head = Cursor(
            self.read(addr, min(34, self.src.size - self.base - addr), "object header"), self, "object header"
        )
        head.signature(b"OHDR")
        if head.u8() != 2:
            raise FormatError(f"HDF5 object header at {addr}: unknown version", self.name)
        flags = head.u8()
        if flags & 0x20:
            head.skip(16)  # access, modification, change, birth times
        if flags & 0x10:
            head.skip(4)  # attribute phase change values
        size = head.uint(1 << (flags & 3))
        chunks = [(addr + head.pos, size, False)]
        extra = 2 if flags & 0x04 else 0  # creation order of each message
        found: list[tuple[int, int, bytes]] = []
        seen: set[int] = set()
        while chunks:
            start, length, signed = chunks.pop(0)
            if start in seen:
                raise FormatError("HDF5 object header continues into itself", self.name)
            seen.add(start)
            raw = self.read(start, length, "object header")
            if signed:
                if raw[:4] != b"OCHK":
                    raise FormatError("HDF5 object header continuation: signature OCHK missing", self.name)
                raw = raw[4:-4]  # signature and checksum
            data = Cursor(raw, self, "object header")
            while data.pos + 4 + extra <= len(raw):
                kind, length_, mflags = data.u8(), data.u16(), data.u8()
                data.skip(extra)
                body = data.take(length_)
                self.spend()
                if kind == CONTINUATION:
                    chunks.append((*self._continuation(body), True))
                elif kind:
                    found.append((kind, mflags, body))
        return found

    def _continuation(self, body: bytes) -> tuple[int, int]:
        cur = Cursor(body, self, "continuation message")
        return cur.addr(), cur.length()

    def shared(self, body: bytes, kind: int) -> bytes:
        """The message a shared-message pointer stands for (committed datatypes and the like)."""
        cur = Cursor(body, self, "shared message")
        version, where = cur.u8(), cur.u8()
        if version == 1:
            cur.skip(6)
        elif version not in (2, 3):
            raise FormatError(f"HDF5 shared message version {version}", self.name)
        if version == 3 and where == 1:  # in the file's shared-message heap, by its heap ID
            return self._sohm_message(cur.take(8), kind)
        target = cur.addr()
        for k, flags, inner in self.messages(target):
            if k == kind:
                return self.shared(inner, kind) if flags & SHARED_FLAG else inner
        raise FormatError(f"HDF5 shared message at {target} holds no message of type {kind}", self.name)

    def _sohm_message(self, heap_id: bytes, kind: int) -> bytes:
        """A message kept in the shared object header message heap of the index for its type."""
        bit = _SOHM_TYPE_BITS.get(kind, 0)
        for flags, heap in self._sohm_indexes():
            if flags & bit:
                return self.fractal_heap(heap).object(heap_id)
        raise FormatError(f"HDF5 shared message of type {kind} has no shared-message index", self.name)

    def _sohm_indexes(self) -> list[tuple[int, int]]:
        """The shared-message table the superblock extension names: (type flags, heap) per index."""
        if self._sohm is not None:
            return self._sohm
        self._sohm = []
        if self.extension == self.undef:
            raise FormatError("HDF5 shared message in a file without a shared-message table", self.name)
        for kind, _flags, body in self.messages(self.extension):
            if kind != SHARED_TABLE:
                continue
            info = Cursor(body, self, "shared message table message")
            info.skip(1)  # version
            table, count = info.addr(), info.u8()
            per = 1 + 1 + 2 + 4 + 2 + 2 + 2 + 2 * self.so
            cur = self.cursor(table, 4 + count * per, "shared message table")
            cur.signature(b"SMTB")
            for _ in range(count):
                cur.skip(2)  # version, index type (list or v2 B-tree: the heap ID finds it either way)
                flags = cur.u16()
                cur.skip(4 + 2 + 2 + 2 + self.so)  # minimum size, cutoffs, count, index address
                self._sohm.append((flags, cur.addr()))
        return self._sohm

    # --- datatypes and dataspaces ---

    def datatype(self, cur: Cursor, depth: int = 0) -> H5Type:
        if depth > MAX_DEPTH:
            raise FormatError("HDF5 datatype nested too deep", self.name)
        self.spend()
        first = cur.u8()
        cls, version = first & 0x0F, first >> 4
        bits = cur.take(3)
        size = cur.u32()
        order = ">" if bits[0] & 1 else "<"
        if cls == 0:  # fixed-point
            cur.skip(4)
            kind = "i" if bits[0] & 0x08 else "u"
            dtype = np.dtype(f"{order}{kind}{size}") if size in (1, 2, 4, 8) else np.dtype(f"V{size}")
            return H5Type(cls, size, dtype)
        if cls == 1:  # floating point
            cur.skip(4)
            _exp_loc, exp_size, _man_loc, man_size = cur.u8(), cur.u8(), cur.u8(), cur.u8()
            cur.skip(4)
            code = _IEEE.get((size, exp_size, man_size))
            return H5Type(cls, size, np.dtype(f"{order}{code}") if code else np.dtype(f"V{size}"))
        if cls == 2:  # time
            cur.skip(2)
            return H5Type(cls, size, np.dtype(f"V{size}"))
        if cls == 3:  # fixed-length string
            return H5Type(cls, size, np.dtype(f"S{size}"), is_str=True)
        if cls == 4:  # bitfield
            cur.skip(4)
            return H5Type(
                cls, size, np.dtype(f"{order}u{size}") if size in (1, 2, 4, 8) else np.dtype(f"V{size}")
            )
        if cls == 5:  # opaque: an ASCII tag padded to a multiple of 8
            cur.skip(bits[0])
            return H5Type(cls, size, np.dtype(f"V{size}"))
        if cls == 6:  # compound
            self._compound_members(cur, version, size, int.from_bytes(bits[:2], "little"), depth)
            return H5Type(cls, size, np.dtype(f"V{size}"))
        if cls == 7:  # reference
            return H5Type(cls, size, np.dtype("O"))
        if cls == 8:  # enum
            base = self.datatype(cur, depth + 1)
            count = int.from_bytes(bits[:2], "little")
            names = []
            for _ in range(count):
                start = cur.pos
                names.append(cur.cstring())
                if version < 3:
                    cur.align(start)
            cur.skip(count * base.size)
            boolean = names == [b"FALSE", b"TRUE"] and base.size == 1
            return H5Type(cls, size, np.dtype("?") if boolean else base.dtype, base)
        if cls == 9:  # variable-length: sequence (0) or string (1)
            base = self.datatype(cur, depth + 1)
            return H5Type(cls, size, np.dtype("O"), base, is_str=(bits[0] & 0x0F) == 1)
        if cls == 10:  # array
            ndims = cur.u8()
            if version < 3:
                cur.skip(3)
            dims = tuple(cur.u32() for _ in range(ndims))
            if version < 3:
                cur.skip(4 * ndims)  # permutation
            base = self.datatype(cur, depth + 1)
            try:
                dtype = np.dtype((base.dtype, dims)) if base.dtype != np.dtype("O") else np.dtype("O")
            except (TypeError, ValueError):
                dtype = np.dtype(f"V{size}")
            return H5Type(cls, size, dtype, base)
        raise FormatError(f"HDF5 datatype class {cls} is not supported", self.name)

    def _compound_members(self, cur: Cursor, version: int, size: int, count: int, depth: int) -> None:
        width = enc_size(size)  # bytes of each member's offset (v3)
        for _ in range(count):
            start = cur.pos
            cur.cstring()
            if version < 3:
                cur.align(start)
                cur.skip(4)  # byte offset
                if version == 1:
                    cur.skip(1 + 3 + 4 + 4 + 16)  # dimensionality, reserved, permutation, reserved, dims
            else:
                cur.skip(width)
            self.datatype(cur, depth + 1)

    def dataspace(self, body: bytes) -> tuple[int, ...] | None:
        """The shape, () for a scalar, None for a null dataspace."""
        cur = Cursor(body, self, "dataspace")
        version, rank = cur.u8(), cur.u8()
        cur.skip(1)  # flags: maximum dimensions and permutation follow the sizes; not needed
        if version == 1:
            cur.skip(5)
            kind = 1 if rank else 0
        elif version == 2:
            kind = cur.u8()
        else:
            raise FormatError(f"HDF5 dataspace version {version}", self.name)
        if kind == 2:
            return None
        if rank > 32:
            raise FormatError(f"HDF5 dataspace of rank {rank}", self.name)
        return tuple(cur.length() for _ in range(rank)) if kind == 1 else ()

    def message_type(self, flags: int, body: bytes) -> H5Type:
        if flags & SHARED_FLAG:
            body = self.shared(body, DATATYPE)
        return self.datatype(Cursor(body, self, "datatype"))

    # --- heaps ---

    def global_object(self, collection: int, index: int) -> bytes:
        cached = self._global.get(collection)
        if cached is None:
            head = self.cursor(collection, 8 + self.sl, "global heap")
            head.signature(b"GCOL")
            head.skip(4)
            size = head.length()
            data = self.read(collection, size, "global heap")
            objects: dict[int, tuple[int, int]] = {}
            pos = 8 + self.sl
            while pos + 8 + self.sl <= size:
                cur = Cursor(data, self, "global heap object", pos)
                number = cur.u16()
                cur.skip(6)
                length = cur.length()
                if number == 0:
                    break
                start = cur.pos
                if start + length > size:
                    raise FormatError("HDF5 global heap object runs past its collection", self.name)
                objects[number] = (start, length)
                pos = start + length + (8 - length % 8) % 8
                self.spend()
            cached = (data, objects)
            self._global[collection] = cached
            if len(self._global) > 64:
                self._global.popitem(last=False)
        data, objects = cached
        if index not in objects:
            raise FormatError(f"HDF5 global heap object {index} is missing", self.name)
        start, length = objects[index]
        return data[start : start + length]

    def fractal_heap(self, addr: int) -> FractalHeap:
        heap = self._heaps.get(addr)
        if heap is None:
            heap = self._heaps[addr] = FractalHeap(self, addr)
        return heap

    def btree1_leaves(self, addr: int, kind: int, key_size: int) -> Iterator[tuple[bytes, int]]:
        """(left key, child address) of every leaf entry of a v1 B-tree: kind 0 holds a group's
        symbol-table nodes (keys: heap offsets), kind 1 a dataset's chunks (keys: size, mask, offsets)."""
        seen: set[int] = set()

        def node(address: int, depth: int) -> Iterator[tuple[bytes, int]]:
            if address in seen or depth > MAX_DEPTH:
                raise FormatError("HDF5 v1 B-tree is cyclic or too deep", self.name)
            seen.add(address)
            head = self.cursor(address, 8 + 2 * self.so, "v1 B-tree")
            head.signature(b"TREE")
            node_kind, level, entries = head.u8(), head.u8(), head.u16()
            head.skip(2 * self.so)  # left and right siblings
            if node_kind != kind:
                raise FormatError("HDF5 v1 B-tree node of the wrong type", self.name)
            body = self.cursor(address + head.pos, entries * (key_size + self.so) + key_size, "v1 B-tree")
            children = [(body.take(key_size), body.addr()) for _ in range(entries)]
            self.spend(entries)
            for key, child in children:
                if level:
                    yield from node(child, depth + 1)
                else:
                    yield key, child

        yield from node(addr, 0)

    def btree2_records(self, addr: int) -> Iterator[bytes]:
        """Every record of the v2 B-tree whose header is at `addr`, in key order."""
        head = self.cursor(addr, 4 + 2 + 4 + 2 + 2 + 2 + self.so + 2 + self.sl, "v2 B-tree")
        head.signature(b"BTHD")
        head.skip(2)  # version, type
        node_size, record_size, depth = head.u32(), head.u16(), head.u16()
        head.skip(2)  # split and merge percents
        root, root_count = head.addr(), head.u16()
        if record_size == 0 or depth > MAX_DEPTH or node_size > MAX_CHUNK:
            raise FormatError("HDF5 v2 B-tree header is corrupt", self.name)
        if root == self.undef:
            return
        # Field widths of internal nodes' child pointers, as libhdf5 derives them (H5B2__hdr_init).
        max_nrec = [(node_size - 10) // record_size]
        cum_max = [max_nrec[0]]
        cum_size = [0]
        nrec_size = enc_size(max_nrec[0])
        for level in range(1, depth + 1):
            pointer = self.so + nrec_size + (cum_size[level - 1] if level > 1 else 0)
            count = (node_size - (10 + pointer)) // (record_size + pointer)
            max_nrec.append(count)
            cum_max.append((count + 1) * cum_max[level - 1] + count)
            cum_size.append(enc_size(cum_max[level]))
        seen: set[int] = set()

        def node(address: int, count: int, level: int) -> Iterator[bytes]:
            if address in seen:
                raise FormatError("HDF5 v2 B-tree node is reached twice", self.name)
            seen.add(address)
            cur = self.cursor(address, node_size, "v2 B-tree node")
            cur.signature(b"BTIN" if level else b"BTLF")
            cur.skip(2)
            self.spend(count)
            records = [cur.take(record_size) for _ in range(count)]
            if not level:
                yield from records
                return
            children = []
            for _ in range(count + 1):
                child, child_count = cur.addr(), cur.uint(nrec_size)
                if level > 1:
                    cur.skip(cum_size[level - 1])
                children.append((child, child_count))
            for i, (child, child_count) in enumerate(children):
                yield from node(child, child_count, level - 1)
                if i < count:
                    yield records[i]

        yield from node(root, root_count, depth)
