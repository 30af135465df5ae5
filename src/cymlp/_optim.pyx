"""Optimizer steps over the flat parameter buffer, and the optimizer state objects.

One step is one pass over all parameters: the L2 gradient alpha * W / n is added on the
fly for the weights (the first n_decay entries; biases follow them; AdamW's decoupled
decay applies to the same entries), the state and the parameters are updated, and the
sum of squares of the new weights is returned for the next mini-batch's L2 loss term.
The pass runs over fixed-size chunks, shared among the OpenMP threads when the buffer is
large enough to pay for a fork/join; each chunk's partial sum is kept apart and the
partials are added in order, so the result does not depend on the thread count.
"""
import copy

import numpy as np
from cython cimport floating
from cython.parallel cimport parallel, prange

from ._fpenv cimport fp_enter, fp_leave

cdef Py_ssize_t CHUNK = 4096
# Below this many parameters one thread does the step: a fork/join costs microseconds.
cdef Py_ssize_t PARALLEL_MIN = 1 << 15


# The loops over one chunk, in C so that x86-64 gets them twice: for the baseline
# instruction set (SSE2, what every x86-64 CPU has) and for AVX2, picked at import from
# what the CPU offers (measured here: the digits fit 8 % faster; the sum of squares in
# float vectors rather than converted to double, another 9 %, and the batch-32 epoch
# 7 %). Both variants compute the same expressions in the same order: the
# AVX2 target has no fused multiply-add, sqrt and division are correctly rounded at any
# vector width, and the sum of squares keeps its partial sums in a fixed pattern
# rather than letting the compiler reassociate. So a step gives the same bits on every
# x86-64 CPU, whichever variant runs (tests/test_optimizers.py checks that).
cdef extern from *:
    """
    #include <string.h>
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
        #define CYMLP_HAVE_AVX2 1
    #else
        #define CYMLP_HAVE_AVX2 0
    #endif

    /* part[j] = the sum over k of w[lo + P k + j] ** 2 (k from 0 while a whole group of
       P remains), in the parameters' type, P = 4 * 32 / sizeof(T): four 32-byte vectors
       of partial sums, four chains of additions to hide their latency. A chunk has at
       most CHUNK entries, so a float partial sums at most 128 squares (scikit-learn sums
       them all in float). Written with vector types where the compiler has them (it
       does not vectorize the plain loop without reassociating), else scalar: the same
       additions in the same order either way. */
    #define CYMLP_LANES(T) (32 / sizeof(T))
    #if defined(__GNUC__) || defined(__clang__)
        #define CYMLP_SUM_SQ_PARTS(T)                                                     \\
            typedef T vec __attribute__((vector_size(32)));                               \\
            vec p[4], x;                                                                  \\
            T part[4 * CYMLP_LANES(T)];                                                   \\
            Py_ssize_t i = lo, j;                                                         \\
            memset(p, 0, sizeof p);                                                       \\
            for (; i + 4 * (Py_ssize_t) CYMLP_LANES(T) <= hi; i += 4 * CYMLP_LANES(T)) {  \\
                for (j = 0; j < 4; j++) {                                                 \\
                    memcpy(&x, w + i + CYMLP_LANES(T) * j, sizeof x);                     \\
                    p[j] += x * x;                                                        \\
                }                                                                         \\
            }                                                                             \\
            memcpy(part, p, sizeof part);
    #else
        #define CYMLP_SUM_SQ_PARTS(T)                                                     \\
            T part[4 * CYMLP_LANES(T)] = {0};                                             \\
            Py_ssize_t i = lo, j;                                                         \\
            for (; i + 4 * (Py_ssize_t) CYMLP_LANES(T) <= hi; i += 4 * CYMLP_LANES(T))    \\
                for (j = 0; j < 4 * CYMLP_LANES(T); j++)                                  \\
                    part[j] += w[i + j] * w[i + j];
    #endif

    #define CYMLP_OPTIM_LOOPS(T, SFX, SQRT, TARGET)                                       \\
    static TARGET void cymlp_sgd_##SFX(T* w, T* v, const T* g, Py_ssize_t lo,             \\
                                       Py_ssize_t hi, T lr, T mu, T l2, int nesterov) {   \\
        Py_ssize_t i;                                                                     \\
        if (nesterov) {                                                                   \\
            for (i = lo; i < hi; i++) {                                                   \\
                T gi = g[i] + l2 * w[i];                                                  \\
                T vi = mu * v[i] - lr * gi;                                               \\
                v[i] = vi;                                                                \\
                w[i] = w[i] + (mu * vi - lr * gi);                                        \\
            }                                                                             \\
        } else {                                                                          \\
            for (i = lo; i < hi; i++) {                                                   \\
                T vi = mu * v[i] - lr * (g[i] + l2 * w[i]);                               \\
                v[i] = vi;                                                                \\
                w[i] = w[i] + vi;                                                         \\
            }                                                                             \\
        }                                                                                 \\
    }                                                                                     \\
    /* Adam and AdamW: keep = 1 - decay scales w first (decoupled weight decay,           \\
       PyTorch's form); keep = 1 is Adam exactly (1 * w == w). */                         \\
    static TARGET void cymlp_adam_##SFX(T* w, T* m, T* v, const T* g, Py_ssize_t lo,      \\
                                        Py_ssize_t hi, T lr, T b1, T b2, T eps, T l2,     \\
                                        T keep) {                                         \\
        T c1 = 1 - b1, c2 = 1 - b2;                                                       \\
        Py_ssize_t i;                                                                     \\
        for (i = lo; i < hi; i++) {                                                       \\
            T gi = g[i] + l2 * w[i];                                                      \\
            T mi = b1 * m[i] + c1 * gi;                                                   \\
            T vi = b2 * v[i] + c2 * gi * gi;                                              \\
            m[i] = mi;                                                                    \\
            v[i] = vi;                                                                    \\
            w[i] = keep * w[i] - lr * mi / (SQRT(vi) + eps);                              \\
        }                                                                                 \\
    }                                                                                     \\
    /* PyTorch's RMSprop: eps is added outside the square root. */                        \\
    static TARGET void cymlp_rmsprop_##SFX(T* w, T* v, const T* g, Py_ssize_t lo,         \\
                                           Py_ssize_t hi, T lr, T rho, T eps, T l2) {     \\
        T c = 1 - rho;                                                                    \\
        Py_ssize_t i;                                                                     \\
        for (i = lo; i < hi; i++) {                                                       \\
            T gi = g[i] + l2 * w[i];                                                      \\
            T vi = rho * v[i] + c * gi * gi;                                              \\
            v[i] = vi;                                                                    \\
            w[i] = w[i] - lr * gi / (SQRT(vi) + eps);                                     \\
        }                                                                                 \\
    }                                                                                     \\
    static TARGET double cymlp_sum_sq_##SFX(const T* w, Py_ssize_t lo, Py_ssize_t hi) {   \\
        CYMLP_SUM_SQ_PARTS(T)                                                             \\
        double sq = 0;                                                                    \\
        for (; i < hi; i++)                                                               \\
            sq += (double) w[i] * w[i];                                                   \\
        for (j = 0; j < 4 * (Py_ssize_t) CYMLP_LANES(T); j++)                           \\
            sq += (double) part[j];                                                       \\
        return sq;                                                                        \\
    }

    CYMLP_OPTIM_LOOPS(float, f_base, sqrtf, )
    CYMLP_OPTIM_LOOPS(double, d_base, sqrt, )
    #if CYMLP_HAVE_AVX2
        CYMLP_OPTIM_LOOPS(float, f_avx2, sqrtf, __attribute__((target("avx2"))))
        CYMLP_OPTIM_LOOPS(double, d_avx2, sqrt, __attribute__((target("avx2"))))
    #endif

    /* The variant in use: function pointers, set by cymlp_loops_select. */
    #define CYMLP_LOOP_POINTERS(T, SFX)                                                    \\
    static void (*cymlp_sgd_##SFX)(T*, T*, const T*, Py_ssize_t, Py_ssize_t, T, T, T,     \\
                                   int) = cymlp_sgd_##SFX##_base;                          \\
    static void (*cymlp_adam_##SFX)(T*, T*, T*, const T*, Py_ssize_t, Py_ssize_t, T, T, T,\\
                                    T, T, T) = cymlp_adam_##SFX##_base;                    \\
    static void (*cymlp_rmsprop_##SFX)(T*, T*, const T*, Py_ssize_t, Py_ssize_t, T, T, T, \\
                                       T) = cymlp_rmsprop_##SFX##_base;                    \\
    static double (*cymlp_sum_sq_##SFX)(const T*, Py_ssize_t, Py_ssize_t)                 \\
        = cymlp_sum_sq_##SFX##_base;
    CYMLP_LOOP_POINTERS(float, f)
    CYMLP_LOOP_POINTERS(double, d)

    #define CYMLP_SET_LOOPS(SFX, VARIANT)                                                  \\
        cymlp_sgd_##SFX = cymlp_sgd_##SFX##_##VARIANT;                                     \\
        cymlp_adam_##SFX = cymlp_adam_##SFX##_##VARIANT;                                   \\
        cymlp_rmsprop_##SFX = cymlp_rmsprop_##SFX##_##VARIANT;                             \\
        cymlp_sum_sq_##SFX = cymlp_sum_sq_##SFX##_##VARIANT;

    /* Use the AVX2 loops if allowed and the CPU (and OS) supports them; returns 1 if it
       does so. */
    static int cymlp_loops_select(int allow_avx2) {
    #if CYMLP_HAVE_AVX2
        if (allow_avx2 && __builtin_cpu_supports("avx2")) {
            CYMLP_SET_LOOPS(f, avx2)
            CYMLP_SET_LOOPS(d, avx2)
            return 1;
        }
    #endif
        CYMLP_SET_LOOPS(f, base)
        CYMLP_SET_LOOPS(d, base)
        return 0;
    }
    """
    void sgd_loop_f "cymlp_sgd_f" (float* w, float* v, const float* g, Py_ssize_t lo,
                                   Py_ssize_t hi, float lr, float mu, float l2,
                                   int nesterov) noexcept nogil
    void sgd_loop_d "cymlp_sgd_d" (double* w, double* v, const double* g, Py_ssize_t lo,
                                   Py_ssize_t hi, double lr, double mu, double l2,
                                   int nesterov) noexcept nogil
    void adam_loop_f "cymlp_adam_f" (float* w, float* m, float* v, const float* g,
                                     Py_ssize_t lo, Py_ssize_t hi, float lr, float b1,
                                     float b2, float eps, float l2,
                                     float keep) noexcept nogil
    void adam_loop_d "cymlp_adam_d" (double* w, double* m, double* v, const double* g,
                                     Py_ssize_t lo, Py_ssize_t hi, double lr, double b1,
                                     double b2, double eps, double l2,
                                     double keep) noexcept nogil
    void rmsprop_loop_f "cymlp_rmsprop_f" (float* w, float* v, const float* g,
                                           Py_ssize_t lo, Py_ssize_t hi, float lr,
                                           float rho, float eps, float l2) noexcept nogil
    void rmsprop_loop_d "cymlp_rmsprop_d" (double* w, double* v, const double* g,
                                           Py_ssize_t lo, Py_ssize_t hi, double lr,
                                           double rho, double eps, double l2) noexcept nogil
    double sum_sq_f "cymlp_sum_sq_f" (const float* w, Py_ssize_t lo,
                                      Py_ssize_t hi) noexcept nogil
    double sum_sq_d "cymlp_sum_sq_d" (const double* w, Py_ssize_t lo,
                                      Py_ssize_t hi) noexcept nogil
    int loops_select "cymlp_loops_select" (int allow_avx2) noexcept


