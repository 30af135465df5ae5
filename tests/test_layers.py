"""The engine's Keras-style layers against mathematics: the new activations, inverted
dropout, batch normalization and the robust regression losses.

Each is checked three ways: the forward pass against a numpy re-implementation, the
gradient against central finite differences of the engine's own loss (in training mode,
where dropout masks and batch statistics apply), and the running statistics / masks
against their definitions.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import erf, expit
from sklearn.metrics import accuracy_score, r2_score

from cymlp._engine import Network
from cymlp._optim import SGDOptimizer

NUMPY_ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "logistic": expit,
    "sigmoid": expit,
    "tanh": np.tanh,
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
    "silu": lambda z: z * expit(z),
    "softplus": lambda z: np.logaddexp(0, z),
}
NEW_ACTIVATIONS = ["sigmoid", "leaky_relu", "elu", "gelu", "silu", "softplus"]
KINKED = {"relu", "leaky_relu", "elu"}  # derivatives jump (or bend) at zero
EPS_BN = 1e-3


def _net(units, act, out="identity", dtype=np.float64, seed=0, **kw):
    net = Network(units, act, out, dtype, **kw)
    rng = np.random.RandomState(seed)
    n_plain = net.n_weights + sum(units[1:])
    net.params[:n_plain] = rng.uniform(-0.8, 0.8, n_plain)
    if net.batch_norm:
        for b in net.intercepts[:-1]:
            b[:] = 0
        for g, s in zip(net.bn_scales, net.bn_shifts):
            g[:] = rng.uniform(0.5, 1.5, g.shape)
            s[:] = rng.uniform(-0.5, 0.5, s.shape)
    return net


def _numpy_forward(net, X, masks=None, batch_stats=True):
    """Outputs of the network's layers before the output activation, in float64."""
    A = X
    L = len(net.coefs)
    act = NUMPY_ACTIVATIONS[net.hidden_activation]
    for layer, (W, b) in enumerate(zip(net.coefs, net.intercepts), start=1):
        Z = A @ W
        if layer == L:
            return Z + b
        if net.batch_norm:
            if batch_stats:
                mean, var = Z.mean(axis=0), Z.var(axis=0)
            else:
                mean, var = net.bn_means[layer - 1], net.bn_vars[layer - 1]
            gamma, beta = net.bn_scales[layer - 1], net.bn_shifts[layer - 1]
            Z = gamma * (Z - mean) / np.sqrt(var + EPS_BN) + beta
            b = 0  # unused under batch normalization: beta shifts instead
        A = act(Z + b)
        if masks is not None:
            A = A * masks[layer - 1]
    raise AssertionError  # pragma: no cover


def _fd_check(net, X, Y, sw, training=True, eps=1e-6, rtol=1e-5, atol=1e-7, factor=1.0):
    kw = dict(training=training, epoch=3, seed=11)
    _, grad = net.loss_and_grad(X, Y, sw, 0.0, **kw)
    grad = np.array(grad)
    theta = net.params.copy()
    fd = np.empty_like(theta)
    for i in range(theta.size):
        net.params[i] = theta[i] + eps
        f_plus = net.loss_and_grad(X, Y, sw, 0.0, **kw)[0]
        net.params[i] = theta[i] - eps
        f_minus = net.loss_and_grad(X, Y, sw, 0.0, **kw)[0]
        net.params[i] = theta[i]
        fd[i] = (f_plus - f_minus) / (2 * eps)
    assert_allclose(grad, factor * fd, rtol=rtol, atol=atol)


def _away_from_kinks(units, act, seed, X, **kw):
    """A network whose hidden pre-activations are not near a kink for X."""
    for attempt in range(200):
        net = _net(units, act, seed=100 * seed + attempt, **kw)
        if act not in KINKED:
            return net
        A, ok = X, True
        for W, b in zip(net.coefs[:-1], net.intercepts[:-1]):
            Z = A @ W + b
            ok &= np.abs(Z).min() > 1e-3
            A = NUMPY_ACTIVATIONS[act](Z)
        if ok:
            return net
    raise RuntimeError("no network away from the kinks")  # pragma: no cover


