"""cymlp on Dask: a hyper-parameter search on a cluster, and out-of-core training.

- GridSearchCV under ``joblib.parallel_backend("dask")`` sends every (candidate, fold)
  fit to the workers of a ``distributed.LocalCluster`` (two worker processes, started
  here). Each fit is deterministic for its random_state, so the search must give the
  local search's results exactly.
- dask-ml's ``Incremental`` trains cymlp through ``partial_fit``, one call per block of a
  chunked dask array, in a known block order; the model must be the one that the same
  ``partial_fit`` calls made by hand give, to the last bit, and it must learn.

The cluster is started once for the module and closed at the end; the networks and data
are small, so the file runs in a few seconds once the workers are up.
"""

import logging
import os

import numpy as np
import pytest
from numpy.testing import assert_array_equal

distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")

import dask.array as da  # noqa: E402  (dask is a dependency of distributed)
import joblib  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.metrics import mean_squared_error, r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

import cymlp  # noqa: E402

from _common import iris  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

Incremental = dask_ml_wrappers.Incremental


@pytest.fixture(scope="module")
def client():
    """A two-process LocalCluster (one thread each) and a client set as the default.
    The nannies set their workers' thread variables (OMP_NUM_THREADS=1, ...) in this
    process's environment too; it is put back, for the tests that start processes."""
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
        os.environ.clear()
        os.environ.update(environ)


# ---------------------------------------------------------------- grid search on a cluster


def _search(n_jobs):
    X, y = iris()
    grid = {"hidden_layer_sizes": [(4,), (8,)], "alpha": [1e-4, 1e-1]}
    est = cymlp.MLPClassifier(max_iter=30, learning_rate_init=1e-2, random_state=0)
    return GridSearchCV(est, grid, cv=3, n_jobs=n_jobs).fit(X, y)


def test_grid_search_on_dask_cluster_matches_local_search(client):
    local = _search(n_jobs=1)
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_backend("dask"):
            remote = _search(n_jobs=-1)

    # the fits did run on the cluster's workers
    assert len(tasks.data) > 0
    assert {t["worker"] for t in tasks.data} <= set(client.scheduler_info()["workers"])

    assert remote.best_params_ == local.best_params_
    assert remote.best_score_ == local.best_score_
    assert remote.cv_results_["params"] == local.cv_results_["params"]
    for key in ["mean_test_score", "std_test_score", "rank_test_score"] + [
        f"split{k}_test_score" for k in range(3)
    ]:
        assert_array_equal(remote.cv_results_[key], local.cv_results_[key], err_msg=key)
    # the search is not trivial: the candidates score differently
    assert len(set(local.cv_results_["mean_test_score"])) > 1
    X, y = iris()
    assert_array_equal(remote.predict_proba(X), local.predict_proba(X))


# ------------------------------------------------------- out-of-core training (Incremental)

N_BLOCKS = 6
PASSES = 3


def _digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(X))  # the file's tail is harder
    X, y = X[order] / 16.0, y[order]
    return X[:1500], y[:1500], X[1500:], y[1500:]


def _regression():
    X, y = make_regression(n_samples=1500, n_features=10, noise=5.0, random_state=0)
    y = (y - y.mean()) / y.std()
    return X[:1200], y[:1200], X[1200:], y[1200:]


def _block_order(shuffle_blocks, seed):
    """The order in which dask-ml visits the blocks (dask_ml._partial.fit)."""
    order = list(range(N_BLOCKS))
    if shuffle_blocks:
        np.random.RandomState(seed).shuffle(order)
    return order


def _by_hand(est, X, y, order, passes, **kwargs):
    """The partial_fit calls Incremental makes, one per block in `order`, in process."""
    blocks = np.array_split(np.arange(len(X)), N_BLOCKS)
    for _ in range(passes):
        for b in order:
            est.partial_fit(X[blocks[b]], y[blocks[b]], **kwargs)
    return est


def _assert_saw_every_block(est, n_rows, passes=PASSES):
    """Every block was one partial_fit call: one epoch over the block's rows.

    As in scikit-learn, t_ counts the rows seen over all calls and loss_curve_ grows by
    one entry per call, while n_iter_ counts the epochs of the last call only (1).
    """
    assert est.t_ == passes * n_rows
    assert len(est.loss_curve_) == passes * N_BLOCKS
    assert est.n_iter_ == 1


