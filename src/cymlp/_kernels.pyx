"""Elementwise kernels of the network: fused bias + activation, activation derivatives,
output activation fused with its loss and loss gradient, bias gradients, row gathers.

Shapes: Z, A, D, Y are (n, m) row-major; b and db are (m,); sw is (n,) or NULL.
Activation derivatives are taken from the stored outputs A (as scikit-learn does), so the
pre-activations are kept only for the activations whose derivative needs them (GELU,
SiLU). Also: inverted dropout with counter-based masks, batch normalization, and the
running sums behind the per-epoch training score.
"""
import numpy as np
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uint32_t, uint64_t
from libc.math cimport erf, erff, exp, expf, expm1, expm1f, fabs, log, log1p, log1pf, logf, sqrt
from libc.math cimport tanh, tanhf
from libc.string cimport memcpy, memset
from libc.float cimport FLT_EPSILON, DBL_EPSILON
from libc.stdio cimport fprintf, stderr
from libc.stdlib cimport abort

from ._openmp cimport omp_get_max_threads
from ._threads import engine_threads


# exp for the float softmax, written so that the compiler can vectorize a loop of them
# (glibc's expf is a call per entry: with the loss, a tenth of a small network's
# training). Only for x <= 0, the shifted inputs of the softmax: exp(x) = 2^k exp(r) with
# k = round(x / ln 2) and |r| <= ln 2 / 2, Cephes' polynomial for exp(r), and 2^k made
# from its bits: within 1 ulp of the exact value (tests/test_kernels.py; numpy's float32
# exp is within 2.5). Below -87.33 the result would be subnormal: 0, as flushing makes it;
# NaN stays NaN. (The module is compiled with -fno-trapping-math, so that the selects
# below become vector blends.)
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline float cymlp_expf_nonpositive(float x) {
        const float shifter = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer */
        const float lowest = -87.33654f;    /* log(FLT_MIN) */
        /* NaN (and x > 0, not expected) take the lowest input here, so that the
           conversion below stays defined; the result is put right at the end */
        float lo = (x >= lowest && x <= 0.0f) ? x : lowest;
        float k = (lo * 1.44269504089f + shifter) - shifter;
        float r = (lo - k * 0.693359375f) - k * -2.12194440e-4f;
        float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                    + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f)
                  * (r * r) + r + 1.0f;
        uint32_t bits = (uint32_t) ((int32_t) k + 127) << 23;
        float scale;
        memcpy(&scale, &bits, sizeof scale);
        return x >= lowest ? p * scale : (x < lowest ? 0.0f : x);
    }
    """
    float _expf_nonpositive "cymlp_expf_nonpositive" (float x) noexcept nogil

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


cdef inline floating _expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _softplus(floating x) noexcept nogil:
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows
    cdef floating ax = x if x >= 0 else -x
    cdef floating pos = x if x > 0 else 0
    if floating is float:
        return pos + log1pf(expf(-ax))
    else:
        return pos + log1p(exp(-ax))


cdef inline floating _gelu(floating x) noexcept nogil:
    # exact form x * Phi(x)
    cdef floating half = 0.5, one = 1, r2 = 0.7071067811865476
    if floating is float:
        return half * x * (one + erff(x * r2))
    else:
        return half * x * (one + erf(x * r2))


cdef inline floating _gelu_grad(floating x) noexcept nogil:
    # Phi(x) + x * phi(x)
    cdef floating half = 0.5, one = 1, r2 = 0.7071067811865476, c = 0.3989422804014327
    if floating is float:
        return half * (one + erff(x * r2)) + x * c * expf(-half * x * x)
    else:
        return half * (one + erf(x * r2)) + x * c * exp(-half * x * x)


cdef inline floating _logistic(floating x) noexcept nogil:
    # Stable for large |x|: never exponentiates a large positive number.
    # (`one` is typed: a literal 1 would make Cython compute in double.)
    cdef floating e, one = 1
    if x >= 0:
        return one / (one + _exp(-x))
    e = _exp(x)
    return e / (one + e)


cdef void bias_act_forward(floating* Z, Py_ssize_t ld, const floating* b, Py_ssize_t n,
                           Py_ssize_t m, int act, floating* pre) noexcept nogil:
    """Z = act(Z + b), in place; pre (rows ld apart, or NULL) keeps Z + b."""
    cdef Py_ssize_t i, j
    cdef floating* z
    cdef floating* p
    cdef floating v, slope = 0.01
    for i in range(n):
        z = Z + i * ld
        if pre != NULL:
            p = pre + i * ld
            for j in range(m):
                p[j] = z[j] + b[j]
        if act == RELU:  # NaN stays NaN, as in numpy's maximum (and the kernel's)
            for j in range(m):
                v = z[j] + b[j]
                z[j] = 0 if v < 0 else v
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
        elif act == LEAKY_RELU:
            for j in range(m):
                v = z[j] + b[j]
                z[j] = v if v > 0 else slope * v
        elif act == ELU:
            for j in range(m):
                v = z[j] + b[j]
                z[j] = v if v > 0 else _expm1(v)
        elif act == GELU:
            for j in range(m):
                z[j] = _gelu(z[j] + b[j])
        elif act == SILU:
            for j in range(m):
                v = z[j] + b[j]
                z[j] = v * _logistic(v)
        elif act == SOFTPLUS:
            for j in range(m):
                z[j] = _softplus(z[j] + b[j])
        elif act == SOFTMAX:
            _softmax_row(z, b, m)


cdef inline void _softmax_row(floating* z, const floating* b, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating zmax, total = 0
    for j in range(m):
        z[j] = z[j] + b[j]
    zmax = z[0]
    for j in range(1, m):
        zmax = z[j] if z[j] > zmax else zmax  # no branch: a max instruction
    for j in range(m):
        if floating is float:
            z[j] = _expf_nonpositive(z[j] - zmax)
        else:
            z[j] = _exp(z[j] - zmax)
    for j in range(m):
        total = total + z[j]
    for j in range(m):
        z[j] = z[j] / total


cdef void act_backward(floating* dZ, const floating* S, Py_ssize_t ld, Py_ssize_t n,
                       Py_ssize_t m, int act, floating unscale) noexcept nogil:
    """dZ *= act'(.), written in terms of S: the stored pre-activation when
    needs_pre(act), else the activation's output times 1 / unscale (dropout scales the
    kept outputs by 1 / (1 - rate): unscale = 1 - rate undoes it; where an output was
    dropped, dZ is already zero)."""
    cdef Py_ssize_t i, j
    cdef floating* d
    cdef const floating* s
    cdef floating a, one = 1, slope = 0.01
    if act == IDENTITY:
        return
    for i in range(n):
        d = dZ + i * ld
        s = S + i * ld
        if act == RELU:
            for j in range(m):
                d[j] = d[j] if s[j] > 0 else 0
        elif act == LEAKY_RELU:
            for j in range(m):
                d[j] = d[j] if s[j] > 0 else slope * d[j]
        elif act == LOGISTIC:
            for j in range(m):
                a = s[j] * unscale
                d[j] = d[j] * a * (one - a)
        elif act == TANH:
            for j in range(m):
                a = s[j] * unscale
                d[j] = d[j] * (one - a * a)
        elif act == ELU:  # a + 1 = e^z below zero
            for j in range(m):
                d[j] = d[j] if s[j] > 0 else d[j] * (s[j] * unscale + one)
        elif act == SOFTPLUS:  # sigmoid(z) = 1 - e^-softplus(z)
            for j in range(m):
                d[j] = -d[j] * _expm1(-s[j] * unscale)
        elif act == GELU:
            for j in range(m):
                d[j] = d[j] * _gelu_grad(s[j])
        elif act == SILU:
            for j in range(m):
                a = _logistic(s[j])
                d[j] = d[j] * a * (one + s[j] * (one - a))


cdef double output_loss_backward(floating* D, floating* Z, const floating* b,
                                 const floating* Y, const floating* sw,
                                 Py_ssize_t n, Py_ssize_t m, int act, int loss,
                                 floating delta) noexcept nogil:
    """Output layer: Z = out_act(Z + b) in place, D = (Z - Y) * sw (the gradient of the
    loss with respect to the pre-activation, for each canonical link), and return the
    sample-weighted loss sum sum_i sw_i * loss_i, as scikit-learn defines each loss:
    softmax -> log-loss, logistic -> binary log-loss (per output, summed), identity ->
    half squared error (summed over outputs; the caller averages), exp -> Poisson
    deviance summed over outputs. Probabilities are clipped to [eps, 1 - eps] in the loss.
    With the identity output, `loss` may instead be ABSOLUTE (|r|, gradient sign(r)) or
    HUBER (r^2 / 2 up to |r| = delta, then delta * (|r| - delta / 2); gradient r clipped
    to [-delta, delta]), also summed over outputs for the caller to average.
    """
    cdef Py_ssize_t i, j
    cdef floating* z
    cdef floating* d
    cdef const floating* y
    cdef floating w, p, r
    cdef floating eps = FLT_EPSILON if floating is float else DBL_EPSILON
    cdef double row_loss, total = 0
    bias_act_forward(Z, m, b, n, m, act, <floating*> NULL)
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
                if loss == SQUARED:
                    row_loss += 0.5 * r * r
                elif loss == ABSOLUTE:
                    row_loss += fabs(r)
                    d[j] = w if r > 0 else (-w if r < 0 else 0)
                elif fabs(r) <= delta:  # HUBER
                    row_loss += 0.5 * r * r
                else:
                    row_loss += delta * (fabs(r) - 0.5 * delta)
                    d[j] = w * delta if r > 0 else -w * delta
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


# --- dropout ------------------------------------------------------------------------
# A unit's mask bit is a hash of (key, row, unit), where the caller derives `key` from
# the fit's seed, the epoch and the layer and `row` is the row's index in the training
# data: the masks do not depend on batch boundaries or on the thread that computes them.

cdef unsigned long long mix64(unsigned long long z) noexcept nogil:
    """splitmix64's finalizer: a bijective 64-bit mixer."""
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL
    return z ^ (z >> 31)


