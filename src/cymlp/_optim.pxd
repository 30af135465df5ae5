from cython cimport floating

cdef struct StepConfig:
    int kind            # an OptimizerKind
    double lr           # the step size for this step (Adam: already bias-corrected)
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double l2           # alpha / sum of sample weights: L2 gradient folded into the step
    # ADAMW: decoupled decay on the weights only, w *= 1 - decay (the base step size
    # times weight_decay)
    double decay
    double rho          # RMSPROP: decay rate of the squared-gradient average

cdef enum OptimizerKind:
    SGD = 0
    ADAM = 1
    ADAMW = 2
    RMSPROP = 3

cdef double step(const StepConfig* cfg, floating* w, const floating* g, floating* s1,
                 floating* s2, Py_ssize_t n, Py_ssize_t n_decay, const Py_ssize_t* chunks,
                 Py_ssize_t n_chunks, double* partial, bint want_sq,
                 int n_threads) noexcept nogil
