/*
 * tensorfile's optional compiled quantizers: ggml's reference quantizers (quantize_row_*_ref in
 * ggml-quants.c) for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K, giving the same
 * bytes as ggml, and the same bytes as the numpy quantizers beside this file (the fallback).
 *
 * Same bytes: every float32 operation is the one the C reference performs, in its order. The code
 * is vectorised ACROSS blocks or sub-blocks, never within one: each of the W lanes of a vector runs
 * one (sub-)block's scalar sequence, so sequential sums stay sequential and only the number of
 * independent chains grows (ggml's scalar code is bound by the latency of its running sums).
 * Branches of the reference become per-lane selects; a pass of make_q3_quants that changes nothing
 * leaves its state as it was, so running further passes on such a lane changes nothing either.
 * Built with -O3 -ffp-contract=off and no fast-math: no fused multiply-adds, no reassociation.
 *
 * x86-64 specifics reproduced portably: ggml's nearest_int (the 1.5 * 2^23 bit trick, which also
 * defines its result past 2^22 and for inf/NaN), and C's float -> int8/uint8 conversion as gcc
 * emits it on x86-64 (cvttss2si, then the low byte: 0 for NaN and |v| >= 2^31).
 *
 * The math is in _kernel_impl.h, compiled twice: _kernel_base.c (4 lanes: SSE2 on x86-64, NEON on
 * arm64) and _kernel_avx2.c (8 lanes, used when the CPU has AVX2). Both give the same bytes: IEEE
 * float32 operations round the same way at any vector width.
 *
 * Python: quantize(type_name, src, dst, threads, isa="auto") quantizes the float32 buffer src (a
 * whole number of blocks, rows concatenated as ggml lays them out) into the writable buffer dst,
 * with the GIL released, splitting the blocks over `threads` threads; isas() lists the variants
 * this CPU can run, best first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "_kernel.h"

#ifndef _WIN32
#include <pthread.h>
#define TF_THREADS 1
#endif

#define MAX_LANES 8
#define MAX_BLOCK_VALUES 256

static int have_avx2(void) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    if (tf_types_avx2[0].name == NULL) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* dispatch                                                                                    */

typedef struct {
    const tf_qtype *t;
    const float *src;
    uint8_t *dst;
    int64_t first, last; /* block range */
} job;

static void run_job(const job *jb) {
    const tf_qtype *t = jb->t;
    int64_t b = jb->first;
    for (; b + t->lanes <= jb->last; b += t->lanes)
        t->fn(jb->src + b * t->block, jb->dst + b * t->type_size);
    if (b < jb->last) { /* fewer than `lanes` blocks left: pad with zeros, keep the real ones */
        float xin[MAX_LANES * 32];
        uint8_t yout[MAX_LANES * 34];
        const int64_t n = jb->last - b;
        memset(xin, 0, sizeof(xin));
        memcpy(xin, jb->src + b * t->block, (size_t)(n * t->block) * sizeof(float));
        t->fn(xin, yout);
        memcpy(jb->dst + b * t->type_size, yout, (size_t)(n * t->type_size));
    }
}

#ifdef TF_THREADS
static void *thread_main(void *arg) {
    run_job((const job *)arg);
    return NULL;
}
#endif

#define MAX_THREADS 64

/* split n_blocks over up to `threads` threads in whole groups of `lanes` blocks; 0 or an errno */
static int run_all(const tf_qtype *t, const float *src, uint8_t *dst, int64_t n_blocks, int threads) {
    int64_t groups = (n_blocks + t->lanes - 1) / t->lanes;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > groups) threads = (int)groups;
    if (threads < 1) threads = 1;
    job jobs[MAX_THREADS];
    for (int i = 0; i < threads; ++i) {
        int64_t g0 = groups * i / threads, g1 = groups * (i + 1) / threads;
        jobs[i].t = t;
        jobs[i].src = src;
        jobs[i].dst = dst;
        jobs[i].first = g0 * t->lanes;
        jobs[i].last = g1 * t->lanes < n_blocks ? g1 * t->lanes : n_blocks;
    }
#ifdef TF_THREADS
    pthread_t tids[MAX_THREADS];
    int started = 1;
    int err = 0;
    for (; started < threads; ++started) {
        err = pthread_create(&tids[started], NULL, thread_main, &jobs[started]);
        if (err) break;
    }
    run_job(&jobs[0]);
    for (int i = started; i < threads; ++i) run_job(&jobs[i]); /* threads that could not start */
    for (int i = 1; i < started; ++i) pthread_join(tids[i], NULL);
#else
    for (int i = 0; i < threads; ++i) run_job(&jobs[i]);
#endif
    return 0;
}

static PyObject *py_quantize(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    const char *isa = "auto";
    Py_buffer src, dst;
    int threads;
    if (!PyArg_ParseTuple(args, "sy*w*i|s", &name, &src, &dst, &threads, &isa)) return NULL;
    PyObject *result = NULL;
    const tf_qtype *table;
    if (strcmp(isa, "base") == 0) {
        table = tf_types_base;
    } else if (strcmp(isa, "avx2") == 0 || strcmp(isa, "auto") == 0) {
        int avx2 = have_avx2();
        if (!avx2 && strcmp(isa, "avx2") == 0) {
            PyErr_SetString(PyExc_ValueError, "this CPU (or build) has no AVX2 variant");
            goto done;
        }
        table = avx2 ? tf_types_avx2 : tf_types_base;
    } else {
        PyErr_Format(PyExc_ValueError, "unknown isa %s (auto, avx2 or base)", isa);
        goto done;
    }
    const tf_qtype *t = NULL;
    for (size_t i = 0; i < TF_N_TYPES; ++i)
        if (strcmp(table[i].name, name) == 0) t = &table[i];
    if (t == NULL) {
        PyErr_Format(PyExc_ValueError, "no compiled quantizer for type %s", name);
        goto done;
    }
    if (src.len % ((Py_ssize_t)sizeof(float) * t->block)) {
        PyErr_Format(PyExc_ValueError, "%s: the input is not a whole number of %d-value blocks", name,
                     t->block);
        goto done;
    }
    const int64_t n_blocks = src.len / ((Py_ssize_t)sizeof(float) * t->block);
    if (dst.len != n_blocks * t->type_size) {
        PyErr_Format(PyExc_ValueError, "%s: the output buffer holds %zd bytes, %lld needed", name, dst.len,
                     (long long)(n_blocks * t->type_size));
        goto done;
    }
    if (((uintptr_t)src.buf) % sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "the float32 input is not aligned");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    run_all(t, (const float *)src.buf, (uint8_t *)dst.buf, n_blocks, threads);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyObject *py_types(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    for (size_t i = 0; i < TF_N_TYPES; ++i) {
        const tf_qtype *t = &tf_types_base[i];
        PyObject *v = Py_BuildValue("(ii)", t->block, t->type_size);
        if (v == NULL || PyDict_SetItemString(d, t->name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *py_isas(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return have_avx2() ? Py_BuildValue("(ss)", "avx2", "base") : Py_BuildValue("(s)", "base");
}

static PyMethodDef METHODS[] = {
    {"quantize", py_quantize, METH_VARARGS,
     "quantize(type_name, src, dst, threads, isa='auto'): float32 buffer src -> ggml blocks in dst"},
    {"isas", py_isas, METH_NOARGS, "isas() -> the variants this CPU runs, best first"},
    {"types", py_types, METH_NOARGS, "types() -> {type name: (values per block, bytes per block)}"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_kernel", "ggml's reference quantizers, compiled (see _kernel.c)", -1, METHODS,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&MODULE); }
