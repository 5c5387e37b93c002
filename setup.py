"""Only the optional native kernel lives here; everything else is in pyproject.toml.

The kernel is plain C loaded with ctypes (no Python or numpy headers). ``optional=True``:
if it cannot be compiled, installation goes on and nnsweep trains with numpy.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "nnsweep.train._kernel",
            sources=["nnsweep/train/_kernel.c"],
            # No contraction: the kernel fuses exactly the multiply-adds that numpy's BLAS and
            # libm fuse, and no others.
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math"],
            libraries=["m"],
            optional=True,
        )
    ]
)
