"""Elementwise kernels of the network: fused bias + activation, activation derivatives,
output activation fused with its loss and loss gradient, bias gradients, row gathers.

Shapes: Z, A, D, Y are (n, m) row-major; b and db are (m,); sw is (n,) or NULL.
Activation derivatives are taken from the stored outputs A (as scikit-learn does), so the
pre-activations never need to be kept.
"""
from cython cimport floating
from libc.math cimport exp, expf, log, logf, tanh, tanhf
from libc.string cimport memcpy, memset
from libc.float cimport FLT_EPSILON, DBL_EPSILON
from libc.stdio cimport fprintf, stderr
from libc.stdlib cimport abort


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _logistic(floating x) noexcept nogil:
    # Stable for large |x|: never exponentiates a large positive number.
    # (`one` is typed: a literal 1 would make Cython compute in double.)
    cdef floating e, one = 1
    if x >= 0:
        return one / (one + _exp(-x))
    e = _exp(x)
    return e / (one + e)


cdef void bias_act_forward(floating* Z, Py_ssize_t ld, const floating* b, Py_ssize_t n,
                           Py_ssize_t m, int act) noexcept nogil:
    """Z = act(Z + b), in place."""
    cdef Py_ssize_t i, j
    cdef floating* z
    cdef floating v
    for i in range(n):
        z = Z + i * ld
        if act == RELU:
            for j in range(m):
                v = z[j] + b[j]
                z[j] = v if v > 0 else 0
        elif act == IDENTITY:
            for j in range(m):
                z[j] = z[j] + b[j]
        elif act == TANH:
            for j in range(m):
                if floating is float:
                    z[j] = tanhf(z[j] + b[j])
                else:
                    z[j] = tanh(z[j] + b[j])
        elif act == LOGISTIC:
            for j in range(m):
                z[j] = _logistic(z[j] + b[j])
        elif act == EXP:
            for j in range(m):
                z[j] = _exp(z[j] + b[j])
        elif act == SOFTMAX:
            _softmax_row(z, b, m)


