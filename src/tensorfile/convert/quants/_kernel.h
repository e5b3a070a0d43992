/* The table every compiled variant of the quantizers exports (see _kernel.c, _kernel_impl.h). */
#ifndef TENSORFILE_KERNEL_H
#define TENSORFILE_KERNEL_H

#include <stdint.h>

typedef struct {
    const char *name;
    int block;     /* values per block */
    int type_size; /* bytes per block */
    int lanes;     /* blocks per call of fn */
    void (*fn)(const float *, uint8_t *);
} tf_qtype;

#define TF_N_TYPES 10

/* baseline: 4-lane vectors (SSE2 on x86-64, NEON on arm64, or plain C) */
extern const tf_qtype tf_types_base[TF_N_TYPES];
/* x86-64 with AVX2: 8-lane vectors; NULL names where not built */
extern const tf_qtype tf_types_avx2[TF_N_TYPES];

#endif
