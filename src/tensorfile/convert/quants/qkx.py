"""ggml's "scale + min" k-quants' own pieces (Q2_K, Q4_K, Q5_K), bit-exact with ggml-quants.c:
make_qkx2_quants and the 6-bit scale/min packing of Q4_K/Q5_K. The shared helpers and the (n, m)
layout convention are in common.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .common import (
    F32,
    QK_K,
    RINT_SAFE,
    fp16_bits_to_fp32,
    fp32_to_fp16_bits,
    nearest_int,
    rint_or_nearest_int,
    seq_sum0,
    sub_blocks,
)

K_SCALE_SIZE = 12


def seq_min_max(x: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """`min = max = x[0]; if (x[i] < min) min = x[i]; if (x[i] > max) max = x[i];` over axis 0.

    Without NaN the comparison loop and numpy's min/max can differ only in the sign of a zero,
    which never changes a quantized byte (the min is clamped to <= 0 and only ever subtracted or
    compared), so the fast reductions are used unless the data holds NaN (`exact`).
    """
    if not exact:
        return x.min(axis=0), x.max(axis=0)
    mn = x[0].copy()
    mx = x[0].copy()
    for i in range(1, x.shape[0]):
        mn = np.where(x[i] < mn, x[i], mn)
        mx = np.where(x[i] > mx, x[i], mx)
    return mn, mx


def running_max0(v: np.ndarray) -> np.ndarray:
    """`float m = 0; for j: if (v[j] > m) m = v[j];` over the last axis (ignores NaN, like C)."""
    m = np.zeros(v.shape[:-1], dtype=F32)
    for j in range(v.shape[-1]):
        m = np.where(v[..., j] > m, v[..., j], m)
    return m


@dataclass
class Qkx2Result:
    """make_qkx2_quants' outputs for m sub-blocks. The levels L are kept implicitly: L is
    clip(nearest_int(l_iscale * (x - l_min)), 0, nmax) for the step that won (0 where degenerate);
    callers only need them for sub-blocks whose quantized scale came out 0."""

    scale: np.ndarray  # return value
    the_min: np.ndarray  # *the_min (= -min)
    l_iscale: np.ndarray
    l_min: np.ndarray
    degenerate: np.ndarray  # max == min: C returned early with L = 0


def _levels(x: np.ndarray, mn: np.ndarray, iscale: np.ndarray, nmax: int, exact: bool) -> np.ndarray:
    """`l = nearest_int(iscale*(x[i] - min)); l = MAX(0, MIN(nmax, l));` as float32 (n, m)."""
    t = x - mn
    t *= iscale
    t = rint_or_nearest_int(t, not exact)  # the caller checked the range unless `exact`
    np.clip(t, F32(0.0), F32(nmax), out=t)  # clip: much faster than maximum/minimum with a scalar
    return t


def _levels_in_range(xmin: np.ndarray, xmax: np.ndarray, mn: np.ndarray, iscale: np.ndarray) -> bool:
    """True when every iscale*(x - mn) of the sub-blocks is provably below RINT_SAFE in magnitude.

    Float rounding is monotone, so fl(iscale*fl(x - mn)) lies between its values at the sub-block's
    extremes; checking those two per sub-block bounds all n values (NaN fails the test).
    """
    lo = (xmin - mn) * iscale
    hi = (xmax - mn) * iscale
    return bool(np.all(np.abs(lo) < RINT_SAFE) and np.all(np.abs(hi) < RINT_SAFE))


def _error(
    x: np.ndarray, w: np.ndarray, lv: np.ndarray, scale: np.ndarray, mn: np.ndarray, use_mad: bool
) -> np.ndarray:
    """`diff = scale*L[i] + min - x[i]; diff = mad ? |diff| : diff*diff; err += w*diff;`"""
    diff = lv * scale
    diff += mn
    diff -= x
    if use_mad:
        np.abs(diff, out=diff)
    else:
        diff *= diff
    diff *= w
    return seq_sum0(diff)


def make_qkx2_quants(
    x: np.ndarray,
    w: np.ndarray,
    nmax: int,
    rmin: float,
    rdelta: float,
    nstep: int,
    use_mad: bool,
    exact: bool = False,
) -> Qkx2Result:
    """ggml's make_qkx2_quants over m sub-blocks at once; x and w are (n, m) float32 (see module doc).

    `exact` forces the bit-trick nearest_int and the comparison-loop min/max (needed with NaN).
    """
    fnmax = F32(nmax)
    with np.errstate(all="ignore"):
        mn, mx = seq_min_max(x, exact)
        xmin, xmax = mn, mx  # raw extremes, for the range checks
        sum_w = w[0].copy()
        sum_x = sum_w * x[0]
        for i in range(1, x.shape[0]):
            sum_w += w[i]
            sum_x += w[i] * x[i]
        mn = np.where(mn > 0, F32(0.0), mn)
        degenerate = mx == mn
        # degenerate sub-blocks returned early in C: give them harmless numbers and never update
        rng = np.where(degenerate, F32(1.0), mx - mn)
        iscale = fnmax / rng
        scale = F32(1.0) / iscale
        fast = not exact and _levels_in_range(xmin, xmax, mn, iscale)
        lv = _levels(x, mn, iscale, nmax, not fast)
        best_error = _error(x, w, lv, scale, mn, use_mad)
        l_iscale = iscale
        l_min = mn
        live = ~degenerate
        for step in range(nstep + 1):
            # the C updates `min` when a step wins, and later steps start from the new min
            num = F32(rmin) + F32(rdelta) * F32(step) + fnmax
            iscale = num / np.where(degenerate, F32(1.0), mx - mn)
            fast = not exact and _levels_in_range(xmin, xmax, mn, iscale)
            lv = _levels(x, mn, iscale, nmax, not fast)
            wl = w * lv
            sum_l = seq_sum0(wl)
            sum_l2 = seq_sum0(wl * lv)
            wl *= x
            sum_xl = seq_sum0(wl)
            d = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / d
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d
            pos = this_min > 0
            this_min = np.where(pos, F32(0.0), this_min)
            this_scale = np.where(pos, sum_xl / sum_l2, this_scale)
            cur_error = _error(x, w, lv, this_scale, this_min, use_mad)
            better = live & (d > 0) & (cur_error < best_error)
            if better.any():
                best_error = np.where(better, cur_error, best_error)
                scale = np.where(better, this_scale, scale)
                l_iscale = np.where(better, iscale, l_iscale)
                l_min = np.where(better, mn, l_min)
                mn = np.where(better, this_min, mn)
        scale = np.where(degenerate, F32(0.0), scale)
        return Qkx2Result(scale, -mn, l_iscale, l_min, degenerate)


def qkx2_levels(x: np.ndarray, res: Qkx2Result, nmax: int, cols: np.ndarray) -> np.ndarray:
    """The uint8 levels L make_qkx2_quants left for sub-blocks `cols` (indices into m): (n, len)."""
    with np.errstate(all="ignore"):
        t = (x[:, cols] - res.l_min[cols]) * res.l_iscale[cols]
    q = np.clip(nearest_int(t), 0, nmax)
    q[:, res.degenerate[cols]] = 0
    return q.astype(np.uint8)


def final_levels(
    xs: np.ndarray, d: np.ndarray, dm: np.ndarray, nmax: int, fallback: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """`if (!d) continue; l = nearest_int((x + dm)/d); L = MAX(0, MIN(nmax, l));` per sub-block.

    xs is (m, n) (natural layout), d and dm are (m,); sub-blocks with d == 0 keep the levels from
    make_qkx2_quants, which `fallback(cols)` returns as (n, len(cols)).
    """
    with np.errstate(all="ignore"):
        t = (xs + dm[:, None]) / d[:, None]
    q = nearest_int(t)
    np.clip(q, 0, nmax, out=q)
    levels = q.astype(np.uint8)
    skip = np.flatnonzero(d == 0)  # NaN != 0, so NaN d is quantized, as in C
    if skip.size:
        levels[skip] = fallback(skip).T
    return levels


def pack_scale_min_k4(ls: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The 12-byte 6-bit scales/mins of Q4_K/Q5_K from ls, lm (B, 8) in 0..63: uint8 (B, 12)."""
    ls = ls.astype(np.uint8)
    lm = lm.astype(np.uint8)
    out = np.empty((ls.shape[0], K_SCALE_SIZE), dtype=np.uint8)
    out[:, 0:4] = ls[:, :4] | ((ls[:, 4:] >> 4) << 6)
    out[:, 4:8] = lm[:, :4] | ((lm[:, 4:] >> 4) << 6)
    out[:, 8:12] = (ls[:, 4:] & 0xF) | ((lm[:, 4:] & 0xF) << 4)
    return out


