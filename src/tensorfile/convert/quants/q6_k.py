"""Q6_K, bit-exact with ggml's quantize_row_q6_K_ref (what llama-quantize runs without an imatrix).

Block (210 bytes per 256 values): ql[128] (low 4 bits), qh[64] (high 2 bits), 16 int8 scales (one
per sub-block of 16), then d (fp16) — value = d * scale * (q - 32).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import (
    F32,
    QK_K,
    fp16_bits_to_fp32,
    fp16_bytes,
    fp32_to_fp16_bits,
    nearest_int,
    quantize_blocks,
    sub_blocks,
)
from .qx import GROUP_MAX_EPS, first_absmax_last, make_qx_quants_rmse1, qx_levels

TYPE_SIZE = 210


def _quantize_chunk(xb: np.ndarray) -> np.ndarray:
    nb = xb.shape[0]
    finite = bool(np.isfinite(xb).all())
    xs, x = sub_blocks(xb, 16)  # (m, 16), (16, m)
    res = make_qx_quants_rmse1(x, 32, finite)
    scales = res.scale.reshape(nb, 16)
    max_scale = first_absmax_last(scales)
    zero_block = ~(np.abs(max_scale) >= GROUP_MAX_EPS)  # max_abs_scale < GROUP_MAX_EPS
    iscale = F32(-128.0) / np.where(zero_block, F32(1.0), max_scale)
    d_bits = np.where(zero_block, np.uint16(0), fp32_to_fp16_bits(F32(1.0) / iscale))
    # `int8_t scales[ib] = MIN(127, nearest_int(iscale*scales[ib]))`: truncated to the low byte
    sc = np.minimum(127, nearest_int(iscale[:, None] * scales)).astype(np.int8)
    sc[zero_block] = 0
    d = (fp16_bits_to_fp32(d_bits)[:, None] * sc.astype(F32)).reshape(-1)
    q = nearest_int(xs / d[:, None])
    levels = (np.clip(q, -32, 31) + 32).astype(np.int16)
    skip = np.flatnonzero(d == 0)  # `if (!d) continue;`: keep make_qx_quants' levels (NaN d is used)
    if skip.size:
        levels[skip] = qx_levels(x, res, 32, skip).T
    lv = levels.reshape(nb, 2, 4, 32)  # (block, half of 128, quarter of 32, l)
    ql = np.empty((nb, 2, 2, 32), dtype=np.int16)
    ql[:, :, 0] = (lv[:, :, 0] & 0xF) | ((lv[:, :, 2] & 0xF) << 4)
    ql[:, :, 1] = (lv[:, :, 1] & 0xF) | ((lv[:, :, 3] & 0xF) << 4)
    hi = lv >> 4
    qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
    out = np.empty((nb, TYPE_SIZE), dtype=np.uint8)
    out[:, 0:128] = ql.reshape(nb, 128)
    out[:, 128:192] = qh.reshape(nb, 64)
    out[:, 192:208] = sc.view(np.uint8)
    out[:, 208:210] = fp16_bytes(d_bits)
    out[zero_block] = 0  # memset(&y[i], 0, sizeof(block_q6_K))
    return out


def quantize_q6_k(rows: np.ndarray) -> np.ndarray:
    """float32 (n_rows, n_per_row) → uint8 (n_rows, n_per_row / 256 * 210)."""
    return quantize_blocks(rows, QK_K, TYPE_SIZE, _quantize_chunk)


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"Q6_K": quantize_q6_k}
