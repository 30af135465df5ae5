"""Build the Cython extensions of cymlp.

OpenMP is asked for with the GCC/Clang flag (MSVC spells it /openmp). No -march=native:
wheels must run on any x86-64 / arm64 machine. CYMLP_DEBUG=1 builds with bounds checks.
"""

import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CYMLP_DEBUG", "0") == "1"

if sys.platform == "win32":
    compile_args, link_args = ["/openmp", "/O2"], []
else:
    compile_args, link_args = ["-O3", "-fopenmp", "-fno-math-errno"], ["-fopenmp"]
    if DEBUG:
        compile_args += ["-O1", "-g", "-UNDEBUG"]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
}

# The optimizer's sum of squares is a reduction: let GCC/Clang vectorize it. The order
# of additions is then fixed by the compiled code, still independent of the thread count.
fast_reductions = (
    []
    if sys.platform == "win32"
    else ["-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math"]
)
modules = {"_blas": [], "_kernels": [], "_optim": fast_reductions, "_engine": []}
extensions = [
    Extension(
        f"cymlp.{name}",
        [f"src/cymlp/{name}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
            ("CYMLP_DEBUG", "1" if DEBUG else "0"),
        ],
        extra_compile_args=compile_args + extra,
        extra_link_args=link_args,
    )
    for name, extra in modules.items()
]

# Generated C goes to a folder per build mode, so a debug build never reuses release C
# (or the other way round).
setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["src"],
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    )
)
