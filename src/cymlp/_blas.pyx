"""Row-major GEMM: cymlp's own AVX-512 kernel where the CPU has it (_gemm_avx512.h),
else scipy's Fortran BLAS.

BLAS is column-major; a row-major matrix is the transpose of a column-major one, so
C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in column-major: call gemm with the
operands (and their transpose flags) swapped.
"""
import os

import numpy as np

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm

from ._threads import blas_multiplies_small_unpacked


cdef extern from "_gemm_avx512.h" nogil:
    ctypedef struct cymlp_epilogue:
        const void* bias
        int relu
        int* nonfinite
    void sgemm_avx512 "cymlp_gemm_avx512_s" (
        int trans_a, int trans_b, long m, long n, long k, float alpha, const float* A,
        long lda, const float* B, long ldb, const float* packed_b, float beta, float* C,
        long ldc, const cymlp_epilogue* ep) noexcept
    void dgemm_avx512 "cymlp_gemm_avx512_d" (
        int trans_a, int trans_b, long m, long n, long k, double alpha, const double* A,
        long lda, const double* B, long ldb, const double* packed_b, double beta,
        double* C, long ldc, const cymlp_epilogue* ep) noexcept
    long spacked_b_size "cymlp_packed_b_size_s" (long n, long k) noexcept
    long dpacked_b_size "cymlp_packed_b_size_d" (long n, long k) noexcept
    void spack_b "cymlp_pack_b_s" (int trans_b, const float* B, long ldb, long n, long k,
                                   float* packed_b) noexcept
    void dpack_b "cymlp_pack_b_d" (int trans_b, const double* B, long ldb, long n, long k,
                                   double* packed_b) noexcept
    int gemm_avx512_supported "cymlp_gemm_avx512_supported" () noexcept


# Whether products go to the AVX-512 kernel: where the CPU runs it, unless the
# environment variable CYMLP_GEMM=blas asks for the BLAS everywhere.
cdef bint OWN_GEMM = (gemm_avx512_supported() != 0
                      and os.environ.get("CYMLP_GEMM", "").lower() != "blas")
# Where OpenBLAS runs its AVX-512 kernels, it multiplies products under 2^20 (m n k)
# without packing their operands, and it keeps those where it is as fast as the kernel:
# products under SMALL_SIZE, and weight gradients (op(A) = A^T) less than SMALL_TN_DEPTH
# deep (batches under 64 rows). Alone, with warm caches, OpenBLAS is as fast or faster
# there (32 x 128 x 192: 163 GF/s against 157; a 56 x 256 gradient over 32 rows: 146
# against 128); from 2^20 it packs both operands at every call and the kernel is 15-60 %
# faster (32 x 128 x 256: 148 against 92 GF/s; 256 x 128 x 392: 187 against 143). In
# whole fits the kernel already wins from 2^18 (batch 64: 0.34 s against 0.39 s with
# 2^20), and batch 32 is 5 % slower with its gradients on the kernel. (Measured in
# float32; float64 fits, under the same rule, measured the same with every product on
# the kernel.) Other OpenBLAS kernels pack every product, and the kernel takes them all.
cdef bint SMALL_TO_BLAS = blas_multiplies_small_unpacked()
cdef double SMALL_SIZE = 1 << 18
cdef int SMALL_TN_DEPTH = 64


cdef inline bint _kernel_takes(bint trans_a, int m, int n, int k) noexcept nogil:
    """Whether a product goes to the AVX-512 kernel."""
    return OWN_GEMM and m > 0 and n > 0 and k > 0 and not (
        SMALL_TO_BLAS and (<double> m * n * k < SMALL_SIZE or trans_a and k < SMALL_TN_DEPTH))


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* A, int lda,
               const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil:
    """C (m x n) = alpha * op(A) (m x k) @ op(B) (k x n) + beta * C, all row-major."""
    gemm_packed(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, NULL, beta, C, ldc)


