"""Benchmark report: cymlp vs scikit-learn vs PyTorch, as markdown tables and a throughput plot.

    python bench/report.py                      # everything, full sizes (run alone on the machine)
    python bench/report.py --quick              # tiny sizes: checks that everything runs
    python bench/report.py --only sgd256,sweep  # some sections: sgd256 sgd32 adam256 digits
                                                #   predict gemm sweep memory
    python bench/report.py --out bench/results/report.md --plot bench/throughput.png

Timing: wall clock (time.perf_counter) of each run, median of --repeats, libraries interleaved
(cymlp, sklearn, torch, cymlp, ...). Every timed run happens in a fresh subprocess (after a
warm-up fit and a pause): the thread pools of one library (OpenBLAS's workers, OpenMP's) keep
spinning for a while after it ran and, on a 2-core machine, slow the next library several
times over. Memory: each measurement in a fresh subprocess (bench/memprobe.py).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import workloads as W  # noqa: E402

SECTIONS = ("gemm", "sweep", "memory")


def time_interleaved(libs, work, repeats):
    """Median seconds per library; one run of each library in turn, `repeats` times, each
    run in a fresh process."""
    times = {lib: [] for lib in libs}
    for _ in range(repeats):
        for lib in libs:
            times[lib].append(time_in_child(lib, work.name))
    return {lib: statistics.median(t) for lib, t in times.items()}


def time_in_child(lib, workload_name):
    out = subprocess.run(
        [sys.executable, __file__, "--child", lib, workload_name],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    except (IndexError, json.JSONDecodeError, KeyError):
        raise RuntimeError(f"timing {lib} on {workload_name} failed:\n{out.stderr}") from None


def workload_by_name(name, sizes):
    workloads = W.get_workloads(sizes)
    if name in workloads:
        return workloads[name]
    return W.sgd_epoch(int(name.removeprefix("sgd")))  # the sweep's "sgd<batch>"


def child(lib, workload_name):
    """Time one run of one library on one workload, in this fresh process."""
    sizes = W.get_sizes()
    work = workload_by_name(workload_name, sizes)
    X, y = W.dataset(work, sizes)
    run = W.prepare(lib, work, X, y)
    W.settle(1.0)
    t0 = time.perf_counter()
    run()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def fmt(x, spec=".3g", missing="–"):
    return missing if x is None else format(x, spec)


def ratio(a, b):
    return None if a is None or b is None else a / b


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class GemmPeak:
    """GF/s of scipy's sgemm on a set of shapes, measured once per set."""

    def __init__(self, min_time):
        self.min_time, self.cache = min_time, {}

    def __call__(self, shapes):
        key = tuple(shapes)
        if key not in self.cache:
            W.settle()
            self.cache[key] = W.gemm_gflops(shapes, self.min_time)
        return self.cache[key]