cdef void dropout_apply(floating* A, Py_ssize_t ld, Py_ssize_t n, Py_ssize_t m,
                        const Py_ssize_t* rows, Py_ssize_t row0, Py_ssize_t col0,
                        unsigned long long key, double rate) noexcept nogil:
    """Inverted dropout on the (n, m) block A (rows ld apart): keep each entry with
    probability 1 - rate and scale it by 1 / (1 - rate), or zero it. Block row i is data
    row rows[i] (or row0 + i when rows is NULL); block column j is unit col0 + j. The
    same call on a gradient applies the same mask (backward)."""
    cdef Py_ssize_t i, j
    cdef unsigned long long row_key
    cdef floating* a
    cdef floating scale = <floating> (1 / (1 - rate))
    # keep when the top 24 bits, as a fraction of 2^24, are >= rate
    cdef unsigned long long threshold = <unsigned long long> (rate * 16777216.0)
    for i in range(n):
        row_key = mix64(key ^ <unsigned long long> (rows[i] if rows != NULL else row0 + i))
        a = A + i * ld
        for j in range(m):
            if (mix64(row_key + <unsigned long long> (col0 + j) * 0x9e3779b97f4a7c15ULL)
                    >> 40) >= threshold:
                a[j] = a[j] * scale
            else:
                a[j] = 0


