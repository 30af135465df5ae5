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

cdef void bias_act_forward(floating* Z, Py_ssize_t ld, const floating* b, Py_ssize_t n,
                           Py_ssize_t m, int act) noexcept nogil
cdef void act_backward(floating* dZ, const floating* A, Py_ssize_t ld, Py_ssize_t n,
                       Py_ssize_t m, int act) noexcept nogil
cdef double output_loss_backward(floating* D, floating* Z, const floating* b,
                                 const floating* Y, const floating* sw,
                                 Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil
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
