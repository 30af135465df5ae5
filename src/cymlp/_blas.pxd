# Row-major BLAS wrappers over scipy.linalg.cython_blas (the OpenBLAS scipy ships).
from cython cimport floating

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* A, int lda,
               const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil

cdef void gemm_packed(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* A, int lda,
                      const floating* B, int ldb, const floating* packed_b,
                      floating beta, floating* C, int ldc) noexcept nogil

cdef void pack_b(bint trans_b, const floating* B, int ldb, int n, int k,
                 floating* packed_b) noexcept nogil

cdef bint gemm_bias_act(int m, int n, int k, const floating* A, int lda,
                        const floating* B, int ldb, const floating* packed_b,
                        floating* C, int ldc, const floating* bias, bint relu,
                        int* nonfinite) noexcept nogil
