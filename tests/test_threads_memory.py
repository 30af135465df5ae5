"""Threads and memory: concurrent prediction and training from Python threads, the GIL
released while an epoch runs, bounded memory when predicting many rows, and no growth
over many fit / predict cycles.

No timing assertions: thread tests compare results with sequential ones; the GIL test
counts what another thread did while the engine was inside its compiled loop; memory is
measured as peak / resident set size in a fresh subprocess.
"""

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_info

import cymlp

from _common import iris, quiet_fit, regression

N_THREADS = 8


def _blas_threads():
    return sorted(
        (d["filepath"], d["num_threads"]) for d in threadpool_info() if d["user_api"] == "blas"
    )


# --------------------------------------------------------------------------------------
# concurrent prediction
# --------------------------------------------------------------------------------------


def _fitted_models():
    X, y = iris()
    Xr, yr = regression()
    Xr_sparse = np.where(Xr > 0.5, Xr, 0)
    rng = np.random.RandomState(0)
    Xw = rng.standard_normal((600, 30))
    yw = rng.randint(0, 4, 600)

    def clf(X, y, **params):
        return quiet_fit(cymlp.MLPClassifier(random_state=0, **params), X, y)

    def reg(X, y, **params):
        return quiet_fit(cymlp.MLPRegressor(random_state=0, **params), X, y)

    return {
        # a float64 classifier, predicted on float64 rows
        "clf64": (clf(X, y, hidden_layer_sizes=(40, 20), max_iter=20), np.repeat(X, 20, axis=0)),
        # a float32 classifier predicted on float64 rows: a float64 copy of the network
        # is made per call
        "clf32": (
            clf(Xw.astype(np.float32), yw, hidden_layer_sizes=(300,), max_iter=5),
            np.tile(Xw, (4, 1)),
        ),
        # wide layers: GEMMs large enough to be cut into blocks
        "reg-wide": (
            reg(Xr, yr, hidden_layer_sizes=(256, 256), max_iter=3),
            np.repeat(Xr, 25, axis=0),
        ),
        # sparse rows
        "reg-sparse": (
            reg(sp.csr_matrix(Xr_sparse), yr, hidden_layer_sizes=(64,), max_iter=10),
            sp.csr_matrix(np.repeat(Xr_sparse, 10, axis=0)),
        ),
    }


@pytest.fixture(scope="module")
def fitted_models():
    return _fitted_models()


def _methods(est):
    names = ["predict"] + (
        ["predict_proba", "predict_log_proba"] if hasattr(est, "predict_proba") else []
    )
    return [getattr(est, name) for name in names]


@pytest.mark.parametrize("model", ["clf64", "clf32", "reg-wide", "reg-sparse"])
def test_concurrent_predict_matches_sequential(fitted_models, model, restore_blas_threads):
    est, X = fitted_models[model]
    methods = _methods(est)
    expected = [m(X) for m in methods]
    barrier = threading.Barrier(N_THREADS)

    def work(k):
        barrier.wait()  # all threads start together
        out = []
        for i in range(12):
            j = (i + k) % len(methods)  # threads run different methods at the same time
            out.append((j, methods[j](X)))
        return out

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(work, range(N_THREADS)))
    assert sum(len(r) for r in results) == N_THREADS * 12
    for per_thread in results:
        for j, got in per_thread:
            assert got.dtype == expected[j].dtype
            assert_array_equal(got, expected[j])