cdef void gemm_packed(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* A, int lda,
                      const floating* B, int ldb, const floating* packed_b,
                      floating beta, floating* C, int ldc) noexcept nogil:
    """gemm, given also op(B) packed for the kernel by pack_b (or NULL): the kernel then
    reads it in place instead of copying its panels again (the same values, the same
    result)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if _kernel_takes(trans_a, m, n, k):
        if floating is float:
            sgemm_avx512(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, packed_b, beta, C,
                         ldc, NULL)
        else:
            dgemm_avx512(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, packed_b, beta, C,
                         ldc, NULL)
    elif floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> B, &ldb, <float*> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> B, &ldb, <double*> A, &lda,
              &beta, C, &ldc)


cdef bint gemm_bias_act(int m, int n, int k, const floating* A, int lda,
                        const floating* B, int ldb, const floating* packed_b,
                        floating* C, int ldc, const floating* bias, bint relu,
                        int* nonfinite) noexcept nogil:
    """The forward pass's product and epilogue in one, on the kernel: C (m x n) = A (m x
    k) @ B (k x n) (B also packed by pack_b, or packed_b NULL); *nonfinite = 1 if an
    entry of C is then NaN or infinite (nonfinite NULL: not looked at); C += bias (n
    values); then C = max(C, 0) where relu. The epilogue runs in the kernel's stores,
    while C is in registers; the bits are those of gemm and the epilogue one after the
    other. False, with nothing done, where the kernel does not take the product."""
    cdef cymlp_epilogue ep
    if not _kernel_takes(False, m, n, k):
        return False
    ep.bias = bias
    ep.relu = relu
    ep.nonfinite = nonfinite
    if floating is float:
        sgemm_avx512(False, False, m, n, k, 1, A, lda, B, ldb, packed_b, 0, C, ldc, &ep)
    else:
        dgemm_avx512(False, False, m, n, k, 1, A, lda, B, ldb, packed_b, 0, C, ldc, &ep)
    return True


def packed_b_size(int n, int k, dtype):
    """How many values pack_b writes for a k x n op(B) of dtype (float32 or float64);
    0 when products do not go to the kernel (own_gemm), which alone reads them."""
    if not OWN_GEMM:
        return 0
    return spacked_b_size(n, k) if dtype == np.float32 else dpacked_b_size(n, k)


cdef void pack_b(bint trans_b, const floating* B, int ldb, int n, int k,
                 floating* packed_b) noexcept nogil:
    """packed_b (packed_b_size values, 64-byte aligned) = op(B) (k x n) packed for
    gemm_packed."""
    if floating is float:
        spack_b(trans_b, B, ldb, n, k, packed_b)
    else:
        dpack_b(trans_b, B, ldb, n, k, packed_b)


def own_gemm(enable=None, small_to_blas=None):
    """Whether products run on cymlp's AVX-512 kernel (else on scipy's BLAS).
    enable=False switches to the BLAS, True back to the kernel where the CPU has it;
    small_to_blas=False gives the kernel the small products too, True gives them back to
    the BLAS (for tests and measurements; not while a fit runs)."""
    global OWN_GEMM, SMALL_TO_BLAS
    if enable is not None:
        OWN_GEMM = bool(enable) and gemm_avx512_supported() != 0
    if small_to_blas is not None:
        SMALL_TO_BLAS = bool(small_to_blas)
    return bool(OWN_GEMM)


def own_gemm_supported():
    """Whether this CPU runs the AVX-512 kernel (whatever own_gemm says)."""
    return gemm_avx512_supported() != 0


def kernel_takes(trans_a, m, n, k):
    """Whether gemm gives a product op(A) (m x k) op(B) (k x n) to the kernel."""
    return _kernel_takes(trans_a, m, n, k)


def small_products_to_blas():
    """Whether products under 2^18 (m n k) and weight gradients less than 64 deep go to
    the BLAS."""
    return bool(SMALL_TO_BLAS)


def aligned_empty(Py_ssize_t size, dtype):
    """An uninitialized 1-D array of size values, its data 64-byte aligned (as pack_b
    needs: the kernel loads the packed panels whole, a vector at a time)."""
    item = np.dtype(dtype).itemsize
    buf = np.empty(size + 64 // item, dtype=dtype)
    skip = (-buf.ctypes.data % 64) // item
    return buf[skip:skip + size]


def _gemm(bint trans_a, bint trans_b, double alpha, floating[:, :] A, floating[:, :] B,
          double beta, floating[:, :] C, bint packed=False):
    """C = alpha op(A) op(B) + beta C through gemm, for tests: 2-D arrays whose rows are
    each contiguous (views into larger arrays allowed), no empty dimension. packed: op(B)
    packed first by pack_b, and gemm_packed reading it there (the kernel only)."""
    _check_operands(trans_a, trans_b, A, B, C)
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    cdef int lda = _row_stride(A), ldb = _row_stride(B), ldc = _row_stride(C)
    cdef floating[::1] Bp
    cdef floating* packed_b = NULL
    if packed:
        if not OWN_GEMM:
            raise ValueError("_gemm: packed operands are the kernel's, and it is off")
        Bp = _packed_operand(trans_b, B, n, k)
        packed_b = &Bp[0]
    gemm_packed(trans_a, trans_b, m, n, k, <floating> alpha, &A[0, 0], lda, &B[0, 0], ldb,
                packed_b, <floating> beta, &C[0, 0], ldc)


def _gemm_bias_act(floating[:, :] A, floating[:, :] B, floating[:, :] C, floating[::1] bias,
                   bint relu, bint watch, bint packed=False):
    """C = max(A @ B + bias, 0) (relu) or A @ B + bias through gemm_bias_act, for tests
    (operands as _gemm's): whether the kernel ran it, and whether it saw a NaN or an
    infinity in A @ B (watch)."""
    _check_operands(False, False, A, B, C)
    if bias.shape[0] != C.shape[1]:
        raise ValueError("_gemm: shapes do not match")
    cdef int m = C.shape[0], n = C.shape[1], k = A.shape[1]
    cdef int lda = _row_stride(A), ldb = _row_stride(B), ldc = _row_stride(C)
    cdef floating[::1] Bp
    cdef floating* packed_b = NULL
    cdef int flag = 0
    if packed and OWN_GEMM:
        Bp = _packed_operand(False, B, n, k)
        packed_b = &Bp[0]
    done = gemm_bias_act(m, n, k, &A[0, 0], lda, &B[0, 0], ldb, packed_b, &C[0, 0], ldc,
                         &bias[0], relu, &flag if watch else NULL)
    return done, flag != 0


def _check_operands(bint trans_a, bint trans_b, floating[:, :] A, floating[:, :] B,
                    floating[:, :] C):
    """Raise ValueError unless op(A) op(B) has C's shape, with no empty dimension."""
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    if ((A.shape[1] if trans_a else A.shape[0]) != m
            or (B.shape[1] if trans_b else B.shape[0]) != k
            or (B.shape[0] if trans_b else B.shape[1]) != n):
        raise ValueError("_gemm: shapes do not match")
    if m == 0 or n == 0 or k == 0:
        raise ValueError("_gemm: empty dimension")


def _packed_operand(bint trans_b, floating[:, :] B, int n, int k):
    """op(B) (k x n) packed by pack_b into a new array, for the test helpers above."""
    dtype = np.float32 if floating is float else np.float64
    Bp = aligned_empty(packed_b_size(n, k, dtype), dtype)
    cdef floating[::1] out = Bp
    pack_b(trans_b, &B[0, 0], _row_stride(B), n, k, &out[0])
    return Bp


cdef int _row_stride(floating[:, :] X) except -1:
    """The distance between X's rows in elements (its leading dimension)."""
    cdef Py_ssize_t item = sizeof(floating)
    cdef Py_ssize_t ld = X.strides[0] // item if X.shape[0] > 1 else X.shape[1]
    if X.strides[1] != item and X.shape[1] > 1 or X.strides[0] % item or ld < X.shape[1]:
        raise ValueError("_gemm: each row must be contiguous, rows in order")
    return ld
