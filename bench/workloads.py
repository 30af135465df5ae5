"""Shared pieces of the benchmark suite: sizes, data, workloads, one runner per library, GEMM peak.

Used by both ``conftest.py``/``test_bench.py`` (pytest-benchmark) and ``report.py`` (plain timing),
so the two measure exactly the same work.

Environment:
    BENCH_QUICK=1     tiny sizes, to check that everything runs (numbers are meaningless)
    BENCH_SCALE=0.1   multiply the synthetic data sizes by this factor
"""

import dataclasses
import functools
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LIBS = ("cymlp", "sklearn", "torch")
N_FEATURES, N_CLASSES = 784, 10
ALPHA = 1e-4  # scikit-learn's default L2 penalty; PyTorch gets the equivalent weight decay


def n_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# Sizes


@dataclasses.dataclass(frozen=True)
class Sizes:
    quick: bool
    n_train: int  # rows of the synthetic 784-feature set (train and predict workloads)
    digits_epochs: int
    n_predict_memory: int  # rows predicted in the memory probe
    gemm_square: tuple  # square GEMM sizes for the peak


def get_sizes(quick=None):
    if quick is None:
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    if quick:
        return Sizes(True, max(64, int(2000 * scale)), 3, 20_000, (256, 512))
    return Sizes(
        False, max(64, int(60_000 * scale)), 50, int(1_000_000 * scale), (1024, 2048, 4096)
    )


# ---------------------------------------------------------------------------------------------
# Workloads


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    title: str
    dataset: str  # "synthetic" (n_train x 784, 10 classes) or "digits"
    hidden: tuple
    solver: str  # "sgd" (Nesterov momentum 0.9) or "adam"
    lr: float
    batch: int
    epochs: int
    predict: bool = False  # time predict_proba of a network fitted for one epoch instead of fit


def sgd_epoch(batch):
    """One SGD epoch of the 784-256-128-10 network (also used by the batch-size sweep)."""
    return Workload(
        f"sgd{batch}",
        f"SGD Nesterov, 1 epoch, batch {batch}",
        "synthetic",
        (256, 128),
        "sgd",
        0.01,
        batch,
        1,
    )


def get_workloads(sizes):
    return {
        w.name: w
        for w in [
            sgd_epoch(256),
            sgd_epoch(32),
            Workload(
                "adam256", "Adam, 1 epoch, batch 256", "synthetic", (256, 128), "adam", 1e-3, 256, 1
            ),
            Workload(
                "digits",
                f"digits, (100,), Adam, batch 32, {sizes.digits_epochs} epochs",
                "digits",
                (100,),
                "adam",
                1e-3,
                32,
                sizes.digits_epochs,
            ),
            Workload(
                "predict",
                f"predict_proba, {sizes.n_train} rows",
                "synthetic",
                (256, 128),
                "sgd",
                0.01,
                256,
                1,
                predict=True,
            ),
        ]
    }


