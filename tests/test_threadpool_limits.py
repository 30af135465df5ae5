"""The thread count follows the ecosystem's controls: `OMP_NUM_THREADS`,
`threadpoolctl.threadpool_limits(..., user_api="openmp")`, and the user's BLAS limit
(`threadpool_limits(..., user_api="blas")`), which the engine's own single-threaded BLAS
sections must give back unchanged.

OpenMP: observed without clocks, by counting the OS threads of a fresh subprocess
(/proc/self/task). libgomp starts its worker threads at the first parallel region that
asks for them and keeps them, so a fit on a network big enough for the engine's parallel
blocks adds threads exactly when it was allowed more than one: with a limit of 1 the count
must not grow, with 2 it must (the control showing that the test can see a violation).
(That the results do not depend on the thread count is tested in test_api.py.)
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

import cymlp
from cymlp import _engine

from _common import iris, quiet_fit, regression

needs_openmp = pytest.mark.skipif(
    not getattr(_engine, "OPENMP_BUILD", True), reason="cymlp was built without OpenMP"
)
needs_proc_tasks = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="needs Linux /proc/self/task"
)

_SCRIPT = """
import os, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
import scipy.linalg.blas
from threadpoolctl import threadpool_limits
import cymlp

def n_threads():
    return len(os.listdir("/proc/self/task"))

rng = np.random.RandomState(0)
X = rng.standard_normal((400, 64))
y = X[:, 0] - X[:, 1]

def fit():
    # (256, 128): GEMMs cut into parallel blocks, an optimizer step over 49k weights
    est = cymlp.MLPRegressor(hidden_layer_sizes=(256, 128), batch_size=200, max_iter=2,
                             random_state=0)
    return est.fit(X, y).predict(X)

# BLAS's own threads are started before counting
scipy.linalg.blas.dgemm(1.0, np.ones((300, 300)), np.ones((300, 300)))
before = n_threads()
"""


def _run(code, env=None, helpers=""):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT) + helpers + textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [int(v) for v in proc.stdout.split()]


@needs_openmp
@needs_proc_tasks
def test_threadpool_limits_openmp_is_honoured():
    """The engine reads the OpenMP thread count at every call: a limit set after import
    applies to the next fit, and a new limit to the one after."""
    before, after_limit_1, after_limit_2, same = _run(
        """
        with threadpool_limits(limits=1, user_api="openmp"):
            p1 = fit()
            fit()
            after_1 = n_threads()
        with threadpool_limits(limits=2, user_api="openmp"):
            p2 = fit()
            after_2 = n_threads()
        print(before, after_1, after_2, int(np.array_equal(p1, p2)))
        """,
        env={"OMP_NUM_THREADS": "4"},  # (the default, overridden by the limits)
    )
    assert after_limit_1 == before, "the fit started threads beyond a limit of 1"
    assert after_limit_2 > before, "the fit did not use the 2 threads it was allowed"
    assert same  # and the thread count does not change the results


@needs_openmp
@needs_proc_tasks
@pytest.mark.parametrize("omp_num_threads", ["1", "2"])
def test_omp_num_threads_is_honoured(omp_num_threads):
    before, after = _run(
        """
        fit()
        print(before, n_threads())
        """,
        env={"OMP_NUM_THREADS": omp_num_threads},
    )
    if omp_num_threads == "1":
        assert after == before, "the fit started threads although OMP_NUM_THREADS=1"
    else:  # the control: threads are started (and seen) when allowed
        assert after > before


# A child forked (os.fork, multiprocessing's "fork" start method) from a process whose
# OpenMP threads had started: libgomp's pool does not survive the fork, and the child's
# first parallel region on several threads waited forever. The parent waits for the child
# with a deadline, so a hang fails the test instead of stalling the suite.
_FORK = """
import signal, time
from cymlp import _kernels

def in_child(work):
    # work()'s exit code in a forked child, or "hung"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # the BLAS pools, stopped by the fork, are started before counting threads
            scipy.linalg.blas.dgemm(1.0, np.ones((300, 300)), np.ones((300, 300)))
            np.ones((300, 300)) @ np.ones((300, 300))
            code = work()
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return "hung"
        time.sleep(0.05)
