# cython: wraparound=True
# (The hot loops here use raw pointers; Python-level list indexing needs wraparound.)
"""The network: one flat parameter buffer, workspaces allocated once per fit, and the
compiled, GIL-free loops over mini-batches (train_epoch), over row chunks for the
full-batch objective (loss_and_grad, used by L-BFGS and the gradient tests) and for
prediction (predict).

Layout: params = [W_0.ravel(), ..., W_{L-1}.ravel(), b_0, ..., b_{L-1}] (scikit-learn's
_pack order), each W_l row-major (fan_in, fan_out). The weights come first so the L2
penalty applies to one contiguous prefix. A_l / D_l denote the activations and the loss
gradients (w.r.t. pre-activations) of layer l = 1..L, for the rows of the current batch;
A_0 is the input batch.
"""
import numpy as np
import scipy.sparse as sp

from cython cimport floating
from libc.math cimport sqrt, pow
from libc.time cimport clock, clock_t, CLOCKS_PER_SEC

from cython.parallel cimport prange
cimport openmp

from ._blas cimport gemm
from ._kernels cimport (CYMLP_DEBUG, EXP, IDENTITY, LOGISTIC, RELU, SOFTMAX, TANH,
                        act_backward, bias_act_forward, bias_grad, csr_forward,
                        csr_weight_grad, debug_fail, gather_rows, output_loss_backward)
from ._optim cimport StepConfig, step, ADAM, ADAMW
from ._optim import n_partials
from ._threads import blas_single_threaded

HIDDEN_ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
                      "relu": RELU}
OUTPUT_ACTIVATIONS = {"softmax": SOFTMAX, "logistic": LOGISTIC, "identity": IDENTITY,
                      "exp": EXP}
# Rows per chunk when predicting or evaluating the full-batch objective: bounds memory.
DEFAULT_CHUNK = 4096


cdef struct Net:
    int n_layers                 # L, the number of weight layers
    const Py_ssize_t* units      # L + 1 layer widths
    const Py_ssize_t* w_off      # offset of W_l in params (and grads)
    const Py_ssize_t* b_off      # offset of b_l
    const Py_ssize_t* a_off      # offset of A_l in the workspace, l = 1..L (index 0 unused)
    const Py_ssize_t* d_off      # offset of D_l
    int hidden_act
    int out_act
    int n_threads                # OpenMP threads; BLAS runs single-threaded inside them


cdef struct Rows:
    # Where input rows come from: a dense row-major array, or CSR arrays.
    const void* dense
    const void* data
    const Py_ssize_t* indices
    const Py_ssize_t* indptr
    Py_ssize_t n_rows
    Py_ssize_t n_cols


cdef struct Buffers:
    void* params
    void* grads
    void* state1
    void* state2
    void* ws          # activations and deltas
    void* xbuf        # gathered input rows
    void* ybuf        # gathered target rows
    void* swbuf       # gathered sample weights
    const void* Y     # (n, n_outputs) targets
    const void* sw    # (n,) sample weights or NULL


cdef struct Batch:
    # The input rows of one batch: a dense row-major block, or rows of a CSR matrix that
    # the first layer reads in place (sparse input is never densified).
    const void* dense           # (nb, n_features), or NULL for CSR
    const Rows* csr
    const Py_ssize_t* idx       # CSR row of batch row r: idx[r], or start + r when NULL
    Py_ssize_t start


