"""Sparse input is read in place by the first layer: never densified, not even a batch."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from cymlp import MLPClassifier

CHILD = textwrap.dedent("""
    import json, warnings
    import numpy as np, scipy.sparse as sp
    from cymlp import MLPClassifier

    def peak_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    rng = np.random.default_rng(0)
    n, width, per_row = 300, 1_000_000, 10  # a dense batch of 64 rows would take 256 MB
    X = sp.csr_matrix((rng.random(n * per_row, dtype=np.float32),
                       rng.integers(0, width, n * per_row),
                       np.arange(0, n * per_row + 1, per_row)), shape=(n, width))
    y = rng.integers(0, 2, n)
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak
    before = peak_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(2,), batch_size=64, max_iter=2,
                            random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    print(json.dumps({"added_mb": peak_mb() - before,
                      "finite": bool(np.isfinite(proba).all())}))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kB is Linux's")
def test_wide_sparse_input_is_never_densified():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["finite"]
    # weights, gradients, optimizer state and copies: about 6 x 2M float32 = 48 MB; one
    # densified batch would add 256 MB
    assert result["added_mb"] < 160


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_and_dense_training_agree(fmt):
    rng = np.random.default_rng(1)
    X = sp.random(120, 40, density=0.1, format=fmt, random_state=1)
    y = rng.integers(0, 3, 120)
    params = dict(
        hidden_layer_sizes=(16, 8), solver="sgd", batch_size=16, max_iter=5, random_state=0
    )
    with warnings.catch_warnings():  # ConvergenceWarning at max_iter
        warnings.simplefilter("ignore", ConvergenceWarning)
        sparse = MLPClassifier(**params).fit(X, y)
        dense = MLPClassifier(**params).fit(X.toarray(), y)
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert_allclose(sparse.predict_proba(X), dense.predict_proba(X.toarray()), rtol=1e-6)
