"""The optional compiled quantizers (src/tensorfile/convert/quants/_kernel.c); everything else is in
pyproject.toml. `optional=True`: when no C compiler or Python headers are there, the build of the
extension fails quietly and tensorfile uses its numpy quantizers (same bytes, slower)."""

import sys

from setuptools import Extension, setup

# strict float32: no fused multiply-adds, no fast-math (the bytes must equal ggml's reference)
SRC = "src/tensorfile/convert/quants"
FLAGS = (
    []
    if sys.platform == "win32"
    else ["-O3", "-ffp-contract=off", "-fno-fast-math", "-pthread", "-Wno-psabi"]
)

setup(
    ext_modules=[
        Extension(
            "tensorfile.convert.quants._kernel",
            [f"{SRC}/_kernel.c", f"{SRC}/_kernel_base.c", f"{SRC}/_kernel_avx2.c"],
            depends=[f"{SRC}/_kernel.h", f"{SRC}/_kernel_impl.h"],
            extra_compile_args=FLAGS,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
            optional=True,
        )
    ]
)
