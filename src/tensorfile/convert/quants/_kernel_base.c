/* The quantizers with 4-lane vectors: every CPU (see _kernel_impl.h). */
#define W 4
#define TF_TABLE tf_types_base
#include "_kernel_impl.h"
