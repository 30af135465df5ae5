"""Ctrl-C (SIGINT) stops a fit in the middle of a long epoch; the estimator stays usable."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    from cymlp import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 256), dtype=np.float32)
    y = (X[:, 0] > 0).astype(int)
    # one epoch of this takes many seconds: the signal lands in its middle
    clf = MLPClassifier(hidden_layer_sizes=(1024, 1024), solver="adam", batch_size=64,
                        max_iter=1, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        print("start", flush=True)
        clf.fit(X, y)
    print(json.dumps({
        "n_iter": clf.n_iter_,
        "warnings": [str(w.message) for w in caught],
        "predict_ok": bool(np.isfinite(clf.predict_proba(X[:100])).all()),
        "steps_taken": clf._optimizer.t,  # Adam counts its steps
        "steps_per_epoch": -(-len(X) // 64),
    }), flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_a_long_epoch_and_keeps_the_estimator_usable():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(1.0)  # into the epoch (not a timing assertion: see n_iter below)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    # stopped inside the first (and only) epoch, after taking some steps
    assert result["n_iter"] == 0
    assert 0 < result["steps_taken"] < result["steps_per_epoch"]
    assert "Training interrupted by user." in result["warnings"]
    assert result["predict_ok"]


# A signal whose handler raises (Ctrl-C's KeyboardInterrupt, or any handler's exception)
# while the engine runs without the GIL. Python raises it at the first Python code that
# runs afterwards: it must leave the BLAS thread limit given back and the optimizer's step
# count complete, and the handler's own exception must reach the caller. SIGUSR1 here, so
# that a stray signal cannot stop the test session.
class _Alarm(Exception):
    pass


@pytest.fixture
def alarm_in():
    """alarm_in(seconds): SIGUSR1, whose handler raises _Alarm, that many seconds later."""
    import threading

    def handler(signum, frame):
        raise _Alarm

    previous = signal.signal(signal.SIGUSR1, handler)
    timers = []

    def start(seconds):
        timers.append(threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGUSR1)))
        timers[-1].start()

    yield start
    for timer in timers:
        timer.cancel()
        timer.join()
    signal.signal(signal.SIGUSR1, previous)


def _blas_state():
    from threadpoolctl import threadpool_info

    from cymlp import _threads

    threads = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    return threads, _threads._depth


posix_signals = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")


@posix_signals
def test_a_signal_handlers_exception_leaves_fit(alarm_in, restore_blas_threads):
    # the engine's own check (every few batches) runs the handler: its exception, not a
    # KeyboardInterrupt that fit would take for Ctrl-C and swallow
    import numpy as np

    from cymlp import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 64), dtype=np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = MLPClassifier(
        hidden_layer_sizes=(256, 128), batch_size=100, max_iter=200, n_iter_no_change=np.inf
    )
    before = _blas_state()
    alarm_in(0.3)
    with pytest.raises(_Alarm):
        est.fit(X, y)
    assert _blas_state() == before
    assert np.isfinite(est.predict_proba(X[:10])).all()


@posix_signals
def test_a_signal_during_predict_gives_back_the_blas_limit(alarm_in, restore_blas_threads):
    import numpy as np

    from cymlp import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60_000, 256), dtype=np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(1024, 512), max_iter=1).fit(X[:500], y[:500])
    before = _blas_state()
    alarm_in(0.2)  # predicting these rows takes longer: the signal lands inside
    with pytest.raises(_Alarm) as raised:
        for _ in range(20):
            est.predict_proba(X)
    assert _blas_state() == before
    # raised by the engine between chunks, not once the whole prediction was done
    assert any(entry.name.endswith("_raise_signal_error") for entry in raised.traceback)


@posix_signals
def test_a_signal_after_an_epoch_keeps_the_step_count(alarm_in, restore_blas_threads):
    # three mini-batches per epoch: the engine's own check never runs, and the handler's
    # exception comes once the epoch is over; weights updated are steps counted (Adam's
    # bias correction depends on the count)
    import numpy as np

    from cymlp import MLPClassifier
    from cymlp.callbacks import Callback

    class Record(Callback):
        def on_epoch_end(self, estimator, epoch, logs):
            self.last = estimator._network.params.copy(), estimator._optimizer.t

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12_000, 128), dtype=np.float32)
    y = (X[:, 0] > 0).astype(int)
    record = Record()
    est = MLPClassifier(
        hidden_layer_sizes=(512, 256),
        batch_size=4000,
        max_iter=500,
        n_iter_no_change=np.inf,
        callbacks=[record],
    )
    before = _blas_state()
    alarm_in(0.5)
    with pytest.raises(_Alarm):
        est.fit(X, y)
    params, t = record.last
    if not np.array_equal(params, est._network.params):
        assert est._optimizer.t == t + 3
    else:
        assert est._optimizer.t == t
    assert _blas_state() == before


HANDLER_FITS = textwrap.dedent("""
    import signal, threading, os, warnings
    import numpy as np
    from cymlp import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 256), dtype=np.float32)
    y = (X[:, 0] > 0).astype(int)
    # one epoch of many seconds, as above
    clf = MLPClassifier(hidden_layer_sizes=(1024, 1024), batch_size=64, max_iter=1)

    def handler(signum, frame):  # trains the model being trained
        clf.partial_fit(X[:100], y[:100])

    signal.signal(signal.SIGUSR1, handler)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)  # the handler runs inside the epoch
        print("no error")
    except RuntimeError as exc:
        print(exc)
""")


@posix_signals
def test_a_signal_handler_that_fits_the_model_being_trained():
    # the handler runs inside the engine's epoch (its check for signals), in the thread
    # that is fitting; its fit freed the workspace under the epoch (a segfault)
    proc = subprocess.run(
        [sys.executable, "-c", HANDLER_FITS], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "being trained by another call" in proc.stdout