def test_overlapping_predicts_restore_blas_threads(monkeypatch, restore_blas_threads):
    """Two threads predict; the second enters while the first is inside and leaves after
    it (an interleaving that happens naturally with concurrent calls, forced here with
    events so the test is deterministic). Afterwards BLAS must have its thread count
    back. (Regression test: with threadpoolctl's save-and-restore limit per call, the
    second call saved 1 and restored it last, leaving numpy / scipy BLAS single-threaded
    for the rest of the process; fixed in 071f38d by a reference-counted limit.)"""
    from cymlp import _engine

    if all(n == 1 for _, n in _blas_threads()):
        pytest.skip("BLAS runs one thread anyway: nothing to restore")
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(20,), max_iter=5, random_state=0), X, y)
    expected = est.predict_proba(X)
    before = _blas_threads()

    original = _engine.blas_single_threaded
    role = threading.local()
    first_inside, second_inside, first_left = (threading.Event() for _ in range(3))

    @contextlib.contextmanager
    def interleaved():
        name = getattr(role, "name", None)
        if name == "second":
            first_inside.wait(5)
        with original():
            if name == "first":
                first_inside.set()
                second_inside.wait(5)
            elif name == "second":
                second_inside.set()
            yield
            if name == "second":
                first_left.wait(5)
        if name == "first":
            first_left.set()

    monkeypatch.setattr(_engine, "blas_single_threaded", interleaved)

    def run(name):
        role.name = name
        return est.predict_proba(X)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, ["first", "second"]))
    for got in results:
        assert_array_equal(got, expected)
    assert first_inside.is_set() and second_inside.is_set() and first_left.is_set()
    assert _blas_threads() == before


def test_engine_limits_blas_from_a_worker_thread(restore_blas_threads):
    """Inside an engine call made from a thread other than the main one, every BLAS runs
    one thread, and gets its count back afterwards. (Regression test: threadpoolctl 3.8
    lets only the first thread that set a limit change OpenBLAS's process-wide pool, and
    silently ignores the others, so a predict from a worker thread once ran its GEMMs
    multi-threaded inside the OpenMP threads and gave different bits.)"""
    from threadpoolctl import ThreadpoolController

    from cymlp._threads import blas_single_threaded

    if all(n == 1 for _, n in _blas_threads()):
        pytest.skip("BLAS runs one thread anyway: nothing to limit")
    # a limit set from the main thread (as a user's or an earlier engine call's): under
    # threadpoolctl 3.8 the main thread becomes the only one that may change OpenBLAS
    for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
        lib.set_num_threads(lib.num_threads)
    before = _blas_threads()
    seen = {}

    def worker():
        with blas_single_threaded():
            seen["inside"] = _blas_threads()
        seen["after"] = _blas_threads()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert all(n == 1 for _, n in seen["inside"]), seen["inside"]
    assert seen["after"] == before


def test_concurrent_predict_stress(fitted_models, restore_blas_threads):
    """Free-running version of the test above: many overlapping calls on the wide
    network; the results are right and BLAS gets its thread count back."""
    est, X = fitted_models["reg-wide"]
    expected = est.predict(X)
    before = _blas_threads()
    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(lambda _: [est.predict(X) for _ in range(3)], range(N_THREADS)))
    for per_thread in results:
        for got in per_thread:
            assert_array_equal(got, expected)
    assert _blas_threads() == before


# --------------------------------------------------------------------------------------
# concurrent training
# --------------------------------------------------------------------------------------


def _fit_jobs():
    X, y = iris()
    Xr, yr = regression()
    return [
        (
            cymlp.MLPClassifier,
            dict(hidden_layer_sizes=(50,), solver="adam", max_iter=30, random_state=1),
            X,
            y,
        ),
        (
            cymlp.MLPClassifier,
            dict(hidden_layer_sizes=(20, 10), solver="sgd", max_iter=30, random_state=2),
            X,
            y,
        ),
        (
            cymlp.MLPClassifier,
            dict(hidden_layer_sizes=(30,), solver="lbfgs", max_iter=50, random_state=3),
            X,
            y,
        ),
        (
            cymlp.MLPRegressor,
            dict(
                hidden_layer_sizes=(256,), solver="adam", max_iter=10, batch_size=64, random_state=4
            ),
            Xr,
            yr,
        ),
        (
            cymlp.MLPRegressor,
            dict(
                hidden_layer_sizes=(40,),
                solver="sgd",
                max_iter=30,
                early_stopping=True,
                random_state=5,
            ),
            Xr,
            yr,
        ),
        (
            cymlp.MLPRegressor,
            dict(hidden_layer_sizes=(40,), solver="lbfgs", max_iter=50, random_state=6),
            sp.csr_matrix(Xr),
            yr,
        ),
        (
            cymlp.MLPClassifier,
            dict(
                hidden_layer_sizes=(64,),
                solver="adam",
                max_iter=20,
                dtype=np.float32,
                random_state=7,
            ),
            X,
            y,
        ),
        (
            cymlp.MLPRegressor,
            dict(hidden_layer_sizes=(32, 32), solver="adam", max_iter=20, random_state=8),
            Xr,
            yr,
        ),
    ]


