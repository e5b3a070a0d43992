"""Move one tensor's bytes from its source to an output file, a bounded chunk at a time.

A byte-identical run (no cast, contiguous in a plain file) goes through `os.copy_file_range`, so
the kernel copies page cache to page cache (or shares blocks) without passing through Python;
anything else is read through the memory map in chunks, cast if asked, and written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import FormatError
from .cast import cast_chunk
from .tensors import CHUNK_BYTES, FileMaps, SourceTensor, element_size, iter_chunks

Progress = Callable[[int], None]


def no_progress(_: int) -> None:
    return None


@dataclass(eq=False)
class OutTensor:
    """A tensor as it will be written: its output name and dtype, and where its data comes from."""

    name: str
    source: SourceTensor
    dtype: str  # after --dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self.source.shape

    @property
    def nbytes(self) -> int:
        return self.source.numel * element_size(self.dtype)

    @property
    def cast(self) -> bool:
        return self.dtype != self.source.dtype


def out_chunks(tensor: OutTensor, maps: FileMaps, max_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """The tensor's output elements in C order as contiguous 1-D arrays of the output dtype."""
    source = tensor.source
    array = source.array(maps)
    for chunk in iter_chunks(array, max_bytes):
        yield cast_chunk(chunk, source.dtype, tensor.dtype)
    if source.file is not None and source.loader is None:
        maps.release(source.file, source.storage_offset, source.extent_nbytes())


def write_tensor(out: BinaryIO, tensor: OutTensor, maps: FileMaps, progress: Progress = no_progress) -> None:
    """Append the tensor's bytes to `out` (whose position is where they belong)."""
    run = None if tensor.cast or not _has_fd(out) else tensor.source.byte_run()
    if run is not None and tensor.nbytes:
        tensor.source.check_extent(os.fstat(maps.fd(run[0])).st_size)
        if _copy_range(out, maps, *run, tensor.nbytes, progress):
            return
    for chunk in out_chunks(tensor, maps):
        out.write(chunk.view(np.uint8).data)  # bytes view: ml_dtypes types have no buffer format
        progress(chunk.nbytes)


def _has_fd(out: BinaryIO) -> bool:
    """Whether `out` is a real file the kernel can copy into (not, say, a BytesIO)."""
    try:
        out.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return True


_COPY_STEP = 64 * 1024 * 1024


def _copy_range(
    out: BinaryIO, maps: FileMaps, path: os.PathLike[str], offset: int, n: int, progress: Progress
) -> bool:
    """Kernel-side copy of n bytes at `offset`; False (nothing written) when the kernel cannot."""
    if not hasattr(os, "copy_file_range"):
        return False
    src = maps.fd(path)  # type: ignore[arg-type]
    out.flush()
    dst = out.fileno()
    position = out.tell()
    done = 0
    while done < n:
        try:
            moved = os.copy_file_range(src, dst, min(_COPY_STEP, n - done), offset + done, position + done)
        except OSError:
            if done == 0:
                return False  # e.g. EXDEV on older kernels, or a file system without support
            raise
        if moved == 0:
            raise FormatError(f"tensor data at byte {offset + done} is cut short", path)
        done += moved
        progress(moved)
    out.seek(position + n)
    return True
