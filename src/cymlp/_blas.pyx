"""Row-major GEMM over scipy's Fortran BLAS.

BLAS is column-major; a row-major matrix is the transpose of a column-major one, so
C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in column-major: call gemm with the
operands (and their transpose flags) swapped.
"""
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* A, int lda,
               const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil:
    """C (m x n) = alpha * op(A) (m x k) @ op(B) (k x n) + beta * C, all row-major."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> B, &ldb, <float*> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> B, &ldb, <double*> A, &lda,
              &beta, C, &ldc)