def _run_job(job):
    # (warnings.catch_warnings is not thread-safe: the tests filter warnings instead)
    Est, params, X, y = job
    est = Est(**params).fit(X, y)
    return est, est.predict(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_parallel_fits_match_sequential(restore_blas_threads):
    jobs = _fit_jobs()
    sequential = [_run_job(job) for job in jobs]
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return _run_job(job)

    for _ in range(2):
        with ThreadPoolExecutor(len(jobs)) as pool:
            parallel = list(pool.map(run, jobs))
        for (a, pa), (b, pb) in zip(sequential, parallel):
            assert a.n_iter_ == b.n_iter_
            for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
                assert ca.dtype == cb.dtype
                assert_array_equal(ca, cb)
            assert_array_equal(pa, pb)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_estimator_predicts_while_another_fits(fitted_models, restore_blas_threads):
    est, X = fitted_models["clf64"]
    expected = est.predict_proba(X)
    Xr, yr = regression()
    job = (cymlp.MLPRegressor, dict(hidden_layer_sizes=(128,), max_iter=40, random_state=0), Xr, yr)
    reference, _ = _run_job(job)
    with ThreadPoolExecutor(4) as pool:
        fits = [pool.submit(_run_job, job) for _ in range(2)]
        preds = [pool.submit(lambda: [est.predict_proba(X) for _ in range(10)]) for _ in range(2)]
        for f in fits:
            fitted, _ = f.result()
            for ca, cb in zip(fitted.coefs_, reference.coefs_):
                assert_array_equal(ca, cb)
        for p in preds:
            for got in p.result():
                assert_array_equal(got, expected)


class _FitFromAnotherThread(cymlp.callbacks.Callback):
    """At the end of the first epoch, runs `call` on the estimator being trained in
    another thread (while this fit is paused in the hook) and keeps what it raised."""

    def __init__(self, call=None):
        self.call = call

    def on_epoch_end(self, estimator, epoch, logs):
        if epoch == 0:
            self.raised = []

            def run():
                try:
                    self.call(estimator)
                except Exception as exc:  # noqa: BLE001 (kept for the test)
                    self.raised.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            thread.join()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("second", ["fit", "partial_fit"])
def test_a_second_fit_of_one_estimator_is_refused(second, restore_blas_threads):
    # Both fits on one network, whose buffers each replaces and frees, corrupted the heap;
    # the fit from the other thread now raises, and the first one ends as if alone.
    X, y = iris()
    params = dict(hidden_layer_sizes=(32,), max_iter=3, random_state=0)
    alone = cymlp.MLPClassifier(**params).fit(X, y)
    hook = _FitFromAnotherThread(lambda est: getattr(est, second)(X, y))
    est = cymlp.MLPClassifier(callbacks=[hook], **params).fit(X, y)
    assert len(hook.raised) == 1 and isinstance(hook.raised[0], RuntimeError)
    assert "being fitted in another thread" in str(hook.raised[0])
    for a, b in zip(alone.coefs_ + alone.intercepts_, est.coefs_ + est.intercepts_):
        assert_array_equal(a, b)
    est.set_params(callbacks=None).partial_fit(X, y)  # free again once the fit is over


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_predict_while_a_refit_initializes(monkeypatch, restore_blas_threads):
    # A predict between the new network and its views copied the old weights into the
    # new network as if assigned: the refit then started from the old weights.
    from cymlp import _init

    X, y = iris()
    params = dict(hidden_layer_sizes=(32,), max_iter=3, random_state=0)
    alone = cymlp.MLPClassifier(**params).fit(X, y)
    est = cymlp.MLPClassifier(**dict(params, random_state=1)).fit(X, y)
    expected = est.predict_proba(X)
    seen = []
    initialize = _init.initialize_weights

    def initialize_then_predict(*args):
        initialize(*args)
        thread = threading.Thread(target=lambda: seen.append(est.predict_proba(X)))
        thread.start()
        thread.join()

    monkeypatch.setattr(_init, "initialize_weights", initialize_then_predict)
    est.set_params(random_state=0).fit(X, y)
    assert_array_equal(seen[0], expected)  # the fitted model, whole
    for a, b in zip(alone.coefs_ + alone.intercepts_, est.coefs_ + est.intercepts_):
        assert_array_equal(a, b)


# --------------------------------------------------------------------------------------
# the GIL is released while an epoch runs
# --------------------------------------------------------------------------------------


class _EngineWindows:
    """Marks the engine's GIL-free regions and counts another thread's progress in them.

    Every engine call (train_epoch, loss_and_grad, predict) enters
    `_engine.blas_single_threaded()` right before it releases the GIL and leaves it right
    after taking the GIL back. Wrapping it, we read a counter that another Python thread
    increments in a loop, on entry and on exit: the difference is what that thread did
    while the engine ran its compiled loop.

    No clock times the windows. A window always shows some progress of the other thread
    from its edges (the GIL changes hands there: on entry, and when the engine takes the
    GIL back). With the GIL released the other thread also runs through the whole
    window, so long windows show far more progress than near-empty ones. With the GIL
    held it could not run Python code inside the window at all, and a long window would
    show no more than an empty one. `_check_windows` compares the two.

    An edge lasts about one GIL switch interval, so the interval is cut to 0.5 ms while
    the counter runs: the windows of one-row L-BFGS and predict calls then count ~8x
    less (about 57,000 at the default 5 ms, which a 40k-row prediction on 2 cores only
    beat 4-5 times over), while a GIL-free window counts as much as before. On a loaded
    machine the empty windows can count nothing at all, so an edge is taken to be at
    least `per_interval`: what the counter does in one switch interval with the GIL to
    itself, measured on entry while this thread sleeps (a long window with the GIL held
    would show about that much).
    """

    def __init__(self, monkeypatch):
        from cymlp import _engine

        self.per_window = []
        self.count = 0
        self._stop = threading.Event()
        windows = self

        class Marked:
            # as little Python as possible between reading the counter and the engine
            def __init__(self):
                self.inner = original()

            def __enter__(self):
                self.inner.__enter__()
                self.start = windows.count

            def __exit__(self, *exc):
                windows.per_window.append(windows.count - self.start)
                return self.inner.__exit__(*exc)

        original = _engine.blas_single_threaded
        monkeypatch.setattr(_engine, "blas_single_threaded", Marked)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.count += 1

    def __enter__(self):
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        self._thread.start()
        while self.count == 0:  # the counter is running
            pass
        start, t0 = self.count, time.perf_counter()
        time.sleep(0.05)
        rate = (self.count - start) / (time.perf_counter() - t0)
        self.per_interval = rate * sys.getswitchinterval()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._switch_interval)

    def take(self):
        out, self.per_window = self.per_window, []
        return out