# --- batch normalization -------------------------------------------------------------
# Per unit j over the n rows of a batch: xh = (z - mean) / sqrt(var + eps) (biased
# variance, as Keras), y = gamma * xh + beta. Both kernels work on the columns c0:c1
# only, so callers can share columns among threads; `acc` is double scratch of at least
# 2 * m, summed in row order (deterministic for any thread count).

cdef void batchnorm_forward(floating* Y, floating* XH, floating* mean, floating* var,
                            const floating* gamma, double* acc,
                            Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                            double eps, bint batch_stats) noexcept nogil:
    """Y (n, m) holds z on entry and gamma * xh on exit (the caller adds beta with the
    activation), XH gets xh. batch_stats: mean and var
    are computed from the batch (and stored); otherwise they are read (running
    statistics)."""
    cdef Py_ssize_t i, j
    cdef floating* y
    cdef floating* xh
    cdef double d
    cdef floating inv
    if batch_stats:
        for j in range(c0, c1):
            acc[j] = 0
            acc[m + j] = 0
        for i in range(n):
            y = Y + i * m
            for j in range(c0, c1):
                acc[j] += y[j]
        for j in range(c0, c1):
            acc[j] /= n
        for i in range(n):
            y = Y + i * m
            for j in range(c0, c1):
                d = y[j] - acc[j]
                acc[m + j] += d * d
        for j in range(c0, c1):
            mean[j] = <floating> acc[j]
            var[j] = <floating> (acc[m + j] / n)
    for j in range(c0, c1):
        acc[m + j] = 1 / sqrt(<double> var[j] + eps)
    for i in range(n):
        y = Y + i * m
        xh = XH + i * m
        for j in range(c0, c1):
            inv = <floating> acc[m + j]
            xh[j] = (y[j] - mean[j]) * inv
            y[j] = gamma[j] * xh[j]