def environment(libs):
    import numpy
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    versions = {
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    for lib in ("cymlp", "torch"):
        if lib in libs:
            versions[lib] = __import__(lib).__version__
    blas = [
        f"{i['internal_api']} {i.get('version')} from {Path(i['filepath']).parent.name} "
        f"({i['num_threads']} threads)"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]
    return (
        f"{platform.processor() or platform.machine()}, {W.n_cores()} cores, "
        f"Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + "; BLAS: "
        + "; ".join(blas)
    )


def workload_section(names, sizes, libs, repeats, peak):
    all_workloads = W.get_workloads(sizes)
    rows = []
    for name in names:
        work = all_workloads[name]
        X, y = W.dataset(work, sizes)
        print(f"  {name}: {work.title}", file=sys.stderr, flush=True)
        _, gemm_gfs = peak(W.workload_gemms(work, X))  # first: no other thread pool is awake
        secs = time_interleaved(libs, work, repeats)
        c, s, t = (secs.get(lib) for lib in W.LIBS)
        useful = W.useful_flops(work, X) / 1e9
        rows.append(
            [
                work.title,
                fmt(c),
                fmt(s),
                fmt(t),
                fmt(ratio(s, c), ".2f"),
                fmt(ratio(t, c), ".2f"),
                fmt(ratio(useful, c), ".1f"),
                f"{gemm_gfs:.1f}",
                fmt(None if c is None else 100 * useful / c / gemm_gfs, ".0f"),
            ]
        )
    header = [
        "workload",
        "cymlp s",
        "sklearn s",
        "torch s",
        "sklearn/cymlp",
        "torch/cymlp",
        "cymlp useful GF/s",
        "sgemm GF/s at these shapes",
        "cymlp % of sgemm",
    ]
    return (
        f"## Workloads\n\nSeconds (median of {repeats}), ratios > 1 mean cymlp is faster. "
        "Useful work = n_samples · (6W − 2W_first) flops per epoch (2W per row for "
        "predict_proba); sgemm GF/s is scipy's OpenBLAS on the same GEMM shapes (one "
        "mini-batch step; predict: forward on 8192-row blocks), called from Python.\n\n"
        + table(header, rows)
    )


def gemm_section(sizes, peak):
    net = (W.N_FEATURES, 256, 128, W.N_CLASSES)
    rows = []
    for s in sizes.gemm_square:
        gfs = peak([(f"square {s}", s, s, s, False, False)])[1]
        rows.append([f"square {s}x{s}x{s}", f"{gfs:.1f}"])
    for batch in (256, 32):
        per_shape, total = peak(W.training_gemms(net, batch))
        rows += [[f"batch {batch}: {label}", f"{gfs:.1f}"] for label, gfs in per_shape]
        rows.append([f"**batch {batch}: one training step, all GEMMs**", f"**{total:.1f}**"])
    return (
        "## sgemm peak (scipy.linalg.blas.sgemm, row-major, m x k x n)\n\n"
        "fwd = A·W, dW = Aᵀ·δ, dX = δ·Wᵀ for the 784-256-128-10 network.\n\n"
        + table(["GEMM", "GF/s"], rows)
    )


def sweep_section(batches, sizes, libs, repeats, peak, plot_path):
    X, y = W.synthetic(sizes.n_train)
    net = W.layer_sizes(W.sgd_epoch(256), X)
    flops_per_sample = W.useful_flops(W.sgd_epoch(256), X) / len(X)
    rates = {lib: [] for lib in libs}
    bound = []
    for batch in batches:
        print(f"  sweep: batch {batch}", file=sys.stderr, flush=True)
        work = W.sgd_epoch(batch)
        bound.append(peak(W.training_gemms(net, batch))[1] * 1e9 / flops_per_sample)
        secs = time_interleaved(libs, work, repeats)
        for lib in libs:
            rates[lib].append(len(X) / secs[lib])
    rows = [
        [b] + [f"{rates[lib][i]:,.0f}" for lib in libs] + [f"{bound[i]:,.0f}"]
        for i, b in enumerate(batches)
    ]
    text = (
        "## Throughput vs batch size (one SGD epoch, samples/s)\n\n"
        "Last column: the sgemm bound, what the GEMMs alone would allow at these shapes.\n\n"
        + table(["batch"] + list(libs) + ["sgemm bound"], rows)
    )
    if plot_path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for lib in libs:
            ax.plot(batches, rates[lib], marker="o", label=lib)
        ax.plot(batches, bound, linestyle="--", color="grey", label="sgemm bound")
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set(
            ylim=(0, None),
            xlabel="batch size",
            ylabel="samples / s",
            title=f"One SGD epoch, 784-256-128-10, {len(X)} rows, float32",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot_path, dpi=120)
        text += f"\n\nPlot: `{plot_path}`"
    return text


def memory_section(sizes, libs):
    rows = []
    for task, n in (("train", sizes.n_train), ("predict", sizes.n_predict_memory)):
        for lib in [lib for lib in libs if lib != "torch"]:
            print(f"  memory: {task} {lib} ({n} rows)", file=sys.stderr, flush=True)
            out = subprocess.run(
                [sys.executable, str(HERE / "memprobe.py"), task, lib, str(n)],
                capture_output=True,
                text=True,
            )
            try:
                res = json.loads(out.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                res = {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
            what = f"one SGD epoch, {n} rows" if task == "train" else f"predict_proba, {n} rows"
            if "error" in res:
                rows.append([what, lib, "–", "–", res["error"]])
            else:
                rows.append(
                    [
                        what,
                        lib,
                        f"{res['delta_mb']:.0f}",
                        f"{res['peak_mb']:.0f}",
                        f"baseline {res['baseline_mb']:.0f} MB ({res['peak_source']})",
                    ]
                )
    return (
        "## Memory (peak RSS, fresh process per row)\n\n"
        "Added = peak RSS during the call minus the RSS once the data is loaded (784 float32 "
        "features: 3.1 GB per million rows).\n\n"
        + table(["run", "library", "added MB", "peak MB", "note"], rows)
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(*argv[1:3])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (same as BENCH_QUICK=1)")
    parser.add_argument("--only", default="", help="comma-separated sections (default: all)")
    parser.add_argument("--out", help="also write the markdown here")
    parser.add_argument(
        "--plot",
        help="throughput plot (PNG); default bench/throughput.png, which the README shows "
        "(with --quick: a file in the temporary folder, not the published plot)",
    )
    parser.add_argument(
        "--repeats", type=int, help="timed runs per library, median (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--batches", default="16,32,64,128,256,512", help="batch sizes of the sweep"
    )
    args = parser.parse_args(argv)

    if args.quick:
        os.environ["BENCH_QUICK"] = "1"  # the timing subprocesses read it
    sizes = W.get_sizes()
    args.repeats = args.repeats or (1 if sizes.quick else 3)
    if args.plot is None:
        quick_plot = Path(tempfile.gettempdir()) / "cymlp-throughput-quick.png"
        args.plot = str(quick_plot if sizes.quick else HERE / "throughput.png")
    known = list(W.get_workloads(sizes)) + list(SECTIONS)
    only = [s.strip() for s in args.only.split(",") if s.strip()] or known
    unknown = set(only) - set(known)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {known}")

    libs = [lib for lib in W.LIBS if not W.available(lib)]
    missing = [W.available(lib) for lib in W.LIBS if lib not in libs]
    peak = GemmPeak(min_time=0.02 if sizes.quick else 0.1)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    notes = [f"Skipped: {m}" for m in missing]
    if load > 0.5:
        notes.append(
            f"**Warning: load average {load:.1f} at start: other processes are running, "
            "timings (and the sgemm peak) are unreliable.**"
        )
    quick_note = " (quick mode: sizes too small to mean anything)" if sizes.quick else ""
    parts = [
        f"# cymlp benchmark{quick_note}",
        f"{time.strftime('%Y-%m-%d %H:%M')}; {environment(libs)}"
        + "".join(f"\n\n{n}" for n in notes),
    ]
    names = [n for n in W.get_workloads(sizes) if n in only]
    if names:
        parts.append(workload_section(names, sizes, libs, args.repeats, peak))
    if "gemm" in only:
        parts.append(gemm_section(sizes, peak))
    if "sweep" in only:
        batches = [int(b) for b in args.batches.split(",")]
        parts.append(sweep_section(batches, sizes, libs, args.repeats, peak, args.plot))
    if "memory" in only:
        parts.append(memory_section(sizes, libs))

    text = "\n\n".join(parts) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
