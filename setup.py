"""Build the Cython extensions of cymlp.

OpenMP is asked for with the GCC/Clang flag (MSVC spells it /openmp). No -march=native:
wheels must run on any x86-64 / arm64 machine. CYMLP_DEBUG=1 builds with bounds checks.

CYMLP_NO_OPENMP=1 builds without OpenMP: the `prange` loops then run serially (Cython
guards its OpenMP pragmas with `#ifdef _OPENMP`, and src/cymlp/_openmp.pxd stands in for
the OpenMP runtime calls). A compiler without OpenMP (Apple's clang without libomp) gets
the same serial build, with a warning, instead of a failed build: before building, a tiny
OpenMP program is compiled and linked with the compiler and flags of the build.
"""

import glob
import os
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, LinkError

DEBUG = os.environ.get("CYMLP_DEBUG", "0") == "1"
NO_OPENMP = os.environ.get("CYMLP_NO_OPENMP", "0") == "1"

if sys.platform == "win32":
    compile_args, link_args = ["/O2"], []
    openmp_compile, openmp_link = ["/openmp"], []
else:
    # no errno from math functions, no floating-point traps (never enabled here): lets
    # the compiler inline sqrt and turn selects into vector blends; values are unchanged.
    # -g0 drops the debug information Python's own CFLAGS ask for (the four extensions
    # measured 7.5 MB with it, 1.4 MB without); the symbols stay, for profilers.
    compile_args, link_args = ["-O3", "-g0", "-fno-math-errno", "-fno-trapping-math"], []
    openmp_compile, openmp_link = ["-fopenmp"], ["-fopenmp"]
    if DEBUG:
        compile_args += ["-O1", "-g", "-UNDEBUG"]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
}

modules = ["_blas", "_kernels", "_optim", "_threads", "_engine"]
HEADERS = sorted(glob.glob("src/cymlp/*.h"))  # the GEMM kernel (_blas.pyx includes it)
extensions = [
    Extension(
        f"cymlp.{name}",
        [f"src/cymlp/{name}.pyx"],
        include_dirs=[np.get_include(), "src/cymlp"],
        depends=HEADERS,  # an edit to the C headers alone rebuilds too
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
            ("CYMLP_DEBUG", "1" if DEBUG else "0"),
        ],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for name in modules
]

OPENMP_TEST = textwrap.dedent(
    """\
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+ : n)
        n += 1;
        return (n > 0 && omp_get_max_threads() > 0) ? 0 : 1;
    }
    """
)


def compiler_has_openmp(compiler):
    """Whether `compiler` compiles and links a small OpenMP program with the OpenMP flags."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "test_openmp.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=openmp_compile)
            compiler.link_executable(
                objects, "test_openmp", output_dir=tmp, extra_postargs=openmp_link
            )
        except (CCompilerError, CompileError, LinkError):
            return False
    return True


class BuildExt(build_ext):
    """build_ext that adds the OpenMP flags when the build uses OpenMP, and rebuilds
    everything when the build mode (OpenMP or not, debug or not) differs from the one
    that made the existing objects (setuptools would otherwise keep an up-to-date-looking
    extension built in the other mode)."""

    def build_extensions(self):
        openmp = False
        if NO_OPENMP:
            print("cymlp: CYMLP_NO_OPENMP=1: building without OpenMP (serial loops)")
        elif compiler_has_openmp(self.compiler):
            openmp = True
        else:
            warnings.warn(
                "cymlp: the C compiler cannot build OpenMP code (on macOS: brew install "
                "libomp, or use a compiler with OpenMP): building without OpenMP. cymlp "
                "works, with its elementwise loops and optimizer steps on one thread.",
                stacklevel=1,
            )
        for ext in self.extensions:
            if openmp:
                ext.extra_compile_args = ext.extra_compile_args + openmp_compile
                ext.extra_link_args = ext.extra_link_args + openmp_link
        mode = f"openmp={openmp} debug={DEBUG}"
        stamp = os.path.join(self.build_temp, "cymlp-build-mode")
        try:
            with open(stamp) as f:
                if f.read() != mode:
                    self.force = True
        except OSError:  # no stamp: no objects, or objects of an unknown mode: rebuild
            self.force = True
        super().build_extensions()
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(mode)


# Generated C goes to a folder per build mode, so a debug build never reuses release C
# (or the other way round).
setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["src"],
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
)