def get_scale_min_k4(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of pack_scale_min_k4, as ggml's get_scale_min_k4 for j = 0..7: (sc, m) each (B, 8)."""
    q = q.astype(np.uint8)
    sc = np.empty((q.shape[0], 8), dtype=np.uint8)
    m = np.empty_like(sc)
    sc[:, :4] = q[:, 0:4] & 63
    m[:, :4] = q[:, 4:8] & 63
    sc[:, 4:] = (q[:, 8:12] & 0xF) | ((q[:, 0:4] >> 6) << 4)
    m[:, 4:] = (q[:, 8:12] >> 4) | ((q[:, 4:8] >> 6) << 4)
    return sc, m


@dataclass
class ScaleMinK4:
    """Q4_K/Q5_K super-block header and levels for B blocks."""

    d: np.ndarray  # uint16 fp16 bits (B,)
    dmin: np.ndarray  # uint16 (B,)
    scales: np.ndarray  # uint8 (B, 12)
    levels: np.ndarray  # uint8 (B, 256)


def quantize_scale_min_k4(xb: np.ndarray, nmax: int, rmin: float, nstep: int) -> ScaleMinK4:
    """The common body of quantize_row_q4_K_ref / quantize_row_q5_K_ref for blocks xb (B, 256)."""
    nb = xb.shape[0]
    exact = bool(np.isnan(xb).any())
    xs, x = sub_blocks(xb, 32)  # (m, 32), (32, m)
    with np.errstate(all="ignore"):
        sum_x2 = seq_sum0(x * x)
        av_x = np.sqrt(sum_x2 / F32(32.0))
        w = np.abs(x)
        w += av_x
    res = make_qkx2_quants(x, w, nmax, rmin, F32(0.1), nstep, False, exact)
    scales = res.scale.reshape(nb, 8)
    mins = res.the_min.reshape(nb, 8)
    max_scale = running_max0(scales)
    max_min = running_max0(mins)
    with np.errstate(all="ignore"):
        inv_scale = np.where(max_scale > 0, F32(63.0) / max_scale, F32(0.0))
        inv_min = np.where(max_min > 0, F32(63.0) / max_min, F32(0.0))
        # `uint8_t ls = nearest_int(...)` truncates, then MIN(63, ls)
        ls = np.minimum(nearest_int(inv_scale[:, None] * scales) & 0xFF, 63)
        lm = np.minimum(nearest_int(inv_min[:, None] * mins) & 0xFF, 63)
        d_bits = fp32_to_fp16_bits(max_scale / F32(63.0))
        dmin_bits = fp32_to_fp16_bits(max_min / F32(63.0))
        # get_scale_min_k4 of the packed bytes gives back ls, lm exactly (both are <= 63)
        d = (fp16_bits_to_fp32(d_bits)[:, None] * ls.astype(F32)).reshape(-1)
        dm = (fp16_bits_to_fp32(dmin_bits)[:, None] * lm.astype(F32)).reshape(-1)
    levels = final_levels(xs, d, dm, nmax, lambda cols: qkx2_levels(x, res, nmax, cols))
    return ScaleMinK4(d_bits, dmin_bits, pack_scale_min_k4(ls, lm), levels.reshape(nb, QK_K))
