"""The filter pipeline of a filtered fractal heap and undoing it: deflate, shuffle, fletcher32,
each bounded by the block's size and checked as libhdf5 checks it."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import FormatError
from .fields import Cursor

if TYPE_CHECKING:
    from .structures import Reader


class Filter(NamedTuple):
    """One filter of a pipeline message: its id and client data values."""

    ident: int
    values: tuple[int, ...]


def parse_pipeline(cur: Cursor) -> list[Filter]:
    """The filters of a filter pipeline message (versions 1 and 2), in the order applied."""
    version, count = cur.u8(), cur.u8()
    if version == 1:
        cur.skip(6)
    elif version != 2:
        raise FormatError(f"HDF5 filter pipeline version {version}", cur.h5.name)
    found: list[Filter] = []
    for _ in range(count):
        ident = cur.u16()
        name_length = cur.u16() if version == 1 or ident >= 256 else 0
        cur.skip(2)  # flags: optional or not only matters when writing
        values = cur.u16()
        cur.skip(name_length + (8 - name_length % 8) % 8 if version == 1 else name_length)
        data = tuple(cur.u32() for _ in range(values))
        cur.skip(4 if version == 1 and values % 2 else 0)
        found.append(Filter(ident, data))
    return found


def unfilter(filt: Filter, data: bytes, size: int, h5: Reader) -> bytes:
    """One filter undone as libhdf5's H5Z filter does it on read, the output at most `size` bytes
    (one more tells the caller it was too long)."""
    if filt.ident == 1:  # deflate
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, size + 1)
        except zlib.error:
            raise FormatError("HDF5 fractal heap block does not inflate", h5.name) from None
        return out
    if filt.ident == 2:
        return unshuffle(filt.values, data, h5)
    if filt.ident == 3:
        return check_fletcher32(data, h5)
    raise FormatError(f"HDF5 fractal heap filter {filt.ident} is not supported", h5.name)


def unshuffle(values: tuple[int, ...], data: bytes, h5: Reader) -> bytes:
    """Shuffle (H5Z_filter_shuffle) undone: the bytes were stored grouped by their position within
    an element, the element size being the filter's one client value; bytes past the last whole
    element stay where they are. libhdf5 fails without exactly one non-zero value, and so do we.
    (libhdf5 itself cannot put shuffle on a heap: its set-local callback wants a dataset's type.)"""
    if len(values) != 1 or values[0] == 0:
        raise FormatError("HDF5 fractal heap shuffle filter has invalid parameters", h5.name)
    width = values[0]
    count = len(data) // width
    if width == 1 or count <= 1:
        return data  # what libhdf5 leaves alone too
    whole = count * width
    planes = np.frombuffer(data, np.uint8, whole).reshape(width, count)
    return planes.T.tobytes() + data[whole:]


def fletcher32(data: bytes) -> int:
    """H5_checksum_fletcher32 (H5checksum.c): Fletcher's checksum over big-endian 16-bit words
    (an odd last byte is the high byte of a last word), both sums starting at 0 and folded with
    end-around carry, sum2 in the high half.

    The C loop folds as it goes, which keeps each sum's residue mod 65535 and keeps it non-zero
    once any word was: a sum is 0 when every word was 0 and otherwise that residue, written 65535
    for 0. So it is computed here in closed form: sum1 = Σ w_i, sum2 = Σ of the prefix sums (in
    uint64: below 2^62 for the MAX_CHUNK bytes a block may have).
    """
    if len(data) % 2:
        data += b"\0"
    words = np.frombuffer(data, ">u2").astype(np.uint64)
    if not words.any():
        return 0
    prefix = np.cumsum(words, dtype=np.uint64)
    sum1 = int(prefix[-1]) % 65535 or 65535
    sum2 = int(prefix.sum(dtype=np.uint64)) % 65535 or 65535
    return sum2 << 16 | sum1


def check_fletcher32(data: bytes, h5: Reader) -> bytes:
    """Fletcher32 undone as H5Z_filter_fletcher32 reads: the last 4 bytes are the checksum of the
    rest, little-endian; the byte-swapped form libhdf5 before 1.6.3 wrote on little-endian hosts
    (bytes swapped within each 16-bit half) is accepted too, as libhdf5 accepts it."""
    if len(data) < 4:
        raise FormatError("HDF5 fractal heap block is too short for its Fletcher32 checksum", h5.name)
    body, stored = data[:-4], int.from_bytes(data[-4:], "little")
    want = fletcher32(body)
    swapped = (want & 0x00FF00FF) << 8 | (want >> 8) & 0x00FF00FF
    if stored not in (want, swapped):
        raise FormatError(
            f"HDF5 fractal heap block fails its Fletcher32 checksum (stored {stored:08x}, "
            f"computed {want:08x}): corrupt file",
            h5.name,
        )
    return body