"""


@needs_openmp
@needs_proc_tasks
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_after_threads_started_runs_single_threaded():
    (result,) = _run(
        """
        expected = fit()
        assert n_threads() > before, "the parent's threads did not start: nothing tested"

        def work():
            threads = n_threads()
            same = np.array_equal(fit(), expected)  # the thread count changes no bits
            big = np.ones(1 << 21, dtype=np.float32)  # scanned by threads where allowed
            finite = _kernels.all_finite(big) and not _kernels.all_finite(big / 0 - big)
            return 0 if same and finite and n_threads() == threads else 2

        print({0: 1, 2: 0}.get(in_child(work), -1))
        """,
        env={"OMP_NUM_THREADS": "2"},
        helpers=_FORK,
    )
    assert result == 1, "the forked child hung, failed or started threads"


@needs_openmp
@needs_proc_tasks
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_before_threads_started_keeps_the_threads():
    """The control: a child of a process that had not started its OpenMP threads starts
    a pool of its own (only an inherited pool is unusable)."""
    (result,) = _run(
        """
        def work():
            threads = n_threads()
            fit()
            return 0 if n_threads() > threads else 2

        print({0: 1, 2: 0}.get(in_child(work), -1))
        """,
        env={"OMP_NUM_THREADS": "2"},
        helpers=_FORK,
    )
    assert result == 1, "the child of a fresh process ran single-threaded"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_during_an_engine_call_in_another_thread():
    """The engine call (here: its BLAS limit held, its lock taken) belongs to a thread
    the child does not have: the child neither waits for that lock nor keeps BLAS at
    the limit it set."""
    (result,) = _run(
        """
        from threadpoolctl import threadpool_info
        from cymlp import _threads

        def blas_threads():
            return sorted(d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas")

        expected = blas_threads()
        assert expected != [1] * len(expected), "BLAS at one thread already: nothing tested"

        def work():
            restored = blas_threads() == expected
            fit()
            return 0 if restored and blas_threads() == expected else 2

        with _threads.blas_single_threaded(), _threads._lock:
            code = in_child(work)
        print({0: 1, 2: 0}.get(code, -1))
        """,
        env={"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
        helpers=_FORK,
    )
    assert result == 1, "the child hung on the lock or kept BLAS at one thread"


# --------------------------------------------------------------------------------------
# BLAS: the engine holds BLAS at one thread during its calls and gives back the user's
# limit afterwards (never the count from before the user's limit)
# --------------------------------------------------------------------------------------


def _blas_threads():
    return {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


def _engine_calls():
    X, y = iris()
    Xr, yr = regression()
    fitted = quiet_fit(
        cymlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0), X, y
    )
    return {
        "fit adam": lambda: quiet_fit(
            cymlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0), X, y
        ),
        "fit sgd early stopping": lambda: quiet_fit(
            cymlp.MLPRegressor(
                hidden_layer_sizes=(16,),
                solver="sgd",
                early_stopping=True,
                max_iter=5,
                random_state=0,
            ),
            Xr,
            yr,
        ),
        "fit lbfgs": lambda: quiet_fit(
            cymlp.MLPRegressor(
                hidden_layer_sizes=(16,), solver="lbfgs", max_iter=5, random_state=0
            ),
            Xr,
            yr,
        ),
        "fit sparse": lambda: quiet_fit(
            cymlp.MLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0),
            sp.csr_matrix(np.where(Xr > 0, Xr, 0)),
            yr,
        ),
        "partial_fit": lambda: cymlp.MLPClassifier(
            hidden_layer_sizes=(16,), random_state=0
        ).partial_fit(X, y, classes=[0, 1, 2]),
        "predict_proba": lambda: fitted.predict_proba(X),
        "score": lambda: fitted.score(X, y),
    }


@pytest.mark.parametrize("limit", [1, 3])
def test_threadpool_limits_blas_is_kept(limit, restore_blas_threads):
    original = _blas_threads()
    if not original:
        pytest.skip("threadpoolctl sees no BLAS library")
    calls = _engine_calls()
    with threadpool_limits(limits=limit, user_api="blas"):
        inside = _blas_threads()  # (a library may cap the request: what it took must stay)
        if inside == original:
            pytest.skip(f"BLAS runs {original} threads with or without a limit of {limit}")
        for name, call in calls.items():
            call()
            assert _blas_threads() == inside, f"{name} changed the user's BLAS limit"
    assert _blas_threads() == original


def test_threadpool_limits_blas_kept_by_concurrent_calls(restore_blas_threads):
    """Overlapping engine calls from several threads under a user's BLAS limit: the last
    one out restores the user's limit, not the count from before it."""
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(64,), max_iter=5, random_state=0), X, y)
    X_big = np.repeat(X, 50, axis=0)
    original = _blas_threads()
    with threadpool_limits(limits=1, user_api="blas"):
        inside = _blas_threads()
        barrier = threading.Barrier(4)

        def work():
            barrier.wait()
            for _ in range(5):
                est.predict_proba(X_big)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _blas_threads() == inside
    assert _blas_threads() == original


