"""Fractal heaps: where dense links and attributes live (header, direct and indirect blocks, huge
objects), filtered or not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import FormatError
from .fields import MAX_CHUNK, MAX_DEPTH, Cursor, enc_size
from .filters import Filter, parse_pipeline, unfilter

if TYPE_CHECKING:
    from .structures import Reader


class FractalHeap:
    """A fractal heap's header and managed-object lookup (dense links and attributes live here)."""

    def __init__(self, h5: Reader, addr: int) -> None:
        self.h5 = h5
        so, sl = h5.so, h5.sl
        cur = h5.cursor(addr, 22 + 12 * sl + 3 * so, "fractal heap")
        cur.signature(b"FRHP")
        cur.skip(1)
        self.id_length, filters, self.flags = cur.u16(), cur.u16(), cur.u8()
        self.filters: list[Filter] = []  # the pipeline, in the order its filters were applied
        max_managed = cur.u32()
        cur.skip(sl)  # next huge object ID
        self.huge_tree = cur.addr()
        cur.skip(sl + so + sl + sl + sl + sl + sl + sl + sl + sl)  # free space, counts and sizes
        self.width, self.start_size, self.max_direct = cur.u16(), cur.length(), cur.length()
        self.max_heap_bits, _start_rows, self.root, self.rows = cur.u16(), cur.u16(), cur.addr(), cur.u16()
        self.root_filtered = (0, 0)  # a filtered root direct block: its stored size and filter mask
        if filters:
            extra = h5.cursor(addr + cur.pos, sl + 4 + filters, "fractal heap filters")
            self.root_filtered = (extra.length(), extra.u32())
            self.filters = parse_pipeline(Cursor(extra.take(filters), h5, "fractal heap filter pipeline"))
        if (
            not (self.width and _is_pow2(self.start_size) and _is_pow2(self.max_direct))
            or self.max_heap_bits > 64
        ):
            raise FormatError("HDF5 fractal heap header is corrupt", h5.name)
        self.off_size = (self.max_heap_bits + 7) // 8
        self.len_size = min((self.max_direct.bit_length() - 1 + 7) // 8, enc_size(max_managed))
        self.direct_rows = (self.max_direct.bit_length() - self.start_size.bit_length()) + 2

    def row_size(self, row: int) -> int:
        return self.start_size if row == 0 else self.start_size << (row - 1)

    def object(self, heap_id: bytes) -> bytes:
        cur = Cursor(heap_id, self.h5, "fractal heap ID")
        first = cur.u8()
        if first >> 6:
            raise FormatError("HDF5 fractal heap ID of an unknown version", self.h5.name)
        kind = (first >> 4) & 3
        if kind == 2:  # tiny: the object is inside the ID
            if self.id_length <= 18:
                return cur.take((first & 0x0F) + 1)
            return cur.take(((first & 0x0F) << 8 | cur.u8()) + 1)
        if kind == 1:
            return self._huge(cur)
        if kind != 0:
            raise FormatError("HDF5 fractal heap ID of an unknown type", self.h5.name)
        offset, length = cur.uint(self.off_size), cur.uint(self.len_size)
        block, block_offset, stored, size = self._direct_block(offset)
        if not self.filters:
            return self.h5.read(block + offset - block_offset, length, "fractal heap object")
        length_stored, mask = stored
        data = self._unfiltered(self.h5.read(block, length_stored, "filtered fractal heap block"), mask, size)
        start = offset - block_offset
        if start + length > len(data):
            raise FormatError("HDF5 fractal heap object runs past its direct block", self.h5.name)
        return data[start : start + length]

    def _unfiltered(self, data: bytes, mask: int, size: int) -> bytes:
        """Filtered bytes of a direct block or huge object with the filters undone, last applied
        first, skipping those the mask says were not applied (as H5Z_pipeline reads); never more than
        `size`, which the result must equal."""
        if size > MAX_CHUNK:  # a declared block size is no licence to inflate gigabytes
            raise FormatError(f"HDF5 fractal heap block of {size} bytes is over the limit", self.h5.name)
        for index in reversed(range(len(self.filters))):
            if mask & (1 << index):
                continue
            # what is left to undo may still hold a 4-byte checksum per filter
            data = unfilter(self.filters[index], data, size + 4 * index, self.h5)
        if len(data) != size:
            raise FormatError("HDF5 filtered fractal heap block has the wrong size", self.h5.name)
        return data

    def _huge(self, cur: Cursor) -> bytes:
        """An object too large for the managed blocks: its address and length are in the ID, or in
        the records of the heap's huge-object v2 B-tree (H5HF__huge_init decides which by the ID's
        length). In a filtered heap huge objects are filtered too: the ID or record adds the filter
        mask and the unfiltered size."""
        h5, filtered = self.h5, bool(self.filters)
        mask, size = 0, 0
        if self.id_length - 1 >= h5.so + h5.sl + ((4 + h5.sl) if filtered else 0):
            address, length = cur.addr(), cur.length()
            if filtered:
                mask, size = cur.u32(), cur.length()
        else:
            wanted = cur.uint(min(self.id_length - 1, 8))
            for record in h5.btree2_records(self.huge_tree):
                rec = Cursor(record, h5, "huge object record")  # address, length, [mask, size,] ID
                address, length = rec.addr(), rec.length()
                if filtered:
                    mask, size = rec.u32(), rec.length()
                if rec.length() == wanted:
                    break
            else:
                raise FormatError("HDF5 huge fractal-heap object is missing from its index", h5.name)
        data = h5.read(address, length, "huge fractal heap object")
        if not filtered:
            return data
        return self._unfiltered(data, mask, size)

    def _direct_block(self, offset: int) -> tuple[int, int, tuple[int, int], int]:
        """(address, heap offset, (stored size, filter mask) if filtered, size) of the direct block
        holding heap offset `offset`."""
        if self.rows == 0:
            return self.root, 0, self.root_filtered, self.start_size
        address, block_offset, rows = self.root, 0, self.rows
        h5 = self.h5
        for _ in range(MAX_DEPTH):
            # child pointers: direct rows carry an address (and, filtered, its stored size and mask)
            pos = 4 + 1 + h5.so + self.off_size
            entry = block_offset
            for row in range(rows):
                span = self.row_size(row)
                direct = row < self.direct_rows
                width = h5.so + (h5.sl + 4 if direct and self.filters else 0)
                for _column in range(self.width):
                    if entry <= offset < entry + span:
                        cur = h5.cursor(address + pos, width, "fractal heap indirect block")
                        child = cur.addr()
                        if child == h5.undef:
                            raise FormatError(
                                "HDF5 fractal heap object lies in an unallocated block", h5.name
                            )
                        if direct:
                            stored = (cur.length(), cur.u32()) if self.filters else (0, 0)
                            return child, entry, stored, span
                        address, block_offset = child, entry
                        rows = (span.bit_length() - 1) - (self.start_size * self.width).bit_length() + 2
                        break
                    entry += span
                    pos += width
                else:
                    continue
                break
            else:
                raise FormatError("HDF5 fractal heap offset lies outside the heap", self.h5.name)
        raise FormatError("HDF5 fractal heap nested too deep", self.h5.name)


def _is_pow2(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0