cdef str _LOOPS = "avx2" if loops_select(1) else "baseline"


def _loops(allow_avx2=None):
    """The variant of the optimizer loops in use ("avx2" or "baseline"); allow_avx2=False
    forces the baseline one, True goes back to the best the CPU has (for tests)."""
    global _LOOPS
    if allow_avx2 is not None:
        _LOOPS = "avx2" if loops_select(bool(allow_avx2)) else "baseline"
    return _LOOPS


cdef inline void _sgd_chunk(floating* w, floating* v, const floating* g, Py_ssize_t lo,
                            Py_ssize_t hi, floating lr, floating mu, floating l2,
                            bint nesterov) noexcept nogil:
    if floating is float:
        sgd_loop_f(w, v, g, lo, hi, lr, mu, l2, nesterov)
    else:
        sgd_loop_d(w, v, g, lo, hi, lr, mu, l2, nesterov)


cdef inline void _adam_chunk(floating* w, floating* m, floating* v, const floating* g,
                             Py_ssize_t lo, Py_ssize_t hi, floating lr, floating b1,
                             floating b2, floating eps, floating l2,
                             floating keep) noexcept nogil:
    if floating is float:
        adam_loop_f(w, m, v, g, lo, hi, lr, b1, b2, eps, l2, keep)
    else:
        adam_loop_d(w, m, v, g, lo, hi, lr, b1, b2, eps, l2, keep)


