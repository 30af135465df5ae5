"""valgrind memcheck over a small fit and predict of every solver, activation, head, loss,
layer kind (dropout, batch normalization), dtype and input kind, validation data, and an
epoch run in mini-batch ranges (the progress bar's engine calls).

Fails (exit 1) on any invalid read or write, or any other memcheck error whose stack
passes through cymlp's compiled modules. Errors elsewhere (the dynamic loader, the
interpreter's shutdown) are printed as a count only. Without valgrind it is skipped
(exit 0), except under CI (the CI environment variable set), where that fails.
Run: python .ci/memcheck.py (with cymlp importable: installed, or PYTHONPATH=src after an
in-place build)
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
MLPClassifier((6,), activation="identity", max_iter=2, random_state=0).fit(
    X[:100], X[:100, :3] > 0).predict_proba(X[:100])  # multilabel
MLPRegressor(hidden_layer_sizes=(9,), max_iter=2, random_state=0).fit(
    sp.csr_matrix(X), X[:, :3]).predict(sp.csr_matrix(X))
MLPRegressor(hidden_layer_sizes=(9,), loss="poisson", max_iter=2, random_state=0).fit(
    X, np.abs(X[:, 0]), sample_weight=np.abs(X[:, 1])).predict(X)
# the layer kinds, the other activations, losses and solvers, both dtypes, validation data
Xs, ys = X[:120], y[:120]
for dtype in (np.float32, np.float64):
    Xd, Xv = Xs.astype(dtype), X[120:160].astype(dtype)
    for act, solver in (("leaky_relu", "adamw"), ("elu", "rmsprop"), ("gelu", "sgd"),
                        ("silu", "adam"), ("softplus", "adamw")):
        MLPClassifier((12, 5), activation=act, solver=solver, dropout=0.2,
                      batch_normalization=True, max_iter=2, batch_size=32,
                      random_state=0).fit(Xd, ys, X_val=Xv, y_val=y[120:160]).predict_proba(Xv)
    for loss in ("huber", "absolute_error"):
        MLPRegressor(hidden_layer_sizes=(8,), loss=loss, activation="gelu", solver="rmsprop",
                     dropout=[0.3], batch_normalization=True, max_iter=2, batch_size=32,
                     random_state=0).fit(Xd, Xs[:, :2], X_val=Xv, y_val=X[120:160, :2]).predict(Xv)
    MLPRegressor(hidden_layer_sizes=(7, 4), solver="lbfgs", activation="softplus",
                 max_iter=3, random_state=0).fit(Xd, Xs[:, 0]).predict(Xd)
# an epoch in mini-batch ranges, as the progress bar (verbose=2) runs it
from cymlp._engine import Network
from cymlp._optim import AdamOptimizer
net = Network([20, 6, 3], "elu", "softmax", np.float64, dropout=[0.25], batch_norm=True)
net.params[:] = rng.uniform(-0.3, 0.3, net.params.size)
opt = AdamOptimizer(net.params.size, np.float64, 0.01)
Y = np.eye(3)[y[:100]]
stats, order = net.new_stats(), rng.permutation(100)
for k0, k1 in ((0, 2), (2, 3), (3, net.n_batches(100, 16))):
    net.train_epoch(X[:100], Y, np.ones(100), order, 16, 1e-3, opt, stats=stats, epoch=1,
                    seed=3, batches=(k0, k1))
net.finish_stats(stats)
print("workload done")
"""

OURS = re.compile(r"cymlp[/\\]_(engine|kernels|optim|blas)|_(engine|kernels|optim|blas)\.c")


def main():
    if shutil.which("valgrind") is None:
        if os.environ.get("CI"):
            print("memcheck: valgrind is not installed (required under CI)")
            return 1
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
