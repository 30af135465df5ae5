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

from cython.parallel cimport parallel, prange

from ._fpenv cimport fp_enter, fp_leave
from ._openmp cimport CYMLP_OPENMP, omp_get_max_threads, omp_get_thread_num

from ._blas cimport gemm, gemm_bias_act, gemm_packed, pack_b
from ._kernels cimport (CYMLP_DEBUG, ELU, EXP, GELU, IDENTITY, LEAKY_RELU, LOGISTIC, RELU,
                        SILU, SOFTMAX, SOFTPLUS, TANH, SQUARED, ABSOLUTE, HUBER,
                        act_backward, batchnorm_backward, batchnorm_forward,
                        bias_act_forward, bias_grad, block_nonfinite, csr_forward,
                        csr_weight_grad, debug_fail, dropout_apply, gather_rows, needs_pre,
                        output_loss_backward, score_stats)
from ._optim cimport StepConfig, step, ADAM, ADAMW
from ._blas import aligned_empty, kernel_takes, packed_b_size
from ._optim import chunk_bounds
from ._threads import blas_multiplies_small_unpacked, blas_single_threaded, engine_threads

HIDDEN_ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "sigmoid": LOGISTIC,
                      "tanh": TANH, "relu": RELU, "leaky_relu": LEAKY_RELU, "elu": ELU,
                      "gelu": GELU, "silu": SILU, "softplus": SOFTPLUS}
REGRESSION_LOSSES = {"squared_error": SQUARED, "absolute_error": ABSOLUTE, "huber": HUBER}
# Batch normalization, as Keras's BatchNormalization layer.
cdef double BN_MOMENTUM = 0.99
cdef double BN_EPSILON = 1e-3
OUTPUT_ACTIVATIONS = {"softmax": SOFTMAX, "logistic": LOGISTIC, "identity": IDENTITY,
                      "exp": EXP}
# True when compiled with OpenMP (False: CYMLP_NO_OPENMP=1, or a compiler without it).
OPENMP_BUILD = bool(CYMLP_OPENMP)
# Rows per chunk when evaluating the full-batch objective: bounds memory.
DEFAULT_CHUNK = 4096
# Rows per chunk when predicting; from PER_THREAD_CHUNKS chunks per thread (with more
# than two threads, from two chunks), each thread predicts whole chunks on its own
# (predict_core)
PREDICT_CHUNK = 512
cdef Py_ssize_t PER_THREAD_CHUNKS = 4


cdef struct Net:
    int n_layers                 # L, the number of weight layers
    const Py_ssize_t* units      # L + 1 layer widths
    const Py_ssize_t* w_off      # offset of W_l in params (and grads)
    const Py_ssize_t* b_off      # offset of b_l
    const Py_ssize_t* a_off      # offset of A_l in the workspace, l = 1..L (index 0 unused)
    const Py_ssize_t* d_off      # offset of D_l
    int hidden_act
    int out_act
    int out_loss                 # identity output: SQUARED, ABSOLUTE or HUBER
    double huber_delta
    int n_threads                # OpenMP threads; BLAS runs single-threaded inside them
    bint training                # dropout masks and batch statistics on
    bint update_running          # training also updates the running statistics
    # per hidden layer l = 1..L-1 (index 0 unused):
    const double* drop_rate      # dropout rate (0: none)
    const unsigned long long* drop_key  # this epoch's mask key
    const Py_ssize_t* pre_off    # offset of the kept pre-activations in the workspace
    bint batch_norm
    const Py_ssize_t* xh_off     # offset of the normalized values in the workspace
    const Py_ssize_t* st_off     # offset of the batch means (variances follow)
    const Py_ssize_t* g_off      # offset of gamma_l in params (beta_l follows)
    void* running                # running means and variances: [mean_1, var_1, mean_2, ...]
    const Py_ssize_t* r_off      # offset of layer l's running mean (its variance follows)
    double* acc                  # double scratch, two per unit of the widest layer
    int* nonfinite               # per-thread flags: a first-layer product was not finite
    # prediction: W_l packed for the kernel (_blas.pack_b) at packed + pk_off[l], where
    # pk_off[l] >= 0 (packed: NULL in training, whose weights change at every step)
    const void* packed
    const Py_ssize_t* pk_off


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
    const Py_ssize_t* chunks  # the optimizer step's chunks, n_chunks (lo, hi) pairs
    Py_ssize_t n_chunks


