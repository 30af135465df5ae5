"""The engine's full-batch loss and gradient, checked against mathematics.

`cymlp._engine.Network.loss_and_grad` must return scikit-learn's objective
(weighted-mean data loss + 0.5 * alpha * sum ||W||^2 / sum(w)) and its gradient.
The gradient is checked against central finite differences of the engine's own loss,
the loss against a numpy re-implementation built from scikit-learn's loss functions,
and both against scikit-learn's `_backprop` started from the same parameters.

The one place where the gradient is not the derivative of the reported loss is
scikit-learn's multi-output squared error: the loss averages over the k outputs,
the gradient sums over them. Both halves of that quirk are asserted explicitly.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._base import LOSS_FUNCTIONS

from cymlp._engine import Network

from _common import numpy_forward

HIDDEN = ["identity", "logistic", "tanh", "relu"]

# (output activation, number of outputs)
HEADS = [
    ("softmax", 3),
    ("logistic", 1),  # binary
    ("logistic", 3),  # multilabel
    ("identity", 1),
    ("identity", 3),  # multi-output squared error (the quirk)
    ("exp", 1),  # poisson
    ("exp", 2),
]

LOSS_NAME = {
    "softmax": "log_loss",
    "logistic": "binary_log_loss",
    "identity": "squared_error",
    "exp": "poisson",
}

N_FEATURES = 4
N_SAMPLES = 7


def _targets(rng, out, k, n, dtype):
    if out == "softmax":
        Y = np.zeros((n, k))
        Y[np.arange(n), np.arange(n) % k] = 1.0  # every class present
        Y = Y[rng.permutation(n)]
    elif out == "logistic":
        Y = (rng.uniform(size=(n, k)) < 0.5).astype(float)
    elif out == "identity":
        Y = rng.standard_normal((n, k))
    else:  # exp
        Y = rng.poisson(1.5, size=(n, k)).astype(float)
    return np.ascontiguousarray(Y, dtype=dtype)


def _hidden_preactivations(coefs, intercepts, activation, X):
    from sklearn.neural_network._base import ACTIVATIONS

    zs, A = [], X
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        Z = A @ W + b
        zs.append(Z)
        A = Z.copy()
        ACTIVATIONS[activation](A)  # in place
    return zs


def _problem(layer_units, hidden, out, k, seed, dtype=np.float64):
    """A small random problem: network, X, Y, weights. Away from relu kinks."""
    for attempt in range(200):
        rng = np.random.RandomState(1000 * seed + attempt)
        net = Network(list(layer_units), hidden, out, np.float64)
        net.params[:] = rng.uniform(-0.8, 0.8, net.params.shape[0])
        X = np.ascontiguousarray(rng.standard_normal((N_SAMPLES, layer_units[0])))
        zs = _hidden_preactivations(
            [np.array(c) for c in net.coefs],
            [np.array(b) for b in net.intercepts],
            hidden,
            X,
        )
        if hidden != "relu" or all(np.abs(z).min() > 1e-3 for z in zs):
            break
    else:  # pragma: no cover
        raise RuntimeError("could not draw a problem away from the relu kinks")
    Y = _targets(rng, out, k, N_SAMPLES, np.float64)
    sw = rng.uniform(0.2, 3.0, N_SAMPLES)
    params = np.array(net.params)
    if dtype != np.float64:
        net = Network(list(layer_units), hidden, out, dtype)
        net.params[:] = params.astype(dtype)
    return net, X.astype(dtype), Y.astype(dtype), sw.astype(dtype), params


def _loss_grad(net, X, Y, sw, alpha):
    loss, grad = net.loss_and_grad(X, Y, sw, alpha)
    # the engine may hand out a view of its gradient buffer: copy before the next call
    return float(loss), np.array(grad, copy=True)


def _central_differences(net, X, Y, sw, alpha, eps):
    theta = np.array(net.params, copy=True)
    fd = np.empty(theta.shape[0], dtype=np.float64)
    for i in range(theta.shape[0]):
        net.params[i] = theta[i] + eps
        f_plus, _ = _loss_grad(net, X, Y, sw, alpha)
        net.params[i] = theta[i] - eps
        f_minus, _ = _loss_grad(net, X, Y, sw, alpha)
        net.params[i] = theta[i]
        fd[i] = (f_plus - f_minus) / (2 * eps)
    np.testing.assert_array_equal(net.params, theta)
    return fd


def _reference_loss(net, X, Y, sw, alpha, hidden, out):
    """scikit-learn's objective, computed with numpy from its own loss functions."""
    coefs = [np.array(c, dtype=np.float64) for c in net.coefs]
    intercepts = [np.array(b, dtype=np.float64) for b in net.intercepts]
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    sw64 = None if sw is None else sw.astype(np.float64)
    P = numpy_forward(coefs, intercepts, hidden, out, X64)
    data = LOSS_FUNCTIONS[LOSS_NAME[out]](Y64, P, sw64)
    sw_sum = X.shape[0] if sw is None else sw64.sum()
    l2 = 0.5 * alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in coefs) / sw_sum
    return data + l2, data, l2


