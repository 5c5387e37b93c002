"""Only the native kernel lives here; everything else is in pyproject.toml.

The kernel is plain C loaded with ctypes (no Python or numpy headers). ``optional=True``:
without a C compiler, installation goes on and the numpy implementation of the portable
arithmetic does the work (the Makefile refuses that outcome where a compiler exists).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "nnsweep.train._kernel",
            sources=["nnsweep/train/_kernel.c"],
            depends=["nnsweep/train/_kernel_path.h"],
            # The portable arithmetic is IEEE-754 basic operations, one rounding each: no
            # contraction into fused multiply-adds, no fast-math. C99, so that the scalar
            # path builds with any compiler; the AVX2/AVX-512F paths are enabled function by
            # function (target attributes) and chosen at run time. -O3 matters for speed
            # only (3x here): the register tiles and exp's interleaved vectors are small
            # fixed-count loops that GCC unrolls completely at -O3, not at -O2.
            extra_compile_args=["-O3", "-std=c99", "-ffp-contract=off", "-fno-fast-math"],
            libraries=["m"],
            optional=True,
        )
    ]
)
