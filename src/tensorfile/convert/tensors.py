"""Tensors as a converter sees them: where each one's bytes are, and how to stream them out.

A `SourceTensor` is a description, not data: dtype, shape, and either a location in a file (byte
offset of its storage, element offset and strides for views) or a loader for data that is not
stored plainly (a deflated npz member, a chunked HDF5 dataset). Bytes are only touched when a
writer asks for them, one bounded chunk at a time, through read-only memory maps: mapped pages
are page cache, not the process's own memory, so peak anonymous memory stays at one chunk.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from ..dtypes import lookup, to_numpy
from ..errors import FormatError, UnsupportedError
from ..source import is_remote_path, open_source
from ..torchpickle import is_contiguous

CHUNK_BYTES = 16 * 1024 * 1024  # one piece of a tensor in flight: bounds anonymous memory


@dataclass(eq=False)
class SourceTensor:
    """One tensor of a source model, described from its headers."""

    name: str
    dtype: str  # canonical name from the dtypes table
    shape: tuple[int, ...]
    role: str = "weight"
    file: Path | None = None  # the file holding the storage bytes
    storage_offset: int = 0  # absolute byte offset of the storage in `file`
    storage_nbytes: int | None = None  # bytes the storage really has (None: exactly the tensor)
    element_offset: int = 0  # where the view starts inside its storage, in elements
    strides: tuple[int, ...] | None = None  # in elements; None means C-contiguous
    storage_key: str | None = None  # identity of the storage, to find tied names and views
    loader: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def itemsize(self) -> int:
        return element_size(self.dtype)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def contiguous(self) -> bool:
        return self.strides is None or is_contiguous(self.shape, self.strides)

    def byte_run(self) -> tuple[Path, int] | None:
        """(file, absolute offset) when the tensor is one plain run of bytes in a file."""
        if self.file is None or self.loader is not None or not self.contiguous:
            return None
        return self.file, self.storage_offset + self.element_offset * self.itemsize

    def extent_nbytes(self) -> int:
        """Bytes of storage the view reaches, from the storage start (0 for an empty tensor)."""
        if self.numel == 0:
            return 0
        strides = self.strides or _c_strides(self.shape)
        last = self.element_offset + sum((d - 1) * s for d, s in zip(self.shape, strides, strict=True))
        return (last + 1) * self.itemsize

    def check_extent(self, file_size: int) -> int:
        """The bytes the view reaches; FormatError when its storage or the file is too short."""
        needed = self.extent_nbytes()
        if self.storage_nbytes is not None and needed > self.storage_nbytes:
            raise FormatError(
                f"tensor {self.name!r} needs {needed} bytes but its storage holds {self.storage_nbytes}",
                self.file,
            )
        if self.storage_offset + needed > file_size:
            raise FormatError(f"tensor {self.name!r} reaches past the end of the file", self.file)
        return needed

    def array(self, maps: FileMaps) -> np.ndarray:
        """A read-only numpy view of the tensor (mapped, not copied, where the file allows)."""
        dtype = to_numpy(self.dtype)
        if self.loader is not None:
            data = self.loader()  # the values, or their raw bytes as a flat uint8 array
            if data.nbytes != self.nbytes or (data.dtype.itemsize != dtype.itemsize and data.ndim != 1):
                raise FormatError(f"tensor {self.name!r}: stored data does not match its header")
            return data.view(dtype).reshape(self.shape)
        if self.file is None:
            raise FormatError(f"tensor {self.name!r} has no data location")
        buffer = maps.get(self.file)
        needed = self.check_extent(len(buffer))
        if self.numel == 0:
            return np.empty(self.shape, dtype)
        if self.contiguous:
            start = self.storage_offset + self.element_offset * dtype.itemsize
            flat = np.frombuffer(buffer, dtype, count=self.numel, offset=start)
            return flat.reshape(self.shape)
        base = np.frombuffer(buffer, dtype, count=needed // dtype.itemsize, offset=self.storage_offset)
        strides = tuple(s * dtype.itemsize for s in self.strides or ())
        view = np.lib.stride_tricks.as_strided(
            base[self.element_offset :], shape=self.shape, strides=strides, writeable=False
        )
        return view


def is_ggml_quantized(dtype: str) -> bool:
    """A ggml block type (Q4_K, IQ2_XS, …), which convert dequantizes to a float type."""
    d = lookup(dtype)
    return d.is_quantized and d.ggml_type is not None


def element_size(dtype: str) -> int:
    """Bytes per element of a type stored one element at a time; others cannot be streamed as arrays."""
    d = lookup(dtype)
    if d.block_size != 1 or not d.fixed_size or d.numpy_name is None:
        why = "block-quantized (dequantizing is not supported yet)" if d.is_quantized else "not element-wise"
        if d.name in ("QINT8", "QUINT8", "QINT32"):  # the integers alone, without scale, would be wrong
            why = (
                "a torch quantized type (its scale and zero point are not in the data; "
                "dequantizing is not supported yet)"
            )
        raise UnsupportedError(f"{d.name} is {why}")
    return d.type_size


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    step = 1
    for dim in reversed(shape):
        out.append(step)
        step *= max(dim, 1)
    return tuple(reversed(out))


class FileMaps:
    """Read-only memory maps of source files, opened once each and closed together."""

    def __init__(self) -> None:
        self._maps: dict[Path, mmap.mmap | bytes] = {}
        self._fds: dict[Path, int] = {}

    def get(self, path: Path) -> Any:
        found = self._maps.get(path)
        if found is None and is_remote_path(path):
            raise UnsupportedError(
                "this tensor is not one plain run of bytes, which is all that is read from a hub file: "
                "download it first (tensorfile download)",
                path,
            )
        if found is None:
            fd = self.fd(path)
            size = os.fstat(fd).st_size
            found = mmap.mmap(fd, size, access=mmap.ACCESS_READ) if size else b""
            if isinstance(found, mmap.mmap) and hasattr(mmap, "MADV_SEQUENTIAL"):
                found.madvise(mmap.MADV_SEQUENTIAL)
            self._maps[path] = found
        return found

    def release(self, path: Path, start: int, length: int) -> None:
        """Unmap pages already streamed: they stay in the page cache, but leave this process's RSS."""
        found = self._maps.get(path)
        if not isinstance(found, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED") or length <= 0:
            return
        first = start - start % mmap.PAGESIZE
        end = min(start + length, len(found))
        with contextlib.suppress(OSError, ValueError):
            found.madvise(mmap.MADV_DONTNEED, first, end - first)

    def fd(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDONLY)
            self._fds[path] = fd
        return fd

    def close(self) -> None:
        for found in self._maps.values():
            if isinstance(found, mmap.mmap):
                # A numpy view may still point into it; the GC unmaps it later then.
                with contextlib.suppress(BufferError):
                    found.close()
        for fd in self._fds.values():
            os.close(fd)
        self._maps.clear()
        self._fds.clear()

    def __enter__(self) -> FileMaps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tensor_chunks(t: SourceTensor, maps: FileMaps, max_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """A tensor's elements in C order as 1-D pieces of at most about `max_bytes`. A tensor in a hub
    or URL file is read by range requests, one piece at a time (never the whole file)."""
    run = t.byte_run()
    if run is None or not is_remote_path(run[0]):
        yield from iter_chunks(t.array(maps), max_bytes)
        return
    path, start = run
    dtype = to_numpy(t.dtype)
    step = max(1, max_bytes // dtype.itemsize) * dtype.itemsize
    with open_source(path) as source:
        t.check_extent(source.size)
        for at in range(start, start + t.nbytes, step):
            want = min(step, start + t.nbytes - at)
            data = source.read_at(at, want)
            if len(data) != want:
                raise FormatError(f"tensor {t.name!r}: the remote file ended early", path)
            yield np.frombuffer(data, dtype)


def iter_chunks(array: np.ndarray, max_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """The tensor's elements in C order as contiguous 1-D pieces of at most about `max_bytes`."""
    if array.size == 0:
        return
    if array.flags.c_contiguous:
        flat = array.reshape(-1)
        step = max(1, max_bytes // array.itemsize)
        for start in range(0, flat.size, step):
            yield flat[start : start + step]
        return
    # A strided view: copy whole rows of the first axis, as many as fit; split rows that do not.
    row_bytes = array.itemsize * (array.size // array.shape[0])
    if row_bytes > max_bytes and array.ndim > 1:
        for row in array:
            yield from iter_chunks(row, max_bytes)
        return
    rows = max(1, max_bytes // row_bytes)
    for start in range(0, array.shape[0], rows):
        yield np.ascontiguousarray(array[start : start + rows]).reshape(-1)


@dataclass
class TensorSet:
    """What a source holds: its tensors in storage order, its metadata, and notes for the user."""

    path: Path
    format: str
    tensors: list[SourceTensor]
    metadata: dict[str, str] = field(default_factory=dict)  # carried into safetensors __metadata__
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # the weight files read (for a folder, each shard)