def _check_windows(empty, long, min_windows, per_interval):
    """`empty`: windows of engine calls that do almost nothing (one row); `long`: windows
    of calls that take a good fraction of a second; `per_interval`: the counter's
    progress in one switch interval (_EngineWindows.per_interval). Measured here, the
    long windows count 45-170 edges' worth (more under CPU load); a compiled call that
    holds the GIL counted about one edge's worth unloaded, and up to 10 under load."""
    for windows in (empty, long):
        assert len(windows) >= min_windows, (
            "the engine did not enter _engine.blas_single_threaded as often as expected: "
            "its GIL-free regions were not marked; update this test to the engine"
        )
    edges = max(np.median(empty), per_interval, 1)
    assert np.median(long) >= 10 * edges, (empty, long, per_interval)
    return np.median(long) / edges


def _fit_windows(windows, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (batch_size clipped to one row)
        est = quiet_fit(cymlp.MLPRegressor(random_state=0, **params), X, y)
    return est, windows.take()


def test_gil_released_during_fit(monkeypatch, restore_blas_threads):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((16000, 64))
    y = X[:, :8].sum(axis=1) + 0.1 * rng.standard_normal(16000)
    params = dict(
        hidden_layer_sizes=(256, 128), solver="sgd", batch_size=200, tol=0, n_iter_no_change=100
    )
    with _EngineWindows(monkeypatch) as windows:
        _, empty = _fit_windows(windows, X[:1], y[:1], max_iter=5, **params)
        start = windows.count
        est, long = _fit_windows(windows, X, y, max_iter=2, **params)
        during_fit = windows.count - start
    assert est.n_iter_ == 2
    # the other thread advanced during the fit ...
    assert during_fit >= 1000
    # ... inside the epochs, all through them
    _check_windows(empty, long, min_windows=2, per_interval=windows.per_interval)


def test_gil_released_during_lbfgs_and_predict(monkeypatch, restore_blas_threads):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((16000, 64))
    y = X[:, 0] - X[:, 1]
    params = dict(hidden_layer_sizes=(256, 128), solver="lbfgs", max_iter=3)
    with _EngineWindows(monkeypatch) as windows:
        est, empty = _fit_windows(windows, X[:1], y[:1], **params)
        for _ in range(3):
            est.predict(X[:1])
        empty += windows.take()
        est, long = _fit_windows(windows, X, y, **params)
        for _ in range(3):
            est.predict(np.tile(X, (5, 1)))
        long += windows.take()
    _check_windows(empty, long, min_windows=3 + 3, per_interval=windows.per_interval)


# --------------------------------------------------------------------------------------
# memory, in fresh subprocesses
# --------------------------------------------------------------------------------------


def _run_script(code, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


_MEMORY_HELPERS = """
import gc, warnings
import numpy as np
warnings.simplefilter("ignore")

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
"""

needs_proc = pytest.mark.skipif(
    not (os.path.exists("/proc/self/status") and os.access("/proc/self/clear_refs", os.W_OK)),
    reason="needs Linux /proc/self/status and a writable /proc/self/clear_refs",
)


@needs_proc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_memory_is_bounded(dtype):
    """Predicting 1,000,000 rows through a 512-unit hidden layer: holding all hidden
    activations would take 1e6 * 512 * itemsize (2 GB in float32); chunked prediction
    needs a few MB. The peak RSS increase during predict must stay under 300 MB beyond
    the output array."""
    out = _run_script(
        _MEMORY_HELPERS
        + f"""
import cymlp
dtype = np.{dtype}
rng = np.random.RandomState(0)
est = cymlp.MLPRegressor(hidden_layer_sizes=(512,), max_iter=2, random_state=0)
est.fit(rng.standard_normal((64, 16)).astype(dtype), rng.standard_normal(64))
assert est.coefs_[0].dtype == dtype
n = 1_000_000
X = rng.standard_normal((n, 16)).astype(dtype)
est.predict(X[:10])  # warm up: imports, BLAS buffers
gc.collect()
reset_peak()
base = status_kb("VmRSS")
out = est.predict(X)
peak = status_kb("VmHWM")
assert out.shape == (n,) and out.dtype == dtype and np.isfinite(out).all()
print(peak - base, out.nbytes // 1024)
"""
    )
    increase_kb, output_kb = map(int, out.split())
    full_activations_mb = 1_000_000 * 512 * np.dtype(dtype).itemsize / 2**20
    assert full_activations_mb > 1500  # the bound below is meaningful
    assert (increase_kb - output_kb) / 1024 < 300, (
        f"peak RSS grew by {increase_kb / 1024:.0f} MB during predict "
        f"(output {output_kb / 1024:.0f} MB)"
    )


@needs_proc
def test_sparse_predict_memory_is_bounded():
    out = _run_script(
        _MEMORY_HELPERS
        + """
import scipy.sparse as sp
import cymlp
rng = np.random.RandomState(0)
est = cymlp.MLPRegressor(hidden_layer_sizes=(512,), max_iter=2, random_state=0)
est.fit(sp.random(64, 16, density=0.3, format="csr", random_state=0), rng.standard_normal(64))
n = 1_000_000
X = rng.standard_normal((n, 16))
X[rng.rand(n, 16) < 0.9] = 0
X = sp.csr_matrix(X)
est.predict(X[:10])
gc.collect()
reset_peak()
base = status_kb("VmRSS")
out = est.predict(X)
peak = status_kb("VmHWM")
assert out.shape == (n,) and np.isfinite(out).all()
print(peak - base, out.nbytes // 1024)
"""
    )
    increase_kb, output_kb = map(int, out.split())
    # (1e6 * 512 * 8 bytes = 3.9 GB of activations if not chunked; the CSR arrays
    # themselves are about 20 MB)
    assert (increase_kb - output_kb) / 1024 < 300, f"peak RSS grew by {increase_kb} kB"


@needs_proc
def test_no_memory_growth_over_fit_predict_cycles():
    """300 cycles of fit / partial_fit / predict on small models (every solver, dense
    and sparse, both estimators). The RSS and the Python-level allocations
    (tracemalloc, which numpy reports to) must not grow between cycle 50 and cycle 300:
    a leaked workspace of the (64,) network (about 100 kB per fit) would add 25 MB."""
    out = _run_script(
        _MEMORY_HELPERS
        + """
import tracemalloc
import scipy.sparse as sp
import cymlp
rng = np.random.RandomState(0)
X = rng.standard_normal((200, 10))
Xs = sp.csr_matrix(np.where(X > 0, X, 0))
yc = rng.randint(0, 3, 200)
yr = rng.standard_normal(200)

def cycle(i):
    solver = ("adam", "sgd", "lbfgs")[i % 3]
    clf = cymlp.MLPClassifier((64,), solver=solver, max_iter=3, random_state=i)
    clf.fit(X if i % 2 else Xs, yc)
    clf.predict_proba(X)
    clf.predict(Xs)
    reg = cymlp.MLPRegressor(hidden_layer_sizes=(64, 16), solver=solver, max_iter=3, random_state=i,
                             early_stopping=(solver != "lbfgs" and i % 4 == 0))
    reg.fit(X, yr, sample_weight=np.ones(200))
    reg.predict(X)
    if solver != "lbfgs":
        inc = cymlp.MLPClassifier((32,), solver=solver, random_state=i)
        inc.partial_fit(X, yc, classes=[0, 1, 2])
        inc.partial_fit(Xs, yc)
        inc.predict(X)

for i in range(50):
    cycle(i)
tracemalloc.start()  # (started after the warm-up: only growth from here on matters)
gc.collect()
rss_50, traced_50 = status_kb("VmRSS"), tracemalloc.get_traced_memory()[0]
for i in range(50, 300):
    cycle(i)
gc.collect()
rss_300, traced_300 = status_kb("VmRSS"), tracemalloc.get_traced_memory()[0]
print(rss_300 - rss_50, (traced_300 - traced_50) // 1024)
"""
    )
    rss_growth_kb, traced_growth_kb = map(int, out.split())
    assert traced_growth_kb < 1024, f"Python-level allocations grew by {traced_growth_kb} kB"
    assert rss_growth_kb < 10 * 1024, f"RSS grew by {rss_growth_kb} kB over 250 cycles"


def test_networks_hold_no_unused_buffers():
    # A wide input (hashed text features, 2**21 columns): the batch-norm accumulator was
    # sized by the widest layer, the input included, and every network carried a gradient
    # buffer as large as its parameters, the float64 copy that predicts float64 X for a
    # float32 model too (a new one at every call).
    import tracemalloc

    from cymlp._engine import Network

    n_features = 2**21
    tracemalloc.start()
    try:
        net = Network([n_features, 2, 1], "relu", "logistic", np.float32)
        allocated = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert allocated < net.params.nbytes + 2**20

    X = sp.random(20, n_features, density=5 / n_features, format="csr", dtype=np.float32)
    est = quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(2,), max_iter=1), X, np.arange(20) % 2)
    assert est._network.dtype == np.float32
    X64 = X[:5].astype(np.float64)
    tracemalloc.start()
    try:
        est.predict_proba(X64)  # through a float64 copy of the network
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * est._network.params.nbytes + 2**20
