/* The quantizers with 8-lane vectors for x86-64 CPUs with AVX2, chosen at run time (see _kernel.c).
 * AVX2 only, not FMA: -ffp-contract=off and no "fma" target, so every operation rounds as the
 * baseline's and as ggml's scalar code. Elsewhere this unit exports an empty table. */
#include "_kernel.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC target("avx2")
#endif
#define W 8
#define TF_TABLE tf_types_avx2
#include "_kernel_impl.h"
#ifdef __clang__
#pragma clang attribute pop
#endif
#else
const tf_qtype tf_types_avx2[TF_N_TYPES];
#endif