@pytest.mark.parametrize("batch_size", [32, 64])
@pytest.mark.parametrize("thin_block", [0, 32])
def test_thin_batch_blocks_do_not_depend_on_the_thread_count(thin_block, batch_size):
    # batches of up to 64 rows: with thin_block=32 (set where OpenBLAS has unpacked
    # small-matrix kernels) the products are cut into 32-wide blocks
    rng = np.random.RandomState(0)
    X = rng.standard_normal((96, 300)).astype(np.float32)
    y = rng.randint(0, 3, 96)
    old = _engine._tuning(thin_block=thin_block)
    try:
        results = []
        for n_threads in (1, 2):
            with threadpool_limits(limits=n_threads, user_api="openmp"):
                est = cymlp.MLPClassifier(
                    hidden_layer_sizes=(256, 64),
                    batch_size=batch_size,
                    max_iter=2,
                    random_state=0,
                )
                results.append(quiet_fit(est, X, y))
    finally:
        _engine._tuning(**old)
    a, b = results
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(ca, cb)
    assert a.loss_curve_ == b.loss_curve_


@pytest.mark.parametrize(
    "extra",
    [dict(solver="adam"), dict(dropout=0.2), dict(batch_normalization=True)],
    ids=["adam", "dropout", "batchnorm"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_banded_first_layer_does_not_depend_on_the_thread_count(dtype, extra):
    # 515 features: the first layer's product runs in two bands of its weight rows
    # (dense_forward_banded), an odd count, and the optimizer steps the bands' chunks in
    # its own order; batches of 64 and a last one of 22
    rng = np.random.RandomState(1)
    X = rng.standard_normal((150, 515)).astype(dtype)
    y = rng.randint(0, 3, 150)
    results = []
    for n_threads in (1, 2, 3):  # 3: the blocks and chunks no longer split evenly
        with threadpool_limits(limits=n_threads, user_api="openmp"):
            est = cymlp.MLPClassifier(
                hidden_layer_sizes=(96, 64), batch_size=64, max_iter=3, random_state=0, **extra
            )
            results.append(quiet_fit(est, X, y))
    a = results[0]
    for b in results[1:]:
        for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(ca, cb)
        assert a.loss_curve_ == b.loss_curve_


def test_thin_block_follows_the_blas_kernels():
    from cymlp._threads import blas_multiplies_small_unpacked

    expected = 32 if blas_multiplies_small_unpacked() else 0
    assert _engine._tuning()["thin_block"] == expected


def test_thin_blocks_stay_off_with_packing_kernels():
    # forcing OpenBLAS's Haswell kernels (which pack every operand) must turn them off
    probe = (
        "import cymlp._engine as e, cymlp._threads as t; "
        "print(int(t.blas_multiplies_small_unpacked()), e._tuning()['thin_block'])"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    default = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert default.returncode == 0, default.stderr
    if default.stdout.split()[0] != "1":
        pytest.skip("OpenBLAS runs no small-matrix kernels here: nothing to turn off")
    env["OPENBLAS_CORETYPE"] = "Haswell"
    forced = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.split() == ["0", "0"]