cdef inline void _softmax_row(floating* z, const floating* b, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating zmax, total = 0
    for j in range(m):
        z[j] = z[j] + b[j]
    zmax = z[0]
    for j in range(1, m):
        if z[j] > zmax:
            zmax = z[j]
    for j in range(m):
        z[j] = _exp(z[j] - zmax)
        total = total + z[j]
    for j in range(m):
        z[j] = z[j] / total


cdef void act_backward(floating* dZ, const floating* A, Py_ssize_t ld, Py_ssize_t n,
                       Py_ssize_t m, int act) noexcept nogil:
    """dZ *= act'(.), written in terms of the activation's output A."""
    cdef Py_ssize_t i, j
    cdef floating* d
    cdef const floating* a
    cdef floating one = 1
    if act == IDENTITY:
        return
    for i in range(n):
        d = dZ + i * ld
        a = A + i * ld
        if act == RELU:
            for j in range(m):
                d[j] = d[j] if a[j] > 0 else 0
        elif act == LOGISTIC:
            for j in range(m):
                d[j] = d[j] * a[j] * (one - a[j])
        elif act == TANH:
            for j in range(m):
                d[j] = d[j] * (one - a[j] * a[j])


cdef double output_loss_backward(floating* D, floating* Z, const floating* b,
                                 const floating* Y, const floating* sw,
                                 Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil:
    """Output layer: Z = out_act(Z + b) in place, D = (Z - Y) * sw (the gradient of the
    loss with respect to the pre-activation, for each canonical link), and return the
    sample-weighted loss sum sum_i sw_i * loss_i, as scikit-learn defines each loss:
    softmax -> log-loss, logistic -> binary log-loss (per output, summed), identity ->
    half squared error (summed over outputs; the caller averages), exp -> Poisson
    deviance summed over outputs. Probabilities are clipped to [eps, 1 - eps] in the loss.
    """
    cdef Py_ssize_t i, j
    cdef floating* z
    cdef floating* d
    cdef const floating* y
    cdef floating w, p, r
    cdef floating eps = FLT_EPSILON if floating is float else DBL_EPSILON
    cdef double row_loss, total = 0
    bias_act_forward(Z, m, b, n, m, act)
    for i in range(n):
        z = Z + i * m
        d = D + i * m
        y = Y + i * m
        w = sw[i] if sw != NULL else 1
        row_loss = 0
        for j in range(m):
            p = z[j]
            d[j] = (p - y[j]) * w
            if act == SOFTMAX:
                if y[j] != 0:
                    p = min(max(p, eps), 1 - eps)
                    row_loss -= y[j] * _log(p)
            elif act == LOGISTIC:
                p = min(max(p, eps), 1 - eps)
                if y[j] != 0:
                    row_loss -= y[j] * _log(p)
                if y[j] != 1:
                    row_loss -= (1 - y[j]) * _log(1 - p)
            elif act == IDENTITY:
                r = p - y[j]
                row_loss += 0.5 * r * r
            else:  # EXP, Poisson deviance y log(y / p) - y + p
                if y[j] != 0:
                    row_loss += y[j] * _log(y[j] / p)
                row_loss += p - y[j]
        total += w * row_loss
    return total


cdef void bias_grad(floating* db, const floating* D, Py_ssize_t n, Py_ssize_t m,
                    floating scale, bint accumulate) noexcept nogil:
    """db = scale * column sums of D (+ db when accumulating). Rows are summed in order,
    so the result does not depend on the thread count."""
    cdef Py_ssize_t i, j
    cdef const floating* d
    if not accumulate:
        memset(db, 0, m * sizeof(floating))
    for i in range(n):
        d = D + i * m
        for j in range(m):
            db[j] += scale * d[j]


cdef void gather_rows(floating* out, const floating* X, const Py_ssize_t* idx,
                      Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    """out[r] = X[idx[r]] for r < n."""
    cdef Py_ssize_t r
    for r in range(n):
        memcpy(out + r * m, X + idx[r] * m, m * sizeof(floating))


cdef void csr_forward(floating* A, const floating* W, const floating* data,
                      const Py_ssize_t* indices, const Py_ssize_t* indptr,
                      const Py_ssize_t* idx, Py_ssize_t start, Py_ssize_t r0, Py_ssize_t r1,
                      Py_ssize_t n_in, Py_ssize_t h) noexcept nogil:
    """A[r] = X[row(r)] @ W for batch rows r0 <= r < r1, where X is CSR, W is (n_in, h)
    row-major, A is (nb, h) and row(r) = idx[r] (or start + r when idx is NULL). Only
    the stored entries are visited, in order, as scipy's sparse product does."""
    cdef Py_ssize_t r, row, p, j
    cdef floating* a
    cdef const floating* w
    cdef floating x
    for r in range(r0, r1):
        row = idx[r] if idx != NULL else start + r
        a = A + r * h
        memset(a, 0, h * sizeof(floating))
        for p in range(indptr[row], indptr[row + 1]):
            if CYMLP_DEBUG and not 0 <= indices[p] < n_in:
                debug_fail(b"csr_forward: column index out of range")
            x = data[p]
            w = W + indices[p] * h
            for j in range(h):
                a[j] += x * w[j]


cdef void csr_weight_grad(floating* GW, const floating* D, const floating* data,
                          const Py_ssize_t* indices, const Py_ssize_t* indptr,
                          const Py_ssize_t* idx, Py_ssize_t start, Py_ssize_t nb,
                          Py_ssize_t n_in, Py_ssize_t h, floating scale, bint accumulate,
                          Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Columns c0:c1 of GW (n_in, h) (+)= scale * X_b.T @ D for the nb CSR rows of the
    batch (rows as in csr_forward) and D (nb, h). Rows are added in batch order."""
    cdef Py_ssize_t r, row, p, j
    cdef floating* g
    cdef const floating* d
    cdef floating s
    if not accumulate:
        for r in range(n_in):
            memset(GW + r * h + c0, 0, (c1 - c0) * sizeof(floating))
    for r in range(nb):
        row = idx[r] if idx != NULL else start + r
        d = D + r * h
        for p in range(indptr[row], indptr[row + 1]):
            g = GW + indices[p] * h
            s = scale * data[p]
            for j in range(c0, c1):
                g[j] += s * d[j]


cdef void debug_fail(const char* what) noexcept nogil:
    """Debug builds only: a broken invariant in compiled code stops the process loudly."""
    fprintf(stderr, b"cymlp debug check failed: %s\n", what)
    abort()


# True in a debug build (CYMLP_DEBUG=1 at build time).
DEBUG_BUILD = bool(CYMLP_DEBUG)