cdef struct Batch:
    # The input rows of one batch: a dense row-major block, or rows of a CSR matrix that
    # the first layer reads in place (sparse input is never densified).
    const void* dense           # (nb, n_features), or NULL for CSR
    const Rows* csr
    const Py_ssize_t* idx       # data row of batch row r: idx[r], or start + r when NULL
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
    n_blocks = max(2, (nb + 63) // 64)
    with parallel(num_threads=n_threads):
        fp_enter()
        for blk in prange(n_blocks, schedule="static"):
            lo = blk * nb // n_blocks
            _gather(src, idx + lo, (blk + 1) * nb // n_blocks - lo, buf + lo * m)
        fp_leave()
    return buf


cdef Batch batch_rows(const Rows* X, const Py_ssize_t* order, Py_ssize_t start,
                      Py_ssize_t nb, floating* buf, int n_threads) noexcept nogil:
    """The batch of rows order[start:start + nb] (or start:start + nb): dense rows are
    gathered into buf (or used in place), CSR rows are only pointed at."""
    cdef Batch b
    b.csr = NULL
    b.idx = order + start if order != NULL else NULL
    b.start = start
    if X.dense != NULL:
        b.dense = load_rows(X, order, start, nb, buf, n_threads)
    else:
        b.dense = NULL
        b.csr = X
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
# spin starve each other on few cores). A large GEMM is cut into fixed blocks of output
# rows or columns (BLOCK or 2 BLOCK wide: _plan), one single-threaded call each (to
# cymlp's AVX-512 kernel where the CPU has it, else to BLAS: _blas.pyx),
# shared among the threads; the elementwise work that follows a GEMM runs on each block
# while it is in cache. Block sizes depend only on the shapes (and, for thin batches, on
# the BLAS's kernels: THIN_BLOCK), so no result depends on the number of threads. Each
# thread's share of a parallel region runs between fp_enter / fp_leave (subnormals
# flushed to zero, _fpenv.pxd).
cdef Py_ssize_t BLOCK = 128
cdef double SPLIT_MIN_FLOPS = 1e6     # smaller products run as one BLAS call, no fork/join
# Gathers of at least this many values are shared by the threads (at least two blocks of
# at most 64 rows): from 1 << 14, batches of 32 and 64 rows of 784 features are shared,
# 2-3 % faster fits (measured in interleaved runs; the rows come from all over memory,
# so presumably two cores simply have twice the cache misses in flight)
cdef Py_ssize_t GATHER_SPLIT_MIN = 1 << 14
cdef Py_ssize_t BN_SPLIT_MIN = 1 << 16  # values: batch normalization in column blocks
# The block width for the products of a batch of at most THIN_ROWS rows, or 0 for BLOCK.
# Set (to 32) where OpenBLAS multiplies small products without packing their operands
# (its AVX-512 kernels, see _threads.blas_multiplies_small_unpacked): 32-wide blocks of a
# thin batch are small enough for that path, and the first layer's weights are then
# no longer copied into OpenBLAS's packed format at every step (measured in interleaved
# runs with the SkylakeX kernels: batch 32 5-9 % faster, batch 16 3-7 %; with the
# first layer in bands (dense_forward_banded), batch 64 4.5 % faster and batch 128 9 %
# slower, hence THIN_ROWS; with the Haswell kernels, which pack everything, 32-wide
# blocks made batch 32 7 % slower and batch 16 14 %). Where cymlp's own AVX-512 kernel
# runs (_blas.pyx), the first layer's 32-wide blocks go to it instead of OpenBLAS, and
# thin and wide blocks measured the same (batch 32: 0.367-0.390 s thin, 0.365-0.389 wide).
cdef Py_ssize_t THIN_BLOCK = 32 if blas_multiplies_small_unpacked() else 0
cdef Py_ssize_t THIN_ROWS = 64


def _tuning(block=None, split_min_flops=None, gather_split_min=None, thin_block=None):
    """Read (and, for measurements, set) the threading thresholds; returns the old ones."""
    global BLOCK, SPLIT_MIN_FLOPS, GATHER_SPLIT_MIN, THIN_BLOCK
    old = dict(block=BLOCK, split_min_flops=SPLIT_MIN_FLOPS, gather_split_min=GATHER_SPLIT_MIN,
               thin_block=THIN_BLOCK)
    if block is not None:
        BLOCK = block
    if split_min_flops is not None:
        SPLIT_MIN_FLOPS = split_min_flops
    if gather_split_min is not None:
        GATHER_SPLIT_MIN = gather_split_min
    if thin_block is not None:
        THIN_BLOCK = thin_block
    return old


cdef inline Py_ssize_t _block(Py_ssize_t nb) noexcept nogil:
    """The block width for the products of a batch of nb rows."""
    return THIN_BLOCK if THIN_BLOCK > 0 and nb <= THIN_ROWS else BLOCK


cdef inline Py_ssize_t _row_block(Py_ssize_t k, Py_ssize_t block) noexcept nogil:
    """Rows per row block: twice the block width for a deep product (k >= 2 block),
    whose blocks are then fewer and larger (measured here: prediction's 4096-row chunks
    6 % faster, batch-256 training 2 %); the block width for a shallow one (the weight
    gradient at batch 32 was 8 % slower with the larger blocks)."""
    return 2 * block if k >= 2 * block else block


cdef inline Py_ssize_t _plan(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t k,
                             Py_ssize_t block, bint* by_rows) noexcept nogil:
    """How to cut a rows x cols GEMM output (inner size k): the number of blocks, and
    whether they are row blocks. Every block packs the operand it shares with the others
    again (op(B), k x cols, for row blocks; op(A), rows x k, for column blocks: OpenBLAS
    packs both, cymlp's kernel op(B) and a transposed op(A)), so cut the way that packs
    less; an even count keeps two threads evenly loaded. A product
    worth splitting that fits in one block both ways is halved (two threads, not one).
    Tall products (prediction's chunks, L-BFGS's) take row blocks twice as tall again,
    which pack op(B) half as often (measured: predicting 60000 rows 4 % faster).
    block: the block width, _block(batch rows)."""
    cdef Py_ssize_t row_block = _row_block(k, block) * (2 if rows >= 16 * block else 1)
    cdef Py_ssize_t n_rows = (rows + row_block - 1) // row_block
    cdef Py_ssize_t n_cols = (cols + block - 1) // block
    cdef Py_ssize_t n
    if 2.0 * rows * cols * k < SPLIT_MIN_FLOPS:
        by_rows[0] = rows >= cols
        return 1
    if n_rows == 1 and n_cols == 1:  # under one block both ways: halves, if not too thin
        by_rows[0] = rows >= cols
        return 2 if max(rows, cols) >= 32 else 1
    # a tie goes to row blocks, which write contiguous stretches of the output
    by_rows[0] = n_rows * cols <= n_cols * rows if n_rows > 1 and n_cols > 1 else n_rows > 1
    n = n_rows if by_rows[0] else n_cols
    return n + (n % 2)


cdef inline Py_ssize_t _plan_weight_grad(Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t nb,
                                         bint* by_rows) noexcept nogil:
    """_plan for a weight gradient GW (n_in, n_out): row blocks whenever there are two or
    more, so that each block writes one contiguous stretch of GW. Column blocks of a
    large row-major GW interleave the threads' writes on every row, and the two cores'
    hardware prefetchers then pull each other's lines back and forth (measured: two
    threads on the two 128-column blocks of the 784 x 256 gradient at batch 32 were no
    faster than one thread on both; two row blocks ran twice as fast). From a batch of
    one block width of rows up, the row blocks are twice _row_block: fewer blocks, each
    packing the shared op(B) again (measured with BLOCK: batches of 128 and 512 rows 3 %
    faster, 256 1 %; batch 32, under BLOCK, was 4 % slower with them)."""
    cdef Py_ssize_t block = _block(nb)
    cdef Py_ssize_t n = _plan(n_in, n_out, nb, block, by_rows)
    cdef Py_ssize_t row_block = _row_block(nb, block) * (2 if nb >= block else 1)
    cdef Py_ssize_t n_rows = (n_in + row_block - 1) // row_block
    if n > 1 and n_rows > 1:
        by_rows[0] = True
        return n_rows + (n_rows % 2)
    return n


cdef inline Py_ssize_t _lo(Py_ssize_t blk, Py_ssize_t n_blocks, Py_ssize_t size) noexcept nogil:
    """First index of block blk when size is cut into n_blocks near-equal blocks."""
    return blk * size // n_blocks


cdef inline int* watch_flag(const Net* net, int l) noexcept nogil:
    """Where prediction flags a NaN or infinite first-layer product (net.nonfinite): the
    flag of this thread of the layer's product, or net's only flag where the product has
    one thread (whose number, inside predict_core's own threads, is not 0). NULL: none."""
    if l != 1 or net.nonfinite == NULL:
        return NULL
    return net.nonfinite + (omp_get_thread_num() if net.n_threads > 1 else 0)


cdef inline bint _drops(const Net* net, int l) noexcept nogil:
    """Whether dropout follows layer l's activation: in training, on a hidden layer with
    a rate."""
    return net.training and l < net.n_layers and net.drop_rate[l] > 0


cdef inline void forward_epilogue(floating* A, floating* pre, const floating* b,
                                  Py_ssize_t ld, Py_ssize_t r0, Py_ssize_t nr, Py_ssize_t c0,
                                  Py_ssize_t nc, int act, const Net* net, int l,
                                  const Batch* X) noexcept nogil:
    """The elementwise work that follows layer l's GEMM, on the block of rows r0:r0+nr
    and columns c0:c0+nc of A (rows ld apart): bias and activation (keeping the
    pre-activation in pre, when given), then dropout in training. act < 0: none. First,
    where prediction watches them (watch_flag), the first layer's products are looked at
    for NaN and infinity."""
    cdef int* flag = watch_flag(net, l)
    if flag != NULL and block_nonfinite(A + r0 * ld + c0, ld, nr, nc):
        flag[0] = 1
    if act < 0:
        return
    bias_act_forward(A + r0 * ld + c0, ld, b + c0, nr, nc, act,
                     pre + r0 * ld + c0 if pre != NULL else NULL)
    if _drops(net, l):
        dropout_apply(A + r0 * ld + c0, ld, nr, nc, X.idx + r0 if X.idx != NULL else NULL,
                      X.start + r0, c0, net.drop_key[l], net.drop_rate[l])


cdef inline void forward_block(floating* A, const floating* X, const floating* W,
                               const floating* Wp, const floating* b, Py_ssize_t n_in,
                               Py_ssize_t n_out, Py_ssize_t r0, Py_ssize_t nr, Py_ssize_t c0,
                               Py_ssize_t nc, int act, floating* pre, const Net* net, int l,
                               const Batch* rows) noexcept nogil:
    """Rows r0:r0+nr and columns c0:c0+nc of dense_forward's A = act(X W + b): the
    product, then forward_epilogue. Wp: W packed for the kernel, or NULL (a block of
    whole rows only: c0 = 0, nc = n_out). A plain bias, or one with relu, with nothing
    else after it (no pre-activation kept, no dropout), runs in the kernel's stores
    (_blas.gemm_bias_act) where the kernel takes the product: the same bits, one pass
    over the block fewer."""
    if ((act == RELU or act == IDENTITY) and pre == NULL
            and not _drops(net, l)
            and gemm_bias_act(nr, nc, n_in, X + r0 * n_in, n_in, W + c0, n_out, Wp,
                              A + r0 * n_out + c0, n_out, b + c0, act == RELU,
                              watch_flag(net, l))):
        return
    gemm_packed(False, False, nr, nc, n_in, <floating> 1, X + r0 * n_in, n_in, W + c0, n_out,
                Wp, <floating> 0, A + r0 * n_out + c0, n_out)
    forward_epilogue(A, pre, b, n_out, r0, nr, c0, nc, act, net, l, rows)


cdef inline void backward_epilogue(floating* D, const floating* S, Py_ssize_t ld,
                                   Py_ssize_t r0, Py_ssize_t nr, Py_ssize_t c0,
                                   Py_ssize_t nc, const Net* net, int l,
                                   const Batch* X) noexcept nogil:
    """Hidden layer l, on a block of D (as forward_epilogue's): from the gradient with
    respect to the layer's output to the one with respect to its activation's input:
    dropout's mask, then the activation's derivative. S: the layer's stored outputs, or
    its pre-activations when needs_pre(act)."""
    cdef floating unscale = 1
    if net.drop_rate[l] > 0:
        dropout_apply(D + r0 * ld + c0, ld, nr, nc, X.idx + r0 if X.idx != NULL else NULL,
                      X.start + r0, c0, net.drop_key[l], net.drop_rate[l])
        unscale = <floating> (1 - net.drop_rate[l])
    act_backward(D + r0 * ld + c0, S + r0 * ld + c0, ld, nr, nc, net.hidden_act, unscale)


cdef void dense_forward(floating* A, const floating* X, const floating* W, const floating* b,
                        Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                        floating* pre, const Net* net, int l, const Batch* rows,
                        floating* scratch) noexcept nogil:
    """A (nb, n_out) = act(X (nb, n_in) @ W (n_in, n_out) + b), then dropout when
    training (forward_epilogue; rows says which data rows these are); act < 0 skips the
    epilogue. Softmax needs whole rows, so it is cut into row blocks only. Training
    passes scratch (nb x n_out, free until the backward pass) for dense_forward_banded;
    prediction passes NULL."""
    cdef bint by_rows
    cdef Py_ssize_t blk, lo, width, n_blocks = _plan(nb, n_out, n_in, _block(nb), &by_rows)
    cdef const floating* Wp = NULL  # W packed for the kernel (prediction), whole rows only
    if net.packed != NULL and net.pk_off[l] >= 0:
        Wp = <const floating*> net.packed + net.pk_off[l]
    if scratch != NULL and _banded(nb, n_in, n_out):
        dense_forward_banded(A, X, W, b, nb, n_in, n_out, act, pre, net, l, rows, scratch)
        return
    if act == SOFTMAX and not by_rows:
        by_rows = True
        n_blocks = min(n_blocks, nb)
    if n_blocks == 1:
        forward_block(A, X, W, Wp, b, n_in, n_out, 0, nb, 0, n_out, act, pre, net, l, rows)
    elif by_rows:
        with parallel(num_threads=net.n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                lo = _lo(blk, n_blocks, nb)
                width = _lo(blk + 1, n_blocks, nb) - lo
                forward_block(A, X, W, Wp, b, n_in, n_out, lo, width, 0, n_out, act, pre, net,
                              l, rows)
            fp_leave()
    else:
        with parallel(num_threads=net.n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                lo = _lo(blk, n_blocks, n_out)
                width = _lo(blk + 1, n_blocks, n_out) - lo
                forward_block(A, X, W, <floating*> NULL, b, n_in, n_out, 0, nb, lo, width, act,
                              pre, net, l, rows)
            fp_leave()


cdef inline bint _banded(Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """Whether training runs a layer's product in two bands (dense_forward_banded): when
    it is worth splitting, deep enough (n_in >= 2 BLOCK) that adding the two partial
    products costs little beside them, and the batch is thinner than the layer's input
    (nb < n_in): the bands keep each core on half of the weights (n_in x n_out) at the
    price of one more pass over the output (nb x n_out), which stops paying once the
    batch is as wide as the input. (Measured in interleaved runs with cymlp's kernel:
    without bands from there, SGD at batch 256, whose 256 -> 128 layer then has none,
    2.4 % faster, Adam 2.4 %, batch 1024 4 %; batch 32, with bands in both layers, 5 %
    slower without them in the 256 -> 128 layer.)"""
    return 2.0 * nb * n_in * n_out >= SPLIT_MIN_FLOPS and n_in >= 2 * BLOCK and nb < n_in


cdef void dense_forward_banded(floating* A, const floating* X, const floating* W,
                               const floating* b, Py_ssize_t nb, Py_ssize_t n_in,
                               Py_ssize_t n_out, int act, floating* pre, const Net* net,
                               int l, const Batch* rows, floating* scratch) noexcept nogil:
    """dense_forward in training (for the products _banded picks), cut along the inner
    dimension: A = X[:, :h] @ W[:h] and
    scratch = X[:, h:] @ W[h:] (h = n_in // 2: two bands of W's rows), each in column
    blocks of the block width; then A += scratch and the epilogue, in row blocks.
    With two threads, each thread multiplies with one band: the same rows of W that it
    gets in the weight gradient's row blocks (an even count, so they split at h) and in
    the optimizer step (Network's chunk order). Its half of W, of the gradient and of the
    optimizer state then stays in its core's cache from one pass to the next, where
    column blocks had each core read every row of W. Blocks of different bands share no
    operand, so OpenBLAS also packs less. (Measured in interleaved runs against column
    blocks, first layer only, with OpenBLAS: SGD batch 32 27 % faster, 64 12 %, 128 9 %,
    256 4 %, 512 and 1024 2 %; with cymlp's kernel, batches at least as wide as the
    layer's input are now faster without bands: _banded.)"""
    cdef Py_ssize_t block = _block(nb), n_cols = (n_out + block - 1) // block
    cdef Py_ssize_t n_blocks = 2 * n_cols, n_row_blocks = min(nb, n_blocks)
    cdef Py_ssize_t blk, k0, depth, c0, width, r0, nr, i
    with parallel(num_threads=net.n_threads):
        fp_enter()
        for blk in prange(n_blocks, schedule="static"):
            k0 = _lo(blk // n_cols, 2, n_in)
            depth = _lo(blk // n_cols + 1, 2, n_in) - k0
            c0 = _lo(blk % n_cols, n_cols, n_out)
            width = _lo(blk % n_cols + 1, n_cols, n_out) - c0
            gemm(False, False, nb, width, depth, <floating> 1, X + k0, n_in,
                 W + k0 * n_out + c0, n_out, <floating> 0,
                 (A if blk < n_cols else scratch) + c0, n_out)
        for blk in prange(n_row_blocks, schedule="static"):
            r0 = _lo(blk, n_row_blocks, nb)
            nr = _lo(blk + 1, n_row_blocks, nb) - r0
            for i in range(r0 * n_out, (r0 + nr) * n_out):
                A[i] = A[i] + scratch[i]
            forward_epilogue(A, pre, b, n_out, r0, nr, 0, n_out, act, net, l, rows)
        fp_leave()


cdef void dense_backward_input(floating* Dp, const floating* D, const floating* W,
                               const floating* S, Py_ssize_t nb, Py_ssize_t n_in,
                               Py_ssize_t n_out, const Net* net, int l,
                               const Batch* rows) noexcept nogil:
    """Dp (nb, n_in) = backward_epilogue(D (nb, n_out) @ W.T): the loss gradient with
    respect to the input of hidden layer l's activation (l = the layer before W)."""
    cdef bint by_rows
    cdef Py_ssize_t blk, lo, width, n_blocks = _plan(nb, n_in, n_out, _block(nb), &by_rows)
    if n_blocks == 1:
        gemm(False, True, nb, n_in, n_out, <floating> 1, D, n_out, W, n_out, <floating> 0,
             Dp, n_in)
        backward_epilogue(Dp, S, n_in, 0, nb, 0, n_in, net, l, rows)
    elif by_rows:
        with parallel(num_threads=net.n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                lo = _lo(blk, n_blocks, nb)
                width = _lo(blk + 1, n_blocks, nb) - lo
                gemm(False, True, width, n_in, n_out, <floating> 1, D + lo * n_out, n_out, W,
                     n_out, <floating> 0, Dp + lo * n_in, n_in)
                backward_epilogue(Dp, S, n_in, lo, width, 0, n_in, net, l, rows)
            fp_leave()
    else:
        with parallel(num_threads=net.n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                lo = _lo(blk, n_blocks, n_in)
                width = _lo(blk + 1, n_blocks, n_in) - lo
                gemm(False, True, nb, width, n_out, <floating> 1, D, n_out, W + lo * n_out,
                     n_out, <floating> 0, Dp + lo, n_in)
                backward_epilogue(Dp, S, n_in, 0, nb, lo, width, net, l, rows)
            fp_leave()


cdef inline Py_ssize_t _column_blocks(Py_ssize_t nb, Py_ssize_t m) noexcept nogil:
    """Column blocks for the batch-normalization passes: one below BN_SPLIT_MIN."""
    return 1 if nb * m < BN_SPLIT_MIN else (m + 63) // 64


cdef inline void _bn_forward_block(const Net* net, const floating* P, floating* ws, int l,
                                   Py_ssize_t nb, const Batch* X, floating* A, floating* mean,
                                   floating* pre, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef Py_ssize_t m = net.units[l]
    cdef const floating* gamma = P + net.g_off[l]
    batchnorm_forward(A, ws + net.xh_off[l], mean, mean + m, gamma, net.acc, nb, m, c0, c1,
                      BN_EPSILON, True)
    # beta (after gamma) takes the place of the dense layer's bias, which stays unused
    forward_epilogue(A, pre, gamma + m, m, 0, nb, c0, c1 - c0, net.hidden_act, net, l, X)


cdef void bn_forward(const Net* net, const floating* P, floating* ws, int l, Py_ssize_t nb,
                     const Batch* X) noexcept nogil:
    """Hidden layer l under batch normalization, after its GEMM (A_l holds X W): batch
    statistics, normalize, scale and shift, then the activation and dropout; updates the
    running statistics when asked."""
    cdef Py_ssize_t m = net.units[l], blk, c0, c1, j, n_blocks = _column_blocks(nb, m)
    cdef floating* A = ws + net.a_off[l]
    cdef floating* mean = ws + net.st_off[l]
    cdef floating* pre = ws + net.pre_off[l] if needs_pre(net.hidden_act) else NULL
    cdef floating* running = <floating*> net.running + net.r_off[l]
    if n_blocks == 1:
        _bn_forward_block(net, P, ws, l, nb, X, A, mean, pre, 0, m)
    else:
        with parallel(num_threads=net.n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                c0 = _lo(blk, n_blocks, m)
                c1 = _lo(blk + 1, n_blocks, m)
                _bn_forward_block(net, P, ws, l, nb, X, A, mean, pre, c0, c1)
            fp_leave()
    if net.update_running:
        for j in range(2 * m):
            running[j] = <floating> (BN_MOMENTUM * running[j] + (1 - BN_MOMENTUM) * mean[j])


cdef void bn_backward(const Net* net, const floating* P, floating* G, floating* ws, int l,
                      Py_ssize_t nb, floating scale) noexcept nogil:
    """D_l from the gradient with respect to the normalized-and-shifted values to the one
    with respect to X W; G gets scale * the gradients of gamma_l and beta_l."""
    cdef Py_ssize_t m = net.units[l], blk, c0, c1, n_blocks = _column_blocks(nb, m)
    cdef const floating* var = ws + net.st_off[l] + m
    if n_blocks == 1:
        batchnorm_backward(ws + net.d_off[l], ws + net.xh_off[l], var, P + net.g_off[l],
                           G + net.g_off[l], G + net.g_off[l] + m, net.acc, nb, m, 0, m,
                           BN_EPSILON, scale)
        return
    with parallel(num_threads=net.n_threads):
        fp_enter()
        for blk in prange(n_blocks, schedule="static"):
            c0 = _lo(blk, n_blocks, m)
            c1 = _lo(blk + 1, n_blocks, m)
            batchnorm_backward(ws + net.d_off[l], ws + net.xh_off[l], var, P + net.g_off[l],
                               G + net.g_off[l], G + net.g_off[l] + m, net.acc, nb, m, c0, c1,
                               BN_EPSILON, scale)
        fp_leave()


cdef void dense_backward_weights(floating* GW, const floating* A_prev, const floating* D,
                                 Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out,
                                 floating scale, floating beta, int n_threads) noexcept nogil:
    """GW (n_in, n_out) = scale * A_prev.T @ D + beta * GW."""
    cdef bint by_rows
    cdef Py_ssize_t blk, lo, width, n_blocks = _plan_weight_grad(n_in, n_out, nb, &by_rows)
    if n_blocks == 1:
        gemm(True, False, n_in, n_out, nb, scale, A_prev, n_in, D, n_out, beta, GW, n_out)
    elif by_rows:
        with parallel(num_threads=n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                lo = _lo(blk, n_blocks, n_in)
                width = _lo(blk + 1, n_blocks, n_in) - lo
                gemm(True, False, width, n_out, nb, scale, A_prev + lo, n_in, D, n_out, beta,
                     GW + lo * n_out, n_out)
            fp_leave()
    else:
        with parallel(num_threads=n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                lo = _lo(blk, n_blocks, n_out)
                width = _lo(blk + 1, n_blocks, n_out) - lo
                gemm(True, False, n_in, width, nb, scale, A_prev, n_in, D + lo, n_out, beta,
                     GW + lo, n_out)
            fp_leave()


cdef inline void _csr_forward_block(floating* A, const Batch* X, const floating* W,
                                    const floating* b, Py_ssize_t r0, Py_ssize_t r1,
                                    Py_ssize_t n_in, Py_ssize_t n_out, int act, floating* pre,
                                    const Net* net) noexcept nogil:
    csr_forward(A, W, <const floating*> X.csr.data, X.csr.indices, X.csr.indptr, X.idx,
                X.start, r0, r1, n_in, n_out)
    forward_epilogue(A, pre, b, n_out, r0, r1 - r0, 0, n_out, act, net, 1, X)


cdef void input_forward(floating* A, const Batch* X, const floating* W, const floating* b,
                        Py_ssize_t nb, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                        floating* pre, const Net* net, floating* scratch) noexcept nogil:
    """The first layer's dense_forward, reading CSR rows in place when X is sparse (cut
    into row blocks; one block runs without a fork/join). scratch: as dense_forward's."""
    cdef Py_ssize_t blk, n_blocks = (nb + BLOCK - 1) // BLOCK
    if X.dense != NULL:
        dense_forward(A, <const floating*> X.dense, W, b, nb, n_in, n_out, act, pre, net, 1, X,
                      scratch)
    elif n_blocks == 1:
        _csr_forward_block(A, X, W, b, 0, nb, n_in, n_out, act, pre, net)
    else:
        with parallel(num_threads=net.n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                _csr_forward_block(A, X, W, b, blk * BLOCK, min(nb, (blk + 1) * BLOCK), n_in,
                                   n_out, act, pre, net)
            fp_leave()


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
        with parallel(num_threads=n_threads):
            fp_enter()
            for blk in prange(n_blocks, schedule="static"):
                csr_weight_grad(GW, D, <const floating*> X.csr.data, X.csr.indices,
                                X.csr.indptr, X.idx, X.start, nb, n_in, n_out, scale, beta != 0,
                                blk * BLOCK, min(n_out, (blk + 1) * BLOCK))
            fp_leave()


# The output layer runs in row blocks of at least this many rows (at most
# OUTPUT_MAX_BLOCKS of them), each thread on its own rows from the product to the
# hidden layer's gradient: output_rows.
cdef Py_ssize_t OUTPUT_BLOCK_ROWS = 128
cdef enum:
    OUTPUT_MAX_BLOCKS = 64


cdef double output_rows(const Net* net, const floating* P, floating* ws, const floating* Y,
                        const floating* sw, const Batch* X0, Py_ssize_t r0,
                        Py_ssize_t nr) noexcept nogil:
    """Rows r0:r0+nr of the output layer L (L > 1): A_L = A_{L-1} W_L, the output
    activation with the loss and D_L (output_loss_backward), then the hidden layer's
    gradient D_{L-1} = backward_epilogue(D_L W_L^T). Every step is row by row, so the
    rows stay in cache from one to the next. Returns the rows' loss sum."""
    cdef int L = net.n_layers
    cdef Py_ssize_t m = net.units[L], n_in = net.units[L - 1]
    cdef floating* A = ws + net.a_off[L] + r0 * m
    cdef floating* D = ws + net.d_off[L] + r0 * m
    cdef const floating* W = P + net.w_off[L - 1]
    cdef const floating* S = ws + (net.pre_off[L - 1] if needs_pre(net.hidden_act)
                                   else net.a_off[L - 1])
    cdef double loss
    gemm(False, False, nr, m, n_in, <floating> 1, ws + net.a_off[L - 1] + r0 * n_in, n_in,
         W, m, <floating> 0, A, m)
    loss = output_loss_backward(D, A, P + net.b_off[L - 1], Y + r0 * m,
                                sw + r0 if sw != NULL else NULL, nr, m, net.out_act,
                                net.out_loss, <floating> net.huber_delta)
    gemm(False, True, nr, n_in, m, <floating> 1, D, m, W, m, <floating> 0,
         ws + net.d_off[L - 1] + r0 * n_in, n_in)
    backward_epilogue(ws + net.d_off[L - 1], S, n_in, r0, nr, 0, n_in, net, L - 1, X0)
    return loss


cdef double output_forward_backward(const Net* net, const floating* P, floating* ws,
                                    const floating* Y, const floating* sw, const Batch* X0,
                                    Py_ssize_t nb) noexcept nogil:
    """output_rows for all nb rows, in row blocks shared by the threads. The output
    layer is too narrow for its products to be worth cutting on their own: one thread
    ran it while the others waited (5 % of a batch-256 epoch; in row blocks, SGD and Adam
    at batch 256 are 2 % faster, measured in interleaved runs; batches of 64 and 128
    gained nothing from smaller blocks). The number of blocks depends on nb only and
    their loss sums are added in order, so the loss does not depend on the thread count.
    Returns the loss sum."""
    cdef Py_ssize_t n_blocks = min(nb // OUTPUT_BLOCK_ROWS, OUTPUT_MAX_BLOCKS), blk, lo
    cdef double partial[OUTPUT_MAX_BLOCKS]
    cdef double loss = 0
    if n_blocks <= 1:
        return output_rows(net, P, ws, Y, sw, X0, 0, nb)
    with parallel(num_threads=net.n_threads):
        fp_enter()
        for blk in prange(n_blocks, schedule="static"):
            lo = _lo(blk, n_blocks, nb)
            partial[blk] = output_rows(net, P, ws, Y, sw, X0, lo,
                                       _lo(blk + 1, n_blocks, nb) - lo)
        fp_leave()
    for blk in range(n_blocks):
        loss += partial[blk]
    return loss


cdef double forward_backward(const Net* net, const floating* P, floating* G, floating* ws,
                             const Batch* X0, const floating* Y, const floating* sw,
                             Py_ssize_t nb, floating scale, bint accumulate) noexcept nogil:
    """Forward nb rows, then backward: G (+)= scale * gradient of the data loss (no L2).
    Returns the sample-weighted data-loss sum over the rows; the outputs are left in
    A_L. (Batch normalization needs the whole batch at once: accumulate is False.)"""
    cdef int l, act, L = net.n_layers
    cdef const Py_ssize_t* u = net.units
    cdef const floating* A_prev
    cdef floating* A
    cdef floating* D
    cdef floating* pre
    cdef floating beta = 1 if accumulate else 0
    cdef bint keep_pre = needs_pre(net.hidden_act)
    cdef double loss
    for l in range(1, L + 1 if L == 1 else L):  # an output layer after hidden ones: below
        A = ws + net.a_off[l]
        pre = ws + net.pre_off[l] if keep_pre and l < L else NULL
        # the output layer's activation comes with its loss below; batch normalization
        # comes between a hidden layer's GEMM and its activation
        act = -1 if l == L or net.batch_norm else net.hidden_act
        if l == 1:
            input_forward(A, X0, P + net.w_off[0], P + net.b_off[0], nb, u[0], u[1], act,
                          pre, net, ws + net.d_off[1])  # D_l is free until the backward pass
        else:
            dense_forward(A, A_prev, P + net.w_off[l - 1], P + net.b_off[l - 1], nb,
                          u[l - 1], u[l], act, pre, net, l, X0, ws + net.d_off[l])
        if net.batch_norm and l < L:
            bn_forward(net, P, ws, l, nb, X0)
        A_prev = A
    if L == 1:
        loss = output_loss_backward(ws + net.d_off[L], ws + net.a_off[L],
                                    P + net.b_off[L - 1], Y, sw, nb, u[L], net.out_act,
                                    net.out_loss, <floating> net.huber_delta)
    else:  # the output layer's product, loss and input gradient, in row blocks
        loss = output_forward_backward(net, P, ws, Y, sw, X0, nb)
    for l in range(L, 0, -1):
        D = ws + net.d_off[l]
        if l > 1:  # no input gradient for the first layer
            A_prev = ws + net.a_off[l - 1]
            if l < L:  # the output layer's came with its loss
                dense_backward_input(ws + net.d_off[l - 1], D, P + net.w_off[l - 1],
                                     ws + net.pre_off[l - 1] if keep_pre else A_prev, nb,
                                     u[l - 1], u[l], net, l - 1, X0)
            if net.batch_norm:
                bn_backward(net, P, G, ws, l - 1, nb, scale)
            dense_backward_weights(G + net.w_off[l - 1], A_prev, D, nb, u[l - 1], u[l],
                                   scale, beta, net.n_threads)
        else:
            input_weight_grad(G + net.w_off[0], X0, D, nb, u[0], u[1], scale, beta,
                              net.n_threads)
        if net.batch_norm and l < L:  # unused hidden bias: no gradient
            bias_grad(G + net.b_off[l - 1], D, 0, u[l], scale, accumulate)
        else:
            bias_grad(G + net.b_off[l - 1], D, nb, u[l], scale, accumulate)
    return loss


cdef extern from "Python.h":
    int _check_signals "PyErr_CheckSignals" () except -1


# What a signal handler raised inside the engine (KeyboardInterrupt for Ctrl-C, or a
# handler's own exception): kept until the engine is consistent, then raised by the call.
# Handlers run in the main thread only, so one engine call at a time can set it.
cdef object _signal_error = None


cdef bint sigint_pending() noexcept with gil:
    """Run Python's pending signal handlers; True if one raised (the default SIGINT
    handler does on Ctrl-C), its exception kept for _raise_signal_error."""
    global _signal_error
    try:
        _check_signals()
    except BaseException as exc:
        _signal_error = exc
        return True
    return False


def _raise_signal_error():
    """Raise what sigint_pending kept (after the call's steps were counted)."""
    global _signal_error
    error, _signal_error = _signal_error, None
    raise error if error is not None else KeyboardInterrupt


# Look at the clock every few batches (or chunks), and take the GIL to look for Ctrl-C
# only when this much CPU time has passed since the last look.
cdef double SIGNAL_CHECK_SECONDS = 0.05


cdef inline bint _signal_due(clock_t* last_check) noexcept nogil:
    """Whether a look for signals (sigint_pending) is due: SIGNAL_CHECK_SECONDS of CPU
    time since *last_check (then reset)."""
    if clock() - last_check[0] < <clock_t> (SIGNAL_CHECK_SECONDS * CLOCKS_PER_SEC):
        return False
    last_check[0] = clock()
    return True


cdef enum:
    STOP_INTERRUPT = 1
    STOP_ZERO_WEIGHT = 2


cdef double train_epoch_core(const Net* net, Buffers* buf, const Rows* X,
                             const Py_ssize_t* order, Py_ssize_t n, Py_ssize_t batch,
                             Py_ssize_t k0, Py_ssize_t k1,
                             Py_ssize_t n_params, Py_ssize_t n_weights, StepConfig* cfg,
                             long adam_t, double alpha, double* sq_io, double* partial,
                             double* stats, Py_ssize_t* steps_done, int* stopped,
                             floating tag) noexcept nogil:
    """Mini-batches k0..k1-1 of a pass over the n rows: forward, backward, optimizer step.
    Returns the sum over batches of (batch loss * batch rows); *sq_io is sum(W**2) on
    entry and on exit.
    stats (or NULL) accumulates: [0] that sum, [1] the same for the data loss alone,
    [2] the rows, [3:] the score sums of score_stats.
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
    cdef double sw_sum, loss, total = 0, lr0 = cfg.lr, sq = sq_io[0]
    cdef clock_t last_check = clock()
    steps_done[0] = 0
    stopped[0] = 0
    yrows.dense = Y
    yrows.data = yrows.indices = yrows.indptr = NULL
    yrows.n_rows = n
    yrows.n_cols = n_out
    for k in range(k0, k1):
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
        if stats != NULL:
            stats[0] += (loss + 0.5 * alpha * sq / sw_sum) * nb
            stats[1] += loss * nb
            stats[2] += nb
            score_stats(stats + 3, <floating*> buf.ws + net.a_off[net.n_layers], yb, swb, nb,
                        n_out, net.out_act)
        cfg.l2 = alpha / sw_sum
        if cfg.kind == ADAM or cfg.kind == ADAMW:  # bias-corrected step size
            adam_t += 1
            cfg.lr = lr0 * sqrt(1 - pow(cfg.beta_2, adam_t)) / (1 - pow(cfg.beta_1, adam_t))
        sq = step(cfg, P, G, <floating*> buf.state1, <floating*> buf.state2, n_params,
                  n_weights, buf.chunks, buf.n_chunks, partial, alpha > 0, net.n_threads)
        steps_done[0] = k + 1 - k0
        if k % 4 == 3 and _signal_due(&last_check) and sigint_pending():
            stopped[0] = STOP_INTERRUPT
            break
    sq_io[0] = sq
    return total


cdef void predict_chunk(const Net* net, const floating* P, const Rows* X, Py_ssize_t start,
                        Py_ssize_t nb, floating* out, floating* h1,
                        floating* h2) noexcept nogil:
    """out rows start:start + nb = the network's output for those rows, hidden activations
    alternating between h1 and h2 (nb x the widest hidden layer each)."""
    cdef int l, L = net.n_layers
    cdef const Py_ssize_t* u = net.units
    cdef const floating* A_prev
    cdef floating* A
    cdef Batch xb = batch_rows(X, NULL, start, nb, <floating*> NULL, net.n_threads)
    A = out + start * u[L] if L == 1 else h1
    input_forward(A, &xb, P + net.w_off[0], P + net.b_off[0], nb, u[0], u[1],
                  net.out_act if L == 1 else net.hidden_act, <floating*> NULL, net,
                  <floating*> NULL)
    A_prev = A
    for l in range(2, L + 1):
        A = out + start * u[L] if l == L else (h1 if l % 2 == 1 else h2)
        dense_forward(A, A_prev, P + net.w_off[l - 1], P + net.b_off[l - 1], nb, u[l - 1],
                      u[l], net.out_act if l == L else net.hidden_act, <floating*> NULL, net,
                      l, &xb, <floating*> NULL)
        A_prev = A


cdef inline bint _chunks_per_thread(Py_ssize_t n, Py_ssize_t chunk, int n_threads) noexcept nogil:
    """Whether predicting n rows in chunks of chunk rows gives each of n_threads threads
    PER_THREAD_CHUNKS chunks or more (then packing the weights once pays)."""
    return (n + chunk - 1) // chunk >= PER_THREAD_CHUNKS * n_threads


cdef inline bint _thread_per_chunk(Py_ssize_t n, Py_ssize_t chunk, int n_threads) noexcept nogil:
    """Whether predict_core gives whole chunks to the threads: from PER_THREAD_CHUNKS
    chunks per thread (measured with two threads), and with more than two threads from
    two chunks, since a chunk's products are cut into few blocks (two for a layer with
    256 inputs or more), which would leave most threads idle."""
    return n_threads > 1 and (_chunks_per_thread(n, chunk, n_threads)
                              or n_threads > 2 and n > chunk)


cdef void predict_core(const Net* net, const floating* P, const Rows* X, Py_ssize_t n,
                       floating* out, floating* h1, floating* h2, Py_ssize_t chunk,
                       bint per_thread, Py_ssize_t h_size, int* stopped) noexcept nogil:
    """out (n, n_outputs) = the network's output for the n rows, in chunks of chunk rows.
    Where per_thread (_thread_per_chunk), each thread takes whole chunks through every
    layer on its own (its layers' products in one thread, each chunk's activations
    staying in its cache, no fork/join between layers), thread t with its own h1 + t
    h_size and h2 + t h_size; otherwise the chunks go one after the other, each layer's
    product cut among the threads. The chunks, and the blocks each layer is cut into, are
    the same both ways, and so are the outputs.

    Between chunks the calling thread (thread 0, where Python runs signal handlers) looks
    for a signal now and then: if a handler raised (Ctrl-C), *stopped = 1 and the chunks
    not begun are skipped, for the caller to raise it (_raise_signal_error)."""
    cdef Py_ssize_t k, t, n_chunks = (n + chunk - 1) // chunk
    cdef Net one
    cdef clock_t[1] last_check  # (an array: written through, it stays shared in prange)
    last_check[0] = clock()
    if not per_thread:
        for k in range(n_chunks):
            predict_chunk(net, P, X, k * chunk, min(chunk, n - k * chunk), out, h1, h2)
            if _signal_due(last_check) and sigint_pending():
                stopped[0] = 1
                return
        return
    with parallel(num_threads=net.n_threads):
        fp_enter()
        t = omp_get_thread_num()
        one = net[0]
        one.n_threads = 1
        if net.nonfinite != NULL:
            one.nonfinite = net.nonfinite + t
        for k in prange(n_chunks, schedule="dynamic"):
            if stopped[0]:
                continue
            predict_chunk(&one, P, X, k * chunk, min(chunk, n - k * chunk), out,
                          h1 + t * h_size, h2 + t * h_size)
            if t == 0 and _signal_due(last_check) and sigint_pending():
                stopped[0] = 1
        fp_leave()


cdef void* _ptr(object arr):
    """Data pointer of a numpy array (None gives NULL)."""
    if arr is None:
        return NULL
    return <void*> <Py_ssize_t> arr.__array_interface__["data"][0]


def parameter_count(layer_units, batch_norm=False):
    """How many values a Network of these layers holds in params: the weights, the biases,
    and with batch normalization each hidden unit's scale and shift (Network's layout)."""
    units = [int(u) for u in layer_units]
    count = sum(a * b + b for a, b in zip(units, units[1:]))
    return count + (2 * sum(units[1:-1]) if batch_norm else 0)


def _mix64(z):
    """The kernels' mix64, in Python (for the dropout keys)."""
    z &= 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


cdef class Network:
    """A fully connected network with its parameters in one flat buffer.

    Parameters
    ----------
    layer_units : list of int
        Widths [n_features, hidden..., n_outputs].
    hidden_activation : str
        A key of HIDDEN_ACTIVATIONS.
    output_activation : {'softmax', 'logistic', 'identity', 'exp'}
        Each output activation comes with its canonical loss: log-loss, binary
        log-loss, half squared error (or `loss`), Poisson deviance.
    dtype : np.float32 or np.float64
    dropout : sequence of float, optional
        Dropout rate of each hidden layer (training only).
    batch_norm : bool
        Batch normalization between each hidden layer's product and its activation;
        the hidden biases are then unused (kept at zero).
    loss : {'squared_error', 'absolute_error', 'huber'}
        The loss of an identity output.
    huber_delta : float
        The Huber loss's threshold.

    Layout of params: all W, all b, then with batch_norm each hidden layer's gamma and
    beta (bn_scales, bn_shifts). `running` holds each hidden layer's running mean and
    variance (bn_means, bn_vars).
    """
    cdef readonly object dtype
    cdef readonly list layer_units
    cdef readonly str hidden_activation, output_activation, loss
    cdef readonly object params, grads, running
    cdef readonly list coefs, intercepts, bn_scales, bn_shifts, bn_means, bn_vars
    cdef readonly Py_ssize_t n_weights
    cdef readonly list dropout
    cdef readonly bint batch_norm
    cdef readonly double huber_delta
    cdef object _units, _w_off, _b_off, _g_off, _r_off, _rates, _keys, _acc
    cdef object _ws, _ws_rows, _a_off, _d_off, _pre_off, _xh_off, _st_off
    cdef object _xbuf, _ybuf, _swbuf, _partial, _carry_sq, _chunks
    cdef int _hidden_act, _out_act, _out_loss
    # Set while a training call holds pointers into the workspace without the GIL: reserve
    # and release refuse to touch it meanwhile (a second training call from another
    # thread, through a shallow copy of the estimator, or from a signal handler).
    cdef bint _busy

    def __init__(self, layer_units, hidden_activation, output_activation, dtype, *,
                 dropout=None, batch_norm=False, loss="squared_error", huber_delta=1.0):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.layer_units = [int(u) for u in layer_units]
        if len(self.layer_units) < 2 or min(self.layer_units) < 1:
            raise ValueError(f"invalid layer_units {layer_units}")
        if hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown hidden activation {hidden_activation!r}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {output_activation!r}")
        if loss not in REGRESSION_LOSSES or (loss != "squared_error"
                                             and output_activation != "identity"):
            raise ValueError(f"loss {loss!r} needs the identity output")
        if not huber_delta > 0:
            raise ValueError("huber_delta must be > 0")
        # str(): a str subclass (numpy's str_, from a grid of np.array(["relu", ...]))
        self.hidden_activation = str(hidden_activation)
        self.output_activation = str(output_activation)
        self.loss = str(loss)
        self.huber_delta = huber_delta
        self._hidden_act = HIDDEN_ACTIVATIONS[hidden_activation]
        self._out_act = OUTPUT_ACTIVATIONS[output_activation]
        self._out_loss = REGRESSION_LOSSES[loss]
        units = self.layer_units
        hidden = units[1:-1]
        rates = [0.0] * len(hidden) if dropout is None else [float(r) for r in dropout]
        if len(rates) != len(hidden) or not all(0 <= r < 1 for r in rates):
            raise ValueError(f"dropout needs one rate in [0, 1) per hidden layer, got {dropout}")
        self.dropout = rates
        self.batch_norm = bool(batch_norm) and len(hidden) > 0
        fans = list(zip(units[:-1], units[1:]))
        self.n_weights = sum(a * b for a, b in fans)
        n_params = parameter_count(units, self.batch_norm)
        w_off = np.cumsum([0] + [a * b for a, b in fans])[:-1]
        b_off = self.n_weights + np.cumsum([0] + units[1:])[:-1]
        # per hidden layer l = 1..L-1 (index 0 unused): gamma_l offsets (after the
        # biases), running offsets
        g_off = [0] + list(self.n_weights + sum(units[1:]) + 2 * np.cumsum([0] + hidden)[:-1]) \
            if self.batch_norm else [0] * len(units)
        r_off = [0] + list(2 * np.cumsum([0] + hidden)[:-1]) if self.batch_norm \
            else [0] * len(units)
        self._units = np.asarray(units, dtype=np.intp)
        self._w_off = np.asarray(w_off, dtype=np.intp)
        self._b_off = np.asarray(b_off, dtype=np.intp)
        self._g_off = np.asarray(g_off + [0] * (len(units) - len(g_off)), dtype=np.intp)
        self._r_off = np.asarray(r_off + [0] * (len(units) - len(r_off)), dtype=np.intp)
        self._rates = np.asarray([0.0] + rates + [0.0], dtype=np.float64)
        self._keys = np.zeros(len(units), dtype=np.uint64)
        self._acc = np.zeros(2 * max(hidden, default=1), dtype=np.float64)  # (batch norm)
        self.params = np.zeros(n_params, dtype=self.dtype)
        # allocated by the first reserve: a network that only predicts (a float64 copy
        # made to predict float64 X) never needs it
        self.grads = None
        self.running = np.zeros(2 * sum(hidden) if self.batch_norm else 0, dtype=self.dtype)
        self.coefs = [self.params[o:o + a * b].reshape(a, b) for o, (a, b) in zip(w_off, fans)]
        self.intercepts = [self.params[o:o + b] for o, b in zip(b_off, units[1:])]
        self.bn_scales, self.bn_shifts, self.bn_means, self.bn_vars = [], [], [], []
        if self.batch_norm:
            for l, width in enumerate(hidden, start=1):
                g, r = g_off[l], r_off[l]
                self.bn_scales.append(self.params[g:g + width])
                self.bn_shifts.append(self.params[g + width:g + 2 * width])
                self.bn_means.append(self.running[r:r + width])
                self.bn_vars.append(self.running[r + width:r + 2 * width])
                self.bn_scales[-1][:] = 1
                self.bn_vars[-1][:] = 1
        self._chunks = self._step_chunks(fans)
        self._ws = None
        self._ws_rows = 0
        self._carry_sq = None

    def _step_chunks(self, fans):
        """The optimizer step's chunks (_optim.step): the top halves of every weight
        matrix's rows and the first half of the other parameters, then the bottom halves
        and the rest. With two threads, each steps the band of rows it multiplies with in
        the forward and weight-gradient passes (dense_forward_banded)."""
        first, second = [], []
        for off, (n_in, n_out) in zip(self._w_off.tolist(), fans):
            mid = off + (n_in // 2) * n_out
            first.append((off, mid))
            second.append((mid, off + n_in * n_out))
        n, mid = self.params.shape[0], (self.n_weights + self.params.shape[0]) // 2
        return chunk_bounds(first + [(self.n_weights, mid)] + second + [(mid, n)])

    def config(self):
        """The arguments that rebuild this network: Network(**config())."""
        return dict(layer_units=list(self.layer_units), hidden_activation=self.hidden_activation,
                    output_activation=self.output_activation, dtype=self.dtype.str,
                    dropout=list(self.dropout), batch_norm=bool(self.batch_norm),
                    loss=self.loss, huber_delta=float(self.huber_delta))

    def __reduce__(self):
        return (_rebuild_network, (self.config(), self.params, self.running))

    def astype(self, dtype):
        """A copy of this network with its parameters cast to dtype."""
        return _rebuild_network(dict(self.config(), dtype=np.dtype(dtype).str), self.params,
                                self.running)

    @property
    def n_outputs(self):
        return self.layer_units[-1]

    def n_batches(self, Py_ssize_t n, Py_ssize_t batch_size):
        """The number of mini-batches in an epoch over n rows."""
        batch = max(1, min(batch_size, n))
        return (n + batch - 1) // batch

    def reserve(self, Py_ssize_t rows):
        """Allocate the training workspace for batches of up to `rows` rows: activations,
        deltas (and, where needed, pre-activations, normalized values and batch
        statistics), the gathered rows, targets and weights, the optimizer's partial
        sums. Kept until release(); the epochs of a fit reuse it without allocating."""
        self._check_idle()
        if self.grads is None:
            self.grads = np.zeros_like(self.params)
        if self._ws is not None and self._ws_rows >= rows:
            return
        widths = self.layer_units[1:]
        L = len(widths)
        hidden = widths[:-1]
        sizes = [rows * w for w in widths]
        pre = [rows * w if self._hidden_act in (GELU, SILU) else 0 for w in hidden]
        xh = [rows * w if self.batch_norm else 0 for w in hidden]
        st = [2 * w if self.batch_norm else 0 for w in hidden]
        starts = np.cumsum([0] + sizes + sizes + pre + xh + st)
        at = 2 * L
        self._a_off = np.concatenate([[0], starts[:L]]).astype(np.intp)
        self._d_off = np.concatenate([[0], starts[L:at]]).astype(np.intp)
        self._pre_off = np.concatenate([[0], starts[at:at + L - 1], [0]]).astype(np.intp)
        at += L - 1
        self._xh_off = np.concatenate([[0], starts[at:at + L - 1], [0]]).astype(np.intp)
        at += L - 1
        self._st_off = np.concatenate([[0], starts[at:at + L - 1], [0]]).astype(np.intp)
        self._ws = np.empty(max(int(starts[-1]), 1), dtype=self.dtype)
        self._xbuf = None  # allocated by _gather_buffer, for dense input only
        self._ybuf = np.empty((rows, self.n_outputs), dtype=self.dtype)
        self._swbuf = np.empty(rows, dtype=self.dtype)
        self._partial = np.empty(self._chunks.shape[0], dtype=np.float64)
        self._ws_rows = rows

    def _gather_buffer(self, held):
        """Room for one batch of gathered dense rows (CSR input needs none: the first layer
        reads it in place, so a wide sparse X never gets a dense batch buffer)."""
        if held[0] is None:
            return None
        if self._xbuf is None:
            self._xbuf = np.empty((self._ws_rows, self.layer_units[0]), dtype=self.dtype)
        return self._xbuf

    def _check_idle(self):
        if self._busy:
            raise RuntimeError(
                "This network is being trained by another call: from another thread (the "
                "estimator or a shallow copy of it fitted twice at once) or from a signal "
                "handler that fits the model being trained.")

    def release(self):
        """Free the training workspace."""
        self._check_idle()
        self._ws = self._xbuf = self._ybuf = self._swbuf = self._partial = None
        self._ws_rows = 0

    def _set_keys(self, epoch, seed):
        """The dropout mask keys of (seed, epoch), one per hidden layer."""
        base = _mix64(_mix64(int(seed)) ^ _mix64(int(epoch) + 0x9e3779b97f4a7c15))
        for l in range(len(self.layer_units)):
            self._keys[l] = _mix64(base + l)

    def dropout_mask(self, int layer, rows, epoch=0, seed=0):
        """The dropout multipliers (0 or 1 / (1 - rate)) of hidden layer `layer` (1-based)
        for the data rows `rows` in the given epoch: what training applies."""
        if not 1 <= layer < len(self.layer_units) - 1:
            raise ValueError(f"layer must be a hidden layer, 1..{len(self.layer_units) - 2}")
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        out = np.ones((rows.shape[0], self.layer_units[layer]), dtype=np.float64)
        self._set_keys(epoch, seed)
        cdef double rate = self._rates[layer]
        cdef Py_ssize_t n = out.shape[0], m = out.shape[1], zero = 0
        cdef unsigned long long key = self._keys[layer]
        if rate > 0:
            dropout_apply(<double*> _ptr(out), m, n, m, <const Py_ssize_t*> _ptr(rows), zero,
                          zero, key, rate)
        return out

    cdef Net _net(self, bint training=False, bint update_running=False):
        cdef Net net
        cdef bint ws = self._ws is not None
        net.n_layers = len(self.layer_units) - 1
        net.units = <const Py_ssize_t*> _ptr(self._units)
        net.w_off = <const Py_ssize_t*> _ptr(self._w_off)
        net.b_off = <const Py_ssize_t*> _ptr(self._b_off)
        net.a_off = <const Py_ssize_t*> _ptr(self._a_off) if ws else NULL
        net.d_off = <const Py_ssize_t*> _ptr(self._d_off) if ws else NULL
        net.pre_off = <const Py_ssize_t*> _ptr(self._pre_off) if ws else NULL
        net.xh_off = <const Py_ssize_t*> _ptr(self._xh_off) if ws else NULL
        net.st_off = <const Py_ssize_t*> _ptr(self._st_off) if ws else NULL
        net.hidden_act = self._hidden_act
        net.out_act = self._out_act
        net.out_loss = self._out_loss
        net.huber_delta = self.huber_delta
        net.n_threads = engine_threads(omp_get_max_threads())
        net.training = training
        net.update_running = update_running
        net.drop_rate = <const double*> _ptr(self._rates)
        net.drop_key = <const unsigned long long*> _ptr(self._keys)
        net.batch_norm = self.batch_norm and training
        net.g_off = <const Py_ssize_t*> _ptr(self._g_off)
        net.r_off = <const Py_ssize_t*> _ptr(self._r_off)
        net.running = _ptr(self.running)
        net.acc = <double*> _ptr(self._acc)
        net.nonfinite = NULL
        net.packed = NULL
        net.pk_off = NULL
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
        with np.errstate(over="ignore"):  # diverged weights: inf, which the caller handles
            return float(np.sum(np.square(w, dtype=np.float64)))

    def new_stats(self):
        """Zeroed per-epoch sums for train_epoch's `stats` (see train_epoch_core)."""
        return np.zeros(5 + 4 * self.n_outputs, dtype=np.float64)

    def finish_stats(self, stats):
        """The epoch's numbers from train_epoch's sums: `objective` (mean batch loss with
        the L2 term, scikit-learn's loss_curve_), `loss` (the data loss alone) and `score`
        (accuracy, or R² averaged over outputs, of each batch's predictions made before
        its step, as Keras reports training metrics), all row-weighted over the rows run."""
        rows = stats[2]
        if rows == 0:
            return dict(objective=np.nan, loss=np.nan, score=np.nan)
        if self._out_act in (SOFTMAX, LOGISTIC):
            score = stats[3] / stats[4] if stats[4] > 0 else np.nan
        else:
            r2 = []
            for k in range(self.n_outputs):
                ss_tot, ss_res = stats[7 + 4 * k], stats[8 + 4 * k]
                if ss_tot > 0:
                    r2.append(1 - ss_res / ss_tot)
                else:  # scikit-learn's r2_score for constant targets
                    r2.append(1.0 if ss_res == 0 else 0.0)
            score = float(np.mean(r2))
        return dict(objective=stats[0] / rows, loss=stats[1] / rows, score=float(score))

    def train_epoch(self, X, Y, sample_weight, order, Py_ssize_t batch_size, double alpha,
                    optimizer, *, stats=None, epoch=0, seed=0, batches=None):
        """One epoch of mini-batch training, the GIL released throughout.

        order: the row order (np.intp array, a permutation of range(n)) or None for the
        stored order. optimizer: an SGDOptimizer / AdamOptimizer whose state buffers are
        updated in place. Returns the epoch's summed loss: sum over batches of the batch
        loss (data loss + L2 term) times the batch's row count. stats: sums from
        new_stats() to accumulate into (see finish_stats). epoch, seed: the dropout
        masks' key. batches: (k0, k1) runs mini-batches k0..k1-1 of the epoch only.

        Raises KeyboardInterrupt on Ctrl-C, or what another signal handler raised (after
        the steps taken so far, which stay applied and counted), and ValueError when a
        mini-batch's sample weights sum to zero.
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
        cdef Py_ssize_t n_batches = (n + batch - 1) // batch
        cdef Py_ssize_t k0 = 0, k1 = n_batches
        if batches is not None:
            k0, k1 = batches
            if not 0 <= k0 <= k1 <= n_batches:
                raise ValueError(f"batches must lie in [0, {n_batches}], got {batches}")
        if stats is not None and (stats.dtype != np.float64 or not stats.flags.c_contiguous
                                  or stats.shape != (5 + 4 * self.n_outputs,)):
            raise ValueError("stats must come from new_stats()")
        self.reserve(batch)
        self._busy = True  # (nothing between reserve and here lets another thread run)
        try:
            return self._train_epoch_reserved(Y, sample_weight, order, held, n, batch,
                                              n_batches, k0, k1, alpha, optimizer, stats,
                                              epoch, seed)
        finally:
            self._busy = False

    cdef object _train_epoch_reserved(self, Y, sample_weight, order, held, Py_ssize_t n,
                                      Py_ssize_t batch, Py_ssize_t n_batches, Py_ssize_t k0,
                                      Py_ssize_t k1, double alpha, optimizer, stats, epoch,
                                      seed):
        """train_epoch, once its arguments are checked and the workspace reserved."""
        self._set_keys(epoch, seed)
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
        buf.chunks = <const Py_ssize_t*> _ptr(self._chunks)
        buf.n_chunks = self._chunks.shape[0]
        cdef Net net = self._net(True, True)
        cdef Rows rows = self._fill_rows(held)
        cdef const Py_ssize_t* order_p = <const Py_ssize_t*> _ptr(order)
        cdef double* stats_p = <double*> _ptr(stats)
        cdef Py_ssize_t n_params = self.params.shape[0], n_weights = self.n_weights
        # sum(W**2) for the first batch's L2 term; a batch range that continues the
        # previous call's epoch takes it from that call (the same numbers as one call)
        cdef double sq = 0.0
        if alpha > 0:
            sq = self._carry_sq if k0 > 0 and self._carry_sq is not None \
                else self.sum_sq_weights()
        cdef double total
        cdef double* partial = <double*> _ptr(self._partial)
        cdef bint single = self.dtype == np.float32
        cdef Py_ssize_t steps = 0
        cdef int stopped = 0
        with blas_single_threaded(), nogil:
            fp_enter()  # subnormals flushed to zero until fp_leave (_fpenv.pxd)
            if single:
                total = train_epoch_core(&net, &buf, &rows, order_p, n, batch, k0, k1,
                                         n_params, n_weights, &cfg, adam_t, alpha, &sq,
                                         partial, stats_p, &steps, &stopped, <float> 0)
            else:
                total = train_epoch_core(&net, &buf, &rows, order_p, n, batch, k0, k1,
                                         n_params, n_weights, &cfg, adam_t, alpha, &sq,
                                         partial, stats_p, &steps, &stopped, <double> 0)
            fp_leave()
        optimizer.after_steps(steps)
        self._carry_sq = sq if alpha > 0 and k1 < n_batches and not stopped else None
        if stopped == STOP_ZERO_WEIGHT:
            raise ValueError(
                f"The sample weights of mini-batch {k0 + steps + 1} sum to zero, so its loss is "
                "undefined. Give more rows a positive sample_weight or use a larger "
                "batch_size.")
        if stopped == STOP_INTERRUPT:
            _raise_signal_error()
        return total

    def loss_and_grad(self, X, Y, sample_weight=None, double alpha=0.0, *, training=False,
                      epoch=0, seed=0):
        """The full-batch objective at the current parameters and its gradient, as
        scikit-learn's _backprop defines them: weighted-mean data loss (squared error
        averaged over outputs) + 0.5 * alpha * sum(W**2) / sum(sample_weight), and the
        gradient (summed over outputs). Rows are processed in bounded chunks.

        training=True evaluates the network as one training mini-batch of all the rows
        (one chunk): dropout masks keyed by (seed, epoch, row), batch statistics; the
        running statistics are left alone. A batch-normalized network needs it."""
        held = self._rows(X)
        cdef Py_ssize_t n = held[4]
        if n == 0:
            raise ValueError("no rows")
        if self.batch_norm and not training:
            raise ValueError("a batch-normalized network's loss_and_grad needs training=True")
        Y, sample_weight = self._targets(Y, n, sample_weight)
        cdef Py_ssize_t chunk = n if training else min(n, DEFAULT_CHUNK)
        self.reserve(chunk)
        self._busy = True  # (as in train_epoch)
        try:
            return self._loss_and_grad_reserved(Y, sample_weight, held, n, chunk, alpha,
                                                training, epoch, seed)
        finally:
            self._busy = False

    cdef object _loss_and_grad_reserved(self, Y, sample_weight, held, Py_ssize_t n,
                                        Py_ssize_t chunk, double alpha, bint training, epoch,
                                        seed):
        """loss_and_grad, once its arguments are checked and the workspace reserved."""
        self._set_keys(epoch, seed)
        cdef double sw_sum = float(np.sum(sample_weight, dtype=np.float64)) \
            if sample_weight is not None else n
        if sw_sum == 0:
            raise ValueError("The sample weights sum to zero: the loss is undefined.")
        cdef Net net = self._net(training, False)
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
            fp_enter()  # subnormals flushed to zero until fp_leave (_fpenv.pxd)
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
            fp_leave()
        loss = total / sw_sum
        if self._out_act == IDENTITY:
            loss /= n_out
        grad = self.grads.copy()
        if alpha > 0:
            loss += 0.5 * alpha * self.sum_sq_weights() / sw_sum
            grad[:self.n_weights] += (alpha / sw_sum) * self.params[:self.n_weights]
        return float(loss), grad

    def _folded_params(self):
        """The parameters with each hidden layer's batch normalization (running
        statistics) folded into its weights and bias: act(s * (X W - mean) + beta) with
        s = gamma / sqrt(var + eps) is act(X (W s) + (beta - s * mean))."""
        folded = self.params.astype(np.float64)
        for l in range(1, len(self.layer_units) - 1):
            s = self.bn_scales[l - 1] / np.sqrt(self.bn_vars[l - 1].astype(np.float64) + BN_EPSILON)
            w0, b0 = self._w_off[l - 1], self._b_off[l - 1]
            fan_in, width = self.layer_units[l - 1], self.layer_units[l]
            folded[w0:w0 + fan_in * width].reshape(fan_in, width)[...] *= s
            folded[b0:b0 + width] = self.bn_shifts[l - 1] - s * self.bn_means[l - 1]
        return folded.astype(self.dtype)

    def predict(self, X, Py_ssize_t chunk=PREDICT_CHUNK):
        """The network's outputs (after the output activation) for X, computed in chunks
        of rows with scratch owned by this call (safe to call from several threads)."""
        return self._predict(X, chunk, False)[0]

    def predict_watched(self, X, Py_ssize_t chunk=PREDICT_CHUNK):
        """predict, and whether a product of the first layer (X @ W_1, before the bias)
        was NaN or infinite. A NaN or an infinity in a row of X makes all of that row's
        products so (NaN times anything is NaN, infinity times zero too), so where there
        is none, X has none either, without a pass over X of its own."""
        return self._predict(X, chunk, True)

    def _predict(self, X, Py_ssize_t chunk, bint watch):
        held = self._rows(X)
        cdef Py_ssize_t n = held[4]
        params = self._folded_params() if self.batch_norm else self.params
        out = np.empty((n, self.n_outputs), dtype=self.dtype)
        if n == 0:
            return out, False
        chunk = max(1, min(chunk, n))
        cdef Net net = self._net()
        cdef bint per_thread = _thread_per_chunk(n, chunk, net.n_threads)
        cdef Py_ssize_t h_size = chunk * max(self.layer_units[1:-1], default=1)
        h1 = np.empty((net.n_threads if per_thread else 1) * h_size, dtype=self.dtype)
        h2 = np.empty((net.n_threads if per_thread else 1) * h_size, dtype=self.dtype)
        flags = np.zeros(net.n_threads, dtype=np.intc)
        if watch:
            net.nonfinite = <int*> _ptr(flags)
        cdef Rows rows = self._fill_rows(held)
        # packed once, the weights pay where every thread has several chunks (else the
        # serial packing costs more than the copies each product makes of them)
        if _chunks_per_thread(n, chunk, net.n_threads):
            packed, pk_off = self._packed_weights(params, chunk, rows.dense == NULL)
        else:
            packed, pk_off = None, None
        net.packed = _ptr(packed)
        net.pk_off = <const Py_ssize_t*> _ptr(pk_off)
        cdef void* P = _ptr(params)
        cdef void* o = _ptr(out)
        cdef void* p1 = _ptr(h1)
        cdef void* p2 = _ptr(h2)
        cdef bint single = self.dtype == np.float32
        cdef int stopped = 0
        with blas_single_threaded(), nogil:
            fp_enter()  # subnormals flushed to zero until fp_leave (_fpenv.pxd)
            if single:
                predict_core(&net, <float*> P, &rows, n, <float*> o, <float*> p1, <float*> p2,
                             chunk, per_thread, h_size, &stopped)
            else:
                predict_core(&net, <double*> P, &rows, n, <double*> o, <double*> p1,
                             <double*> p2, chunk, per_thread, h_size, &stopped)
            fp_leave()
        if stopped:
            _raise_signal_error()
        return out, bool(flags.any())

    def _packed_weights(self, params, Py_ssize_t rows, bint sparse_input):
        """Every layer's W in params packed for the kernel (_blas.pack_b), for prediction
        in chunks of rows: one 64-byte aligned buffer, and each layer's offset in it (-1
        for a layer not packed: its products go to the BLAS, or its input is sparse and
        read without a product, or its W is so narrow that padding its columns to whole
        panels would more than double it). Packed once here, the weights are not copied
        again for every row block of every chunk."""
        units = self.layer_units
        L = len(units) - 1
        pk_off = np.full(L + 1, -1, dtype=np.intp)
        cdef Py_ssize_t total = 0, size, l
        for l in range(1, L + 1):
            size = packed_b_size(units[l], units[l - 1], self.dtype)
            if (size > 0 and size <= 2 * units[l] * units[l - 1] and not (l == 1 and sparse_input)
                    and kernel_takes(False, rows, units[l], units[l - 1])):
                pk_off[l] = total
                total += size
        if total == 0:
            return None, pk_off
        packed = aligned_empty(total, self.dtype)
        cdef void* P = _ptr(params)
        cdef void* out = _ptr(packed)
        cdef Py_ssize_t w_at, at, n_in, n_out
        for l in range(1, L + 1):
            at, w_at, n_in, n_out = pk_off[l], self._w_off[l - 1], units[l - 1], units[l]
            if at < 0:
                continue
            if self.dtype == np.float32:
                pack_b(False, <float*> P + w_at, n_out, n_out, n_in, <float*> out + at)
            else:
                pack_b(False, <double*> P + w_at, n_out, n_out, n_in, <double*> out + at)
        return packed, pk_off


def _rebuild_network(config, params, running):
    net = Network(**config)
    net.params[:] = params
    net.running[:] = running
    return net