cdef inline void _rmsprop_chunk(floating* w, floating* v, const floating* g, Py_ssize_t lo,
                                Py_ssize_t hi, floating lr, floating rho, floating eps,
                                floating l2) noexcept nogil:
    if floating is float:
        rmsprop_loop_f(w, v, g, lo, hi, lr, rho, eps, l2)
    else:
        rmsprop_loop_d(w, v, g, lo, hi, lr, rho, eps, l2)


cdef inline double _sum_sq(const floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    if floating is float:
        return sum_sq_f(w, lo, hi)
    else:
        return sum_sq_d(w, lo, hi)


cdef inline double _chunk_step(const StepConfig* cfg, floating* w, const floating* g,
                               floating* s1, floating* s2, Py_ssize_t lo, Py_ssize_t hi,
                               Py_ssize_t n_decay, bint want_sq) noexcept nogil:
    """Update w[lo:hi]; the L2 term applies to indices below n_decay. Returns the sum of
    squares of the updated weights in [lo, min(hi, n_decay))."""
    cdef Py_ssize_t mid = max(lo, min(hi, n_decay))
    cdef floating l2 = <floating> cfg.l2, lr = <floating> cfg.lr
    cdef floating eps = <floating> cfg.epsilon
    cdef floating keep = <floating> (1 - cfg.decay) if cfg.kind == ADAMW else 1
    if cfg.kind == SGD:
        _sgd_chunk(w, s1, g, lo, mid, lr, <floating> cfg.momentum, l2, cfg.nesterov)
        _sgd_chunk(w, s1, g, mid, hi, lr, <floating> cfg.momentum, 0, cfg.nesterov)
    elif cfg.kind == RMSPROP:
        _rmsprop_chunk(w, s1, g, lo, mid, lr, <floating> cfg.rho, eps, l2)
        _rmsprop_chunk(w, s1, g, mid, hi, lr, <floating> cfg.rho, eps, 0)
    else:  # ADAM, ADAMW
        _adam_chunk(w, s1, s2, g, lo, mid, lr, <floating> cfg.beta_1, <floating> cfg.beta_2,
                    eps, l2, keep)
        _adam_chunk(w, s1, s2, g, mid, hi, lr, <floating> cfg.beta_1, <floating> cfg.beta_2,
                    eps, 0, 1)
    return _sum_sq(w, lo, mid) if want_sq else 0.0


cdef double step(const StepConfig* cfg, floating* w, const floating* g, floating* s1,
                 floating* s2, Py_ssize_t n, Py_ssize_t n_decay, const Py_ssize_t* chunks,
                 Py_ssize_t n_chunks, double* partial, bint want_sq,
                 int n_threads) noexcept nogil:
    """Update w (n,) in place from gradient g; s1/s2 are the state buffers (SGD's velocity
    or RMSprop's v, passed twice; Adam's m and v). Returns sum(w[:n_decay]**2).
    chunks: n_chunks pairs (lo, hi) that cover [0, n) once (chunk_bounds), stepped in
    that order, each thread taking a contiguous run of them; partial: n_chunks doubles.
    The sum of squares adds the chunks' partial sums in order, so the result does not
    depend on the thread count."""
    cdef Py_ssize_t v
    cdef double sq = 0
    if n < PARALLEL_MIN or n_threads == 1:
        for v in range(n_chunks):
            partial[v] = _chunk_step(cfg, w, g, s1, s2, chunks[2 * v], chunks[2 * v + 1],
                                     n_decay, want_sq)
    else:
        with parallel(num_threads=n_threads):
            fp_enter()
            for v in prange(n_chunks, schedule="static"):
                partial[v] = _chunk_step(cfg, w, g, s1, s2, chunks[2 * v], chunks[2 * v + 1],
                                         n_decay, want_sq)
            fp_leave()
    for v in range(n_chunks):
        sq += partial[v]
    return sq


def chunk_bounds(segments):
    """The chunks of step() for the parameter ranges [lo, hi) in `segments`, in order:
    an (n_chunks, 2) array of (lo, hi), each range cut into CHUNK-sized pieces."""
    bounds = [(s, min(hi, s + CHUNK)) for lo, hi in segments for s in range(lo, hi, CHUNK)]
    return np.array(bounds, dtype=np.intp).reshape(-1, 2)


def _tuning(parallel_min=None):
    """Read (and, for measurements, set) the step's threading threshold."""
    global PARALLEL_MIN
    old = PARALLEL_MIN
    if parallel_min is not None:
        PARALLEL_MIN = parallel_min
    return old


def _config(kind, lr, *, momentum=0.0, nesterov=False, beta_1=0.0, beta_2=0.0,
            epsilon=0.0, decay=0.0, rho=0.0):
    """What the engine reads into its StepConfig (l2 is set per mini-batch)."""
    return dict(kind=kind, lr=lr, momentum=momentum, nesterov=nesterov, beta_1=beta_1,
                beta_2=beta_2, epsilon=epsilon, l2=0.0, decay=decay, rho=rho)


class _Optimizer:
    """What the optimizers share: a constant step size `learning_rate`, stop on a stall."""

    @property
    def base_learning_rate(self):
        """The step size of the next epoch (before Adam's bias correction)."""
        return self.learning_rate

    def set_base_learning_rate(self, lr):
        """Set the step size of the next epoch (a learning-rate schedule callback)."""
        self.learning_rate = float(lr)

    def after_steps(self, n_steps):
        pass

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True

    def snapshot(self):
        """A copy with state buffers of its own (what an epoch that must be undone goes
        back to): copy.deepcopy's generic walk cost about 50 us per epoch, 4 % of a
        small network's fit."""
        new = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                setattr(new, name, value.copy())
        return new


class SGDOptimizer(_Optimizer):
    """Stochastic gradient descent with (Nesterov) momentum and scikit-learn's schedules.

    `velocity` is a flat buffer shaped like the parameters. Under 'invscaling' a rate set
    by set_base_learning_rate lasts one epoch: iteration_ends recomputes it from
    learning_rate_init.
    """

    kind = "sgd"

    def __init__(self, n_params, dtype, learning_rate_init=0.1, lr_schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocity = np.zeros(n_params, dtype=dtype)

    def config(self):
        return _config(SGD, self.learning_rate, momentum=self.momentum,
                       nesterov=self.nesterov)

    def buffers(self):
        return self.velocity, self.velocity

    def state_arrays(self):
        """The distinct state buffers (what a model file stores)."""
        return [self.velocity]

    def iteration_ends(self, time_step):
        """invscaling: eta = eta0 / (t + 1) ** power_t, t = samples seen so far."""
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Called when progress stalls; 'adaptive' divides the step by 5 instead of stopping
        until it falls to 1e-6. Returns True to stop."""
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer(_Optimizer):
    """Adam; `t` counts mini-batch steps, `m` and `v` are flat moment buffers.

    `learning_rate_init` is the base step size; `learning_rate` the bias-corrected one of
    the last step, learning_rate_init * sqrt(1 - beta_2**t) / (1 - beta_1**t) (the engine
    recomputes it at every step from the base).
    """

    kind = "adam"
    _KIND = ADAM

    def __init__(self, n_params, dtype, learning_rate_init=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.m = np.zeros(n_params, dtype=dtype)
        self.v = np.zeros(n_params, dtype=dtype)

    def config(self):
        return _config(self._KIND, self.learning_rate_init, beta_1=self.beta_1,
                       beta_2=self.beta_2, epsilon=self.epsilon)

    def buffers(self):
        return self.m, self.v

    def state_arrays(self):
        """The distinct state buffers (what a model file stores)."""
        return [self.m, self.v]

    @property
    def base_learning_rate(self):
        return float(self.learning_rate_init)

    def set_base_learning_rate(self, lr):
        self.learning_rate_init = float(lr)
        self._correct()

    def after_steps(self, n_steps):
        if n_steps == 0:
            return
        self.t += n_steps
        self._correct()

    def _correct(self):
        if self.t == 0:
            self.learning_rate = float(self.learning_rate_init)
        else:
            self.learning_rate = (self.learning_rate_init * np.sqrt(1 - self.beta_2 ** self.t)
                                  / (1 - self.beta_1 ** self.t))


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's and Keras's AdamW):
    each step scales the weights (not the biases) by 1 - base step size * weight_decay,
    the base step size not bias-corrected."""

    kind = "adamw"
    _KIND = ADAMW

    def __init__(self, n_params, dtype, learning_rate_init=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, weight_decay=0.01):
        super().__init__(n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon)
        self.weight_decay = weight_decay

    def config(self):
        c = super().config()
        c["decay"] = self.learning_rate_init * self.weight_decay
        return c


class RMSpropOptimizer(_Optimizer):
    """RMSprop (PyTorch's form): v = rho v + (1 - rho) g**2, w -= lr g / (sqrt(v) + eps),
    with a constant step size `learning_rate`; `v` is a flat buffer."""

    kind = "rmsprop"

    def __init__(self, n_params, dtype, learning_rate_init=0.001, rho=0.9, epsilon=1e-8):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.rho = rho
        self.epsilon = epsilon
        self.v = np.zeros(n_params, dtype=dtype)

    def config(self):
        return _config(RMSPROP, self.learning_rate, epsilon=self.epsilon, rho=self.rho)

    def buffers(self):
        return self.v, self.v

    def state_arrays(self):
        """The distinct state buffers (what a model file stores)."""
        return [self.v]
