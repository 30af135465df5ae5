"""The AdamW and RMSprop steps, checked against a numpy re-implementation of the update.

Each test trains with full batches (one step per epoch), so that every step's gradient
can be taken from `Network.loss_and_grad` at the reference parameters and the numpy
update applied to them: the compiled step (one fused, chunked pass over the flat buffer)
must give the same parameters to rounding. The rest checks the plumbing: weight decay
spares the biases, AdamW without decay is Adam, the base learning rate can be set
between epochs, threads do not change results, and model files keep the state.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import cymlp
from cymlp import _optim
from cymlp._engine import Network
from cymlp._optim import AdamOptimizer, AdamWOptimizer, RMSpropOptimizer, SGDOptimizer

TOL = {np.float64: dict(rtol=1e-10, atol=1e-13), np.float32: dict(rtol=1e-5, atol=1e-7)}
DTYPES = [np.float64, np.float32]
SOLVERS = ["adamw", "rmsprop"]
HPARAMS = dict(
    learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7, weight_decay=0.2, rho=0.7
)


def _data(dtype, n=40):
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:n] * 5, (y[:n] - y.mean()) / y.std()
    return X.astype(dtype), y.astype(dtype)


def _optimizer(solver, n_params, dtype, hp=HPARAMS):
    if solver == "adamw":
        args = ("learning_rate_init", "beta_1", "beta_2", "epsilon", "weight_decay")
        return AdamWOptimizer(n_params, dtype, *(hp[a] for a in args))
    args = ("learning_rate_init", "rho", "epsilon")
    return RMSpropOptimizer(n_params, dtype, *(hp[a] for a in args))


def _reference(solver, network, params, X, Y, alpha, n_steps, hp=HPARAMS):
    """n_steps full-batch steps in numpy from `params`, the gradient taken from the
    network at the reference parameters. float32 stays float32 (Python scalars)."""
    w = params.copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    nw = network.n_weights
    lr = hp["learning_rate_init"]
    for t in range(1, n_steps + 1):
        network.params[:] = w
        g = network.loss_and_grad(X, Y, None, alpha)[1]
        if solver == "adamw":
            b1, b2 = hp["beta_1"], hp["beta_2"]
            lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            w[:nw] *= 1 - lr * hp["weight_decay"]  # decoupled: base rate, weights only
            w -= lr_t * m / (np.sqrt(v) + hp["epsilon"])
        else:
            rho = hp["rho"]
            v = rho * v + (1 - rho) * g * g
            w -= lr * g / (np.sqrt(v) + hp["epsilon"])
    return w


def _network(dtype, units=(10, 6, 1), seed=0):
    net = Network(list(units), "tanh", "identity", dtype)
    net.params[:] = np.random.RandomState(seed).uniform(-0.5, 0.5, net.params.shape)
    return net


def _fit(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        X, y = params.pop("data")
        return cymlp.MLPRegressor(**params).fit(X, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_step_matches_numpy_reference(solver, dtype):
    X, y = _data(dtype)
    Y = y.reshape(-1, 1)
    net = _network(dtype)
    p0 = net.params.copy()
    opt = _optimizer(solver, p0.size, dtype)
    alpha, n_steps = 0.5, 5
    for _ in range(n_steps):
        net.train_epoch(X, Y, None, None, len(X), alpha, opt)
    engine = net.params.copy()
    expected = _reference(solver, net, p0, X, Y, alpha, n_steps)
    assert engine.dtype == dtype
    assert not np.allclose(engine, p0)
    assert_allclose(engine, expected, **TOL[dtype])
    if solver == "adamw":
        assert opt.t == n_steps


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_estimator_matches_numpy_reference(solver, dtype):
    """The estimator hands its hyper-parameters to the step (make_optimizer)."""
    X, y = _data(dtype)
    common = dict(
        solver=solver,
        hidden_layer_sizes=(5,),
        shuffle=False,
        batch_size=len(X),
        alpha=0.3,
        random_state=0,
        **HPARAMS,
    )
    est = _fit(data=(X, y), max_iter=1, **common)
    net = est._network
    p0 = np.random.RandomState(1).uniform(-0.5, 0.5, net.params.shape).astype(dtype)
    net.params[:] = p0
    est.set_params(warm_start=True, max_iter=3)  # a new optimizer, from p0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est._optimizer.kind == solver
    engine = net.params.copy()
    expected = _reference(solver, net, p0, X, y.reshape(-1, 1), 0.3, 3)
    assert_allclose(engine, expected, **TOL[dtype])


def test_weight_decay_spares_biases():
    """One step from the same parameters: AdamW moves the biases exactly as Adam does
    and the weights by an extra -lr * weight_decay * W."""
    X, y = _data(np.float64)
    Y = y.reshape(-1, 1)
    results = []
    for opt_class, extra in [(AdamOptimizer, ()), (AdamWOptimizer, (0.3,))]:
        net = _network(np.float64)
        p0 = net.params.copy()
        opt = opt_class(p0.size, np.float64, 0.01, 0.9, 0.999, 1e-8, *extra)
        net.train_epoch(X, Y, None, None, len(X), 0.1, opt)
        results.append(net.params.copy())
    adam, adamw = results
    nw = net.n_weights
    assert_array_equal(adamw[nw:], adam[nw:])
    assert_allclose(adamw[:nw], adam[:nw] - 0.01 * 0.3 * p0[:nw], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_without_decay_is_adam(dtype):
    X, y = _data(dtype, n=200)
    common = dict(
        data=(X, y),
        hidden_layer_sizes=(8, 4),
        batch_size=32,
        max_iter=4,
        alpha=0.01,
        random_state=0,
    )
    adam = _fit(solver="adam", **common)
    adamw = _fit(solver="adamw", weight_decay=0.0, **common)
    assert_array_equal(adamw._network.params, adam._network.params)
    assert_array_equal(adamw.loss_curve_, adam.loss_curve_)
    decayed = _fit(solver="adamw", weight_decay=0.1, **common)
    assert not np.array_equal(decayed._network.params, adam._network.params)


def test_rho_changes_rmsprop():
    X, y = _data(np.float64, n=200)
    common = dict(data=(X, y), solver="rmsprop", batch_size=32, max_iter=3, random_state=0)
    a, b = _fit(rho=0.9, **common), _fit(rho=0.5, **common)
    assert not np.array_equal(a._network.params, b._network.params)
    assert a._optimizer.rho == 0.9 and b._optimizer.rho == 0.5


def _all_optimizers(n, dtype, lr):
    return [
        SGDOptimizer(n, dtype, lr, "constant", 0.9, True),
        AdamOptimizer(n, dtype, lr),
        AdamWOptimizer(n, dtype, lr, weight_decay=0.1),
        RMSpropOptimizer(n, dtype, lr),
    ]


def test_set_base_learning_rate():
    """A rate set before an epoch is the base rate of that epoch: training then equals
    an optimizer built with that rate (Adam-family: bias correction from the new base)."""
    X, y = _data(np.float64)
    Y = y.reshape(-1, 1)
    n = _network(np.float64).params.size
    for changed, fresh in zip(
        _all_optimizers(n, np.float64, 0.1), _all_optimizers(n, np.float64, 0.02)
    ):
        assert changed.base_learning_rate == 0.1
        changed.set_base_learning_rate(0.02)
        assert changed.base_learning_rate == 0.02
        assert changed.config() == fresh.config()
        nets = [_network(np.float64), _network(np.float64)]
        for net, opt in zip(nets, (changed, fresh)):
            for _ in range(2):
                net.train_epoch(X, Y, None, None, 10, 0.1, opt)
        assert_array_equal(nets[0].params, nets[1].params)
        assert changed.learning_rate == fresh.learning_rate
        assert changed.base_learning_rate == 0.02
        if changed.kind in ("adam", "adamw"):
            # mid-training: the new base is bias-corrected at the current t
            changed.set_base_learning_rate(0.05)
            t, b1, b2 = changed.t, changed.beta_1, changed.beta_2
            assert t == 8
            assert changed.learning_rate == pytest.approx(
                0.05 * np.sqrt(1 - b2**t) / (1 - b1**t), rel=1e-14
            )
            assert changed.config()["lr"] == 0.05
            if changed.kind == "adamw":
                assert changed.config()["decay"] == pytest.approx(0.05 * 0.1, rel=1e-15)
        else:
            changed.set_base_learning_rate(0.05)
            assert changed.learning_rate == 0.05 == changed.config()["lr"]


def test_config_keys():
    for opt in _all_optimizers(3, np.float64, 0.1):
        c = opt.config()
        assert {"kind", "lr", "decay", "rho", "epsilon", "beta_1", "beta_2"} <= c.keys()
        assert c["decay"] == (0.1 * 0.1 if opt.kind == "adamw" else 0.0)
        assert c["rho"] == (0.9 if opt.kind == "rmsprop" else 0.0)


@pytest.fixture
def parallel_step():
    """Every step takes the threaded path (above the threshold)."""
    old = _optim._tuning(parallel_min=1)
    yield
    _optim._tuning(parallel_min=old)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_thread_count_does_not_change_steps(solver, dtype, parallel_step):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((64, 60)).astype(dtype)
    Y = rng.standard_normal((64, 3)).astype(dtype)
    units = (60, 150, 3)  # 9453 parameters: 3 chunks of the step
    assert len(_optim.chunk_bounds([(0, _network(dtype, units).params.size)])) >= 3
    results = []
    for n_threads in (1, 2):
        with threadpool_limits(limits=n_threads, user_api="openmp"):
            net = _network(dtype, units)
            opt = _optimizer(solver, net.params.size, dtype)
            losses = [net.train_epoch(X, Y, None, None, 16, 0.5, opt) for _ in range(3)]
            results.append((net.params.copy(), losses, opt.state_arrays()[-1].copy()))
    (p1, l1, s1), (p2, l2, s2) = results
    assert_array_equal(p1, p2)
    assert_array_equal(l1, l2)
    assert_array_equal(s1, s2)


@pytest.mark.parametrize("n_in", [60, 61])
@pytest.mark.parametrize("solver", SOLVERS)
def test_threaded_step_matches_numpy_reference(solver, n_in, parallel_step):
    """Several chunks, stepped in the network's chunk order (the top half of every weight
    matrix first, Network._step_chunks): every parameter is updated once. Neither half
    is a whole number of chunks, and with n_in = 61 the halves differ in size."""
    rng = np.random.RandomState(n_in)
    X = rng.standard_normal((50, n_in))
    Y = rng.standard_normal((50, 3))
    net = _network(np.float64, (n_in, 150, 3))
    assert len(_optim.chunk_bounds([(0, net.params.size)])) >= 3
    p0 = net.params.copy()
    opt = _optimizer(solver, p0.size, np.float64)
    with threadpool_limits(limits=2, user_api="openmp"):
        for _ in range(3):
            net.train_epoch(X, Y, None, None, len(X), 0.5, opt)
    engine = net.params.copy()
    assert_allclose(engine, _reference(solver, net, p0, X, Y, 0.5, 3), **TOL[np.float64])


@pytest.mark.parametrize("solver", SOLVERS)
def test_model_file_continues_training(solver, tmp_path):
    X, y = _data(np.float64, n=120)
    est = _fit(
        data=(X, y),
        solver=solver,
        hidden_layer_sizes=(7,),
        batch_size=32,
        max_iter=3,
        random_state=0,
        **HPARAMS,
    )
    path = tmp_path / f"{solver}.model"
    est.save(path)
    loaded = cymlp.load(path)
    assert loaded._optimizer.kind == solver
    for a, b in zip(est._optimizer.state_arrays(), loaded._optimizer.state_arrays()):
        assert_array_equal(a, b)
    assert getattr(loaded._optimizer, "t", 0) == getattr(est._optimizer, "t", 0)
    for _ in range(2):
        est.partial_fit(X, y)
        loaded.partial_fit(X, y)
    assert_array_equal(loaded._network.params, est._network.params)
    assert_array_equal(loaded.predict(X), est.predict(X))


def _any_optimizer(solver, n_params, dtype):
    if solver in SOLVERS:
        return _optimizer(solver, n_params, dtype)
    if solver == "adam":
        return AdamOptimizer(n_params, dtype, 0.01, 0.8, 0.99, 1e-7)
    return SGDOptimizer(n_params, dtype, 0.05, momentum=0.9, nesterov=solver == "nesterov")


@pytest.fixture
def avx2_loops():
    """The AVX2 variant of the step's loops; skips where the CPU has none."""
    if _optim._loops(True) != "avx2":
        pytest.skip("no AVX2 loops on this machine")
    yield
    _optim._loops(True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["nesterov", "momentum", "adam", *SOLVERS])
