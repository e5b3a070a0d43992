"""Helpers every ggml quantizer here shares, bit-exact with ggml-quants.c: nearest_int, the fp16
conversions, C-order sums, and the driver that cuts rows into blocks and chunks across threads.

Layout convention for the sub-block searches (qx.py, qkx.py): sub-blocks are processed
*transposed*, as (n, m) float32 arrays where column k is one sub-block of n values. The C code loops
over the n values of a sub-block; here each such loop iteration is one numpy operation over all m
sub-blocks, so float32 operations happen in exactly the C order (sequential sums, no pairwise
summation) while staying vectorised across sub-blocks.

ggml-base is built with -O3 and without -march/-ffast-math, so on x86-64 there is no FMA contraction
and no reassociation: every C expression rounds to float32 after each operation, as numpy does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

F32 = np.float32
QK_K = 256

# nearest_int's magic number, 1.5 * 2**23: adding it rounds to an integer in the low mantissa bits
_MAGIC = F32(12582912.0)
# |t| below this → t + magic stays in [2**23, 2**24), where the bit trick equals round-half-even
RINT_SAFE = F32(4194303.0)


def nearest_int(v: np.ndarray) -> np.ndarray:
    """ggml's nearest_int, bit for bit: int32. Round-half-even, and the same wrap-around past
    2**22 and garbage for inf/NaN as C, since ggml is built with NDEBUG and the range assert is
    gone."""
    t = np.asarray(v, dtype=F32) + _MAGIC
    return (t.view(np.int32) & 0x007FFFFF) - 0x00400000


def rint_or_nearest_int(v: np.ndarray, in_range: bool) -> np.ndarray:
    """nearest_int as float32; np.rint (one pass, in place) when the caller knows every
    |v| < RINT_SAFE (no inf/NaN), where the two agree."""
    if in_range:
        return np.rint(v, out=v)
    return nearest_int(v).astype(F32)


def fp32_to_fp16_bits(v: np.ndarray) -> np.ndarray:
    """GGML_FP32_TO_FP16 (round-to-nearest-even) as uint16 bits; NaN becomes ggml's 0x7E00 | sign."""
    v = np.asarray(v, dtype=F32)
    with np.errstate(over="ignore"):
        bits = v.astype(np.float16).view(np.uint16)
    nan = np.isnan(v)
    if nan.any():
        sign = (v.view(np.uint32) >> 16).astype(np.uint16) & np.uint16(0x8000)
        bits = np.where(nan, sign | np.uint16(0x7E00), bits)
    return bits


def fp16_bits_to_fp32(bits: np.ndarray) -> np.ndarray:
    """GGML_FP16_TO_FP32, bit for bit (all 65536 inputs checked): exact widening, except that
    ggml quiets a signaling NaN (numpy keeps it signaling). fp32_to_fp16_bits never makes one."""
    f = np.asarray(bits, dtype=np.uint16).view(np.float16).astype(F32)
    nan = np.isnan(f)
    if nan.any():
        f.view(np.uint32)[nan] |= np.uint32(0x00400000)
    return f


def fp16_bytes(bits: np.ndarray) -> np.ndarray:
    """uint16 (B,) → little-endian uint8 (B, 2), as ggml_half sits in memory."""
    return np.ascontiguousarray(bits, dtype="<u2").view(np.uint8).reshape(-1, 2)


def seq_sum0(terms: np.ndarray) -> np.ndarray:
    """`float s = 0; for i: s += terms[i];` over axis 0, in that order.

    numpy reduces a C-contiguous (n, m) array over axis 0 row by row (the contiguous axis is the
    inner loop), which is that order, in one call. It sums pairwise only along a contiguous
    reduction axis, which is what it does when m == 1: there, and for other layouts, the loop.
    """
    if terms.ndim >= 2 and terms.flags.c_contiguous and terms[0].size > 1:
        flat = terms.reshape(terms.shape[0], -1)
        # initial 0: C starts from s = 0, and -0.0 + 0 is +0
        return np.add.reduce(flat, axis=0, initial=F32(0.0)).reshape(terms.shape[1:])
    acc = terms[0] + F32(0.0)  # 0 + t0, not t0: C's -0.0 + 0 is +0
    for i in range(1, terms.shape[0]):
        acc += terms[i]
    return acc


def sub_blocks(xb: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocks xb (B, block) cut into sub-blocks of n values: (xs, x), xs the natural (m, n) view
    and x its contiguous transpose (n, m), the layout of the sub-block searches (see module doc)."""
    xs = xb.reshape(-1, n)
    return xs, np.ascontiguousarray(xs.T)


# Values per work unit (1024 super-blocks): keeps the (n, m) working arrays around 1 MB, in cache,
# while the per-call numpy overhead on the (m,) vectors stays small.
CHUNK_VALUES = 1 << 18


def _threads() -> int:
    """Worker threads per call (TENSORFILE_QUANT_THREADS overrides). The (m,)-vector steps hold
    the GIL, so threads scale sublinearly (a second one gained ~10% for Q4_K on a 2-core box);
    callers wanting real scaling should run tensors in separate processes."""
    env = os.environ.get("TENSORFILE_QUANT_THREADS")
    if env:
        return max(1, int(env))
    return min(8, os.cpu_count() or 1)


def quantize_blocks(
    rows: np.ndarray,
    block_size: int,
    type_size: int,
    quantize_chunk: Callable[[np.ndarray], np.ndarray],
    chunk_values: int = CHUNK_VALUES,
) -> np.ndarray:
    """Split float32 rows (n_rows, n_per_row) into blocks of `block_size`, quantize them chunk by
    chunk (threads: numpy releases the GIL inside its loops), return uint8 (n_rows, row_bytes).

    `quantize_chunk` maps float32 (B, block_size) to uint8 (B, type_size).
    """
    rows = np.ascontiguousarray(rows, dtype=F32)
    if rows.ndim != 2 or rows.shape[1] % block_size:
        raise ValueError(f"rows must be (n_rows, n_per_row) with n_per_row a multiple of {block_size}")
    n_rows, n_per_row = rows.shape
    blocks = rows.reshape(-1, block_size)
    out = np.empty((blocks.shape[0], type_size), dtype=np.uint8)
    step = max(1, chunk_values // block_size)
    starts = range(0, blocks.shape[0], step)

    def work(s: int) -> None:
        with np.errstate(all="ignore"):  # inf/NaN/overflow are reproduced, not reported
            out[s : s + step] = quantize_chunk(blocks[s : s + step])

    threads = min(_threads(), len(starts))
    if threads <= 1:
        for s in starts:
            work(s)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, starts))
    return out.reshape(n_rows, n_per_row // block_size * type_size)
