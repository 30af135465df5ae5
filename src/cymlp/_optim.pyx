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
from libc.math cimport sqrt, sqrtf

from ._fpenv cimport fp_enter, fp_leave

cdef Py_ssize_t CHUNK = 4096
# Below this many parameters one thread does the step: a fork/join costs microseconds.
cdef Py_ssize_t PARALLEL_MIN = 1 << 15


cdef inline void _sgd_chunk(floating* w, floating* v, const floating* g, Py_ssize_t lo,
                            Py_ssize_t hi, floating lr, floating mu, floating l2,
                            bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi
    if nesterov:
        for i in range(lo, hi):
            gi = g[i] + l2 * w[i]
            vi = mu * v[i] - lr * gi
            v[i] = vi
            w[i] = w[i] + (mu * vi - lr * gi)
    else:
        for i in range(lo, hi):
            vi = mu * v[i] - lr * (g[i] + l2 * w[i])
            v[i] = vi
            w[i] = w[i] + vi


cdef inline void _adam_chunk(floating* w, floating* m, floating* v, const floating* g,
                             Py_ssize_t lo, Py_ssize_t hi, floating lr, floating b1,
                             floating b2, floating eps, floating l2,
                             floating keep) noexcept nogil:
    # Adam and AdamW in one loop: keep = 1 - decay scales w first (decoupled weight
    # decay, PyTorch's form); keep = 1 is Adam exactly (1 * w == w).
    cdef Py_ssize_t i
    cdef floating gi, mi, vi
    cdef floating c1 = 1 - b1, c2 = 1 - b2  # typed, so float stays float
    for i in range(lo, hi):
        gi = g[i] + l2 * w[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        if floating is float:
            w[i] = keep * w[i] - lr * mi / (sqrtf(vi) + eps)
        else:
            w[i] = keep * w[i] - lr * mi / (sqrt(vi) + eps)


cdef inline void _rmsprop_chunk(floating* w, floating* v, const floating* g, Py_ssize_t lo,
                                Py_ssize_t hi, floating lr, floating rho, floating eps,
                                floating l2) noexcept nogil:
    # PyTorch's RMSprop: eps is added outside the square root.
    cdef Py_ssize_t i
    cdef floating gi, vi
    cdef floating c = 1 - rho
    for i in range(lo, hi):
        gi = g[i] + l2 * w[i]
        vi = rho * v[i] + c * gi * gi
        v[i] = vi
        if floating is float:
            w[i] = w[i] - lr * gi / (sqrtf(vi) + eps)
        else:
            w[i] = w[i] - lr * gi / (sqrt(vi) + eps)


cdef inline double _sum_sq(const floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # This module is compiled with -fassociative-math so that this sum vectorizes; the
    # order is fixed by the code, not by the number of threads.
    cdef Py_ssize_t i
    cdef double sq = 0
    for i in range(lo, hi):
        sq += <double> w[i] * w[i]
    return sq


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
                 floating* s2, Py_ssize_t n, Py_ssize_t n_decay, double* partial,
                 bint want_sq, int n_threads) noexcept nogil:
    """Update w (n,) in place from gradient g; s1/s2 are the state buffers (SGD's velocity
    or RMSprop's v, passed twice; Adam's m and v). partial needs one double per CHUNK.
    Returns sum(w[:n_decay]**2)."""
    cdef Py_ssize_t c, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef double sq = 0
    if n < PARALLEL_MIN or n_threads == 1:
        for c in range(n_chunks):
            partial[c] = _chunk_step(cfg, w, g, s1, s2, c * CHUNK, min(n, (c + 1) * CHUNK),
                                     n_decay, want_sq)
    else:
        with parallel(num_threads=n_threads):
            fp_enter()
            for c in prange(n_chunks, schedule="static"):
                partial[c] = _chunk_step(cfg, w, g, s1, s2, c * CHUNK, min(n, (c + 1) * CHUNK),
                                         n_decay, want_sq)
            fp_leave()
    for c in range(n_chunks):
        sq += partial[c]
    return sq


def _tuning(parallel_min=None):
    """Read (and, for measurements, set) the step's threading threshold."""
    global PARALLEL_MIN
    old = PARALLEL_MIN
    if parallel_min is not None:
        PARALLEL_MIN = parallel_min
    return old


def n_partials(Py_ssize_t n):
    """Scratch doubles that step() needs for n parameters."""
    return (n + CHUNK - 1) // CHUNK


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
