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

from ..dtypes import lookup
from ..errors import FormatError
from .cast import cast_chunk
from .tensors import CHUNK_BYTES, FileMaps, SourceTensor, element_size, is_ggml_quantized, iter_chunks

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
    if is_ggml_quantized(source.dtype):
        for chunk in dequantized_rows(source, maps, max_bytes):
            yield cast_chunk(chunk.reshape(-1), "F32", tensor.dtype)
        maps.release(source.file, source.storage_offset, source.storage_nbytes or 0)  # type: ignore[arg-type]
        return
    array = source.array(maps)
    for chunk in iter_chunks(array, max_bytes):
        yield cast_chunk(chunk, source.dtype, tensor.dtype)
    if source.file is not None and source.loader is None:
        maps.release(source.file, source.storage_offset, source.extent_nbytes())


def dequantized_rows(
    source: SourceTensor, maps: FileMaps, max_bytes: int = CHUNK_BYTES
) -> Iterator[np.ndarray]:
    """A ggml-quantized tensor as float32 rows, a bounded number at a time (gguf-py's dequantizers)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    qtype = GGMLQuantizationType[lookup(source.dtype).name]
    block, type_size = GGML_QUANT_SIZES[qtype]
    row_length = source.shape[-1] if source.shape else 1
    if row_length % block:
        raise FormatError(f"tensor {source.name!r}: rows of {row_length} are not whole {source.dtype} blocks")
    row_bytes = row_length // block * type_size
    n_rows = source.numel // row_length if row_length else 0
    if source.file is None:
        raise FormatError(f"tensor {source.name!r} has no data location")
    buffer = maps.get(source.file)
    if source.storage_offset + n_rows * row_bytes > len(buffer):
        raise FormatError(f"tensor {source.name!r}: data is cut short", source.file)
    raw = np.frombuffer(buffer, np.uint8, count=n_rows * row_bytes, offset=source.storage_offset)
    raw = raw.reshape(n_rows, row_bytes)
    step = max(1, max_bytes // max(1, row_length * 4))
    for start in range(0, n_rows, step):
        with np.errstate(all="ignore"):  # scales that are inf/NaN give inf/NaN, as in ggml
            values = dequantize(raw[start : start + step], qtype)
        yield values.astype(np.float32, copy=False)


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
