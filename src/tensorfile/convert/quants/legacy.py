"""Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: bit-exact with ggml's quantize_row_q*_ref (32-value blocks).

gguf-py ships numpy quantizers for these types, but they are not byte-identical with ggml on
adversarial input (NaN, inf, subnormal scales, the sign of a zero minimum), so these are our own.

Block layouts (little-endian): Q4_0 d | qs[16]; Q4_1 d | m | qs[16]; Q5_0 d | qh[4] | qs[16];
Q5_1 d | m | qh[4] | qs[16]; Q8_0 d | qs[32]. d and m are fp16; qs[j] holds value j in its low
nibble and value j + 16 in its high nibble; bit k of qh is bit 4 of value k.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import F32, fp16_bytes, fp32_to_fp16_bits, quantize_blocks
from .qx import c_float_to_int8, c_roundf, first_absmax

QK = 32
_FLT_MAX = F32(np.finfo(np.float32).max)


def _t(x: np.ndarray) -> np.ndarray:
    """Blocks (B, 32) transposed to (32, B): numpy reduces a short last axis row by row (slow);
    over axis 0 each step is one vector operation across all blocks."""
    return np.ascontiguousarray(x.T)


def _inverse(d: np.ndarray) -> np.ndarray:
    """`id = d ? 1.0f/d : 0.0f` (NaN is truthy)."""
    return np.where(d != 0, F32(1.0) / np.where(d != 0, d, F32(1.0)), F32(0.0))


def _first_where_zero(xt: np.ndarray, ext: np.ndarray, arg: np.ndarray) -> np.ndarray:
    """Replace the zero extremes in ext by the first zero of their block (its sign), arg being
    argmin or argmax of those blocks."""
    zero = np.flatnonzero(ext == 0)
    if zero.size:
        cols = xt[:, zero]
        ext[zero] = np.take_along_axis(cols, arg(cols)[None], axis=0)[0]
    return ext


def _min_max(xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`min = FLT_MAX; max = -FLT_MAX; if (v < min) min = v; if (v > max) max = v;` per block,
    from the transposed blocks xt (32, B).

    The first of equal extremes wins, which matters only for the sign of a zero (m is the fp16 of
    min, and -0 - +0 is -0 for d): numpy's min/max may return either zero, so blocks with a zero
    extreme take the first one by argmin/argmax. NaN (never taken in C) needs the loop.
    """
    if not np.isnan(xt).any():
        mn = _first_where_zero(xt, xt.min(axis=0), lambda c: c.argmin(axis=0))
        mx = _first_where_zero(xt, xt.max(axis=0), lambda c: c.argmax(axis=0))
        return mn, mx
    mn = np.full(xt.shape[1], _FLT_MAX)
    mx = np.full(xt.shape[1], -_FLT_MAX)
    for v in xt:
        mn = np.where(v < mn, v, mn)
        mx = np.where(v > mx, v, mx)
    return mn, mx


def _nibbles(q: np.ndarray) -> np.ndarray:
    """qs[j] = (q[j] & 0xF) | (q[j + 16] << 4), truncated to uint8; q is int (B, 32) in 0..255."""
    return ((q[:, :16] & 0xF) | ((q[:, 16:] & 0xF) << 4)).astype(np.uint8)


def _qh(q: np.ndarray) -> np.ndarray:
    """The uint32 qh of the 5-bit types as 4 little-endian bytes: bit k = bit 4 of q[k]."""
    return np.packbits(((q >> 4) & 1).astype(np.uint8), axis=1, bitorder="little")


def _q4_0_chunk(x: np.ndarray) -> np.ndarray:
    d = first_absmax(_t(x), 0) / F32(-8)
    xi = np.minimum(15, c_float_to_int8(x * _inverse(d)[:, None] + F32(8.5)))
    # `uint8_t xi0 = MIN(15, (int8_t)...); qs[j] = xi0 | xi1 << 4;`: no `& 0xF` in this one
    xi &= 0xFF
    qs = (xi[:, :16] | (xi[:, 16:] << 4)) & 0xFF
    out = np.empty((x.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = fp16_bytes(fp32_to_fp16_bits(d))
    out[:, 2:] = qs
    return out


def _q4_1_chunk(x: np.ndarray) -> np.ndarray:
    mn, mx = _min_max(_t(x))
    d = (mx - mn) / F32(15)
    xi = np.minimum(15, c_float_to_int8((x - mn[:, None]) * _inverse(d)[:, None] + F32(0.5)))
    xi &= 0xFF
    out = np.empty((x.shape[0], 20), dtype=np.uint8)
    out[:, 0:2] = fp16_bytes(fp32_to_fp16_bits(d))
    out[:, 2:4] = fp16_bytes(fp32_to_fp16_bits(mn))
    out[:, 4:] = (xi[:, :16] | (xi[:, 16:] << 4)) & 0xFF
    return out


def _q5_0_chunk(x: np.ndarray) -> np.ndarray:
    d = first_absmax(_t(x), 0) / F32(-16)
    xi = np.minimum(31, c_float_to_int8(x * _inverse(d)[:, None] + F32(16.5))) & 0xFF
    out = np.empty((x.shape[0], 22), dtype=np.uint8)
    out[:, 0:2] = fp16_bytes(fp32_to_fp16_bits(d))
    out[:, 2:6] = _qh(xi)
    out[:, 6:] = _nibbles(xi)
    return out


def _q5_1_chunk(x: np.ndarray) -> np.ndarray:
    mn, mx = _min_max(_t(x))
    d = (mx - mn) / F32(31)
    # `(uint8_t)(x0 + 0.5f)`: no clamp to 31 in this one
    xi = c_float_to_int8((x - mn[:, None]) * _inverse(d)[:, None] + F32(0.5)) & 0xFF
    out = np.empty((x.shape[0], 24), dtype=np.uint8)
    out[:, 0:2] = fp16_bytes(fp32_to_fp16_bits(d))
    out[:, 2:4] = fp16_bytes(fp32_to_fp16_bits(mn))
    out[:, 4:8] = _qh(xi)
    out[:, 8:] = _nibbles(xi)
    return out


def _q8_0_amax(xt: np.ndarray) -> np.ndarray:
    """`amax = MAX(amax, fabsf(v))`, i.e. `amax > |v| ? amax : |v|`, from xt (32, B): a NaN is
    kept only until the next value replaces it, so with NaN the sequential loop is needed."""
    a = np.abs(xt)
    if not np.isnan(a).any():
        return a.max(axis=0)
    amax = np.zeros(xt.shape[1], dtype=F32)
    for v in a:
        amax = np.where(amax > v, amax, v)
    return amax


def _q8_0_chunk(x: np.ndarray) -> np.ndarray:
    d = _q8_0_amax(_t(x)) / F32(127)
    qs = c_float_to_int8(c_roundf(x * _inverse(d)[:, None])) & 0xFF
    out = np.empty((x.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = fp16_bytes(fp32_to_fp16_bits(d))
    out[:, 2:] = qs
    return out


def _rows(chunk: Callable[[np.ndarray], np.ndarray], type_size: int) -> Callable[[np.ndarray], np.ndarray]:
    def quantize_rows(rows: np.ndarray) -> np.ndarray:
        return quantize_blocks(rows, QK, type_size, chunk)

    return quantize_rows


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Q4_0": _rows(_q4_0_chunk, 18),
    "Q4_1": _rows(_q4_1_chunk, 20),
    "Q5_0": _rows(_q5_0_chunk, 22),
    "Q5_1": _rows(_q5_1_chunk, 24),
    "Q8_0": _rows(_q8_0_chunk, 34),
}
