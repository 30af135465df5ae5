"""Peak memory of one cymlp or scikit-learn run, measured in this (fresh) process.

    python bench/memprobe.py {train,predict} {cymlp,sklearn} N_ROWS

train:   one SGD epoch (batch 256) of the 784-256-128-10 network on N_ROWS x 784 float32 rows;
predict: predict_proba of N_ROWS x 784 float32 rows with that network (fitted on 4096 rows first).
The data is generated straight into float32 (no float64 copy), then the baseline RSS is taken and
the peak is reset (Linux /proc/self/clear_refs), so delta_mb is what the library itself added.
Prints one JSON line: {"baseline_mb", "peak_mb", "delta_mb", "peak_source"}.
"""

import json
import resource
import sys
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads  # noqa: E402


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) to the current RSS
        return True
    except OSError:
        return False


def peak_bytes(was_reset):
    if was_reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def gaussian_rows(n, seed=2):
    rng = np.random.default_rng(seed)
    X = np.empty((n, workloads.N_FEATURES), dtype=np.float32)
    for start in range(0, n, 65536):
        rng.standard_normal(dtype=np.float32, out=X[start : start + 65536])
    return X


def main(task, lib, n):
    reason = workloads.available(lib)
    if reason:
        print(json.dumps({"error": reason}))
        return
    work = workloads.sgd_epoch(256)
    if task == "train":
        X, y = workloads.synthetic(n)
        run = lambda: workloads.fit_estimator(lib, work, X, y)  # noqa: E731
    else:
        model = workloads.fit_estimator(lib, work, *workloads.synthetic(4096, seed=1))
        X = gaussian_rows(n)
        run = lambda: model.predict_proba(X)  # noqa: E731
    baseline = psutil.Process().memory_info().rss
    was_reset = reset_peak()
    run()
    peak = peak_bytes(was_reset)
    mb = 2.0**20
    print(
        json.dumps(
            {
                "baseline_mb": baseline / mb,
                "peak_mb": peak / mb,
                "delta_mb": (peak - baseline) / mb,
                "peak_source": "VmHWM" if was_reset else "ru_maxrss",
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
