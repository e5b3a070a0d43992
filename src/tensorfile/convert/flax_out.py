"""Write tensors as a Flax msgpack checkpoint, byte for byte what `flax.serialization.to_bytes` writes.

The file is one msgpack map nesting the tensor names split on a separator. Each array is msgpack
ext type 1 whose payload is the msgpack array [shape, numpy dtype name, bin of the C-order bytes].
Arrays above flax's `MAX_CHUNK_SIZE` (2**30 bytes; a msgpack bin holds under 2**31) are written the
way flax chunks them: a map {'__msgpack_chunked_array__': True, 'shape': {'0': dim, ...},
'chunks': {'0': 1-D array, ...}}, each chunk `max(1, int(MAX_CHUNK_SIZE / itemsize))` elements.

The msgpack framing is encoded here (the few shapes it takes), so msgpack is not a dependency.
Every header is computed from the shape, dtype name and byte count, so the data bytes are copied
to the file one bounded chunk at a time and no tensor is ever whole in memory. Keys keep the order
of first appearance, as `to_bytes` keeps a dict's insertion order (`msgpack_serialize` alone
would sort them through `jax.tree_util`; `msgpack_restore` gives equal trees either way).
"""

from __future__ import annotations

import dataclasses
import struct
from typing import BinaryIO, Union

import numpy as np

from ..dtypes import to_numpy
from ..errors import UnsupportedError, UsageError
from .stream import OutTensor, Progress, no_progress, out_chunks, write_tensor
from .tensors import FileMaps

MAX_CHUNK_SIZE = 2**30  # flax.serialization.MAX_CHUNK_SIZE: arrays of more bytes are chunked
_NDARRAY_EXT = 1  # flax's _MsgpackExtType.ndarray
_CHUNKED_MARKER = "__msgpack_chunked_array__"

Tree = dict[str, Union["Tree", OutTensor]]


def write_flax_msgpack(
    out: BinaryIO,
    tensors: list[OutTensor],
    maps: FileMaps,
    progress: Progress = no_progress,
    sep: str | None = None,
) -> None:
    """Write the tensors as a nested flax state dict that `flax.serialization.msgpack_restore` reads."""
    root = build_tree(tensors, sep)
    out.write(_map_header(len(root)))
    stack = [iter(root.items())]  # iterative, so deep names cannot hit the recursion limit
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        key, value = item
        out.write(_pack(key))
        if isinstance(value, dict):
            out.write(_map_header(len(value)))
            stack.append(iter(value.items()))
        else:
            _write_leaf(out, value, maps, progress)


def build_tree(tensors: list[OutTensor], sep: str | None = None) -> Tree:
    """Nest the tensors by their names split on `sep` ('/' if any name has one, else '.')."""
    if sep is None:
        sep = "/" if any("/" in t.name for t in tensors) else "."
    if not sep:
        raise UsageError("the separator to nest flax parameter names on must not be empty")
    root: Tree = {}
    for tensor in tensors:
        *parents, last = tensor.name.split(sep)
        node = root
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(_clash(child.name, tensor.name, sep))
            node = child
        existing = node.get(last)
        if isinstance(existing, OutTensor):
            raise UsageError(f"tensor name {tensor.name!r} appears twice; flax names must be unique")
        if existing is not None:
            raise UsageError(_clash(tensor.name, _first_leaf(existing).name, sep))
        node[last] = tensor
    return root


def _clash(leaf: str, nested: str, sep: str) -> str:
    return (
        f"tensor names {leaf!r} and {nested!r} clash when nested on {sep!r}: "
        f"{leaf!r} would be both an array and a dict in the flax tree"
    )


def _first_leaf(node: Tree) -> OutTensor:
    while True:
        value = next(iter(node.values()))
        if isinstance(value, OutTensor):
            return value
        node = value