cdef const floating* load_rows(const Rows* src, const Py_ssize_t* order, Py_ssize_t start,
                               Py_ssize_t nb, floating* buf, int n_threads) noexcept nogil:
    """Dense rows order[start:start + nb] (or start:start + nb when order is NULL) as one
    block: a pointer into the data itself when no gather is needed."""
    cdef const Py_ssize_t* idx = order + start if order != NULL else NULL
    cdef Py_ssize_t m = src.n_cols, blk, lo, n_blocks
    if idx == NULL:
        return <const floating*> src.dense + start * m
    if nb * m < GATHER_SPLIT_MIN:  # small: no fork/join
        _gather(src, idx, nb, buf)
        return buf
    n_blocks = (nb + 63) // 64
    for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
        lo = blk * nb // n_blocks
        _gather(src, idx + lo, (blk + 1) * nb // n_blocks - lo, buf + lo * m)
    return buf


cdef Batch batch_rows(const Rows* X, const Py_ssize_t* order, Py_ssize_t start,
                      Py_ssize_t nb, floating* buf, int n_threads) noexcept nogil:
    """The batch of rows order[start:start + nb] (or start:start + nb): dense rows are
    gathered into buf (or used in place), CSR rows are only pointed at."""
    cdef Batch b
    b.csr = NULL
    b.idx = NULL
    b.start = start
    if X.dense != NULL:
        b.dense = load_rows(X, order, start, nb, buf, n_threads)
    else:
        b.dense = NULL
        b.csr = X
        b.idx = order + start if order != NULL else NULL
    return b


cdef inline void _gather(const Rows* src, const Py_ssize_t* idx, Py_ssize_t count,
                         floating* out) noexcept nogil:
    """Dense rows idx[:count] into out."""
    cdef Py_ssize_t r
    if CYMLP_DEBUG:
        for r in range(count):
            if not 0 <= idx[r] < src.n_rows:
                debug_fail(b"load_rows: row index out of range")
    gather_rows(out, <const floating*> src.dense, idx, count, src.n_cols)


# Threads. The engine runs one OpenMP pool and keeps BLAS at one thread (two pools that
# spin starve each other on few cores). A large GEMM is cut into fixed BLOCK-wide blocks of
# output rows or columns, one single-threaded BLAS call each, shared among the threads;
# the elementwise work that follows a GEMM runs on each block while it is in cache. Block
# sizes depend only on the shapes, so no result depends on the number of threads.
cdef Py_ssize_t BLOCK = 128
cdef double SPLIT_MIN_FLOPS = 1e6     # smaller products run as one BLAS call, no fork/join
cdef Py_ssize_t GATHER_SPLIT_MIN = 1 << 16  # elements


def _tuning(block=None, split_min_flops=None, gather_split_min=None):
    """Read (and, for measurements, set) the threading thresholds; returns the old ones."""
    global BLOCK, SPLIT_MIN_FLOPS, GATHER_SPLIT_MIN
    old = dict(block=BLOCK, split_min_flops=SPLIT_MIN_FLOPS, gather_split_min=GATHER_SPLIT_MIN)
    if block is not None:
        BLOCK = block
    if split_min_flops is not None:
        SPLIT_MIN_FLOPS = split_min_flops
    if gather_split_min is not None:
        GATHER_SPLIT_MIN = gather_split_min
    return old


cdef inline Py_ssize_t _plan(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t k,
                             bint* by_rows) noexcept nogil:
    """How to cut a rows x cols GEMM output (inner size k): the number of blocks, and
    whether they are row blocks. Every block packs the operand it shares with the others
    again (op(B), k x cols, for row blocks; op(A), rows x k, for column blocks), so cut
    the way that packs less; an even count keeps two threads evenly loaded."""
    cdef Py_ssize_t n_rows = (rows + BLOCK - 1) // BLOCK, n_cols = (cols + BLOCK - 1) // BLOCK
    cdef Py_ssize_t n
    if 2.0 * rows * cols * k < SPLIT_MIN_FLOPS or (n_rows == 1 and n_cols == 1):
        by_rows[0] = rows >= cols
        return 1
    by_rows[0] = n_rows * cols < n_cols * rows if n_rows > 1 and n_cols > 1 else n_rows > 1
    n = n_rows if by_rows[0] else n_cols
    return n + (n % 2)


cdef inline Py_ssize_t _lo(Py_ssize_t blk, Py_ssize_t n_blocks, Py_ssize_t size) noexcept nogil:
    """First index of block blk when size is cut into n_blocks near-equal blocks."""
    return blk * size // n_blocks


cdef void dense_forward(floating* A, const floating* X, const floating* W, const floating* b,
                        Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                        int n_threads) noexcept nogil:
    """A (nb, n_out) = act(X (nb, n_in) @ W (n_in, n_out) + b); act < 0 skips bias and
    activation. Softmax needs whole rows, so it is cut into row blocks only."""
    cdef bint by_rows
    cdef Py_ssize_t blk, lo, width, n_blocks = _plan(nb, n_out, n_in, &by_rows)
    if act == SOFTMAX and not by_rows:
        by_rows = True
        n_blocks = min(n_blocks, nb)
    if n_blocks == 1:
        gemm(False, False, nb, n_out, n_in, <floating> 1, X, n_in, W, n_out, <floating> 0,
             A, n_out)
        if act >= 0:
            bias_act_forward(A, n_out, b, nb, n_out, act)
    elif by_rows:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = _lo(blk, n_blocks, nb)
            width = _lo(blk + 1, n_blocks, nb) - lo
            gemm(False, False, width, n_out, n_in, <floating> 1, X + lo * n_in, n_in, W,
                 n_out, <floating> 0, A + lo * n_out, n_out)
            if act >= 0:
                bias_act_forward(A + lo * n_out, n_out, b, width, n_out, act)
    else:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = _lo(blk, n_blocks, n_out)
            width = _lo(blk + 1, n_blocks, n_out) - lo
            gemm(False, False, nb, width, n_in, <floating> 1, X, n_in, W + lo, n_out,
                 <floating> 0, A + lo, n_out)
            if act >= 0:
                bias_act_forward(A + lo, n_out, b + lo, nb, width, act)


cdef void dense_backward_input(floating* Dp, const floating* D, const floating* W,
                               const floating* A_prev, Py_ssize_t nb, Py_ssize_t n_in,
                               Py_ssize_t n_out, int act, int n_threads) noexcept nogil:
    """Dp (nb, n_in) = (D (nb, n_out) @ W.T) * act'(A_prev): the loss gradient with
    respect to the previous layer's pre-activations."""
    cdef bint by_rows
    cdef Py_ssize_t blk, lo, width, n_blocks = _plan(nb, n_in, n_out, &by_rows)
    if n_blocks == 1:
        gemm(False, True, nb, n_in, n_out, <floating> 1, D, n_out, W, n_out, <floating> 0,
             Dp, n_in)
        act_backward(Dp, A_prev, n_in, nb, n_in, act)
    elif by_rows:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = _lo(blk, n_blocks, nb)
            width = _lo(blk + 1, n_blocks, nb) - lo
            gemm(False, True, width, n_in, n_out, <floating> 1, D + lo * n_out, n_out, W,
                 n_out, <floating> 0, Dp + lo * n_in, n_in)
            act_backward(Dp + lo * n_in, A_prev + lo * n_in, n_in, width, n_in, act)
    else:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = _lo(blk, n_blocks, n_in)
            width = _lo(blk + 1, n_blocks, n_in) - lo
            gemm(False, True, nb, width, n_out, <floating> 1, D, n_out, W + lo * n_out,
                 n_out, <floating> 0, Dp + lo, n_in)
            act_backward(Dp + lo, A_prev + lo, n_in, nb, width, act)


cdef void dense_backward_weights(floating* GW, const floating* A_prev, const floating* D,
                                 Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out,
                                 floating scale, floating beta, int n_threads) noexcept nogil:
    """GW (n_in, n_out) = scale * A_prev.T @ D + beta * GW."""
    cdef bint by_rows
    cdef Py_ssize_t blk, lo, width, n_blocks = _plan(n_in, n_out, nb, &by_rows)
    if n_blocks == 1:
        gemm(True, False, n_in, n_out, nb, scale, A_prev, n_in, D, n_out, beta, GW, n_out)
    elif by_rows:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = _lo(blk, n_blocks, n_in)
            width = _lo(blk + 1, n_blocks, n_in) - lo
            gemm(True, False, width, n_out, nb, scale, A_prev + lo, n_in, D, n_out, beta,
                 GW + lo * n_out, n_out)
    else:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            lo = _lo(blk, n_blocks, n_out)
            width = _lo(blk + 1, n_blocks, n_out) - lo
            gemm(True, False, n_in, width, nb, scale, A_prev, n_in, D + lo, n_out, beta,
                 GW + lo, n_out)


cdef inline void _csr_forward_block(floating* A, const Batch* X, const floating* W,
                                    const floating* b, Py_ssize_t r0, Py_ssize_t r1,
                                    Py_ssize_t n_in, Py_ssize_t n_out, int act) noexcept nogil:
    csr_forward(A, W, <const floating*> X.csr.data, X.csr.indices, X.csr.indptr, X.idx,
                X.start, r0, r1, n_in, n_out)
    if act >= 0:
        bias_act_forward(A + r0 * n_out, n_out, b, r1 - r0, n_out, act)


cdef void input_forward(floating* A, const Batch* X, const floating* W, const floating* b,
                        Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                        int n_threads) noexcept nogil:
    """The first layer's dense_forward, reading CSR rows in place when X is sparse (cut
    into row blocks; one block runs without a fork/join)."""
    cdef Py_ssize_t blk, n_blocks = (nb + BLOCK - 1) // BLOCK
    if X.dense != NULL:
        dense_forward(A, <const floating*> X.dense, W, b, nb, n_in, n_out, act, n_threads)
    elif n_blocks == 1:
        _csr_forward_block(A, X, W, b, 0, nb, n_in, n_out, act)
    else:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            _csr_forward_block(A, X, W, b, blk * BLOCK, min(nb, (blk + 1) * BLOCK), n_in,
                               n_out, act)


cdef void input_weight_grad(floating* GW, const Batch* X, const floating* D, Py_ssize_t nb,
                            Py_ssize_t n_in, Py_ssize_t n_out, floating scale,
                            floating beta, int n_threads) noexcept nogil:
    """The first layer's dense_backward_weights, reading CSR rows in place when X is
    sparse (cut into column blocks of GW, so every entry is summed in row order)."""
    cdef Py_ssize_t blk, n_blocks = (n_out + BLOCK - 1) // BLOCK
    if X.dense != NULL:
        dense_backward_weights(GW, <const floating*> X.dense, D, nb, n_in, n_out, scale, beta,
                               n_threads)
    elif n_blocks == 1:
        csr_weight_grad(GW, D, <const floating*> X.csr.data, X.csr.indices, X.csr.indptr,
                        X.idx, X.start, nb, n_in, n_out, scale, beta != 0, 0, n_out)
    else:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            csr_weight_grad(GW, D, <const floating*> X.csr.data, X.csr.indices,
                            X.csr.indptr, X.idx, X.start, nb, n_in, n_out, scale, beta != 0,
                            blk * BLOCK, min(n_out, (blk + 1) * BLOCK))


cdef double forward_backward(const Net* net, const floating* P, floating* G, floating* ws,
                             const Batch* X0, const floating* Y, const floating* sw,
                             Py_ssize_t nb, floating scale, bint accumulate) noexcept nogil:
    """Forward nb rows, then backward: G (+)= scale * gradient of the data loss (no L2).
    Returns the sample-weighted data-loss sum over the rows."""
    cdef int l, L = net.n_layers
    cdef const Py_ssize_t* u = net.units
    cdef const floating* A_prev
    cdef floating* D
    cdef floating beta = 1 if accumulate else 0
    cdef double loss
    # the output layer's activation is applied together with its loss below
    input_forward(ws + net.a_off[1], X0, P + net.w_off[0], P + net.b_off[0], nb, u[0], u[1],
                  net.hidden_act if L > 1 else -1, net.n_threads)
    A_prev = ws + net.a_off[1]
    for l in range(2, L + 1):
        dense_forward(ws + net.a_off[l], A_prev, P + net.w_off[l - 1], P + net.b_off[l - 1],
                      nb, u[l - 1], u[l], net.hidden_act if l < L else -1, net.n_threads)
        A_prev = ws + net.a_off[l]
    loss = output_loss_backward(ws + net.d_off[L], ws + net.a_off[L], P + net.b_off[L - 1],
                                Y, sw, nb, u[L], net.out_act)
    for l in range(L, 0, -1):
        D = ws + net.d_off[l]
        if l > 1:  # no input gradient for the first layer
            A_prev = ws + net.a_off[l - 1]
            dense_backward_input(ws + net.d_off[l - 1], D, P + net.w_off[l - 1], A_prev, nb,
                                 u[l - 1], u[l], net.hidden_act, net.n_threads)
            dense_backward_weights(G + net.w_off[l - 1], A_prev, D, nb, u[l - 1], u[l],
                                   scale, beta, net.n_threads)
        else:
            input_weight_grad(G + net.w_off[0], X0, D, nb, u[0], u[1], scale, beta,
                              net.n_threads)
        bias_grad(G + net.b_off[l - 1], D, nb, u[l], scale, accumulate)
    return loss


cdef extern from "Python.h":
    # declared without an exception value: the caller looks at the result itself
    int _check_signals "PyErr_CheckSignals" ()
    void PyErr_Clear()


cdef bint sigint_pending() noexcept with gil:
    """Run Python's pending signal handlers (they run in the main thread only); True if
    one raised, as the default SIGINT handler does on Ctrl-C. The exception is cleared
    here and KeyboardInterrupt raised by the caller once the engine is consistent."""
    if _check_signals() != 0:
        PyErr_Clear()
        return True
    return False


# Look at the clock every few batches, and take the GIL to look for Ctrl-C only when
# this much CPU time has passed since the last look.
cdef double SIGNAL_CHECK_SECONDS = 0.05


cdef enum:
    STOP_INTERRUPT = 1
    STOP_ZERO_WEIGHT = 2


cdef double train_epoch_core(const Net* net, Buffers* buf, const Rows* X,
                             const Py_ssize_t* order, Py_ssize_t n, Py_ssize_t batch,
                             Py_ssize_t n_params, Py_ssize_t n_weights, StepConfig* cfg,
                             long adam_t, double alpha, double sq, double* partial,
                             Py_ssize_t* steps_done, int* stopped,
                             floating tag) noexcept nogil:
    """One pass over the n rows in mini-batches: forward, backward, optimizer step.
    Returns the sum over batches of (batch loss * batch rows); `sq` is sum(W**2) now.
    *steps_done tells how many steps were taken; *stopped says why it stopped early:
    STOP_INTERRUPT (Ctrl-C) or STOP_ZERO_WEIGHT (a batch's sample weights sum to zero).
    (`tag` only selects the float or double version.)"""
    cdef floating* P = <floating*> buf.params
    cdef floating* G = <floating*> buf.grads
    cdef const floating* Y = <const floating*> buf.Y
    cdef const floating* sw = <const floating*> buf.sw
    cdef Rows yrows
    cdef Batch xb
    cdef const floating* yb
    cdef floating* swb = NULL
    cdef Py_ssize_t k, start, nb, i, n_out = net.units[net.n_layers]
    cdef double sw_sum, loss, total = 0, lr0 = cfg.lr
    cdef clock_t last_check = clock()
    cdef clock_t check_ticks = <clock_t> (SIGNAL_CHECK_SECONDS * CLOCKS_PER_SEC)
    steps_done[0] = 0
    stopped[0] = 0
    yrows.dense = Y
    yrows.data = yrows.indices = yrows.indptr = NULL
    yrows.n_rows = n
    yrows.n_cols = n_out
    for k in range((n + batch - 1) // batch):
        start = k * batch
        nb = min(batch, n - start)
        xb = batch_rows(X, order, start, nb, <floating*> buf.xbuf, net.n_threads)
        yb = load_rows(&yrows, order, start, nb, <floating*> buf.ybuf, net.n_threads)
        sw_sum = nb
        if sw != NULL:
            swb = <floating*> buf.swbuf
            sw_sum = 0
            for i in range(nb):
                swb[i] = sw[order[start + i]] if order != NULL else sw[start + i]
                sw_sum += swb[i]
            if sw_sum == 0:
                stopped[0] = STOP_ZERO_WEIGHT
                break
        loss = forward_backward(net, P, G, <floating*> buf.ws, &xb, yb, swb, nb,
                                <floating> (1 / sw_sum), False) / sw_sum
        if net.out_act == IDENTITY:
            loss /= n_out  # scikit-learn averages squared error over outputs
        total += (loss + 0.5 * alpha * sq / sw_sum) * nb
        cfg.l2 = alpha / sw_sum
        if cfg.kind == ADAM or cfg.kind == ADAMW:  # bias-corrected step size
            adam_t += 1
            cfg.lr = lr0 * sqrt(1 - pow(cfg.beta_2, adam_t)) / (1 - pow(cfg.beta_1, adam_t))
        sq = step(cfg, P, G, <floating*> buf.state1, <floating*> buf.state2, n_params,
                  n_weights, partial, alpha > 0, net.n_threads)
        steps_done[0] = k + 1
        if k % 4 == 3 and clock() - last_check >= check_ticks:
            last_check = clock()
            if sigint_pending():
                stopped[0] = STOP_INTERRUPT
                break
    return total


cdef void predict_core(const Net* net, const floating* P, const Rows* X, Py_ssize_t n,
                       floating* out, floating* xbuf, floating* h1, floating* h2,
                       Py_ssize_t chunk) noexcept nogil:
    """out (n, n_outputs) = the network's output for the n rows, chunk rows at a time,
    hidden activations alternating between h1 and h2."""
    cdef int l, L = net.n_layers
    cdef const Py_ssize_t* u = net.units
    cdef Py_ssize_t k, start, nb
    cdef const floating* A_prev
    cdef floating* A
    cdef Batch xb
    for k in range((n + chunk - 1) // chunk):
        start = k * chunk
        nb = min(chunk, n - start)
        xb = batch_rows(X, NULL, start, nb, xbuf, net.n_threads)
        A = out + start * u[L] if L == 1 else h1
        input_forward(A, &xb, P + net.w_off[0], P + net.b_off[0], nb, u[0], u[1],
                      net.out_act if L == 1 else net.hidden_act, net.n_threads)
        A_prev = A
        for l in range(2, L + 1):
            A = out + start * u[L] if l == L else (h1 if l % 2 == 1 else h2)
            dense_forward(A, A_prev, P + net.w_off[l - 1], P + net.b_off[l - 1], nb,
                          u[l - 1], u[l], net.out_act if l == L else net.hidden_act,
                          net.n_threads)
            A_prev = A


cdef void* _ptr(object arr):
    """Data pointer of a numpy array (None gives NULL)."""
    if arr is None:
        return NULL
    return <void*> <Py_ssize_t> arr.__array_interface__["data"][0]


cdef class Network:
    """A fully connected network with its parameters in one flat buffer.

    Parameters
    ----------
    layer_units : list of int
        Widths [n_features, hidden..., n_outputs].
    hidden_activation : {'identity', 'logistic', 'tanh', 'relu'}
    output_activation : {'softmax', 'logistic', 'identity', 'exp'}
        Each output activation comes with its canonical loss: log-loss, binary
        log-loss, half squared error, Poisson deviance.
    dtype : np.float32 or np.float64
    """
    cdef readonly object dtype
    cdef readonly list layer_units
    cdef readonly str hidden_activation, output_activation
    cdef readonly object params, grads
    cdef readonly list coefs, intercepts
    cdef readonly Py_ssize_t n_weights
    cdef object _units, _w_off, _b_off
    cdef object _ws, _ws_rows, _a_off, _d_off, _xbuf, _ybuf, _swbuf, _partial
    cdef int _hidden_act, _out_act

    def __init__(self, layer_units, hidden_activation, output_activation, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.layer_units = [int(u) for u in layer_units]
        if len(self.layer_units) < 2 or min(self.layer_units) < 1:
            raise ValueError(f"invalid layer_units {layer_units}")
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self._hidden_act = HIDDEN_ACTIVATIONS[hidden_activation]
        self._out_act = OUTPUT_ACTIVATIONS[output_activation]
        units = self.layer_units
        fans = list(zip(units[:-1], units[1:]))
        self.n_weights = sum(a * b for a, b in fans)
        n_params = self.n_weights + sum(units[1:])
        w_off = np.cumsum([0] + [a * b for a, b in fans])[:-1]
        b_off = self.n_weights + np.cumsum([0] + units[1:])[:-1]
        self._units = np.asarray(units, dtype=np.intp)
        self._w_off = np.asarray(w_off, dtype=np.intp)
        self._b_off = np.asarray(b_off, dtype=np.intp)
        self.params = np.zeros(n_params, dtype=self.dtype)
        self.grads = np.zeros(n_params, dtype=self.dtype)
        self.coefs = [self.params[o:o + a * b].reshape(a, b) for o, (a, b) in zip(w_off, fans)]
        self.intercepts = [self.params[o:o + b] for o, b in zip(b_off, units[1:])]
        self._ws = None
        self._ws_rows = 0

    def __reduce__(self):
        return (_rebuild_network, (self.layer_units, self.hidden_activation,
                                   self.output_activation, self.dtype.str, self.params))

    def astype(self, dtype):
        """A copy of this network with its parameters cast to dtype."""
        return _rebuild_network(self.layer_units, self.hidden_activation,
                                self.output_activation, np.dtype(dtype).str, self.params)

    @property
    def n_outputs(self):
        return self.layer_units[-1]

    def reserve(self, Py_ssize_t rows):
        """Allocate the training workspace for batches of up to `rows` rows: activations,
        deltas, the gathered rows, targets and weights, the optimizer's partial sums.
        Kept until release(); the epochs of a fit reuse it without allocating."""
        if self._ws is not None and self._ws_rows >= rows:
            return
        widths = self.layer_units[1:]
        sizes = [rows * w for w in widths]
        starts = np.cumsum([0] + sizes + sizes)
        L = len(widths)
        self._a_off = np.concatenate([[0], starts[:L]]).astype(np.intp)
        self._d_off = np.concatenate([[0], starts[L:2 * L]]).astype(np.intp)
        self._ws = np.empty(max(int(starts[-1]), 1), dtype=self.dtype)
        self._xbuf = None  # allocated by _gather_buffer, for dense input only
        self._ybuf = np.empty((rows, self.n_outputs), dtype=self.dtype)
        self._swbuf = np.empty(rows, dtype=self.dtype)
        self._partial = np.empty(n_partials(self.params.shape[0]), dtype=np.float64)
        self._ws_rows = rows

    def _gather_buffer(self, held):
        """Room for one batch of gathered dense rows (CSR input needs none: the first layer
        reads it in place, so a wide sparse X never gets a dense batch buffer)."""
        if held[0] is None:
            return None
        if self._xbuf is None:
            self._xbuf = np.empty((self._ws_rows, self.layer_units[0]), dtype=self.dtype)
        return self._xbuf

    def release(self):
        """Free the training workspace."""
        self._ws = self._xbuf = self._ybuf = self._swbuf = self._partial = None
        self._ws_rows = 0

    cdef Net _net(self):
        cdef Net net
        net.n_layers = len(self.layer_units) - 1
        net.units = <const Py_ssize_t*> _ptr(self._units)
        net.w_off = <const Py_ssize_t*> _ptr(self._w_off)
        net.b_off = <const Py_ssize_t*> _ptr(self._b_off)
        net.a_off = <const Py_ssize_t*> _ptr(self._a_off) if self._ws is not None else NULL
        net.d_off = <const Py_ssize_t*> _ptr(self._d_off) if self._ws is not None else NULL
        net.hidden_act = self._hidden_act
        net.out_act = self._out_act
        net.n_threads = openmp.omp_get_max_threads()
        return net

    def _rows(self, X):
        """Check X and keep the arrays whose pointers a Rows struct will hold."""
        n_features = self.layer_units[0]
        if sp.issparse(X):
            X = X.tocsr()
            if X.shape[1] != n_features:
                raise ValueError(f"X has {X.shape[1]} features, the network expects {n_features}")
            indices = np.asarray(X.indices, dtype=np.intp)
            indptr = np.asarray(X.indptr, dtype=np.intp)
            # the compiled gather trusts these: check them (a malformed matrix must not
            # make it write out of bounds)
            if (indptr.shape != (X.shape[0] + 1,) or indptr[0] != 0
                    or np.any(np.diff(indptr) < 0) or indptr[-1] > min(len(indices), len(X.data))
                    or (len(indices) and (indices.min() < 0 or indices.max() >= n_features))):
                raise ValueError("malformed sparse matrix: its indices or indptr are out of range")
            return (None, np.ascontiguousarray(X.data, dtype=self.dtype), indices, indptr,
                    X.shape[0])
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(f"X must have shape (n, {n_features}), got {X.shape}")
        return (np.ascontiguousarray(X, dtype=self.dtype), None, None, None, X.shape[0])

    cdef Rows _fill_rows(self, tuple held):
        cdef Rows r
        r.dense = _ptr(held[0])
        r.data = _ptr(held[1])
        r.indices = <const Py_ssize_t*> _ptr(held[2])
        r.indptr = <const Py_ssize_t*> _ptr(held[3])
        r.n_rows = held[4]
        r.n_cols = self.layer_units[0]
        return r

    def _targets(self, Y, n, sample_weight):
        Y = np.ascontiguousarray(Y, dtype=self.dtype)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if Y.shape != (n, self.n_outputs):
            raise ValueError(f"Y must have shape ({n}, {self.n_outputs}), got {Y.shape}")
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=self.dtype)
            if sample_weight.shape != (n,):
                raise ValueError(f"sample_weight must have shape ({n},)")
        return Y, sample_weight

    def sum_sq_weights(self):
        """sum(W**2) over all weights, in float64. (numpy's pairwise sum, not BLAS's dot,
        whose threads would make the result depend on the thread count.)"""
        w = self.params[:self.n_weights]
        return float(np.sum(np.square(w, dtype=np.float64)))

    def train_epoch(self, X, Y, sample_weight, order, Py_ssize_t batch_size, double alpha,
                    optimizer):
        """One epoch of mini-batch training, the GIL released throughout.

        order: the row order (np.intp array, a permutation of range(n)) or None for the
        stored order. optimizer: an SGDOptimizer / AdamOptimizer whose state buffers are
        updated in place. Returns the epoch's summed loss: sum over batches of the batch
        loss (data loss + L2 term) times the batch's row count.

        Raises KeyboardInterrupt on Ctrl-C (after the steps taken so far, which stay
        applied), and ValueError when a mini-batch's sample weights sum to zero.
        """
        held = self._rows(X)
        cdef Py_ssize_t n = held[4]
        if n == 0:
            raise ValueError("no rows to train on")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        Y, sample_weight = self._targets(Y, n, sample_weight)
        if order is not None:
            order = np.ascontiguousarray(order, dtype=np.intp)
            if order.shape != (n,) or (n and (order.min() < 0 or order.max() >= n)):
                raise ValueError("order must be a permutation of range(n)")
        cdef Py_ssize_t batch = min(batch_size, n)
        self.reserve(batch)
        s1, s2 = optimizer.buffers()
        if s1.shape != self.params.shape or s1.dtype != self.dtype:
            raise ValueError("optimizer state does not match the network")
        c = optimizer.config()
        cdef StepConfig cfg
        cfg.kind = c["kind"]
        cfg.lr = c["lr"]
        cfg.momentum = c["momentum"]
        cfg.nesterov = c["nesterov"]
        cfg.beta_1 = c["beta_1"]
        cfg.beta_2 = c["beta_2"]
        cfg.epsilon = c["epsilon"]
        cfg.l2 = 0
        cfg.decay = c.get("decay", 0.0)
        cfg.rho = c.get("rho", 0.0)
        cdef long adam_t = getattr(optimizer, "t", 0)
        cdef Buffers buf
        buf.params = _ptr(self.params)
        buf.grads = _ptr(self.grads)
        buf.state1 = _ptr(s1)
        buf.state2 = _ptr(s2)
        buf.ws = _ptr(self._ws)
        buf.xbuf = _ptr(self._gather_buffer(held))
        buf.ybuf = _ptr(self._ybuf)
        buf.swbuf = _ptr(self._swbuf)
        buf.Y = _ptr(Y)
        buf.sw = _ptr(sample_weight)
        cdef Net net = self._net()
        cdef Rows rows = self._fill_rows(held)
        cdef const Py_ssize_t* order_p = <const Py_ssize_t*> _ptr(order)
        cdef Py_ssize_t n_params = self.params.shape[0], n_weights = self.n_weights
        cdef double sq = self.sum_sq_weights() if alpha > 0 else 0.0
        cdef double total
        cdef double* partial = <double*> _ptr(self._partial)
        cdef bint single = self.dtype == np.float32
        cdef Py_ssize_t steps = 0
        cdef int stopped = 0
        with blas_single_threaded(), nogil:
            if single:
                total = train_epoch_core(&net, &buf, &rows, order_p, n, batch, n_params,
                                         n_weights, &cfg, adam_t, alpha, sq, partial,
                                         &steps, &stopped, <float> 0)
            else:
                total = train_epoch_core(&net, &buf, &rows, order_p, n, batch, n_params,
                                         n_weights, &cfg, adam_t, alpha, sq, partial,
                                         &steps, &stopped, <double> 0)
        optimizer.after_steps(steps)
        if stopped == STOP_ZERO_WEIGHT:
            raise ValueError(
                f"The sample weights of mini-batch {steps + 1} sum to zero, so its loss is "
                "undefined. Give more rows a positive sample_weight or use a larger "
                "batch_size.")
        if stopped == STOP_INTERRUPT:
            raise KeyboardInterrupt
        return total

    def loss_and_grad(self, X, Y, sample_weight=None, double alpha=0.0):
        """The full-batch objective at the current parameters and its gradient, as
        scikit-learn's _backprop defines them: weighted-mean data loss (squared error
        averaged over outputs) + 0.5 * alpha * sum(W**2) / sum(sample_weight), and the
        gradient (summed over outputs). Rows are processed in bounded chunks."""
        held = self._rows(X)
        cdef Py_ssize_t n = held[4]
        if n == 0:
            raise ValueError("no rows")
        Y, sample_weight = self._targets(Y, n, sample_weight)
        cdef Py_ssize_t chunk = min(n, DEFAULT_CHUNK)
        self.reserve(chunk)
        cdef double sw_sum = float(np.sum(sample_weight, dtype=np.float64)) \
            if sample_weight is not None else n
        if sw_sum == 0:
            raise ValueError("The sample weights sum to zero: the loss is undefined.")
        cdef Net net = self._net()
        cdef Rows rows = self._fill_rows(held)
        cdef void* P = _ptr(self.params)
        cdef void* G = _ptr(self.grads)
        cdef void* ws = _ptr(self._ws)
        cdef void* xb = _ptr(self._gather_buffer(held))
        cdef char* Yp = <char*> _ptr(Y)
        cdef char* swp = <char*> _ptr(sample_weight)
        cdef Batch xbatch
        cdef Py_ssize_t k, start, nb, isz = self.dtype.itemsize, n_out = self.n_outputs
        cdef double total = 0
        cdef bint single = self.dtype == np.float32
        with blas_single_threaded(), nogil:
            for k in range((n + chunk - 1) // chunk):
                start = k * chunk
                nb = min(chunk, n - start)
                if single:
                    xbatch = batch_rows(&rows, NULL, start, nb, <float*> xb, net.n_threads)
                    total += forward_backward(
                        &net, <float*> P, <float*> G, <float*> ws, &xbatch,
                        <float*> (Yp + start * n_out * isz),
                        <float*> (swp + start * isz) if swp != NULL else NULL,
                        nb, <float> (1 / sw_sum), start > 0)
                else:
                    xbatch = batch_rows(&rows, NULL, start, nb, <double*> xb, net.n_threads)
                    total += forward_backward(
                        &net, <double*> P, <double*> G, <double*> ws, &xbatch,
                        <double*> (Yp + start * n_out * isz),
                        <double*> (swp + start * isz) if swp != NULL else NULL,
                        nb, 1 / sw_sum, start > 0)
        loss = total / sw_sum
        if self._out_act == IDENTITY:
            loss /= n_out
        grad = self.grads.copy()
        if alpha > 0:
            loss += 0.5 * alpha * self.sum_sq_weights() / sw_sum
            grad[:self.n_weights] += (alpha / sw_sum) * self.params[:self.n_weights]
        return float(loss), grad

    def predict(self, X, Py_ssize_t chunk=DEFAULT_CHUNK):
        """The network's outputs (after the output activation) for X, computed in chunks
        of rows with scratch owned by this call (safe to call from several threads)."""
        held = self._rows(X)
        cdef Py_ssize_t n = held[4]
        out = np.empty((n, self.n_outputs), dtype=self.dtype)
        if n == 0:
            return out
        chunk = max(1, min(chunk, n))
        widest = max(self.layer_units[1:-1], default=1)
        xbuf = None  # dense input is read in place, CSR rows too
        h1 = np.empty(chunk * widest, dtype=self.dtype)
        h2 = np.empty(chunk * widest, dtype=self.dtype)
        cdef Net net = self._net()
        cdef Rows rows = self._fill_rows(held)
        cdef void* P = _ptr(self.params)
        cdef void* o = _ptr(out)
        cdef void* xb = _ptr(xbuf)
        cdef void* p1 = _ptr(h1)
        cdef void* p2 = _ptr(h2)
        cdef bint single = self.dtype == np.float32
        with blas_single_threaded(), nogil:
            if single:
                predict_core(&net, <float*> P, &rows, n, <float*> o, <float*> xb,
                             <float*> p1, <float*> p2, chunk)
            else:
                predict_core(&net, <double*> P, &rows, n, <double*> o, <double*> xb,
                             <double*> p1, <double*> p2, chunk)
        return out


def _rebuild_network(layer_units, hidden_activation, output_activation, dtype, params):
    net = Network(layer_units, hidden_activation, output_activation, np.dtype(dtype))
    net.params[:] = params
    return net
