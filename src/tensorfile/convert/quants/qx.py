"""ggml's symmetric quantizers' own pieces (Q4_0 … Q8_0, Q3_K, Q6_K), bit-exact with ggml-quants.c:
C's float → int8 conversion and roundf, the first-largest-magnitude search, make_qx_quants and
make_q3_quants. The shared helpers and the (n, m) layout convention are in common.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import F32, nearest_int, rint_or_nearest_int, seq_sum0

GROUP_MAX_EPS = F32(1e-15)
_TWO31 = 2.0**31


def c_float_to_int8(v: np.ndarray) -> np.ndarray:
    """`(int8_t)f` / `(uint8_t)f` as gcc emits it on x86-64 (cvttss2si, then the low byte), as a
    signed int32 in -128..127 (mask with 0xFF for the uint8_t view).

    Out-of-range and NaN give INT_MIN, whose low byte is 0; every float >= 2**31 is a multiple
    of 256, so its low byte is 0 too — hence zeroing non-finite values, clipping to ±2**31 and
    truncating is exact.
    """
    v = np.asarray(v, dtype=F32)
    if not np.abs(v).max(initial=0.0) < _TWO31:  # NaN fails this too
        with np.errstate(invalid="ignore"):
            v = np.clip(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0), -_TWO31, _TWO31)
        return (np.trunc(v).astype(np.int64) & 0xFF).astype(np.uint8).view(np.int8).astype(np.int32)
    return v.astype(np.int32).astype(np.int8).astype(np.int32)  # astype truncates toward zero


def c_roundf(v: np.ndarray) -> np.ndarray:
    """C roundf (half away from zero) in float32: np.rint (half to even), then the exact ties it
    took toward zero pushed away. rint(v) - v is exact (|v| < 2**23: a multiple of v's ulp at
    most 0.5; beyond, v is an integer), and NaN/inf never look like ties."""
    v = np.asarray(v, dtype=F32)
    r = np.rint(v)
    d = r - v
    np.abs(d, out=d)
    ties = np.flatnonzero(d == F32(0.5))  # a few per 100k values: fix them by index
    if ties.size:
        rt, vt = r.flat[ties], v.flat[ties]
        r.flat[ties] = np.where(np.abs(rt) < np.abs(vt), rt + np.sign(vt), rt)
    return r


def _first_absmax_argmax(x: np.ndarray, axis: int) -> np.ndarray:
    a = np.abs(x)
    a = np.where(np.isnan(a), F32(0.0), a)  # NaN compares false: as if it were 0
    idx = np.expand_dims(a.argmax(axis=axis), axis)  # argmax keeps the first of equal maxima
    mx = np.take_along_axis(x, idx, axis=axis).squeeze(axis)
    return np.where(np.take_along_axis(a, idx, axis=axis).squeeze(axis) > 0, mx, F32(0.0))


def first_absmax(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """`amax = max = 0; for i: if (fabsf(x[i]) > amax) {amax = fabsf(x[i]); max = x[i];}` along
    `axis` (0 or 1) of a 2-D array: the first value of largest magnitude (NaN never wins; all
    zero → +0).

    When the largest and the most negative value differ in magnitude, the winner is whichever
    is larger; only ties (±v, zeros) need the first occurrence, found by argmax on those few
    columns. With NaN in the data the argmax path does it all (np.fmax would not do: it returns
    NaN for a *signaling* NaN, as IEEE maxNum says).
    """
    if np.isnan(x).any():
        return _first_absmax_argmax(x, axis)
    hi = x.max(axis=axis)
    lo = x.min(axis=axis)
    nlo = -lo
    mx = np.where(hi > nlo, hi, lo)
    tie = hi == nlo
    if tie.any():
        cols = np.flatnonzero(tie)
        mx[cols] = _first_absmax_argmax(np.take(x, cols, axis=1 - axis), axis)
    return mx


def first_absmax0(x: np.ndarray) -> np.ndarray:
    """first_absmax over axis 0 (the transposed (n, m) layout)."""
    return first_absmax(x, 0)


def first_absmax_last(x: np.ndarray) -> np.ndarray:
    """first_absmax over the last axis of (B, n)."""
    return first_absmax(x, 1)


@dataclass
class QxResult:
    """make_qx_quants' outputs for m sub-blocks; L is kept implicitly as
    nmax + clamp(nearest_int(l_iscale * x), -nmax, nmax-1) (0 where `zero`)."""

    scale: np.ndarray  # return value (m,)
    l_iscale: np.ndarray  # iscale of the levels that won (m,)
    zero: np.ndarray  # amax < GROUP_MAX_EPS: C returned early with L = 0 and scale 0


def make_qx_quants_rmse1(x: np.ndarray, nmax: int, finite: bool) -> QxResult:
    """make_qx_quants(n, nmax, x, L, rmse_type=1, qw=NULL) over m sub-blocks; x is (n, m).

    `finite` (no inf/NaN in x) allows np.rint for nearest_int: |iscale*x| <= nmax + 1 then.
    """
    fnmax = F32(nmax)
    lo, hi = F32(-nmax), F32(nmax - 1)
    with np.errstate(all="ignore"):
        mx = first_absmax0(x)
        zero = ~(np.abs(mx) >= GROUP_MAX_EPS)  # amax < eps; amax is |max|, never NaN
        mx = np.where(zero, F32(1.0), mx)  # zero sub-blocks: harmless numbers, result overridden
        w = x * x
        wx = w * x  # `w*x[i]*l` is (w*x[i])*l

        def sums(iscale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t = rint_or_nearest_int(x * iscale, finite)
            np.clip(t, lo, hi, out=t)
            suml2 = w * t
            suml2 *= t  # `w*l*l` is (w*l)*l
            t *= wx
            return seq_sum0(t), seq_sum0(suml2)

        iscale = F32(-nmax) / mx  # `-nmax / max`: int → float
        sumlx, suml2 = sums(iscale)
        scale = np.where(suml2 != 0, sumlx / suml2, F32(0.0))
        best = scale * sumlx
        l_iscale = iscale
        for step in range(-9, 10):
            if step == 0:
                continue
            num = -(fnmax + F32(0.1) * F32(step))  # `-(nmax + 0.1f*is)`
            iscale = num / mx
            sumlx, suml2 = sums(iscale)
            better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
            if better.any():
                scale = np.where(better, sumlx / suml2, scale)
                best = np.where(better, scale * sumlx, best)
                l_iscale = np.where(better, iscale, l_iscale)
        scale = np.where(zero, F32(0.0), scale)
    return QxResult(scale, l_iscale, zero)


def qx_levels(x: np.ndarray, res: QxResult, nmax: int, cols: np.ndarray) -> np.ndarray:
    """The levels L (0..2*nmax-1) make_qx_quants left for sub-blocks `cols`: int16 (n, len(cols))."""
    with np.errstate(all="ignore"):
        q = nearest_int(x[:, cols] * res.l_iscale[cols])
    q = np.clip(q, -nmax, nmax - 1) + nmax
    q[:, res.zero[cols]] = 0
    return q.astype(np.int16)


def _q3_pass(
    x: np.ndarray,
    w: np.ndarray,
    wx: np.ndarray,
    lv: np.ndarray,
    sumlx: np.ndarray,
    suml2: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """One `for (int i = 0; i < n; ++i)` pass of make_q3_quants' refinement over the columns given;
    updates lv, sumlx, suml2 in place and returns which columns changed (C's n_changed > 0)."""
    changed = np.zeros(x.shape[1], dtype=bool)
    for i in range(x.shape[0]):
        li = lv[i]
        slx = sumlx - wx[i] * li
        sl2 = suml2 - (w[i] * li) * li
        # x*sl2/slx can be anything (slx may be tiny): the bit-exact nearest_int
        new_l = np.clip(nearest_int((x[i] * sl2) / slx), lo, hi).astype(F32)
        slx_new = wx[i] * new_l
        slx_new += slx
        sl2_new = w[i] * new_l
        sl2_new *= new_l
        sl2_new += sl2
        take = slx > 0
        take &= new_l != li
        take &= sl2_new > 0
        take &= (slx_new * slx_new) * suml2 > (sumlx * sumlx) * sl2_new
        np.copyto(li, new_l, where=take)
        np.copyto(sumlx, slx_new, where=take)
        np.copyto(suml2, sl2_new, where=take)
        changed |= take
    return changed


def make_q3_quants_rmse(x: np.ndarray, nmax: int, finite: bool) -> tuple[np.ndarray, np.ndarray]:
    """make_q3_quants(n, nmax, x, L, do_rmse=true) over m sub-blocks; x is (n, m).

    Returns (scale (m,), L int16 (n, m) in 0..2*nmax-1). The C refinement makes up to 5 passes and
    stops a sub-block after a pass that changed nothing; here each pass only visits the sub-blocks
    the previous pass changed (about a fifth after the first pass), gathered into dense arrays.
    """
    lo, hi = -nmax, nmax - 1
    with np.errstate(all="ignore"):
        mx = first_absmax0(x)
        zero = ~(np.abs(mx) >= GROUP_MAX_EPS)
        mx = np.where(zero, F32(1.0), mx)
        iscale = F32(-nmax) / mx
        lv = rint_or_nearest_int(x * iscale, finite)  # |iscale*x| <= nmax + rounding when finite
        np.clip(lv, F32(lo), F32(hi), out=lv)
        w = x * x
        wx = w * x
        sumlx = seq_sum0(wx * lv)
        wl = w * lv
        wl *= lv
        suml2 = seq_sum0(wl)
        active = np.flatnonzero(_q3_pass(x, w, wx, lv, sumlx, suml2, lo, hi))
        for _ in range(4):
            if not active.size:
                break
            xa, wa, wxa, la = x[:, active], w[:, active], wx[:, active], lv[:, active]
            sx, s2 = sumlx[active], suml2[active]
            changed = _q3_pass(xa, wa, wxa, la, sx, s2, lo, hi)
            lv[:, active] = la
            sumlx[active] = sx
            suml2[active] = s2
            active = active[changed]
        scale = np.where(suml2 > 0, sumlx / suml2, F32(0.0))
        scale = np.where(zero, F32(0.0), scale)
    levels = lv.astype(np.int16) + nmax
    levels[:, zero] = 0
    return scale, levels
