/*
 * ggml's reference quantizers (quantize_row_*_ref of ggml-quants.c) vectorised across blocks: the
 * body of the compiled kernel, included by _kernel_base.c (W = 4 lanes) and _kernel_avx2.c (W = 8),
 * each exporting the table TF_TABLE. See _kernel.c for why the bytes equal ggml's.
 *
 * A vector holds one value of W different (sub-)blocks; each lane runs that (sub-)block's scalar
 * sequence of float32 operations in the reference's order, and the reference's branches become
 * per-lane selects. K-quant super-blocks are cut into 8 (Q4_K, Q5_K) or 16 (Q2_K, Q3_K, Q6_K)
 * sub-blocks, processed W at a time; the legacy types take W blocks of 32 at a time.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_kernel.h"

#if W != 4 && W != 8
#error "W must be 4 or 8"
#endif

typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));

#define QK 32
#define QK_K 256
#define GROUP_MAX_EPS 1e-15f

/* ------------------------------------------------------------------------------------------ */
/* scalar helpers, as ggml's                                                                   */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline int nearest_int(float fval) {
    float val = fval + 12582912.f;
    int32_t i;
    memcpy(&i, &val, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* GGML_FP32_TO_FP16: round to nearest even, NaN -> 0x7E00 with its sign */
static inline uint16_t fp32_to_fp16(float f) {
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = f2u(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & UINT32_C(0x80000000);
    uint32_t bias = shl1_w & UINT32_C(0xFF000000);
    if (bias < UINT32_C(0x71000000)) {
        bias = UINT32_C(0x71000000);
    }
    base = u2f((bias >> 1) + UINT32_C(0x07800000)) + base;
    const uint32_t bits = f2u(base);
    const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
    const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign));
}

/* GGML_FP16_TO_FP32 */
static inline float fp16_to_fp32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = UINT32_C(0xE0) << 23;
    const float exp_scale = 0x1.0p-112f;
    const float normalized_value = u2f((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = UINT32_C(126) << 23;
    const float magic_bias = 0.5f;
    const float denormalized_value = u2f((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denormalized_cutoff = UINT32_C(1) << 27;
    const uint32_t result =
        sign | (two_w < denormalized_cutoff ? f2u(denormalized_value) : f2u(normalized_value));
    return u2f(result);
}

static inline void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

/* ------------------------------------------------------------------------------------------ */
/* vector helpers: one lane per (sub-)block                                                    */

static inline vf splat(float f) {
    vf v;
    for (int k = 0; k < W; ++k) v[k] = f;
    return v;
}
static inline vi spliti(int32_t i) {
    vi v;
    for (int k = 0; k < W; ++k) v[k] = i;
    return v;
}

/* mask ? a : b, per lane (masks are 0 or -1, as vector comparisons give them) */
static inline vf sel(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
static inline vi seli(vi mask, vi a, vi b) { return (mask & a) | (~mask & b); }
static inline vf vabs(vf v) { return (vf)((vi)v & spliti(0x7fffffff)); }
static inline vf i2f(vi v) { return __builtin_convertvector(v, vf); }

static inline vi vnearest(vf v) {
    vf t = v + splat(12582912.f);
    return ((vi)t & spliti(0x007fffff)) - spliti(0x00400000);
}

/* MAX(lo, MIN(hi, l)) on ints */
static inline vi vclamp(vi l, int lo, int hi) {
    vi h = spliti(hi), o = spliti(lo);
    l = seli(h < l, h, l);
    return seli(o > l, o, l);
}

/* (int)(float) truncation as x86-64's cvttss2si: 0x80000000 (low byte 0) out of range / NaN; only
 * the low byte of the result is ever used */
static inline vi vtrunc(vf v) {
    vi ok = vabs(v) < splat(2147483648.0f);
    return __builtin_convertvector(sel(ok, v, splat(0.f)), vi) & ok;
}

/* (int)roundf(v): half away from zero, then the same conversion */
static inline vi vroundf_int(vf v) {
    vi ok = vabs(v) < splat(2147483648.0f);
    vf s = sel(ok, v, splat(0.f));
    vi t = __builtin_convertvector(s, vi);
    vf frac = s - i2f(t); /* exact: |s| < 2^31, and an integer past 2^23 */
    t -= (vi)(frac >= splat(0.5f));
    t += (vi)(frac <= splat(-0.5f));
    return t & ok;
}

/* (int8_t) of an int: its low byte, sign-extended */
static inline vi vint8(vi v) { return (v << 24) >> 24; }

/* lanes of (sub-)blocks: xt[i][k] = p[k * stride + i] */
static inline void gather(vf *xt, const float *p, int n, int stride) {
    for (int k = 0; k < W; ++k) {
        const float *q = p + (size_t)k * stride;
        for (int i = 0; i < n; ++i) xt[i][k] = q[i];
    }
}

/* ------------------------------------------------------------------------------------------ */
/* make_qkx2_quants over W sub-blocks of n values (Q2_K, Q4_K, Q5_K)                           */

static inline void make_qkx2_v(int n, int nmax, const vf *x, const vf *w, vi *L, vf *out_scale,
                               vf *out_the_min, float rmin, float rdelta, int nstep, int use_mad) {
    vf mn = x[0], mx = x[0];
    vf sum_w = w[0];
    vf sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        mn = sel(x[i] < mn, x[i], mn);
        mx = sel(x[i] > mx, x[i], mx);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    const vf zero = splat(0.f);
    mn = sel(mn > zero, zero, mn);
    const vi degenerate = mx == mn;
    const float fnmax = (float)nmax;
    vf iscale = splat(fnmax) / (mx - mn);
    vf scale = splat(1.f) / iscale;
    vf best_error = zero;
    for (int i = 0; i < n; ++i) {
        vi l = vclamp(vnearest(iscale * (x[i] - mn)), 0, nmax);
        L[i] = l;
        vf diff = scale * i2f(l) + mn - x[i];
        diff = use_mad ? vabs(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    vi Laux[32];
    for (int is = 0; is <= nstep; ++is) {
        float num = rmin + rdelta * (float)is;
        num = num + fnmax;
        iscale = splat(num) / (mx - mn);
        vf sum_l = zero, sum_l2 = zero, sum_xl = zero;
        for (int i = 0; i < n; ++i) {
            vi l = vclamp(vnearest(iscale * (x[i] - mn)), 0, nmax);
            Laux[i] = l;
            vf fl = i2f(l);
            vf wl = w[i] * fl;
            sum_l += wl;
            sum_l2 += wl * fl;
            sum_xl += wl * x[i];
        }
        vf D = sum_w * sum_l2 - sum_l * sum_l;
        vf this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        vf this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        vi pos = this_min > zero;
        this_min = sel(pos, zero, this_min);
        this_scale = sel(pos, sum_xl / sum_l2, this_scale);
        vf cur_error = zero;
        for (int i = 0; i < n; ++i) {
            vf diff = this_scale * i2f(Laux[i]) + this_min - x[i];
            diff = use_mad ? vabs(diff) : diff * diff;
            cur_error += w[i] * diff;
        }
        vi better = (D > zero) & (cur_error < best_error) & ~degenerate;
        for (int i = 0; i < n; ++i) L[i] = seli(better, Laux[i], L[i]);
        best_error = sel(better, cur_error, best_error);
        scale = sel(better, this_scale, scale);
        mn = sel(better, this_min, mn);
    }
    for (int i = 0; i < n; ++i) L[i] = seli(degenerate, spliti(0), L[i]);
    *out_scale = sel(degenerate, zero, scale);
    *out_the_min = -mn;
}

/* first value of largest magnitude: `if (fabsf(x) > amax) {amax = fabsf(x); max = x;}` */
static inline void first_absmax_v(int n, const vf *x, vf *amax_out, vf *max_out) {
    vf amax = splat(0.f), mx = splat(0.f);
    for (int i = 0; i < n; ++i) {
        vf ax = vabs(x[i]);
        vi m = ax > amax;
        amax = sel(m, ax, amax);
        mx = sel(m, x[i], mx);
    }
    *amax_out = amax;
    *max_out = mx;
}

/* make_qx_quants(n, nmax, x, L, rmse_type=1, NULL) (Q6_K); L as the reference leaves it */
static inline vf make_qx_v(int n, int nmax, const vf *x, vi *L) {
    vf amax, mx;
    first_absmax_v(n, x, &amax, &mx);
    const vf zero = splat(0.f);
    const vi allzero = amax < splat(GROUP_MAX_EPS);
    vf iscale = splat((float)-nmax) / mx;
    vf sumlx = zero, suml2 = zero;
    for (int i = 0; i < n; ++i) {
        vi l = vclamp(vnearest(iscale * x[i]), -nmax, nmax - 1);
        L[i] = l + spliti(nmax);
        vf w = x[i] * x[i];
        vf fl = i2f(l);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    vf scale = sel(suml2 != zero, sumlx / suml2, zero);
    vf best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        float num = 0.1f * (float)is;
        num = (float)nmax + num;
        iscale = splat(-num) / mx;
        sumlx = zero;
        suml2 = zero;
        vi Laux[16];
        for (int i = 0; i < n; ++i) {
            vi l = vclamp(vnearest(iscale * x[i]), -nmax, nmax - 1);
            Laux[i] = l;
            vf w = x[i] * x[i];
            vf fl = i2f(l);
            sumlx += w * x[i] * fl;
            suml2 += w * fl * fl;
        }
        vi better = (suml2 > zero) & (sumlx * sumlx > best * suml2);
        for (int i = 0; i < n; ++i) L[i] = seli(better, Laux[i] + spliti(nmax), L[i]);
        vf s = sumlx / suml2;
        scale = sel(better, s, scale);
        best = sel(better, s * sumlx, best);
    }
    for (int i = 0; i < n; ++i) L[i] = seli(allzero, spliti(0), L[i]);
    return sel(allzero, zero, scale);
}

/* make_q3_quants(n, nmax, x, L, do_rmse=true) (Q3_K); L as the reference leaves it */
static inline vf make_q3_v(int n, int nmax, const vf *x, vi *L) {
    vf amax, mx;
    first_absmax_v(n, x, &amax, &mx);
    const vf zero = splat(0.f);
    const vi allzero = amax < splat(GROUP_MAX_EPS);
    vf iscale = splat((float)-nmax) / mx;
    vf sumlx = zero, suml2 = zero;
    vf w[16], wx[16];
    for (int i = 0; i < n; ++i) {
        vi l = vclamp(vnearest(iscale * x[i]), -nmax, nmax - 1);
        L[i] = l;
        w[i] = x[i] * x[i];
        wx[i] = w[i] * x[i];
        vf fl = i2f(l);
        sumlx += wx[i] * fl;
        suml2 += w[i] * fl * fl;
    }
    for (int itry = 0; itry < 5; ++itry) {
        vi changed = spliti(0);
        for (int i = 0; i < n; ++i) {
            vf li = i2f(L[i]);
            vf slx = sumlx - wx[i] * li;
            vf sl2 = suml2 - w[i] * li * li;
            vi new_l = vclamp(vnearest(x[i] * sl2 / slx), -nmax, nmax - 1);
            vf nl = i2f(new_l);
            vf slx2 = slx + wx[i] * nl;
            vf sl22 = sl2 + w[i] * nl * nl;
            vi take = (slx > zero) & (new_l != L[i]) & (sl22 > zero) &
                      (slx2 * slx2 * suml2 > sumlx * sumlx * sl22);
            L[i] = seli(take, new_l, L[i]);
            sumlx = sel(take, slx2, sumlx);
            suml2 = sel(take, sl22, suml2);
            changed |= take;
        }
        int any = 0;
        for (int k = 0; k < W; ++k) any |= changed[k];
        if (!any) break;
    }
    for (int i = 0; i < n; ++i) L[i] = seli(allzero, spliti(0), L[i] + spliti(nmax));
    return sel(allzero, zero, sel(suml2 > zero, sumlx / suml2, zero));
}

/* ------------------------------------------------------------------------------------------ */
/* K-quants, one super-block of 256 values                                                     */

/* sub-block groups of W lanes in a super-block of 8 (Q4_K, Q5_K) or 16 (Q2_K, Q3_K, Q6_K) */
#define NG8 (8 / W)
#define NG16 (16 / W)

/* flat levels L[n * (W*g + k) + i] from the lanes Lt[g][i][k] */
static inline void scatter_levels(uint8_t *L, const vi *Lt, int groups, int n) {
    for (int g = 0; g < groups; ++g)
        for (int k = 0; k < W; ++k)
            for (int i = 0; i < n; ++i) L[n * (W * g + k) + i] = (uint8_t)Lt[g * n + i][k];
}

/* Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-blocks of 32 */
static void block_q45_k(const float *x, uint8_t *y, int q5) {
    const int nmax = q5 ? 31 : 15;
    vf xt[NG8][32];
    vi Lt[NG8][32];
    float scales[8], mins[8];
    for (int g = 0; g < NG8; ++g) {
        vf wt[32];
        gather(xt[g], x + 32 * W * g, 32, 32);
        vf sum_x2 = splat(0.f);
        for (int l = 0; l < 32; ++l) sum_x2 += xt[g][l] * xt[g][l];
        vf q = sum_x2 / splat(32.f);
        vf av_x;
        for (int k = 0; k < W; ++k) av_x[k] = sqrtf(q[k]);
        for (int l = 0; l < 32; ++l) wt[l] = av_x + vabs(xt[g][l]);
        vf s, m;
        if (q5)
            make_qkx2_v(32, 31, xt[g], wt, Lt[g], &s, &m, -0.5f, 0.1f, 15, 0);
        else
            make_qkx2_v(32, 15, xt[g], wt, Lt[g], &s, &m, -1.f, 0.1f, 20, 0);
        for (int k = 0; k < W; ++k) {
            scales[W * g + k] = s[k];
            mins[W * g + k] = m[k];
        }
    }
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t sc[12];
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    const uint16_t d16 = fp32_to_fp16(max_scale / 63.f);
    const uint16_t dmin16 = fp32_to_fp16(max_min / 63.f);
    const float d_all = fp16_to_fp32(d16), dmin_all = fp16_to_fp32(dmin16);
    float dj[8], dmj[8];
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m; /* get_scale_min_k4 */
        if (j < 4) {
            s = sc[j] & 63;
            m = sc[j + 4] & 63;
        } else {
            s = (uint8_t)((sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4));
            m = (uint8_t)((sc[j + 4] >> 4) | ((sc[j - 0] >> 6) << 4));
        }
        dj[j] = d_all * (float)s;
        dmj[j] = dmin_all * (float)m;
    }
    for (int g = 0; g < NG8; ++g) {
        vf dv, dmv;
        for (int k = 0; k < W; ++k) {
            dv[k] = dj[W * g + k];
            dmv[k] = dmj[W * g + k];
        }
        const vi use = dv != splat(0.f); /* `if (!d) continue;` */
        for (int i = 0; i < 32; ++i) {
            vi l = vclamp(vnearest((xt[g][i] + dmv) / dv), 0, nmax);
            Lt[g][i] = seli(use, l, Lt[g][i]);
        }
    }
    uint8_t L[QK_K];
    scatter_levels(L, &Lt[0][0], NG8, 32);
    put16(y, d16);
    put16(y + 2, dmin16);
    memcpy(y + 4, sc, 12);
    if (!q5) {
        uint8_t *qs = y + 16;
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; ++l) qs[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            qs += 32;
        }
        return;
    }
    uint8_t *qh = y + 16, *ql = y + 48;
    memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            int l2 = L[n + j + 32];
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 <<= 2;
        m2 <<= 2;
        ql += 32;
    }
}

static void block_q4_k(const float *x, uint8_t *y) { block_q45_k(x, y, 0); }
static void block_q5_k(const float *x, uint8_t *y) { block_q45_k(x, y, 1); }

/* qs of Q2_K / Q3_K: four 2-bit levels per byte */
static inline void pack2(uint8_t *qs, const uint8_t *L) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] =
                (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* Q2_K: 16 sub-blocks of 16 */
static void block_q2_k(const float *x, uint8_t *y) {
    vf xt[NG16][16];
    vi Lt[NG16][16];
    float scales[16], mins[16];
    for (int g = 0; g < NG16; ++g) {
        vf wt[16];
        gather(xt[g], x + 16 * W * g, 16, 16);
        for (int l = 0; l < 16; ++l) wt[l] = vabs(xt[g][l]);
        vf s, m;
        make_qkx2_v(16, 3, xt[g], wt, Lt[g], &s, &m, -0.5f, 0.1f, 15, 1);
        for (int k = 0; k < W; ++k) {
            scales[W * g + k] = s[k];
            mins[W * g + k] = m[k];
        }
    }
    const float q4scale = 15.f;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    uint8_t sc[16];
    uint16_t d16, dmin16;
    if (max_scale > 0) {
        float iscale = q4scale / max_scale;
        for (int j = 0; j < 16; ++j) sc[j] = (uint8_t)nearest_int(iscale * scales[j]);
        d16 = fp32_to_fp16(max_scale / q4scale);
    } else {
        memset(sc, 0, 16);
        d16 = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
        float iscale = q4scale / max_min;
        for (int j = 0; j < 16; ++j) {
            int l = nearest_int(iscale * mins[j]);
            sc[j] = (uint8_t)(sc[j] | (l << 4));
        }
        dmin16 = fp32_to_fp16(max_min / q4scale);
    } else {
        dmin16 = fp32_to_fp16(0.f);
    }
    const float d_all = fp16_to_fp32(d16), dmin_all = fp16_to_fp32(dmin16);
    for (int g = 0; g < NG16; ++g) {
        vf dv, dmv;
        for (int k = 0; k < W; ++k) {
            dv[k] = d_all * (float)(sc[W * g + k] & 0xF);
            dmv[k] = dmin_all * (float)(sc[W * g + k] >> 4);
        }
        const vi use = dv != splat(0.f);
        for (int i = 0; i < 16; ++i) {
            vi l = vclamp(vnearest((xt[g][i] + dmv) / dv), 0, 3);
            Lt[g][i] = seli(use, l, Lt[g][i]);
        }
    }
    uint8_t L[QK_K];
    scatter_levels(L, &Lt[0][0], NG16, 16);
    memcpy(y, sc, 16);
    pack2(y + 16, L);
    put16(y + 80, d16);
    put16(y + 82, dmin16);
}

/* The sub-block search of Q3_K (make_q3_quants) or Q6_K (make_qx_quants) over the 16 sub-blocks:
 * their scales, and the first of largest magnitude (`if (fabsf(s) > amax) {amax = ...; max = s;}`),
 * its magnitude in *amax_out */
static inline float search16(const float *x, vf xt[NG16][16], vi Lt[NG16][16], float *scales, int q6,
                             float *amax_out) {
    for (int g = 0; g < NG16; ++g) {
        gather(xt[g], x + 16 * W * g, 16, 16);
        vf s = q6 ? make_qx_v(16, 32, xt[g], Lt[g]) : make_q3_v(16, 4, xt[g], Lt[g]);
        for (int k = 0; k < W; ++k) scales[W * g + k] = s[k];
    }
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
        float scale = fabsf(scales[j]);
        if (scale > amax) {
            amax = scale;
            max_scale = scales[j];
        }
    }
    *amax_out = amax;
    return max_scale;
}

/* `if (!d) continue; l = nearest_int(x/d); L = MAX(lo, MIN(hi, l)) - lo;` per sub-block j, d = dj[j] */
static inline void final16(vf xt[NG16][16], vi Lt[NG16][16], const float *dj, int lo, int hi) {
    for (int g = 0; g < NG16; ++g) {
        vf dv;
        for (int k = 0; k < W; ++k) dv[k] = dj[W * g + k];
        const vi use = dv != splat(0.f);
        for (int i = 0; i < 16; ++i) {
            vi l = vclamp(vnearest(xt[g][i] / dv), lo, hi) - spliti(lo);
            Lt[g][i] = seli(use, l, Lt[g][i]);
        }
    }
}

/* Q3_K: 16 sub-blocks of 16 */
static void block_q3_k(const float *x, uint8_t *y) {
    vf xt[NG16][16];
    vi Lt[NG16][16];
    float scales[16], amax;
    const float max_scale = search16(x, xt, Lt, scales, 0, &amax);
    uint8_t sc[12];
    memset(sc, 0, 12);
    uint16_t d16;
    if (max_scale != 0.f) {
        float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; ++j) {
            int8_t l = (int8_t)nearest_int(iscale * scales[j]);
            int li = l;
            li = (li < -32 ? -32 : (li > 31 ? 31 : li)) + 32;
            l = (int8_t)li;
            if (j < 8) {
                sc[j] = (uint8_t)(l & 0xF);
            } else {
                sc[j - 8] |= (uint8_t)((l & 0xF) << 4);
            }
            l >>= 4;
            sc[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
        }
        d16 = fp32_to_fp16(1 / iscale);
    } else {
        d16 = fp32_to_fp16(0.f);
    }
    const float d_all = fp16_to_fp32(d16);
    float dj[16];
    for (int j = 0; j < 16; ++j) {
        int8_t s = (int8_t)(j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4);
        s = (int8_t)((s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
        dj[j] = d_all * (float)s;
    }
    final16(xt, Lt, dj, -4, 3);
    uint8_t L[QK_K];
    scatter_levels(L, &Lt[0][0], NG16, 16);
    uint8_t *hmask = y;
    memset(hmask, 0, 32);
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < QK_K; ++j) {
        if (L[j] > 3) {
            hmask[m] |= hm;
            L[j] -= 4;
        }
        if (++m == QK_K / 8) {
            m = 0;
            hm <<= 1;
        }
    }
    pack2(y + 32, L);
    memcpy(y + 96, sc, 12);
    put16(y + 108, d16);
}

/* Q6_K: 16 sub-blocks of 16 */
static void block_q6_k(const float *x, uint8_t *y) {
    vf xt[NG16][16];
    vi Lt[NG16][16];
    float scales[16], max_abs_scale;
    const float max_scale = search16(x, xt, Lt, scales, 1, &max_abs_scale);
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, 210);
        put16(y + 208, fp32_to_fp16(0.f));
        return;
    }
    float iscale = -128.f / max_scale;
    const uint16_t d16 = fp32_to_fp16(1 / iscale);
    int8_t sc[16];
    for (int ib = 0; ib < 16; ++ib) {
        int l = nearest_int(iscale * scales[ib]);
        sc[ib] = (int8_t)(127 < l ? 127 : l);
    }
    const float d_all = fp16_to_fp32(d16);
    float dj[16];
    for (int j = 0; j < 16; ++j) dj[j] = d_all * (float)sc[j];
    final16(xt, Lt, dj, -32, 31);
    uint8_t L[QK_K];
    scatter_levels(L, &Lt[0][0], NG16, 16);
    uint8_t *ql = y, *qh = y + 128;
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l + 0] & 0xF;
            const uint8_t q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF;
            const uint8_t q4 = L[j + l + 96] & 0xF;
            ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
    memcpy(y + 192, sc, 16);
    put16(y + 208, d16);
}

/* ------------------------------------------------------------------------------------------ */
/* legacy types, W blocks of 32 at a time (x: W consecutive blocks, y: W output blocks)        */

static inline vf inverse(vf d) {
    return sel(d != splat(0.f), splat(1.f) / d, splat(0.f)); /* `d ? 1.0f/d : 0.0f` */
}

static inline void put_d(uint8_t *y, int size, int off, vf v) {
    for (int k = 0; k < W; ++k) put16(y + (size_t)k * size + off, fp32_to_fp16(v[k]));
}

static inline void minmax_v(const vf *xt, vf *mn_out, vf *mx_out) {
    vf mn = splat(FLT_MAX), mx = splat(-FLT_MAX);
    for (int j = 0; j < QK; ++j) {
        mn = sel(xt[j] < mn, xt[j], mn);
        mx = sel(xt[j] > mx, xt[j], mx);
    }
    *mn_out = mn;
    *mx_out = mx;
}

/* qs of the 4-bit types from the levels of elements 0..15 (a) and 16..31 (b), clamped to 15 first */
static inline void pack4(uint8_t *y, int size, int off_qs, const vi *a, const vi *b) {
    for (int j = 0; j < QK / 2; ++j) {
        vi lo = seli(spliti(15) < a[j], spliti(15), a[j]) & spliti(0xFF);
        vi hi = seli(spliti(15) < b[j], spliti(15), b[j]) & spliti(0xFF);
        vi q = lo | (hi << 4);
        for (int k = 0; k < W; ++k) y[(size_t)k * size + off_qs + j] = (uint8_t)q[k];
    }
}

static void group_q4_0(const float *x, uint8_t *y) {
    vf xt[QK], amax, mx;
    vi a[16], b[16];
    gather(xt, x, QK, QK);
    first_absmax_v(QK, xt, &amax, &mx);
    vf d = mx / splat(-8.f);
    vf id = inverse(d);
    put_d(y, 18, 0, d);
    for (int j = 0; j < QK / 2; ++j) {
        a[j] = vint8(vtrunc(xt[j] * id + splat(8.5f)));
        b[j] = vint8(vtrunc(xt[j + 16] * id + splat(8.5f)));
    }
    pack4(y, 18, 2, a, b);
}

static void group_q4_1(const float *x, uint8_t *y) {
    vf xt[QK], mn, mx;
    vi a[16], b[16];
    gather(xt, x, QK, QK);
    minmax_v(xt, &mn, &mx);
    vf d = (mx - mn) / splat(15.f);
    vf id = inverse(d);
    put_d(y, 20, 0, d);
    put_d(y, 20, 2, mn);
    for (int j = 0; j < QK / 2; ++j) {
        a[j] = vint8(vtrunc((xt[j] - mn) * id + splat(0.5f)));
        b[j] = vint8(vtrunc((xt[j + 16] - mn) * id + splat(0.5f)));
    }
    pack4(y, 20, 4, a, b);
}

/* qs and qh of the 5-bit types from their uint8 levels a (values 0..15) and b (16..31) */
static inline void pack5(uint8_t *y, int size, int off_qh, int off_qs, const vi *a, const vi *b) {
    vi qh = spliti(0);
    for (int j = 0; j < QK / 2; ++j) {
        vi q = (a[j] & spliti(0x0F)) | ((b[j] & spliti(0x0F)) << 4);
        for (int k = 0; k < W; ++k) y[(size_t)k * size + off_qs + j] = (uint8_t)q[k];
        qh |= ((a[j] & spliti(0x10)) >> 4) << j;
        qh |= ((b[j] & spliti(0x10)) >> 4) << (j + 16);
    }
    for (int k = 0; k < W; ++k) {
        uint32_t h = (uint32_t)qh[k];
        uint8_t *p = y + (size_t)k * size + off_qh;
        p[0] = (uint8_t)h;
        p[1] = (uint8_t)(h >> 8);
        p[2] = (uint8_t)(h >> 16);
        p[3] = (uint8_t)(h >> 24);
    }
}

static void group_q5_0(const float *x, uint8_t *y) {
    vf xt[QK], amax, mx;
    vi a[16], b[16];
    gather(xt, x, QK, QK);
    first_absmax_v(QK, xt, &amax, &mx);
    vf d = mx / splat(-16.f);
    vf id = inverse(d);
    put_d(y, 22, 0, d);
    for (int j = 0; j < QK / 2; ++j) {
        vi p = vint8(vtrunc(xt[j] * id + splat(16.5f)));
        vi q = vint8(vtrunc(xt[j + 16] * id + splat(16.5f)));
        a[j] = seli(spliti(31) < p, spliti(31), p) & spliti(0xFF);
        b[j] = seli(spliti(31) < q, spliti(31), q) & spliti(0xFF);
    }
    pack5(y, 22, 2, 6, a, b);
}

static void group_q5_1(const float *x, uint8_t *y) {
    vf xt[QK], mn, mx;
    vi a[16], b[16];
    gather(xt, x, QK, QK);
    minmax_v(xt, &mn, &mx);
    vf d = (mx - mn) / splat(31.f);
    vf id = inverse(d);
    put_d(y, 24, 0, d);
    put_d(y, 24, 2, mn);
    for (int j = 0; j < QK / 2; ++j) {
        a[j] = vtrunc((xt[j] - mn) * id + splat(0.5f)) & spliti(0xFF);
        b[j] = vtrunc((xt[j + 16] - mn) * id + splat(0.5f)) & spliti(0xFF);
    }
    pack5(y, 24, 4, 8, a, b);
}

static void group_q8_0(const float *x, uint8_t *y) {
    vf xt[QK];
    gather(xt, x, QK, QK);
    vf amax = splat(0.f);
    for (int j = 0; j < QK; ++j) {
        vf a = vabs(xt[j]);
        amax = sel(amax > a, amax, a); /* MAX(amax, fabsf(v)) */
    }
    vf d = amax / splat(127.f);
    vf id = inverse(d);
    put_d(y, 34, 0, d);
    for (int j = 0; j < QK; ++j) {
        vi q = vroundf_int(xt[j] * id);
        for (int k = 0; k < W; ++k) y[(size_t)k * 34 + 2 + j] = (uint8_t)q[k];
    }
}

/* ------------------------------------------------------------------------------------------ */

const tf_qtype TF_TABLE[TF_N_TYPES] = {
    {"Q4_0", QK, 18, W, group_q4_0},    {"Q4_1", QK, 20, W, group_q4_1},
    {"Q5_0", QK, 22, W, group_q5_0},    {"Q5_1", QK, 24, W, group_q5_1},
    {"Q8_0", QK, 34, W, group_q8_0},    {"Q2_K", QK_K, 84, 1, block_q2_k},
    {"Q3_K", QK_K, 110, 1, block_q3_k}, {"Q4_K", QK_K, 144, 1, block_q4_k},
    {"Q5_K", QK_K, 176, 1, block_q5_k}, {"Q6_K", QK_K, 210, 1, block_q6_k},
};