def test_simd_variant_does_not_change_steps(solver, dtype, avx2_loops, parallel_step):
    # the baseline and the AVX2 loops must give the same bits: parameters, state, and
    # the losses (their L2 term is the step's sum of squares, here over 9450 weights:
    # the last chunk's 1258 are not a multiple of the 32 or 16 partial sums)
    rng = np.random.RandomState(1)
    X = rng.standard_normal((64, 60)).astype(dtype)
    Y = rng.standard_normal((64, 3)).astype(dtype)
    results = []
    for allow_avx2 in (False, True):
        assert _optim._loops(allow_avx2) == ("avx2" if allow_avx2 else "baseline")
        net = _network(dtype, (60, 150, 3))
        opt = _any_optimizer(solver, net.params.size, dtype)
        losses = [net.train_epoch(X, Y, None, None, 16, 0.5, opt) for _ in range(3)]
        results.append((net.params.copy(), losses, [s.copy() for s in opt.state_arrays()]))
    (p1, l1, s1), (p2, l2, s2) = results
    assert not np.array_equal(p1, _network(dtype, (60, 150, 3)).params)  # it trained
    assert_array_equal(p1, p2)
    assert_array_equal(l1, l2)
    for a, b in zip(s1, s2):
        assert_array_equal(a, b)