@functools.cache
def synthetic(n, seed=0):
    """Gaussian X (n x 784, float32), labels from a fixed random teacher network (784-64-10, tanh).

    Generated in chunks straight into float32, so the process never holds a float64 copy
    (the memory probe relies on that)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((N_FEATURES, 64), dtype=np.float32) / np.sqrt(N_FEATURES)
    w2 = rng.standard_normal((64, N_CLASSES), dtype=np.float32)
    X = np.empty((n, N_FEATURES), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    for start in range(0, n, 8192):
        chunk = X[start : start + 8192]
        rng.standard_normal(dtype=np.float32, out=chunk)
        y[start : start + 8192] = np.argmax(np.tanh(chunk @ w1) @ w2, axis=1)
    return X, y


@functools.cache
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


def dataset(workload, sizes):
    return digits() if workload.dataset == "digits" else synthetic(sizes.n_train)


def layer_sizes(workload, X):
    return (X.shape[1], *workload.hidden, N_CLASSES)


def useful_flops(workload, X):
    """Flops a training run (or a prediction) must do: per sample 2W forward, 2W weight
    gradient, 2(W - W_first) input gradient (none for the first layer)."""
    sizes = layer_sizes(workload, X)
    w = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    w_first = sizes[0] * sizes[1]
    if workload.predict:
        return 2.0 * w * len(X)
    return float(workload.epochs) * len(X) * (6 * w - 2 * w_first)


# ---------------------------------------------------------------------------------------------
# Libraries: prepare(lib, workload, X, y) returns a zero-argument callable doing the timed work.


_import_errors = {}


def available(lib):
    """None if `lib` can be used, else the reason why not."""
    if lib not in _import_errors:
        try:
            if lib == "cymlp":
                try:
                    from cymlp import MLPClassifier  # noqa: F401
                except ImportError:  # not installed: try the source tree (built in place)
                    sys.modules.pop("cymlp", None)
                    sys.path.insert(0, str(ROOT / "src"))
                    from cymlp import MLPClassifier  # noqa: F401
            elif lib == "torch":
                import torch  # noqa: F401
            else:
                import sklearn  # noqa: F401
            _import_errors[lib] = None
        except Exception as exc:  # ImportError, or a half-built extension
            _import_errors[lib] = f"{lib} not importable: {exc!r}"
    return _import_errors[lib]


def make_estimator(lib, workload):
    """scikit-learn or cymlp MLPClassifier configured to run exactly `workload.epochs` epochs."""
    available(lib)  # puts src/ on the path when cymlp is built in place but not installed
    if lib == "cymlp":
        from cymlp import MLPClassifier

        extra = {"dtype": np.float32}
    else:
        from sklearn.neural_network import MLPClassifier

        extra = {}
    return MLPClassifier(
        hidden_layer_sizes=workload.hidden,
        solver=workload.solver,
        alpha=ALPHA,
        learning_rate_init=workload.lr,
        momentum=0.9,
        nesterovs_momentum=True,
        batch_size=workload.batch,
        max_iter=workload.epochs,
        shuffle=True,
        random_state=0,
        tol=0.0,
        n_iter_no_change=np.inf,
        **extra,
    )


def fit_estimator(lib, workload, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
        return make_estimator(lib, workload).fit(X, y)


def torch_fit(workload, X, y, seed=0):
    """A plain, idiomatic PyTorch CPU training loop doing the same work as MLPClassifier.fit."""
    import torch
    from torch import nn

    torch.set_num_threads(n_cores())
    torch.manual_seed(seed)
    sizes = layer_sizes(workload, X)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])  # no ReLU after the output layer (softmax is in the loss)
    # scikit-learn adds alpha * W / batch_size to the gradient: that is weight decay alpha / batch
    # (PyTorch also decays the biases, which scikit-learn does not; same cost, negligible effect).
    # fused=True: PyTorch's fastest CPU optimizer step (the default for-loop step is 20-30% slower
    # per epoch at batch 32); fall back to the default on a PyTorch without fused CPU optimizers.
    if workload.solver == "sgd":
        make = functools.partial(torch.optim.SGD, momentum=0.9, nesterov=True)
    else:
        make = torch.optim.Adam
    kwargs = dict(lr=workload.lr, weight_decay=ALPHA / workload.batch)
    try:
        opt = make(model.parameters(), fused=True, **kwargs)
    except (TypeError, RuntimeError):
        opt = make(model.parameters(), **kwargs)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)  # zero-copy views
    model.train()
    for _ in range(workload.epochs):
        perm = torch.randperm(len(Xt))
        epoch_loss = 0.0
        for start in range(0, len(Xt), workload.batch):
            idx = perm[start : start + workload.batch]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            epoch_loss += loss.item() * len(idx)
    return model


def torch_predict_proba(model, X):
    import torch

    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()


@functools.cache
def warm_up(lib):
    """One tiny fit per library and process: imports, lazy initialisation, thread pools."""
    X, y = synthetic(512, seed=1)
    work = Workload("warm-up", "", "synthetic", (32,), "adam", 1e-3, 64, 1)
    if lib == "torch":
        torch_fit(work, X, y)
    else:
        fit_estimator(lib, work, X, y).predict_proba(X)


def prepare(lib, workload, X, y):
    """Return a zero-argument callable running `workload` with `lib` (fitting the network first
    when the workload is a prediction)."""
    warm_up(lib)
    if lib == "torch":
        import torch

        torch.set_num_threads(n_cores())
        if workload.predict:
            model = torch_fit(workload, X, y)
            model.eval()
            return lambda: torch_predict_proba(model, X)
        return lambda: torch_fit(workload, X, y)
    if workload.predict:
        model = fit_estimator(lib, workload, X, y)
        return lambda: model.predict_proba(X)
    return lambda: fit_estimator(lib, workload, X, y)


def settle(seconds=0.2):
    """Let the previous library's spinning worker threads (OpenBLAS, OpenMP) go to sleep."""
    time.sleep(seconds)