@pytest.mark.parametrize("act", NEW_ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_new_activations_forward(act, dtype):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((50, 4)) * 3
    net = _net([4, 6, 5, 2], act, dtype=dtype)
    expected = _numpy_forward(net.astype(np.float64), X)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    assert_allclose(net.predict(X.astype(dtype)), expected, rtol=rtol, atol=rtol)


def test_activation_forward_extremes():
    # no overflow or NaN far out on either side
    X = np.array([[-800.0], [-40.0], [0.0], [40.0], [800.0]])
    for act in NEW_ACTIVATIONS:
        net = Network([1, 1, 1], act, "identity", np.float64)
        net.coefs[0][:] = 1
        net.coefs[1][:] = 1
        out = net.predict(X).ravel()
        assert np.isfinite(out).all(), act
        assert_allclose(out, NUMPY_ACTIVATIONS[act](X.ravel()), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("act", NEW_ACTIVATIONS)
@pytest.mark.parametrize("out,k", [("softmax", 3), ("identity", 1)])
def test_new_activations_gradient(act, out, k):
    rng = np.random.RandomState(1)
    X = rng.standard_normal((9, 3))
    net = _away_from_kinks([3, 5, 4, k], act, 1, X, out=out)
    Y = np.eye(k)[rng.randint(k, size=9)] if out == "softmax" else rng.standard_normal((9, k))
    _fd_check(net, X, Y, rng.uniform(0.5, 2, 9), training=False)


@pytest.mark.parametrize("act", ["relu", "tanh", "logistic", "elu", "gelu", "silu", "softplus"])
def test_dropout_gradient(act):
    rng = np.random.RandomState(2)
    X = rng.standard_normal((12, 3))
    net = _away_from_kinks([3, 8, 6, 2], act, 2, X, out="softmax", dropout=[0.3, 0.5])
    Y = np.eye(2)[rng.randint(2, size=12)]
    _fd_check(net, X, Y, None)


def test_dropout_forward_uses_the_masks():
    rng = np.random.RandomState(3)
    X = rng.standard_normal((20, 4))
    Y = rng.standard_normal((20, 2))
    net = _net([4, 7, 5, 2], "tanh", dropout=[0.4, 0.2])
    masks = [net.dropout_mask(layer, np.arange(20), epoch=3, seed=11) for layer in (1, 2)]
    out = _numpy_forward(net, X, masks=masks)
    expected = 0.5 * np.mean(np.sum((out - Y) ** 2, axis=1)) / 2
    loss, _ = net.loss_and_grad(X, Y, None, 0.0, training=True, epoch=3, seed=11)
    assert_allclose(loss, expected, rtol=1e-12)
    # without training there is no dropout: the plain forward pass
    plain = 0.5 * np.mean(np.sum((_numpy_forward(net, X) - Y) ** 2, axis=1)) / 2
    assert_allclose(net.loss_and_grad(X, Y, None, 0.0)[0], plain, rtol=1e-12)
    assert_allclose(net.predict(X), _numpy_forward(net, X), rtol=1e-12)


def test_dropout_masks():
    net = Network([3, 400, 2], "relu", "softmax", np.float64, dropout=[0.25])
    rows = np.arange(500)
    m = net.dropout_mask(1, rows, epoch=0, seed=5)
    assert set(np.unique(m)) == {0.0, 1 / 0.75}
    assert abs((m == 0).mean() - 0.25) < 0.01
    # a row's mask depends on (seed, epoch, row), not on the other rows asked for
    assert_allclose(net.dropout_mask(1, rows[::-1], epoch=0, seed=5), m[::-1])
    for other in (dict(epoch=1, seed=5), dict(epoch=0, seed=6)):
        agree = (net.dropout_mask(1, rows, **other) == m).mean()
        assert abs(agree - (0.75**2 + 0.25**2)) < 0.01  # independent masks
    with pytest.raises(ValueError):
        net.dropout_mask(2, rows)


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu", "silu", "elu"])
@pytest.mark.parametrize("dropout", [None, [0.3, 0.2]])
def test_batchnorm_gradient(act, dropout):
    rng = np.random.RandomState(4)
    X = rng.standard_normal((10, 3))
    net = _net([3, 6, 5, 3], act, out="softmax", seed=4, batch_norm=True, dropout=dropout)
    Y = np.eye(3)[rng.randint(3, size=10)]
    # batch statistics ignore sample weights; the loss does not
    _fd_check(net, X, Y, rng.uniform(0.5, 2, 10), atol=1e-6)
    # the hidden biases are unused: no gradient
    _, grad = net.loss_and_grad(X, Y, None, 0.0, training=True)
    for b in net.intercepts[:-1]:
        start = b.__array_interface__["data"][0] - net.params.__array_interface__["data"][0]
        start //= net.params.itemsize
        assert not grad[start : start + b.size].any()


def test_batchnorm_forward_and_running_statistics():
    rng = np.random.RandomState(5)
    X = rng.standard_normal((32, 4)) * 2 + 1
    Y = rng.standard_normal((32, 1))
    net = _net([4, 6, 5, 1], "relu", seed=5, batch_norm=True)
    loss, _ = net.loss_and_grad(X, Y, None, 0.0, training=True)
    out = _numpy_forward(net, X)
    assert_allclose(loss, 0.5 * np.mean((out - Y) ** 2), rtol=1e-12)
    # one training epoch of one batch updates the running statistics from that batch
    # (before the step: the forward pass comes first)
    W0 = net.coefs[0].copy()
    Z1 = X @ W0
    opt = SGDOptimizer(net.params.shape[0], np.float64, learning_rate_init=1e-3)
    net.train_epoch(X, Y, None, None, 32, 0.0, opt)
    assert_allclose(net.bn_means[0], 0.01 * Z1.mean(axis=0), rtol=1e-12)
    assert_allclose(net.bn_vars[0], 0.99 + 0.01 * Z1.var(axis=0), rtol=1e-12)
    # prediction uses the running statistics
    assert_allclose(net.predict(X), _numpy_forward(net, X, batch_stats=False), rtol=1e-10)
    # and the scales and shifts are trained (a gradient reached them)
    assert not np.allclose(
        net.bn_scales[0], _net([4, 6, 5, 1], "relu", seed=5, batch_norm=True).bn_scales[0]
    )


def test_batchnorm_needs_training_mode_for_the_objective():
    net = _net([3, 4, 1], "relu", batch_norm=True)
    with pytest.raises(ValueError, match="training=True"):
        net.loss_and_grad(np.zeros((3, 3)), np.zeros(3))


def _robust_loss(r, loss, delta):
    if loss == "absolute_error":
        return np.abs(r)
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
@pytest.mark.parametrize("k", [1, 3])
def test_robust_losses(loss, k):
    rng = np.random.RandomState(6)
    X = rng.standard_normal((15, 3))
    Y = rng.standard_normal((15, k)) * 3
    sw = rng.uniform(0.5, 2, 15)
    delta = 0.7
    for attempt in range(100):  # residuals away from the kinks (0 and +-delta)
        net = _net([3, 5, k], "tanh", seed=attempt, loss=loss, huber_delta=delta)
        r = _numpy_forward(net, X) - Y
        if np.abs(r).min() > 1e-3 and np.abs(np.abs(r) - delta).min() > 1e-3:
            break
    expected = np.sum(sw * _robust_loss(r, loss, delta).mean(axis=1)) / sw.sum()
    assert_allclose(net.loss_and_grad(X, Y, sw, 0.0)[0], expected, rtol=1e-12)
    # as for squared error, the reported loss averages over the outputs and the
    # gradient sums over them (scikit-learn's convention)
    _fd_check(net, X, Y, sw, training=False, factor=k)


def test_robust_losses_need_the_identity_output():
    with pytest.raises(ValueError, match="identity"):
        Network([2, 3, 2], "relu", "softmax", np.float64, loss="huber")
    with pytest.raises(ValueError):
        Network([2, 3, 1], "relu", "identity", np.float64, loss="huber", huber_delta=0.0)


@pytest.mark.parametrize(
    "out,k", [("softmax", 3), ("logistic", 1), ("logistic", 3), ("identity", 2), ("exp", 1)]
)
@pytest.mark.parametrize("batch", [7, 64])
def test_epoch_score_matches_scikit_learn(out, k, batch):
    # with a vanishing step the weights do not move, so the score accumulated over the
    # mini-batches is the score of the whole data set at the start
    rng = np.random.RandomState(7)
    n = 64
    X = rng.standard_normal((n, 4))
    net = _net([4, 5, k], "tanh", out=out, seed=7)
    if out == "softmax":
        Y = np.eye(k)[rng.randint(k, size=n)]
    elif out == "logistic":
        Y = (rng.uniform(size=(n, k)) < 0.5).astype(float)
    else:
        Y = rng.poisson(2.0, size=(n, k)).astype(float) + 100.0  # a large mean
    sw = rng.uniform(0.2, 3, n)
    P = net.predict(X)
    if out == "softmax":
        expected = accuracy_score(Y.argmax(1), P.argmax(1), sample_weight=sw)
    elif out == "logistic":
        expected = accuracy_score(Y > 0.5, P > 0.5, sample_weight=sw)
    else:
        expected = r2_score(Y, P, sample_weight=sw)
    opt = SGDOptimizer(net.params.shape[0], np.float64, learning_rate_init=1e-300)
    stats = net.new_stats()
    total = net.train_epoch(X, Y, sw, rng.permutation(n), batch, 0.0, opt, stats=stats)
    result = net.finish_stats(stats)
    assert_allclose(result["score"], expected, rtol=1e-9)
    assert_allclose(result["objective"], total / n, rtol=1e-12)
    # no L2 here: the data loss is the objective
    assert_allclose(result["loss"], result["objective"], rtol=1e-12)


def test_epoch_in_pieces_equals_whole_epoch():
    rng = np.random.RandomState(8)
    X = rng.standard_normal((100, 4))
    Y = np.eye(3)[rng.randint(3, size=100)]
    order = rng.permutation(100)
    results = []
    for pieces in ([(0, 10)], [(0, 3), (3, 4), (4, 10)]):
        net = _net([4, 6, 3], "relu", out="softmax", dropout=[0.2])
        opt = SGDOptimizer(net.params.shape[0], np.float64, learning_rate_init=0.1)
        stats = net.new_stats()
        for piece in pieces:
            net.train_epoch(
                X, Y, None, order, 10, 1e-3, opt, stats=stats, epoch=2, seed=9, batches=piece
            )
        results.append((net.params.copy(), net.finish_stats(stats)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    net = _net([4, 6, 3], "relu", out="softmax")
    opt = SGDOptimizer(net.params.shape[0], np.float64)
    with pytest.raises(ValueError, match="batches"):
        net.train_epoch(X, Y, None, order, 10, 0.0, opt, batches=(3, 11))
    with pytest.raises(ValueError, match="stats"):
        net.train_epoch(X, Y, None, order, 10, 0.0, opt, stats=np.zeros(3))


def test_network_config_round_trip():
    net = _net(
        [3, 4, 5, 1],
        "gelu",
        seed=1,
        batch_norm=True,
        dropout=[0.1, 0.2],
        loss="huber",
        huber_delta=0.5,
    )
    net.running[:] = np.arange(net.running.size)
    twin = Network(**net.config())
    assert twin.config() == net.config()
    import pickle

    copy = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(copy.params, net.params)
    np.testing.assert_array_equal(copy.running, net.running)
    X = np.random.RandomState(0).standard_normal((5, 3))
    np.testing.assert_array_equal(copy.predict(X), net.predict(X))
    assert_allclose(net.astype(np.float32).predict(X), net.predict(X), rtol=1e-5)