cdef void batchnorm_backward(floating* D, const floating* XH, const floating* var,
                             const floating* gamma, floating* g_gamma, floating* g_beta,
                             double* acc, Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0,
                             Py_ssize_t c1, double eps, floating scale) noexcept nogil:
    """D (n, m) holds dL/dy on entry and dL/dz on exit (batch statistics):
    dz = gamma / sqrt(var + eps) * (dy - mean(dy) - xh * mean(dy * xh)).
    g_gamma = scale * sum(dy * xh), g_beta = scale * sum(dy) over the rows."""
    cdef Py_ssize_t i, j
    cdef floating* d
    cdef const floating* xh
    cdef floating k, mb, mg
    for j in range(c0, c1):
        acc[j] = 0
        acc[m + j] = 0
    for i in range(n):
        d = D + i * m
        xh = XH + i * m
        for j in range(c0, c1):
            acc[j] += d[j]
            acc[m + j] += d[j] * xh[j]
    for j in range(c0, c1):
        g_beta[j] = <floating> (scale * acc[j])
        g_gamma[j] = <floating> (scale * acc[m + j])
    for i in range(n):
        d = D + i * m
        xh = XH + i * m
        for j in range(c0, c1):
            k = <floating> (gamma[j] / sqrt(<double> var[j] + eps))
            mb = <floating> (acc[j] / n)
            mg = <floating> (acc[m + j] / n)
            d[j] = k * (d[j] - mb - xh[j] * mg)


# --- training score --------------------------------------------------------------------

