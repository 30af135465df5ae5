"""valgrind memcheck over a small fit and predict of every solver, head and input kind.

Fails (exit 1) on any invalid read or write, or any other memcheck error whose stack
passes through cymlp's compiled modules. Errors elsewhere (the dynamic loader, the
interpreter's shutdown) are printed as a count only. Run: python .ci/memcheck.py
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

WORKLOAD = r"""
import numpy as np, scipy.sparse as sp, warnings
warnings.simplefilter("ignore")
from cymlp import MLPClassifier, MLPRegressor
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 20)); y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
for solver in ("adam", "sgd", "lbfgs"):
    MLPClassifier((150, 7), solver=solver, max_iter=3, batch_size=64,
                  random_state=0).fit(X, y).predict_proba(X)
MLPClassifier((200,), activation="tanh", max_iter=2, batch_size=256, early_stopping=True,
              random_state=0).fit(X.astype(np.float32), y).predict(X.astype(np.float32))
MLPClassifier((), activation="logistic", max_iter=2, random_state=0).fit(X, y > 0)
MLPRegressor(hidden_layer_sizes=(9,), max_iter=2, random_state=0).fit(
    sp.csr_matrix(X), X[:, :3]).predict(sp.csr_matrix(X))
MLPRegressor(hidden_layer_sizes=(9,), loss="poisson", max_iter=2, random_state=0).fit(
    X, np.abs(X[:, 0]), sample_weight=np.abs(X[:, 1])).predict(X)
print("workload done")
"""

OURS = re.compile(r"cymlp[/\\]_(engine|kernels|optim|blas)|_(engine|kernels|optim|blas)\.c")


def main():
    if shutil.which("valgrind") is None:
        print("valgrind not installed: memcheck skipped")
        return 0
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    env = dict(os.environ, PYTHONMALLOC="malloc", OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=memcheck",
            f"--log-file={log}",
            "--num-callers=40",
            sys.executable,
            "-c",
            WORKLOAD,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or "workload done" not in proc.stdout:
        print(proc.stdout, proc.stderr)
        print("memcheck: the workload failed under valgrind")
        return 1
    errors = re.split(r"\n==\d+== \n", open(log).read())
    bad, other = [], 0
    for block in errors:
        if not re.search(r"==\d+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source)", block):
            continue
        invalid_access = re.search(r"Invalid (read|write)", block)
        in_loader = "dl-load.c" in block or "ld-linux" in block
        if OURS.search(block) or (invalid_access and not in_loader):
            bad.append(block)
        else:
            other += 1
    for block in bad:
        print(block)
    print(
        f"memcheck: {len(bad)} errors in or through cymlp, {other} elsewhere "
        "(dynamic loader, interpreter shutdown)"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
