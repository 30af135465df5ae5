"""Optimizer steps over the flat parameter buffer, and the optimizer state objects.

One step is one pass over all parameters: the L2 gradient alpha * W / n is added on the
fly for the weights (the first n_decay entries; biases follow them), the state and the
parameters are updated, and the sum of squares of the new weights is returned for the
next mini-batch's L2 loss term. The pass runs over fixed-size chunks (threaded when the
buffer is large enough to pay for a fork/join) and each chunk's partial sum is kept
separately and added in order, so the result does not depend on the thread count.
"""
import numpy as np
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

cdef Py_ssize_t CHUNK = 4096
# Below this many parameters the step runs on one thread: a fork/join costs microseconds.
cdef Py_ssize_t PARALLEL_MIN = 1 << 40


cdef inline double _chunk_step(const StepConfig* cfg, floating* w, const floating* g,
                               floating* s1, floating* s2, Py_ssize_t lo, Py_ssize_t hi,
                               Py_ssize_t n_decay, bint want_sq) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi, wi
    cdef floating lr = <floating> cfg.lr
    cdef floating mu = <floating> cfg.momentum
    cdef floating l2 = <floating> cfg.l2
    cdef floating b1 = <floating> cfg.beta_1
    cdef floating b2 = <floating> cfg.beta_2
    cdef floating eps = <floating> cfg.epsilon
    cdef double sq = 0
    for i in range(lo, hi):
        wi = w[i]
        gi = g[i] + l2 * wi if i < n_decay else g[i]
        if cfg.kind == SGD:
            vi = mu * s1[i] - lr * gi
            s1[i] = vi
            if cfg.nesterov:
                wi = wi + (mu * vi - lr * gi)
            else:
                wi = wi + vi
        else:
            s1[i] = b1 * s1[i] + (1 - b1) * gi
            s2[i] = b2 * s2[i] + (1 - b2) * gi * gi
            if floating is float:
                wi = wi - lr * s1[i] / (sqrtf(s2[i]) + eps)
            else:
                wi = wi - lr * s1[i] / (sqrt(s2[i]) + eps)
        w[i] = wi
        if want_sq and i < n_decay:
            sq += wi * wi
    return sq


cdef double step(const StepConfig* cfg, floating* w, const floating* g, floating* s1,
                 floating* s2, Py_ssize_t n, Py_ssize_t n_decay, double* partial,
                 bint want_sq) noexcept nogil:
    """Update w (n,) in place from gradient g; s1/s2 are the state buffers (velocity, or
    Adam's m and v). partial needs one double per CHUNK. Returns sum(w[:n_decay]**2)."""
    cdef Py_ssize_t c, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef double sq = 0
    if n < PARALLEL_MIN:
        for c in range(n_chunks):
            partial[c] = _chunk_step(cfg, w, g, s1, s2, c * CHUNK, min(n, (c + 1) * CHUNK),
                                     n_decay, want_sq)
    else:
        for c in prange(n_chunks, schedule="static"):
            partial[c] = _chunk_step(cfg, w, g, s1, s2, c * CHUNK, min(n, (c + 1) * CHUNK),
                                     n_decay, want_sq)
    for c in range(n_chunks):
        sq += partial[c]
    return sq


def n_partials(Py_ssize_t n):
    """Scratch doubles that step() needs for n parameters."""
    return (n + CHUNK - 1) // CHUNK


class SGDOptimizer:
    """Stochastic gradient descent with (Nesterov) momentum and scikit-learn's schedules.

    `velocity` is a flat buffer shaped like the parameters.
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
        return dict(kind=SGD, lr=self.learning_rate, momentum=self.momentum,
                    nesterov=self.nesterov, beta_1=0.0, beta_2=0.0, epsilon=0.0, l2=0.0)

    def buffers(self):
        return self.velocity, self.velocity

    def after_steps(self, n_steps):
        pass

    def iteration_ends(self, time_step):
        """invscaling: eta = eta0 / (t + 1) ** power_t, t = samples seen so far."""
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Called when progress stalls; 'adaptive' divides the step by 5 instead of stopping
        until it falls to 1e-6. Returns True to stop."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer:
    """Adam; `t` counts mini-batch steps, `m` and `v` are flat moment buffers."""

    kind = "adam"

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
        return dict(kind=ADAM, lr=self.learning_rate_init, momentum=0.0, nesterov=False,
                    beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, l2=0.0)

    def buffers(self):
        return self.m, self.v

    def after_steps(self, n_steps):
        self.t += n_steps
        self.learning_rate = (self.learning_rate_init * np.sqrt(1 - self.beta_2 ** self.t)
                              / (1 - self.beta_1 ** self.t))

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True