def _write_leaf(out: BinaryIO, tensor: OutTensor, maps: FileMaps, progress: Progress) -> None:
    dtype = to_numpy(tensor.dtype)
    if tensor.nbytes <= MAX_CHUNK_SIZE:
        out.write(_array_header(tensor.shape, dtype.name, tensor.nbytes))
        write_tensor(out, tensor, maps, progress)
        return
    # flax's _chunk: the same test and chunk length, written as the dict flax builds.
    per_chunk = max(1, int(MAX_CHUNK_SIZE / dtype.itemsize))
    numel = tensor.source.numel
    starts = range(0, numel, per_chunk)
    out.write(_map_header(3) + _pack(_CHUNKED_MARKER) + _pack(True))
    out.write(_pack("shape") + _map_header(len(tensor.shape)))
    for axis, dim in enumerate(tensor.shape):
        out.write(_pack(str(axis)) + _pack(int(dim)))
    out.write(_pack("chunks") + _map_header(len(starts)))

    def chunk_header(index: int) -> bytes:
        count = min(per_chunk, numel - starts[index])
        return _pack(str(index)) + _array_header((count,), dtype.name, count * dtype.itemsize)

    source = tensor.source
    if source.file is not None and source.loader is None and source.contiguous:
        # Each chunk is itself a plain run of the source: stream it as a 1-D tensor of its own.
        for index, start in enumerate(starts):
            count = min(per_chunk, numel - start)
            piece = dataclasses.replace(
                source, shape=(count,), strides=None, element_offset=source.element_offset + start
            )
            out.write(chunk_header(index))
            write_tensor(out, OutTensor(tensor.name, piece, tensor.dtype), maps, progress)
        return
    # A strided view or loaded data: split the bounded read chunks at flax's chunk boundaries.
    index, left = 0, 0
    for chunk in out_chunks(tensor, maps):
        while chunk.size:
            if left == 0:
                out.write(chunk_header(index))
                left = min(per_chunk, numel - starts[index])
                index += 1
            part = chunk[:left]
            out.write(part.view(np.uint8))
            progress(part.nbytes)
            left -= part.size
            chunk = chunk[part.size :]


def _array_header(shape: tuple[int, ...], dtype_name: str, nbytes: int) -> bytes:
    """Everything flax's `_ndarray_to_bytes` ext leaf holds before the raw array bytes."""
    inner = b"\x93" + _pack([int(d) for d in shape]) + _pack(dtype_name) + _bin_header(nbytes)
    return _ext_header(_NDARRAY_EXT, len(inner) + nbytes) + inner


def _pack(value: str | int | bool | list[int]) -> bytes:
    """msgpack's own encoding (`packb(value, use_bin_type=True)`) of the few values used here."""
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        return _uint(value)
    if isinstance(value, list):
        head = _sized(len(value), 0x90, 16, b"\xdc", b"\xdd")
        return head + b"".join(_uint(v) for v in value)
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"name {value!r} cannot be encoded as UTF-8 for msgpack") from None
    if len(data) < 32:
        return bytes([0xA0 | len(data)]) + data
    if len(data) < 1 << 8:
        return b"\xd9" + struct.pack(">B", len(data)) + data
    return _sized(len(data), 0, 0, b"\xda", b"\xdb") + data


def _uint(n: int) -> bytes:
    if n < 0:
        raise UnsupportedError(f"negative size {n} in a tensor shape")
    if n < 0x80:
        return bytes([n])
    for code, fmt, limit in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16), (0xCE, ">I", 1 << 32)):
        if n < limit:
            return bytes([code]) + struct.pack(fmt, n)
    return b"\xcf" + struct.pack(">Q", n)


def _sized(n: int, fix: int, fix_limit: int, code16: bytes, code32: bytes) -> bytes:
    """A container or str header: fix form under `fix_limit`, then 16- and 32-bit lengths."""
    if n < fix_limit:
        return bytes([fix | n])
    if n < 1 << 16:
        return code16 + struct.pack(">H", n)
    return code32 + struct.pack(">I", n)


def _map_header(n: int) -> bytes:
    return _sized(n, 0x80, 16, b"\xde", b"\xdf")


def _bin_header(n: int) -> bytes:
    if n < 1 << 8:
        return b"\xc4" + struct.pack(">B", n)
    if n < 1 << 16:
        return b"\xc5" + struct.pack(">H", n)
    if n < 1 << 32:
        return b"\xc6" + struct.pack(">I", n)
    raise UnsupportedError(f"an array of {n} bytes does not fit in one msgpack bin")


_FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


def _ext_header(code: int, n: int) -> bytes:
    """The ext type header msgpack writes for an n-byte payload (fixext for sizes 1..16)."""
    if n in _FIXEXT:
        return struct.pack(">Bb", _FIXEXT[n], code)
    if n < 1 << 8:
        return struct.pack(">BBb", 0xC7, n, code)
    if n < 1 << 16:
        return struct.pack(">BHb", 0xC8, n, code)
    if n < 1 << 32:
        return struct.pack(">BIb", 0xC9, n, code)
    raise UnsupportedError(f"an array of {n} bytes does not fit in one msgpack ext")
