"""How fast are other GEMM libraries on the network's own shapes?

The engine calls one internal interface, ``cymlp._blas.gemm`` (row-major, float32 or
float64), which goes to cymlp's own AVX-512 kernel where the CPU has it, and to scipy's
OpenBLAS through ``scipy.linalg.cython_blas`` otherwise. This script
measures what each backend gives on the GEMMs of one training step of the 784-256-128-10
network, at batch 256 and batch 32, single-threaded (the way the engine calls them: one
thread per output block) and multi-threaded:

- cymlp's kernel (``cymlp._blas._gemm`` with every size given to the kernel), single-
  threaded only: the engine shares the blocks of a product among its threads itself;
- scipy's OpenBLAS (``scipy.linalg.blas.sgemm``), what cymlp uses for the rest;
- BLIS (``pip install blis``: the ``blis`` package's ``blis.py.gemm``), if installed;
- Intel MKL (``pip install mkl``: ``cblas_sgemm`` from ``libmkl_rt`` through ctypes), if
  installed;
- PyTorch's ``torch.mm`` (MKL / oneDNN inside), if installed.

Run: ``python bench/gemm_backends.py`` (alone on the machine). Prints a markdown table;
every number is measured in a fresh process.
"""

import ctypes
import ctypes.util
import glob
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

N_IN, H1, H2, N_OUT = 784, 256, 128, 10


def step_shapes(batch):
    """(m, n, k, trans_a, trans_b) of the row-major GEMMs of one training step."""
    b = batch
    return [
        (b, H1, N_IN, 0, 0),
        (b, H2, H1, 0, 0),
        (b, N_OUT, H2, 0, 0),  # forward
        (H2, N_OUT, b, 1, 0),
        (b, H2, N_OUT, 0, 1),  # layer 3: weight grad, input grad
        (H1, H2, b, 1, 0),
        (b, H1, H2, 0, 1),  # layer 2
        (N_IN, H1, b, 1, 0),  # layer 1: weight gradient only
    ]


def operands(m, n, k, ta, tb, rng):
    A = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    B = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return A, B, np.zeros((m, n), dtype=np.float32)


def scipy_backend():
    from scipy.linalg.blas import sgemm

    def run(A, B, C, ta, tb):
        # row-major C = op(A) op(B) is column-major C.T = op(B).T op(A).T: no copies
        sgemm(1.0, B.T, A.T, 0.0, C.T, trans_a=tb, trans_b=ta, overwrite_c=1)

    return run


def cymlp_backend():
    from cymlp import _blas

    if not _blas.own_gemm_supported():
        raise ImportError("this CPU has no AVX-512F")
    _blas.own_gemm(True, small_to_blas=False)

    def run(A, B, C, ta, tb):
        _blas._gemm(bool(ta), bool(tb), 1.0, A, B, 0.0, C)

    def set_threads(threads):
        if threads != 1:
            raise RuntimeError("single-threaded; the engine threads around it")

    run.set_threads = set_threads
    return run


def blis_backend():
    from blis.py import gemm

    def run(A, B, C, ta, tb):
        gemm(A, B, out=C, trans1=bool(ta), trans2=bool(tb))

    return run


def mkl_backend():
    paths = glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*"))
    path = paths[0] if paths else ctypes.util.find_library("mkl_rt")
    if not path:
        raise ImportError("libmkl_rt not found")
    lib = ctypes.CDLL(path)
    f = lib.cblas_sgemm
    f.restype = None
    ptr = ctypes.POINTER(ctypes.c_float)
    f.argtypes = [ctypes.c_int] * 6 + [
        ctypes.c_float,
        ptr,
        ctypes.c_int,
        ptr,
        ctypes.c_int,
        ctypes.c_float,
        ptr,
        ctypes.c_int,
    ]
    row_major, no, yes = 101, 111, 112

    def run(A, B, C, ta, tb):
        m, n = C.shape
        k = A.shape[0] if ta else A.shape[1]
        f(
            row_major,
            yes if ta else no,
            yes if tb else no,
            m,
            n,
            k,
            1.0,
            A.ctypes.data_as(ptr),
            A.shape[1],
            B.ctypes.data_as(ptr),
            B.shape[1],
            0.0,
            C.ctypes.data_as(ptr),
            n,
        )

    run.set_threads = lambda t: lib.MKL_Set_Num_Threads(ctypes.c_int(t))
    return run


def torch_backend():
    import torch

    def run(A, B, C, ta, tb):
        a, b = torch.from_numpy(A), torch.from_numpy(B)
        torch.mm(a.T if ta else a, b.T if tb else b, out=torch.from_numpy(C))

    run.set_threads = torch.set_num_threads
    return run


def time_step(run, batch, threads, min_time=0.5):
    rng = np.random.default_rng(0)
    ops = [(operands(m, n, k, ta, tb, rng), ta, tb) for m, n, k, ta, tb in step_shapes(batch)]
    flops = sum(2.0 * m * n * k for m, n, k, _, _ in step_shapes(batch))
    with threadpool_limits(limits=threads):
        if hasattr(run, "set_threads"):
            run.set_threads(threads)
        for (A, B, C), ta, tb in ops:  # warm up, then let spinning threads settle
            run(A, B, C, ta, tb)
        time.sleep(1.0)
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_time:
            for (A, B, C), ta, tb in ops:
                run(A, B, C, ta, tb)
            reps += 1
        seconds = (time.perf_counter() - start) / reps
    return flops / seconds / 1e9


BACKENDS = {
    "cymlp kernel": cymlp_backend,
    "scipy OpenBLAS": scipy_backend,
    "BLIS": blis_backend,
    "MKL": mkl_backend,
    "PyTorch mm": torch_backend,
}


def measure(name, batch, threads):
    """One measurement in this process, which must not have run anything else: thread
    pools that spun up earlier (another library's, or this one's at another thread count)
    distort it badly on few cores."""
    print(f"{time_step(BACKENDS[name](), batch, threads):.0f}")


def main():
    if len(sys.argv) > 1:
        return measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    import subprocess

    n_cores = len(os.sched_getaffinity(0))
    print(
        f"GF/s over the GEMMs of one training step (784-256-128-10, float32), "
        f"{n_cores} cores, each number from its own process\n"
    )
    print("| backend | batch 256, 1 thread | batch 256, all | batch 32, 1 thread | batch 32, all |")
    print("|---|---|---|---|---|")
    for name in BACKENDS:
        cells = []
        for batch in (256, 32):
            for threads in (1, n_cores):
                proc = subprocess.run(
                    [sys.executable, __file__, name, str(batch), str(threads)],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode == 0:
                    cells.append(proc.stdout.strip())
                elif "single-threaded" in proc.stderr:
                    cells.append("–")
                else:
                    lines = proc.stderr.strip().splitlines()
                    cells.append("n/a: " + (lines[-1] if lines else "?")[:60])
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
