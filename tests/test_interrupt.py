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
