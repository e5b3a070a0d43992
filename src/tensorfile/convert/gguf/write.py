"""Stream a planned GGUF file: header and tensor infos through gguf-py's writer, then each tensor
a bounded chunk of rows at a time.

With the compiled quantizers (quants/kernel.py) every chunk is quantized in this process, by the
kernel's own threads with the GIL released: no worker processes, no copies through pipes. Without
them (no C compiler at install, or TENSORFILE_NO_KERNEL=1), the slow numpy types are quantized in
worker processes (workers.py) when that pays.

Why processes for numpy: the numpy K-quants spend much of their time in small per-sub-block vector steps
that hold the GIL, so threads scale poorly; separate processes scale with cores. Chunks go to
the workers in file order and their bytes are written back in that order, with at most two
chunks per worker in flight, so memory stays bounded and the output is the same bytes as a
serial run.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import gguf
import numpy as np

from ..quants import kernel
from ..stream import Progress, no_progress
from ..tensors import FileMaps, is_ggml_quantized
from .build import FLOAT_TYPES
from .layout import GGUFTensor, exact_in_base, float_rows
from .workers import EncodeWorkers, Ticket

# Types whose numpy quantizer runs far below disk speed; the others stay in this process, where
# handing a chunk to a worker would cost more than quantizing it.
POOLED_TYPES = frozenset({"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_1", "Q5_0", "Q5_1"})
# Below this many values to quantize in pooled types, starting workers costs more than it saves.
POOL_MIN_VALUES = 1 << 24
_IN_FLIGHT_PER_WORKER = 2
# Chunks in flight with the encoding thread: one being quantized, one read ahead, one being written.
_IN_FLIGHT_THREADED = 2


def worker_count() -> int:
    """Worker processes for quantizing: TENSORFILE_QUANT_WORKERS, else the cores this process may use."""
    env = os.environ.get("TENSORFILE_QUANT_WORKERS")
    return max(1, int(env)) if env else kernel.usable_cores()


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
    count = _pool_size(tensors, workers)

    # a progress display that can name the tensor being written offers `.tensor(name)`
    named = getattr(progress, "tensor", None)
    with _OrderedEncoder(count, threaded=kernel.available()) as encoder:
        written = 0
        for tensor, piece in encoder.run(_pieces(tensors, maps)):
            if piece is None:  # the tensor is complete
                if written != tensor.nbytes():
                    raise AssertionError(f"{tensor.name}: wrote {written} bytes, planned {tensor.nbytes()}")
                writer.write_padding(out, written)
                _release(tensor, maps)
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


def _pool_size(tensors: list[GGUFTensor], workers: int | None) -> int:
    """Worker processes for this file: none (1: inline) when the compiled kernel quantizes, or when
    too few values go to the slow numpy types to pay for starting them."""
    if kernel.available():
        return 1
    pooled = sum(t.numel for t in tensors if t.type in POOLED_TYPES and not _kept(t))
    return (workers or worker_count()) if pooled >= POOL_MIN_VALUES else 1


# A piece of work: (tensor, None) ends a tensor; (tensor, bytes) is data to write as it is;
# (tensor, rows) is float32 rows to encode to the tensor's type.
_Piece = tuple[GGUFTensor, "np.ndarray | memoryview | None"]
# In the window: the tensor, its bytes (or the worker's future of them, None at a tensor's end)
# and how many float32 bytes of input they stand for (for the progress bar).
_Pending = tuple[GGUFTensor, "Ticket | Future[bytes | memoryview] | bytes | memoryview | None", int]
_Done = tuple[GGUFTensor, "tuple[bytes | memoryview, int] | None"]


def _pieces(tensors: list[GGUFTensor], maps: FileMaps) -> Iterator[_Piece]:
    for t in tensors:
        if _kept(t):
            yield t, _stored(t, maps)
        else:
            yield from ((t, rows) for rows in float_rows(t, maps))
        yield t, None


def _release(t: GGUFTensor, maps: FileMaps) -> None:
    """Drop a written tensor's source pages from this process (they stay in the page cache): the
    encoding thread may have read them after float_rows released them."""
    if _kept(t):
        source = t.parts[0].source
        maps.release(source.file, source.storage_offset, t.nbytes())  # type: ignore[arg-type]
        return
    for part in t.parts:
        src = part.source
        if src.file is not None and src.loader is None and not is_ggml_quantized(src.dtype):
            maps.release(src.file, src.storage_offset, src.extent_nbytes())


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
    """Encodes pieces in order, a bounded window of them in flight: in worker processes (numpy
    quantizers, `workers` > 1), in one encoding thread (the compiled kernel, which releases the GIL
    and runs its own threads, so this thread reads the next rows and writes while it quantizes),
    or inline."""

    def __init__(self, workers: int, threaded: bool = False) -> None:
        self.workers = workers
        self.threaded = threaded and workers == 1
        self._pool: EncodeWorkers | None = None
        self._thread: ThreadPoolExecutor | None = None

    def __enter__(self) -> _OrderedEncoder:
        if self.workers > 1:
            self._pool = EncodeWorkers(self.workers)
        elif self.threaded:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="tensorfile-encode")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)

    def run(self, pieces: Iterator[_Piece]) -> Iterator[_Done]:
        window: deque[_Pending] = deque()
        limit = self.workers * _IN_FLIGHT_PER_WORKER if self._pool is not None else _IN_FLIGHT_THREADED
        for tensor, item in pieces:
            window.append(self._start(tensor, item))
            while len(window) > limit or (window and not isinstance(window[0][1], (Ticket, Future))):
                yield self._finish(*window.popleft())
        while window:
            yield self._finish(*window.popleft())

    def _start(self, tensor: GGUFTensor, item: np.ndarray | memoryview | None) -> _Pending:
        if item is None:
            return tensor, None, 0
        if isinstance(item, memoryview):  # written as it is, straight from the source's map
            return tensor, item, tensor.numel * 4
        values = item.nbytes
        base = EXACT + tensor.base_type if exact_in_base(tensor) else tensor.base_type
        if self._pool is not None and tensor.type in POOLED_TYPES:
            return tensor, self._pool.submit(item, base, tensor.type), values
        if self._thread is not None:
            return tensor, self._thread.submit(encode, item, base, tensor.type), values
        return tensor, encode(item, base, tensor.type), values

    def _finish(
        self,
        tensor: GGUFTensor,
        item: Ticket | Future[bytes | memoryview] | bytes | memoryview | None,
        values: int,
    ) -> _Done:
        if item is None:
            return tensor, None
        if isinstance(item, Ticket):
            assert self._pool is not None
            return tensor, (self._pool.result(item), values)
        if isinstance(item, Future):
            return tensor, (item.result(), values)
        return tensor, (item, values)


# Prefixes encode's base for rows already exact in the converter's type (layout.exact_in_base):
# the round trip through it is skipped unless a NaN is there, whose payload it may change.
EXACT = "exact:"


def encode(rows: np.ndarray, base: str, final: str) -> bytes | memoryview:
    """float32 rows → the final type's bytes, through the converter's base type first."""
    if base.startswith(EXACT):
        base = base.removeprefix(EXACT)
        values = _through_base(rows, base) if np.isnan(rows).any() else rows
    else:
        values = rows if base not in FLOAT_TYPES else _through_base(rows, base)
    if final == "F32":
        return values.astype(np.float32).tobytes()
    if final == "F16":
        return values.astype(np.float16).tobytes()
    if final == "BF16":
        return gguf.quants.quantize(values, gguf.GGMLQuantizationType.BF16).tobytes()
    from ..quants import quantize

    return quantize(values, final).reshape(-1).data  # a fresh array: its bytes need no copy


def _through_base(rows: np.ndarray, base: str) -> np.ndarray:
    """The values the converter's file holds (what llama-quantize reads back as float32)."""
    if base == "F32":
        return np.ascontiguousarray(rows, dtype=np.float32)
    if base == "F16":
        return rows.astype(np.float16).astype(np.float32)
    bits = gguf.quants.quantize(np.ascontiguousarray(rows, dtype=np.float32), gguf.GGMLQuantizationType.BF16)
    return (bits.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(rows.shape)
