# One forward/backward pair per op. Arguments: outputs first, then inputs, then sizes.
# Every matrix is row-major, n rows by m columns; where an `ld` is given, rows are ld
# apart (a block of columns of a wider matrix).
from cython cimport floating

cdef extern from *:
    """
    #ifndef CYMLP_DEBUG
    #define CYMLP_DEBUG 0
    #endif
    """
    # 1 in debug builds (CYMLP_DEBUG=1 at build time): extra checks in compiled code
    const bint CYMLP_DEBUG

cdef void debug_fail(const char* what) noexcept nogil

cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4   # output layers only
    EXP = 5       # output layers only (Poisson head)
    LEAKY_RELU = 6
    ELU = 7
    GELU = 8      # derivative needs the pre-activation
    SILU = 9      # derivative needs the pre-activation
    SOFTPLUS = 10

cdef enum RegressionLoss:
    SQUARED = 0
    ABSOLUTE = 1
    HUBER = 2

cdef inline bint needs_pre(int act) noexcept nogil:
    """Whether act's derivative is taken from the pre-activation (not the output)."""
    return act == GELU or act == SILU

cdef void bias_act_forward(floating* Z, Py_ssize_t ld, const floating* b, Py_ssize_t n,
                           Py_ssize_t m, int act, floating* pre) noexcept nogil
cdef void act_backward(floating* dZ, const floating* S, Py_ssize_t ld, Py_ssize_t n,
                       Py_ssize_t m, int act, floating unscale) noexcept nogil
cdef double output_loss_backward(floating* D, floating* Z, const floating* b,
                                 const floating* Y, const floating* sw,
                                 Py_ssize_t n, Py_ssize_t m, int act, int loss,
                                 floating delta) noexcept nogil
cdef void dropout_apply(floating* A, Py_ssize_t ld, Py_ssize_t n, Py_ssize_t m,
                        const Py_ssize_t* rows, Py_ssize_t row0, Py_ssize_t col0,
                        unsigned long long key, double rate) noexcept nogil
cdef unsigned long long mix64(unsigned long long z) noexcept nogil
cdef void batchnorm_forward(floating* Y, floating* XH, floating* mean, floating* var,
                            const floating* gamma, double* acc,
                            Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                            double eps, bint batch_stats) noexcept nogil
cdef void batchnorm_backward(floating* D, const floating* XH, const floating* var,
                             const floating* gamma, floating* g_gamma, floating* g_beta,
                             double* acc, Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0,
                             Py_ssize_t c1, double eps, floating scale) noexcept nogil
cdef bint block_nonfinite(const floating* A, Py_ssize_t ld, Py_ssize_t n,
                          Py_ssize_t m) noexcept nogil
cdef void score_stats(double* stats, const floating* P, const floating* Y,
                      const floating* sw, Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil
cdef void bias_grad(floating* db, const floating* D, Py_ssize_t n, Py_ssize_t m,
                    floating scale, bint accumulate) noexcept nogil
cdef void gather_rows(floating* out, const floating* X, const Py_ssize_t* idx,
                      Py_ssize_t n, Py_ssize_t m) noexcept nogil
cdef void csr_forward(floating* A, const floating* W, const floating* data,
                      const Py_ssize_t* indices, const Py_ssize_t* indptr,
                      const Py_ssize_t* idx, Py_ssize_t start, Py_ssize_t r0, Py_ssize_t r1,
                      Py_ssize_t n_in, Py_ssize_t h) noexcept nogil
cdef void csr_weight_grad(floating* GW, const floating* D, const floating* data,
                          const Py_ssize_t* indices, const Py_ssize_t* indptr,
                          const Py_ssize_t* idx, Py_ssize_t start, Py_ssize_t nb,
                          Py_ssize_t n_in, Py_ssize_t h, floating scale, bint accumulate,
                          Py_ssize_t c0, Py_ssize_t c1) noexcept nogil
