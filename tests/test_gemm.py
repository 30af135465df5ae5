"""The engine's GEMM: cymlp's AVX-512 kernel (float32 and float64) against products in
higher precision, and the routing between it and scipy's BLAS."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.linalg import blas as scipy_blas

from cymlp import MLPClassifier, _blas

needs_kernel = pytest.mark.skipif(not _blas.own_gemm_supported(), reason="this CPU has no AVX-512F")


@pytest.fixture
def routing():
    """_blas.own_gemm, to set the routing with; the previous routing restored after."""
    saved = _blas.own_gemm(), _blas.small_products_to_blas()
    yield _blas.own_gemm
    _blas.own_gemm(*saved)


@pytest.fixture
def kernel_for_every_size(routing):
    routing(True, small_to_blas=False)


@pytest.fixture
def blas_only(routing):
    routing(False)


def operands(rng, m, n, k, trans_a, trans_b, pad=3, dtype=np.float32):
    """op(A) (m x k), op(B) (k x n) and C (m x n), each a view into a wider array (rows
    further apart than their length), with NaN around C's view to show it is not
    touched."""
    a_shape = (k, m) if trans_a else (m, k)
    b_shape = (n, k) if trans_b else (k, n)
    A = rng.standard_normal((a_shape[0], a_shape[1] + pad), dtype=dtype)
    B = rng.standard_normal((b_shape[0], b_shape[1] + pad + 1), dtype=dtype)
    C = np.full((m, n + pad + 2), np.nan, dtype=dtype)
    return A[:, : a_shape[1]], B[:, : b_shape[1]], C


def blas_product(gemm, A, B, trans_a=False, trans_b=False):
    """op(A) op(B) by scipy's BLAS called as the engine calls it: row-major C is
    column-major C^T = op(B)^T op(A)^T (the same sums in the same order)."""
    return gemm(1.0, B.T, A.T, trans_a=trans_b, trans_b=trans_a).T


def reference(alpha, A, B, beta, C0, trans_a, trans_b):
    """alpha op(A) op(B) + beta C0 in more precision than the operands': float64 for
    float32, long double (x86's 80-bit) for float64."""
    wide = np.float64 if A.dtype == np.float32 else np.longdouble
    a = (A.T if trans_a else A).astype(wide)
    b = (B.T if trans_b else B).astype(wide)
    out = wide(alpha) * (a @ b)
    return out + wide(beta) * C0 if beta != 0 else out


# rows: under, at and over the 8-row tile, and over the 128-row (A^T copied) and 512-row
# (A in place) blocks; columns: under, at and over the 16-wide half panel and the 32-wide
# panel (A^T is copied from 33 columns); depth: under, at and over the 256-deep slice,
# and 600 (three slices of 200)
SHAPES = list(
    itertools.product([1, 7, 8, 9, 40, 513], [1, 15, 16, 17, 32, 33, 70], [1, 5, 256, 257, 600])
)


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_kernel_matches_exact_products(kernel_for_every_size, trans_a, trans_b, beta, dtype):
    rng = np.random.default_rng(0)
    eps = np.finfo(dtype).eps
    for m, n, k in SHAPES:
        A, B, C = operands(rng, m, n, k, trans_a, trans_b, dtype=dtype)
        view = C[:, :n]
        if beta != 0:  # with beta = 0, C's NaN must not reach the result
            view[:] = rng.standard_normal((m, n), dtype=dtype)
        before = C.copy()
        _blas._gemm(trans_a, trans_b, 0.7, A, B, beta, view)
        expected = reference(0.7, A, B, beta, before[:, :n], trans_a, trans_b)
        # sums of k products of standard normals: error ~ sqrt(k) ulps of ~sqrt(k)
        np.testing.assert_allclose(
            view, expected, rtol=0, atol=16 * eps * k + 8 * eps, err_msg=f"m={m} n={n} k={k}"
        )
        assert_array_equal(C[:, n:], before[:, n:])  # nothing written beside the view


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", list(itertools.product([False, True], repeat=2)))
def test_packed_operand_gives_the_same_bits(kernel_for_every_size, trans_a, trans_b, dtype):
    # op(B) packed once (_blas.pack_b, as prediction packs its weights) and read in place:
    # every panel and slice where the kernel expects it, so the bits of copying it panel
    # by panel at every call
    rng = np.random.default_rng(3)
    for m, n, k in SHAPES:
        A, B, C = operands(rng, m, n, k, trans_a, trans_b, dtype=dtype)
        copied, packed = C[:, :n].copy(), C[:, :n].copy()
        _blas._gemm(trans_a, trans_b, 0.7, A, B, 0.0, copied)
        _blas._gemm(trans_a, trans_b, 0.7, A, B, 0.0, packed, packed=True)
        assert_array_equal(packed, copied, err_msg=f"m={m} n={n} k={k}")
    assert _blas.packed_b_size(70, 600, dtype) == (96 if dtype == np.float32 else 80) * 600


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_epilogue_in_the_stores_gives_the_same_bits(kernel_for_every_size, relu, packed, dtype):
    # gemm_bias_act: the product, then + bias, then max(., 0), in the kernel's stores, as
    # the product and then the separate epilogue (numpy here, in the same precision)
    rng = np.random.default_rng(4)
    for m, n, k in SHAPES:
        A, B, C = operands(rng, m, n, k, False, False, dtype=dtype)
        bias = rng.standard_normal(n, dtype=dtype)
        product = C[:, :n].copy()
        _blas._gemm(False, False, 1.0, A, B, 0.0, product)
        expected = product + bias
        if relu:
            expected = np.where(expected > 0, expected, 0).astype(dtype)
        before = C.copy()
        view = C[:, :n]
        assert _blas._gemm_bias_act(A, B, view, bias, relu, True, packed) == (True, False)
        assert_array_equal(view, expected, err_msg=f"m={m} n={n} k={k}")
        assert_array_equal(C[:, n:], before[:, n:])


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_epilogue_in_the_stores_watches_for_nan_and_infinity(kernel_for_every_size, dtype):
    # the flag is raised by a NaN or infinite product in any row, column or slice (the
    # 600-deep product's last slice holds the whole sums), and not without one
    rng = np.random.default_rng(5)
    m, n, k = 40, 70, 600
    A, B, C = operands(rng, m, n, k, False, False, dtype=dtype)
    bias = np.zeros(n, dtype=dtype)
    assert _blas._gemm_bias_act(A, B, C[:, :n], bias, True, True) == (True, False)
    for (i, j), bad in itertools.product([(0, 0), (39, 599), (17, 300)], [np.nan, np.inf]):
        Ab = A.copy()
        Ab[i, j] = bad
        out = C[:, :n]
        assert _blas._gemm_bias_act(Ab, B, out, bias, True, True) == (True, True), (i, j, bad)
        # relu keeps NaN, as numpy's maximum and the separate epilogue do
        if np.isnan(bad):
            assert np.isnan(out[i]).all() and not np.isnan(np.delete(out, i, 0)).any()
        else:
            assert not np.isnan(out).any() and np.all(out >= 0)
        assert _blas._gemm_bias_act(Ab, B, out, bias, True, False) == (True, False)


@pytest.mark.parametrize("kernel", [True, False])
def test_relu_keeps_nan_as_in_sklearn(routing, kernel):
    # under assume_finite nothing scans X: a NaN input gives NaN outputs, as in
    # scikit-learn (np.maximum), through the kernel's fused epilogue or the separate one
    from sklearn import config_context
    from sklearn.neural_network import MLPClassifier as SkMLP

    routing(kernel and _blas.own_gemm_supported(), small_to_blas=False)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((600, 100), dtype=np.float32)
    y = (X[:, 0] > 0).astype(int)
    X_nan = X[:20].copy()
    X_nan[[3, 11], [0, 57]] = np.nan
    for Est in (MLPClassifier, SkMLP):
        est = Est(hidden_layer_sizes=(64,), max_iter=2, random_state=0).fit(X, y)
        with config_context(assume_finite=True):
            proba = est.predict_proba(X_nan)
        assert_array_equal(np.isnan(proba).any(axis=1), np.isin(np.arange(20), [3, 11]))
        with pytest.raises(ValueError, match="Input X contains NaN"):
            est.predict_proba(X_nan)


def test_packed_operands_are_the_kernels_only(blas_only):
    assert _blas.packed_b_size(64, 64, np.float32) == 0
    A = np.ones((4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="kernel"):
        _blas._gemm(False, False, 1.0, A, A, 0.0, A.copy(), packed=True)
    # and the fused epilogue is left to the caller
    C = np.full((4, 4), 7.0, dtype=np.float32)
    assert _blas._gemm_bias_act(A, A, C, np.ones(4, dtype=np.float32), True, True) == (False, False)
    assert np.all(C == 7.0)


def test_aligned_empty():
    for dtype in (np.float32, np.float64):
        for size in (1, 17, 1000):
            buf = _blas.aligned_empty(size, dtype)
            assert buf.shape == (size,) and buf.dtype == dtype
            assert buf.ctypes.data % 64 == 0


@needs_kernel
def test_kernel_is_deterministic_and_differs_from_blas(kernel_for_every_size):
    # the same call gives the same bits; and the kernel really is what runs. Like
    # OpenBLAS's, it sums each entry's products in order with fused multiply-adds, but
    # cuts a depth over 256 into other slices (here 196 + 196), so the last bits differ.
    rng = np.random.default_rng(1)
    A, B, C = operands(rng, 256, 128, 392, False, False)
    first, again = C[:, :128].copy(), C[:, :128].copy()
    _blas._gemm(False, False, 1.0, A, B, 0.0, first)
    _blas._gemm(False, False, 1.0, A, B, 0.0, again)
    assert_array_equal(first, again)
    by_blas = blas_product(scipy_blas.sgemm, A, B)
    assert not np.array_equal(first, by_blas)
    np.testing.assert_allclose(first, by_blas, rtol=0, atol=1e-3)


@pytest.mark.parametrize("dtype, blas_gemm", [(np.float32, "sgemm"), (np.float64, "dgemm")])
def test_blas_runs_when_the_kernel_is_off(blas_only, dtype, blas_gemm):
    rng = np.random.default_rng(2)
    A, B, C = operands(rng, 64, 48, 300, False, True, dtype=dtype)
    out = C[:, :48]
    _blas._gemm(False, True, 1.0, A, B, 0.0, out)
    assert_array_equal(out, blas_product(getattr(scipy_blas, blas_gemm), A, B, trans_b=True))


@needs_kernel
def test_routing_between_kernel_and_blas(routing):
    routing(True, small_to_blas=True)
    assert _blas.kernel_takes(False, 64, 64, 64)  # 2^18
    assert not _blas.kernel_takes(False, 64, 64, 63)  # under 2^18
    assert _blas.kernel_takes(True, 512, 512, 64)  # a weight gradient over 64 rows
    assert not _blas.kernel_takes(True, 512, 512, 63)  # ... over 63: shallow
    assert _blas.kernel_takes(False, 512, 512, 32)  # shallow, but not a gradient
    routing(small_to_blas=False)
    assert _blas.kernel_takes(False, 1, 1, 1)
    assert _blas.kernel_takes(True, 512, 512, 1)
    assert not _blas.kernel_takes(False, 0, 1, 1)  # empty products never
    routing(False)
    assert not _blas.kernel_takes(False, 512, 512, 512)


@needs_kernel
def test_small_products_give_blas_bits(routing):
    # what the routing sends to the BLAS gets OpenBLAS's bits exactly
    routing(True, small_to_blas=True)
    A, B, C = operands(np.random.default_rng(3), 16, 16, 16, False, False)
    out = C[:, :16]
    _blas._gemm(False, False, 1.0, A, B, 0.0, out)
    assert_array_equal(out, blas_product(scipy_blas.sgemm, A, B))


def test_gemm_helper_rejects_bad_operands():
    A = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="shapes"):
        _blas._gemm(
            False, False, 1.0, A, np.ones((4, 2), np.float32), 0.0, np.zeros((4, 2), np.float32)
        )
    with pytest.raises(ValueError, match="empty"):
        _blas._gemm(
            False,
            False,
            1.0,
            np.ones((4, 0), np.float32),
            np.ones((0, 2), np.float32),
            0.0,
            np.zeros((4, 2), np.float32),
        )
    with pytest.raises(ValueError, match="contiguous"):
        _blas._gemm(
            False,
            False,
            1.0,
            np.ones((4, 6), np.float32)[:, ::2],
            np.ones((3, 2), np.float32),
            0.0,
            np.zeros((4, 2), np.float32),
        )


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [32, 256])
def test_fits_with_the_kernel_match_fits_with_blas(routing, batch_size, dtype):
    # every GEMM of training (bands of the first layer, weight and input gradients) and of
    # prediction, through the kernel and through the BLAS: the same model to rounding.
    # 1100 features: the first layer's bands are 550 deep, which the kernel cuts into
    # other slices than OpenBLAS, so the bits differ and show that the kernel ran.
    rng = np.random.default_rng(5)
    X = rng.standard_normal((512, 1100)).astype(dtype)
    y = (X[:, :5].sum(axis=1) > 0).astype(int) + (X[:, 5] > 1)
    params = dict(
        hidden_layer_sizes=(256, 64),
        batch_size=batch_size,
        max_iter=2,
        random_state=0,
        tol=0,
        n_iter_no_change=np.inf,
    )
    routing(True)
    own = MLPClassifier(**params).fit(X, y)
    p_own = own.predict_proba(X)
    routing(False)
    ref = MLPClassifier(**params).fit(X, y)
    p_ref = ref.predict_proba(X)
    assert own.coefs_[0].dtype == dtype
    assert not np.array_equal(own.coefs_[0], ref.coefs_[0])
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for w_own, w_ref in zip(own.coefs_, ref.coefs_):
        np.testing.assert_allclose(w_own, w_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(p_own, p_ref, rtol=0, atol=tol)


def test_environment_variable_selects_blas():
    code = "from cymlp import _blas; print(_blas.own_gemm())"
    env = dict(os.environ, CYMLP_GEMM="blas")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


GUARDED_RUN = r"""
import ctypes, itertools, mmap, sys
import numpy as np
from cymlp import _blas

PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
keep = []

def guarded(rows, cols, rng, dtype):
    # an array whose first byte follows an inaccessible page and whose last byte is
    # followed by one: any read or write outside it is a segmentation fault
    nbytes = rows * cols * np.dtype(dtype).itemsize
    pages = -(-nbytes // PAGE)
    buf = mmap.mmap(-1, (pages + 2) * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    for page in (0, pages + 1):
        assert libc.mprotect(base + page * PAGE, PAGE, 0) == 0
    keep.append(buf)
    for offset in ((pages + 1) * PAGE - nbytes, PAGE):  # flush with the end, then the start
        a = np.frombuffer(buf, dtype, rows * cols, offset).reshape(rows, cols)
        a[:] = rng.standard_normal((rows, cols), dtype=dtype)
        yield a

_blas.own_gemm(True, small_to_blas=False)
rng = np.random.default_rng(0)
shapes = itertools.product([1, 9, 40, 513], [1, 9, 17, 33], [1, 257])
for (m, n, k), ta, tb, dt in itertools.product(
        shapes, [False, True], [False, True], [np.float32, np.float64]):
    for A, B, C in zip(guarded(*((k, m) if ta else (m, k)), rng, dt),
                       guarded(*((n, k) if tb else (k, n)), rng, dt), guarded(m, n, rng, dt)):
        _blas._gemm(ta, tb, 1.0, A, B, 1.0, C)
print("ok")
"""


@needs_kernel
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect via ctypes")
def test_kernel_stays_inside_its_operands():
    # valgrind's CPU has no AVX-512, so the memcheck cannot run the kernel: guard pages
    # on both sides of every operand stand in for it
    out = subprocess.run([sys.executable, "-c", GUARDED_RUN], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