cdef void score_stats(double* stats, const floating* P, const floating* Y,
                      const floating* sw, Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil:
    """Add one batch's predictions P (n, m, after the output activation) against the
    targets Y to the epoch's score sums. Classifiers (SOFTMAX, LOGISTIC): stats[0] +=
    weight of the rows whose predicted labels are all right, stats[1] += total weight.
    Regressors: per output k, stats[2 + 4k:] = (weight, weighted mean of y, weighted
    sum of squared deviations of y, weighted sum of squared residuals), each batch's
    moments merged into the running ones (Chan et al.) so that no large sums cancel."""
    cdef Py_ssize_t i, j, best
    cdef const floating* p
    cdef const floating* y
    cdef double w, wb, mb, m2b, res, delta, r
    cdef double* s
    cdef floating top
    cdef bint right, better
    if act == SOFTMAX or act == LOGISTIC:
        for i in range(n):
            p = P + i * m
            y = Y + i * m
            w = sw[i] if sw != NULL else 1
            if act == SOFTMAX:
                # the first largest entry, written so that it compiles without branches
                # (the data-dependent branches were mispredicted half the time)
                best = 0
                top = p[0]
                for j in range(1, m):
                    better = p[j] > top
                    best = j if better else best
                    top = p[j] if better else top
                right = y[best] == 1
            else:
                right = True
                for j in range(m):
                    if (p[j] > 0.5) != (y[j] > 0.5):
                        right = False
            stats[0] += w if right else 0
            stats[1] += w
        return
    for j in range(m):
        wb = mb = m2b = res = 0
        for i in range(n):
            w = sw[i] if sw != NULL else 1
            wb += w
            mb += w * Y[i * m + j]
        if wb == 0:
            continue
        mb /= wb
        for i in range(n):
            w = sw[i] if sw != NULL else 1
            delta = Y[i * m + j] - mb
            r = Y[i * m + j] - P[i * m + j]
            m2b += w * delta * delta
            res += w * r * r
        s = stats + 2 + 4 * j
        delta = mb - s[1]
        s[2] += m2b + delta * delta * s[0] * wb / (s[0] + wb)
        s[1] += delta * wb / (s[0] + wb)
        s[0] += wb
        s[3] += res


cdef void debug_fail(const char* what) noexcept nogil:
    """Debug builds only: a broken invariant in compiled code stops the process loudly."""
    fprintf(stderr, b"cymlp debug check failed: %s\n", what)
    abort()


# True in a debug build (CYMLP_DEBUG=1 at build time).
DEBUG_BUILD = bool(CYMLP_DEBUG)


def _softmax_exp(const float[::1] x):
    """The float softmax's exp (for x <= 0) on each entry of x, as a new array (tests)."""
    out = np.empty(x.shape[0], dtype=np.float32)
    cdef float[::1] o = out
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        o[i] = _expf_nonpositive(x[i])
    return out


# The scan behind the estimators' check that X has no NaN or infinity (scikit-learn's
# check_array sums X in one thread instead: 11 ms of a 60000 x 784 float32 fit). A value
# is not finite when its exponent bits are all ones; adding one to the lowest exponent
# bit then carries into the sign bit. Only AND, ADD and OR: the loop vectorizes with
# the baseline (SSE2) instructions.
cdef extern from *:
    """
    static inline int cymlp_nonfinite32(const uint32_t* x, Py_ssize_t n) {
        uint32_t acc = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            acc |= (x[i] & 0x7f800000u) + 0x00800000u;
        return (acc >> 31) != 0;
    }
    static inline int cymlp_nonfinite64(const uint64_t* x, Py_ssize_t n) {
        uint64_t acc = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            acc |= (x[i] & 0x7ff0000000000000ull) + 0x0010000000000000ull;
        return (acc >> 63) != 0;
    }
    """
    bint nonfinite32 "cymlp_nonfinite32" (const uint32_t* x, Py_ssize_t n) noexcept nogil
    bint nonfinite64 "cymlp_nonfinite64" (const uint64_t* x, Py_ssize_t n) noexcept nogil


cdef bint block_nonfinite(const floating* A, Py_ssize_t ld, Py_ssize_t n,
                          Py_ssize_t m) noexcept nogil:
    """Whether the n x m block A (rows ld apart) holds a NaN or an infinity."""
    cdef Py_ssize_t r
    for r in range(n):
        if floating is float:
            if nonfinite32(<const uint32_t*> (A + r * ld), m):
                return True
        else:
            if nonfinite64(<const uint64_t*> (A + r * ld), m):
                return True
    return False


cdef Py_ssize_t FINITE_CHUNK = 1 << 16  # values per chunk of the scan
cdef Py_ssize_t FINITE_PARALLEL_MIN = 1 << 20  # smaller arrays are scanned in one thread


def all_finite(x):
    """Whether the float32 or float64 array x has no NaN and no infinity, or None where
    this scan does not apply (another dtype, or not contiguous in memory): the caller
    then checks another way. Large arrays are scanned by the OpenMP threads."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64) or not (
            x.flags.c_contiguous or x.flags.f_contiguous):
        return None
    cdef Py_ssize_t n = x.size, c, n_chunks = (n + FINITE_CHUNK - 1) // FINITE_CHUNK
    cdef int n_threads = engine_threads(omp_get_max_threads()) if n >= FINITE_PARALLEL_MIN else 1
    cdef int bad = 0
    if n == 0:
        return True
    flat = x.reshape(-1, order="A").view(np.uint32 if x.dtype == np.float32 else np.uint64)
    cdef const uint32_t[::1] x32
    cdef const uint64_t[::1] x64
    if x.dtype == np.float32:
        x32 = flat
        for c in prange(n_chunks, nogil=True, num_threads=n_threads, schedule="static"):
            bad += nonfinite32(&x32[0] + c * FINITE_CHUNK,
                               min(FINITE_CHUNK, n - c * FINITE_CHUNK))
    else:
        x64 = flat
        for c in prange(n_chunks, nogil=True, num_threads=n_threads, schedule="static"):
            bad += nonfinite64(&x64[0] + c * FINITE_CHUNK,
                               min(FINITE_CHUNK, n - c * FINITE_CHUNK))
    return bad == 0
