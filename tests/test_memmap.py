"""A C-contiguous np.memmap in the compute dtype is used in place by fit, partial_fit and
predict: the process may not even allocate room for a copy of it."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

CHILD = textwrap.dedent("""
    import json, resource, sys, warnings
    import numpy as np
    from cymlp import MLPClassifier

    path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    y = np.arange(n) % 3

    def private_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024

    # from here on the process's private memory may grow by 100 MB: a copy of X is 3x that
    limit = private_bytes() + 100 * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    result = {}
    try:
        np.array(X)
        result["limit_works"] = False
    except MemoryError:
        result["limit_works"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = MLPClassifier(hidden_layer_sizes=(8,), batch_size=256, max_iter=1,
                                random_state=0)
            clf.fit(X, y)
            clf.partial_fit(X, y)
            proba = clf.predict_proba(X)
        result["ok"] = bool(np.isfinite(proba).all()) and proba.shape == (n, 3)
    except MemoryError as exc:
        result["ok"] = False
        result["error"] = repr(exc)
    print(json.dumps(result))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA and /proc are Linux's")
def test_memmap_is_trained_and_predicted_in_place(tmp_path):
    n, d = 200_000, 400  # 305 MB of float32
    path = tmp_path / "X.f32"
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, d))
    rng = np.random.default_rng(0)
    for start in range(0, n, 50_000):
        X[start : start + 50_000] = rng.standard_normal((50_000, d), dtype=np.float32)
    X.flush()
    del X
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(n), str(d)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["limit_works"], "the memory limit would not catch a copy"
    assert result["ok"], result.get("error")