def _l2_grad(net, alpha, sw_sum):
    """Gradient of the L2 term: alpha * W / sum(w) on weights, 0 on biases."""
    g = np.zeros(net.params.shape[0])
    start = 0
    for W in net.coefs:
        g[start : start + W.size] = alpha * np.asarray(W, dtype=np.float64).ravel() / sw_sum
        start += W.size
    return g


def _sklearn_backprop(net, X, Y, sw, alpha, hidden, out):
    """scikit-learn's own _backprop from the same parameters (the reference)."""
    mlp = MLPClassifier(activation=hidden, alpha=alpha)
    mlp.loss = "log_loss" if out in ("softmax", "logistic") else LOSS_NAME[out]
    mlp.out_activation_ = out
    mlp.coefs_ = [np.array(c) for c in net.coefs]
    mlp.intercepts_ = [np.array(b) for b in net.intercepts]
    mlp.n_layers_ = len(mlp.coefs_) + 1
    L = mlp.n_layers_ - 1
    loss, cg, ig = mlp._backprop(X, Y, sw, [X] + [None] * L, [None] * L, [None] * L, [None] * L)
    return loss, np.hstack([g.ravel() for g in cg + ig])


ARCHS = [(N_FEATURES, 5, 3), (N_FEATURES, 6)]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("out,k", HEADS, ids=[f"{o}{k}" for o, k in HEADS])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("arch", ARCHS, ids=["2hidden", "1hidden"])
def test_gradient_float64_finite_differences(arch, hidden, out, k, weighted):
    layer_units = list(arch) + [k]
    seed = HIDDEN.index(hidden) * 31 + HEADS.index((out, k)) * 7 + len(arch)
    net, X, Y, sw, _ = _problem(layer_units, hidden, out, k, seed)
    sw = sw if weighted else None
    alpha = 0.3
    sw_sum = X.shape[0] if sw is None else sw.sum()

    loss, grad = _loss_grad(net, X, Y, sw, alpha)
    assert grad.shape == net.params.shape
    assert grad.dtype == np.float64

    # the loss is scikit-learn's objective
    ref_loss, data_loss, l2 = _reference_loss(net, X, Y, sw, alpha, hidden, out)
    assert_allclose(loss, ref_loss, rtol=1e-10)

    # the gradient is the derivative of the objective (k * data loss for
    # multi-output squared error, see test_multioutput_squared_error_quirk)
    fd = _central_differences(net, X, Y, sw, alpha, eps=1e-5)
    if out == "identity" and k > 1:
        g_l2 = _l2_grad(net, alpha, sw_sum)
        fd = k * (fd - g_l2) + g_l2
    assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)

    # and scikit-learn's _backprop agrees on both
    sk_loss, sk_grad = _sklearn_backprop(net, X, Y, sw, alpha, hidden, out)
    assert_allclose(loss, sk_loss, rtol=1e-10)
    assert_allclose(grad, sk_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("out,k", HEADS, ids=[f"{o}{k}" for o, k in HEADS])
def test_gradient_no_hidden_layer(out, k, weighted):
    layer_units = [N_FEATURES, k]
    net, X, Y, sw, _ = _problem(layer_units, "relu", out, k, seed=99)
    sw = sw if weighted else None
    loss, grad = _loss_grad(net, X, Y, sw, 0.2)
    ref_loss, _, _ = _reference_loss(net, X, Y, sw, 0.2, "relu", out)
    assert_allclose(loss, ref_loss, rtol=1e-10)
    fd = _central_differences(net, X, Y, sw, 0.2, eps=1e-5)
    if out == "identity" and k > 1:
        g_l2 = _l2_grad(net, 0.2, X.shape[0] if sw is None else sw.sum())
        fd = k * (fd - g_l2) + g_l2
    assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    sk_loss, sk_grad = _sklearn_backprop(net, X, Y, sw, 0.2, "relu", out)
    assert_allclose(grad, sk_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "out,k,batch_norm",
    [("softmax", 3, False), ("identity", 2, False), ("softmax", 3, True)],
    ids=["softmax3", "identity2", "softmax3-batchnorm"],
)
@pytest.mark.parametrize("n_in", [300, 515])
@pytest.mark.parametrize("batch", [64, 520], ids=["thin-batch", "wide-batch"])
def test_gradient_wide_input_banded_first_layer(n_in, batch, out, k, batch_norm):
    """Inputs this wide run the first layer's product in two bands of its rows, added
    afterwards (_engine.dense_forward_banded), for batches thinner than the input (64);
    the gradient is still _backprop's, and the objective is the one of prediction's
    forward pass (one GEMM per block). n_in = 515: odd, so the two bands differ in
    depth. A batch of 520 rows, wider than the input, multiplies without bands."""
    rng = np.random.RandomState(n_in + k)
    net = Network([n_in, 40, k], "tanh", out, np.float64, batch_norm=batch_norm)
    net.params[:] = rng.uniform(-0.1, 0.1, net.params.shape[0])
    X = rng.standard_normal((batch, n_in))  # 2 * 64 * n_in * 40 flops: worth splitting
    Y = _targets(rng, out, k, batch, np.float64)
    loss, grad = net.loss_and_grad(X, Y, None, 0.1, training=batch_norm)
    if batch_norm:  # no _backprop to compare with: central differences on a few entries
        theta = np.array(net.params)
        for i in rng.choice(n_in * 40, 6, replace=False).tolist() + [n_in * 40 - 1]:
            f = []
            for sign in (1, -1):
                net.params[i] = theta[i] + sign * 1e-5
                f.append(net.loss_and_grad(X, Y, None, 0.1, training=True)[0])
            net.params[i] = theta[i]
            assert_allclose(grad[i], (f[0] - f[1]) / 2e-5, rtol=1e-5, atol=1e-9)
        return
    sk_loss, sk_grad = _sklearn_backprop(net, X, Y, None, 0.1, "tanh", out)
    assert_allclose(loss, sk_loss, rtol=1e-12)
    assert_allclose(grad, sk_grad, rtol=1e-9, atol=1e-12)
    assert_allclose(
        net.predict(X), numpy_forward(net.coefs, net.intercepts, "tanh", out, X), rtol=1e-12
    )


@pytest.mark.parametrize("out,k", HEADS, ids=[f"{o}{k}" for o, k in HEADS])
@pytest.mark.parametrize("rows", [256, 300, 1000])
def test_gradient_output_layer_in_row_blocks(rows, out, k):
    """From 256 rows the output layer (its product, loss and the hidden layer's
    gradient) runs in row blocks shared by the threads (_engine.output_forward_backward):
    still scikit-learn's loss and gradient, with sample weights, and the same bits
    whatever the thread count (the blocks' loss sums are added in order)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.RandomState(rows + k)
    net = Network([20, 16, 12, k], "tanh", out, np.float64)
    net.params[:] = rng.uniform(-0.5, 0.5, net.params.shape[0])
    X = rng.standard_normal((rows, 20))
    Y = _targets(rng, out, k, rows, np.float64)
    sw = rng.uniform(0.2, 3.0, rows)
    results = []
    for n_threads in (1, 2, 3):
        with threadpool_limits(limits=n_threads, user_api="openmp"):
            results.append(_loss_grad(net, X, Y, sw, 0.3))
    for loss, grad in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])
    sk_loss, sk_grad = _sklearn_backprop(net, X, Y, sw, 0.3, "tanh", out)
    assert_allclose(results[0][0], sk_loss, rtol=1e-12)
    assert_allclose(results[0][1], sk_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_multioutput_squared_error_quirk(hidden):
    """Loss averages over outputs; gradient sums over them (scikit-learn's quirk)."""
    k = 3
    net, X, Y, sw, _ = _problem([N_FEATURES, 5, k], hidden, "identity", k, seed=5)
    alpha = 0.5
    loss, grad = _loss_grad(net, X, Y, None, alpha)
    _, data_loss, l2 = _reference_loss(net, X, Y, None, alpha, hidden, "identity")

    # fact 1: the reported loss is the mean over outputs of the halved squared error
    P = numpy_forward(
        [np.array(c) for c in net.coefs],
        [np.array(b) for b in net.intercepts],
        hidden,
        "identity",
        X,
    )
    per_output = 0.5 * ((Y - P) ** 2).mean(axis=0)
    assert_allclose(loss, per_output.mean() + l2, rtol=1e-10)
    assert not np.isclose(loss, per_output.sum() + l2, rtol=1e-3)

    # fact 2: the gradient is that of k * data_loss + L2, not of the reported loss
    fd = _central_differences(net, X, Y, None, alpha, eps=1e-5)
    g_l2 = _l2_grad(net, alpha, X.shape[0])
    assert_allclose(grad, k * (fd - g_l2) + g_l2, rtol=1e-6, atol=1e-8)
    assert not np.allclose(grad, fd, rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("out,k", HEADS, ids=[f"{o}{k}" for o, k in HEADS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_float32(hidden, out, k):
    layer_units = [N_FEATURES, 5, 3, k]
    seed = 500 + HIDDEN.index(hidden) * 13 + HEADS.index((out, k))
    net64, X64, Y64, sw64, params = _problem(layer_units, hidden, out, k, seed)
    net32, X32, Y32, sw32, _ = _problem(layer_units, hidden, out, k, seed, np.float32)
    assert net32.params.dtype == np.float32
    # both networks at the same (float32-representable) point
    net64.params[:] = net32.params.astype(np.float64)
    X64, Y64, sw64 = X32.astype(np.float64), Y32.astype(np.float64), sw32.astype(np.float64)
    alpha = 0.3

    for w32, w64 in [(None, None), (sw32, sw64)]:
        loss32, grad32 = _loss_grad(net32, X32, Y32, w32, alpha)
        loss64, grad64 = _loss_grad(net64, X64, Y64, w64, alpha)
        assert grad32.dtype == np.float32
        assert grad32.shape == net32.params.shape
        assert_allclose(loss32, loss64, rtol=1e-4)
        scale = np.abs(grad64).max()
        assert_allclose(grad32, grad64, rtol=1e-3, atol=1e-4 * scale)

        # finite differences in float32 itself (loose)
        fd = _central_differences(net32, X32, Y32, w32, alpha, eps=1e-2)
        if out == "identity" and k > 1:
            sw_sum = X32.shape[0] if w32 is None else float(w32.astype(np.float64).sum())
            g_l2 = _l2_grad(net32, alpha, sw_sum)
            fd = k * (fd - g_l2) + g_l2
        assert np.linalg.norm(grad32 - fd) <= 1e-2 * np.linalg.norm(fd)


def test_gradient_float32_matches_sklearn_float32():
    net, X, Y, sw, _ = _problem([N_FEATURES, 5, 3, 3], "tanh", "softmax", 3, 7, np.float32)
    loss, grad = _loss_grad(net, X, Y, sw, 0.1)
    sk_loss, sk_grad = _sklearn_backprop(net, X, Y, sw, 0.1, "tanh", "softmax")
    assert sk_grad.dtype == np.float32
    assert_allclose(loss, sk_loss, rtol=1e-5)
    assert_allclose(grad, sk_grad, rtol=1e-4, atol=1e-6)


def test_params_layout_and_views():
    """Flat vector: all W row-major (fan_in, fan_out), then all biases; views into it."""
    units = [4, 5, 3, 2]
    net = Network(units, "tanh", "softmax", np.float64)
    n_w = sum(a * b for a, b in zip(units[:-1], units[1:]))
    n_b = sum(units[1:])
    assert net.params.shape == (n_w + n_b,)
    assert net.params.dtype == np.float64
    assert [c.shape for c in net.coefs] == [(4, 5), (5, 3), (3, 2)]
    assert [b.shape for b in net.intercepts] == [(5,), (3,), (2,)]

    net.params[:] = np.arange(n_w + n_b, dtype=np.float64)
    start = 0
    for c in net.coefs:
        assert_allclose(c, np.arange(start, start + c.size).reshape(c.shape))
        start += c.size
    for b in net.intercepts:
        assert_allclose(b, np.arange(start, start + b.size))
        start += b.size

    # writing through a view changes the flat vector, and the loss sees it
    net.coefs[1][2, 1] = -7.0
    assert net.params[20 + 2 * 3 + 1] == -7.0
    net.intercepts[2][1] = 0.25
    assert net.params[-1] == 0.25


def test_params_float32_dtype():
    net = Network([3, 4, 1], "relu", "identity", np.float32)
    assert net.params.dtype == np.float32
    assert all(c.dtype == np.float32 for c in net.coefs)
    assert all(b.dtype == np.float32 for b in net.intercepts)


def test_loss_and_grad_leaves_params_alone():
    net, X, Y, sw, params = _problem([N_FEATURES, 5, 3], "relu", "softmax", 3, 11)
    before = np.array(net.params, copy=True)
    _loss_grad(net, X, Y, sw, 0.1)
    np.testing.assert_array_equal(net.params, before)


def test_unit_weights_equal_no_weights():
    net, X, Y, _, _ = _problem([N_FEATURES, 5, 3], "tanh", "softmax", 3, 12)
    l0, g0 = _loss_grad(net, X, Y, None, 0.1)
    l1, g1 = _loss_grad(net, X, Y, np.ones(X.shape[0]), 0.1)
    assert_allclose(l1, l0, rtol=1e-12)
    assert_allclose(g1, g0, rtol=1e-12, atol=1e-15)


def test_sample_weight_scale_invariance_and_l2_scaling():
    """Scaling all weights by c leaves the data part alone and divides the L2 part by c."""
    net, X, Y, sw, _ = _problem([N_FEATURES, 5, 3], "logistic", "softmax", 3, 13)
    alpha = 0.7
    l_a, g_a = _loss_grad(net, X, Y, sw, alpha)
    l_b, g_b = _loss_grad(net, X, Y, 4.0 * sw, alpha)
    l2_a = _l2_grad(net, alpha, sw.sum())
    l2_b = _l2_grad(net, alpha, 4.0 * sw.sum())
    assert_allclose(g_a - l2_a, g_b - l2_b, rtol=1e-10, atol=1e-13)
    _, data_a, _ = _reference_loss(net, X, Y, sw, alpha, "logistic", "softmax")
    assert_allclose(l_b, data_a + (l_a - data_a) / 4.0, rtol=1e-10)


def test_alpha_term_is_exactly_alpha_w_over_n():
    net, X, Y, _, _ = _problem([N_FEATURES, 5, 3], "tanh", "exp", 3, 14)
    _, g0 = _loss_grad(net, X, Y, None, 0.0)
    _, g1 = _loss_grad(net, X, Y, None, 2.5)
    assert_allclose(g1 - g0, _l2_grad(net, 2.5, X.shape[0]), rtol=1e-9, atol=1e-13)
