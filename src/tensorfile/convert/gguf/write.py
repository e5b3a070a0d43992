"""Stream a planned GGUF file: header and tensor infos through gguf-py's writer, then each tensor
a bounded chunk of rows at a time, quantized in worker processes (workers.py) when that pays.

Why processes: the numpy K-quants spend much of their time in small per-sub-block vector steps
that hold the GIL, so threads scale poorly; separate processes scale with cores. Chunks go to
the workers in file order and their bytes are written back in that order, with at most two
chunks per worker in flight, so memory stays bounded and the output is the same bytes as a
serial run.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

import gguf
import numpy as np

from ..stream import Progress, no_progress
from ..tensors import FileMaps
from .build import FLOAT_TYPES
from .layout import GGUFTensor, float_rows
from .workers import EncodeWorkers, Ticket

# Types whose numpy quantizer runs far below disk speed; the others stay in this process, where
# handing a chunk to a worker would cost more than quantizing it.
POOLED_TYPES = frozenset({"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_1", "Q5_0", "Q5_1"})
# Below this many values to quantize in pooled types, starting workers costs more than it saves.
POOL_MIN_VALUES = 1 << 24
_IN_FLIGHT_PER_WORKER = 2


def worker_count() -> int:
    """Worker processes for quantizing: TENSORFILE_QUANT_WORKERS, else the cores this process may use."""
    env = os.environ.get("TENSORFILE_QUANT_WORKERS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def write_gguf(
    out: BinaryIO,
    tensors: list[GGUFTensor],
    writer: gguf.GGUFWriter,
    maps: FileMaps,
    progress: Progress = no_progress,
    workers: int | None = None,
) -> None:
    """Write the header, keys and tensor infos `writer` holds, then every tensor's data."""
    writer.fout = [out]
    writer.state = gguf.WriterState.EMPTY
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    pooled = sum(t.numel for t in tensors if t.type in POOLED_TYPES and not _kept(t))
    count = (workers or worker_count()) if pooled >= POOL_MIN_VALUES else 1
    # a progress display that can name the tensor being written offers `.tensor(name)`
    named = getattr(progress, "tensor", None)
    with _OrderedEncoder(count) as encoder:
        written = 0
        for tensor, piece in encoder.run(_pieces(tensors, maps)):
            if piece is None:  # the tensor is complete
                if written != tensor.nbytes():
                    raise AssertionError(f"{tensor.name}: wrote {written} bytes, planned {tensor.nbytes()}")
                writer.write_padding(out, written)
                if _kept(tensor):
                    source = tensor.parts[0].source
                    maps.release(source.file, source.storage_offset, written)  # type: ignore[arg-type]
                written = 0
                continue
            if written == 0:
                writer.write_padding(out, out.tell())
                if named is not None:
                    named(tensor.name)
            data, values = piece
            out.write(data)
            written += len(data)
            progress(values)
    out.flush()


# A piece of work: (tensor, None) ends a tensor; (tensor, bytes) is data to write as it is;
# (tensor, rows) is float32 rows to encode to the tensor's type.
_Piece = tuple[GGUFTensor, "np.ndarray | memoryview | None"]
# In the window: the tensor, its bytes (or the worker's future of them, None at a tensor's end)
# and how many float32 bytes of input they stand for (for the progress bar).
_Pending = tuple[GGUFTensor, "Ticket | bytes | memoryview | None", int]
_Done = tuple[GGUFTensor, "tuple[bytes | memoryview, int] | None"]


def _pieces(tensors: list[GGUFTensor], maps: FileMaps) -> Iterator[_Piece]:
    for t in tensors:
        if _kept(t):
            yield t, _stored(t, maps)
        else:
            yield from ((t, rows) for rows in float_rows(t, maps))
        yield t, None


def _kept(t: GGUFTensor) -> bool:
    """A GGUF source's tensor whose type stays: llama-quantize copies its stored bytes."""
    return t.copy_when_kept and t.type == t.base_type


def _stored(t: GGUFTensor, maps: FileMaps) -> memoryview:
    source = t.parts[0].source
    if source.file is None:
        raise AssertionError(f"{t.name}: no data location")
    buffer = maps.get(source.file)
    return memoryview(buffer)[source.storage_offset : source.storage_offset + t.nbytes()]


class _OrderedEncoder:
    """Encodes pieces in order: inline with one worker, else in worker processes, a bounded window."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: EncodeWorkers | None = None

    def __enter__(self) -> _OrderedEncoder:
        if self.workers > 1:
            self._pool = EncodeWorkers(self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()

    def run(self, pieces: Iterator[_Piece]) -> Iterator[_Done]:
        window: deque[_Pending] = deque()
        limit = self.workers * _IN_FLIGHT_PER_WORKER
        for tensor, item in pieces:
            window.append(self._start(tensor, item))
            while len(window) > limit or (window and not isinstance(window[0][1], Ticket)):
                yield self._finish(*window.popleft())
        while window:
            yield self._finish(*window.popleft())

    def _start(self, tensor: GGUFTensor, item: np.ndarray | memoryview | None) -> _Pending:
        if item is None:
            return tensor, None, 0
        if isinstance(item, memoryview):  # written as it is, straight from the source's map
            return tensor, item, tensor.numel * 4
        values = item.nbytes
        if self._pool is not None and tensor.type in POOLED_TYPES:
            return tensor, self._pool.submit(item, tensor.base_type, tensor.type), values
        return tensor, encode(item, tensor.base_type, tensor.type), values

    def _finish(self, tensor: GGUFTensor, item: Ticket | bytes | memoryview | None, values: int) -> _Done:
        if item is None:
            return tensor, None
        if isinstance(item, Ticket):
            assert self._pool is not None
            return tensor, (self._pool.result(item), values)
        return tensor, (item, values)


def encode(rows: np.ndarray, base: str, final: str) -> bytes:
    """float32 rows → the final type's bytes, through the converter's base type first."""
    values = rows if base not in FLOAT_TYPES else _through_base(rows, base)
    if final == "F32":
        return values.astype(np.float32).tobytes()
    if final == "F16":
        return values.astype(np.float16).tobytes()
    if final == "BF16":
        return gguf.quants.quantize(values, gguf.GGMLQuantizationType.BF16).tobytes()
    from ..quants import quantize

    return quantize(values, final).tobytes()


def _through_base(rows: np.ndarray, base: str) -> np.ndarray:
    """The values the converter's file holds (what llama-quantize reads back as float32)."""
    if base == "F32":
        return np.ascontiguousarray(rows, dtype=np.float32)
    if base == "F16":
        return rows.astype(np.float16).astype(np.float32)
    bits = gguf.quants.quantize(np.ascontiguousarray(rows, dtype=np.float32), gguf.GGMLQuantizationType.BF16)
    return (bits.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(rows.shape)