# ---------------------------------------------------------------------------------------------
# GEMM peak, through the OpenBLAS that cymlp calls (scipy's)


def rowmajor_sgemm(a, b, c, trans_a=False, trans_b=False):
    """c = op(a) @ op(b) for C-contiguous float32 arrays, in place, no copies.

    scipy's BLAS is column-major: compute c.T = op(b).T @ op(a).T on the transposed views,
    as a row-major engine over cython_blas does."""
    from scipy.linalg.blas import sgemm

    return sgemm(1.0, b.T, a.T, beta=0.0, c=c.T, trans_a=trans_b, trans_b=trans_a, overwrite_c=1)


def gemm_operands(m, n, k, trans_a=False, trans_b=False, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
    return a, b, np.empty((m, n), dtype=np.float32)


def training_gemms(sizes, batch):
    """The GEMMs of one mini-batch step, as (label, m, n, k, trans_a, trans_b), row-major:
    forward A(B,in) W(in,out); weight gradient A^T delta; input gradient delta W^T (not layer 1)."""
    shapes = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes.append((f"fwd {batch}x{fan_in}x{fan_out}", batch, fan_out, fan_in, False, False))
        shapes.append((f"dW {fan_in}x{batch}x{fan_out}", fan_in, fan_out, batch, True, False))
        if i > 0:
            shapes.append((f"dX {batch}x{fan_out}x{fan_in}", batch, fan_in, fan_out, False, True))
    return shapes


def forward_gemms(sizes, batch):
    return [s for s in training_gemms(sizes, batch) if s[0].startswith("fwd")]


def time_gemm(m, n, k, trans_a=False, trans_b=False, min_time=0.1, blocks=5):
    """Seconds per call: best over `blocks` blocks of repeated calls lasting >= min_time each."""
    a, b, c = gemm_operands(m, n, k, trans_a, trans_b)
    rowmajor_sgemm(a, b, c, trans_a, trans_b)  # warm-up
    t0 = time.perf_counter()
    rowmajor_sgemm(a, b, c, trans_a, trans_b)
    reps = max(1, int(min_time / max(time.perf_counter() - t0, 1e-7)))
    best = np.inf
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(reps):
            rowmajor_sgemm(a, b, c, trans_a, trans_b)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def gemm_gflops(shapes, min_time=0.05):
    """Per-shape GF/s and the combined GF/s of the whole set (total flops / total time)."""
    rows, flops, seconds = [], 0.0, 0.0
    for label, m, n, k, ta, tb in shapes:
        t = time_gemm(m, n, k, ta, tb, min_time=min_time)
        rows.append((label, 2.0 * m * n * k / t / 1e9))
        flops += 2.0 * m * n * k
        seconds += t
    return rows, flops / seconds / 1e9


def workload_gemms(workload, X, predict_batch=8192):
    """The GEMM shapes a workload is made of (prediction: forward GEMMs on row blocks)."""
    sizes = layer_sizes(workload, X)
    if workload.predict:
        return forward_gemms(sizes, min(len(X), predict_batch))
    return training_gemms(sizes, min(len(X), workload.batch))