def _assert_same_model(a, b):
    assert a.n_iter_ == b.n_iter_
    assert a.t_ == b.t_
    assert a.loss_curve_ == b.loss_curve_
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(wa, wb)


@pytest.mark.parametrize("shuffle_blocks", [False, True])
def test_incremental_classifier_trains_through_partial_fit(client, shuffle_blocks):
    X, y, X_test, y_test = _digits()
    rows = len(X) // N_BLOCKS
    Xd, yd = da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=rows)
    assert Xd.numblocks == (N_BLOCKS, 1)
    classes = np.unique(y)
    est = cymlp.MLPClassifier(
        hidden_layer_sizes=(32,), batch_size=50, learning_rate_init=1e-2, random_state=0
    )
    inc = Incremental(est, scoring="accuracy", shuffle_blocks=shuffle_blocks, random_state=0)
    for _ in range(PASSES):  # each Incremental.partial_fit is one pass over the blocks
        inc.partial_fit(Xd, yd, classes=classes)

    fitted = inc.estimator_
    _assert_saw_every_block(fitted, len(X))
    assert not hasattr(est, "coefs_")  # the template stays unfitted

    order = _block_order(shuffle_blocks, seed=0)
    if shuffle_blocks:
        assert order != sorted(order)
    ref = _by_hand(clone(est), X, y, order, PASSES, classes=classes)
    _assert_same_model(fitted, ref)

    # it learned, and the wrapper predicts block-wise on dask arrays
    X_test_d = da.from_array(X_test, chunks=100)
    assert inc.score(X_test_d, da.from_array(y_test, chunks=100)) > 0.9
    assert_array_equal(inc.predict(X_test_d).compute(), ref.predict(X_test))
    assert_array_equal(inc.predict_proba(X_test_d).compute(), ref.predict_proba(X_test))


def test_incremental_fit_is_one_pass_from_scratch(client):
    X, y, _, _ = _digits()
    rows = len(X) // N_BLOCKS
    Xd, yd = da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=rows)
    est = cymlp.MLPClassifier(hidden_layer_sizes=(8,), batch_size=100, random_state=1)
    inc = Incremental(est, shuffle_blocks=False)
    classes = np.unique(y)
    inc.fit(Xd, yd, classes=classes)
    inc.fit(Xd, yd, classes=classes)  # fit starts again from a clone
    _assert_saw_every_block(inc.estimator_, len(X), passes=1)
    ref = _by_hand(clone(est), X, y, range(N_BLOCKS), 1, classes=classes)
    _assert_same_model(inc.estimator_, ref)


def test_incremental_regressor_trains_through_partial_fit(client):
    X, y, X_test, y_test = _regression()
    rows = len(X) // N_BLOCKS
    Xd, yd = da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=rows)
    est = cymlp.MLPRegressor(
        hidden_layer_sizes=(16,), batch_size=50, learning_rate_init=1e-2, random_state=0
    )
    # the mean squared error; r2, the default, is checked below (it fails only on arrays
    # of unknown chunk sizes: dask/dask-ml#1012)
    inc = Incremental(est, scoring="neg_mean_squared_error", shuffle_blocks=True, random_state=3)
    for _ in range(PASSES):
        inc.partial_fit(Xd, yd)

    fitted = inc.estimator_
    _assert_saw_every_block(fitted, len(X))
    ref = _by_hand(clone(est), X, y, _block_order(True, seed=3), PASSES)
    _assert_same_model(fitted, ref)

    # y is standardised: a mean squared error of 0.1 is an R2 of about 0.9
    X_test_d = da.from_array(X_test, chunks=100)
    assert inc.score(X_test_d, da.from_array(y_test, chunks=100)) > -0.1
    assert_array_equal(inc.predict(X_test_d).compute(), ref.predict(X_test))
    assert r2_score(y_test, ref.predict(X_test)) > 0.9
    # on in-memory data Incremental.score uses scikit-learn's scorers
    assert inc.score(X_test, y_test) == -mean_squared_error(y_test, ref.predict(X_test))
    # the default scoring, r2, on dask arrays of known chunk sizes
    inc_r2 = Incremental(clone(est)).fit(Xd, yd)
    y_test_d = da.from_array(y_test, chunks=100)
    expected = r2_score(y_test, inc_r2.predict(X_test_d).compute())
    assert inc_r2.score(X_test_d, y_test_d) == pytest.approx(expected, rel=1e-9)
