"""Thread scaling: the benchmark workloads on 1, 2, 4, ... cores.

Every timed run is a fresh process pinned to the first n CPUs (os.sched_setaffinity), so
that each library sizes its thread pools for an n-core machine: OpenMP (cymlp), OpenBLAS
(cymlp's GEMMs, scikit-learn) and PyTorch all read the affinity mask. Linux only.

    python bench/scaling.py                              # sgd256 and sgd32, cymlp
    python bench/scaling.py --libs cymlp,torch --only sgd256 --cores 1,2,4,8,16 \\
        --repeats 3 --out bench/results/scaling.md --plot bench/scaling.png

Prints a markdown table: seconds (median of --repeats) and the speedup over one core.
Run it alone on the machine, as report.py.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import workloads as W  # noqa: E402


def default_cores(available):
    """1, 2, 4, ... up to the CPUs this process may use, and that count itself."""
    counts, n = [], 1
    while n < available:
        counts.append(n)
        n *= 2
    return counts + [available]


def time_on_cores(lib, workload, n_cores):
    """Seconds of one run of `workload` by `lib` in a fresh process on n_cores CPUs."""
    cpus = sorted(os.sched_getaffinity(0))[:n_cores]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, str(HERE / "report.py"), "--child", lib, workload],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    except (IndexError, json.JSONDecodeError, KeyError):
        raise RuntimeError(f"{lib} on {workload}, {n_cores} cores:\n{out.stderr}") from None


def measure(libs, workloads, cores, repeats):
    """{(workload, lib, n): median seconds}; libraries and core counts interleaved."""
    times = {}
    for workload in workloads:
        for _ in range(repeats):
            for n in cores:
                for lib in libs:
                    print(f"  {workload}: {lib} on {n} cores", file=sys.stderr, flush=True)
                    times.setdefault((workload, lib, n), []).append(time_on_cores(lib, workload, n))
    return {key: statistics.median(t) for key, t in times.items()}


def markdown(libs, workloads, cores, seconds):
    lines = []
    for workload in workloads:
        header = ["cores"] + [f"{lib} s (speedup)" for lib in libs]
        lines += [f"### {workload}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        for n in cores:
            cells = [str(n)]
            for lib in libs:
                t, t1 = seconds[(workload, lib, n)], seconds[(workload, lib, cores[0])]
                cells.append(f"{t:.3g} ({t1 / t:.2f}×)")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(libs, workloads, cores, seconds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for workload in workloads:
        for lib in libs:
            t1 = seconds[(workload, lib, cores[0])]
            ax.plot(
                cores,
                [t1 / seconds[(workload, lib, n)] for n in cores],
                marker="o",
                label=f"{lib}, {workload}",
            )
    ax.plot(cores, [n / cores[0] for n in cores], "k--", lw=1, label="linear")
    ax.set_xscale("log", base=2)
    ax.set_xticks(cores, [str(n) for n in cores])
    ax.set_xlabel("cores")
    ax.set_ylabel(f"speedup over {cores[0]} core(s)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libs", default="cymlp", help="comma-separated: cymlp,sklearn,torch")
    parser.add_argument("--only", default="sgd256,sgd32", help="comma-separated workloads")
    parser.add_argument("--cores", help="comma-separated core counts (default 1, 2, 4, ...)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the markdown here")
    parser.add_argument("--plot", help="write a PNG of the speedups here")
    args = parser.parse_args(argv)
    if not hasattr(os, "sched_setaffinity"):
        parser.error("needs os.sched_setaffinity (Linux)")
    available = len(os.sched_getaffinity(0))
    libs = args.libs.split(",")
    unknown = set(libs) - set(W.LIBS)
    if unknown:
        parser.error(f"unknown libraries {sorted(unknown)}; choose from {W.LIBS}")
    workloads = args.only.split(",")
    known = W.get_workloads(W.get_sizes())
    if set(workloads) - set(known):
        parser.error(f"unknown workloads {sorted(set(workloads) - set(known))}")
    cores = [int(c) for c in args.cores.split(",")] if args.cores else default_cores(available)
    if min(cores) < 1 or max(cores) > available:
        parser.error(f"core counts must be between 1 and {available}, got {cores}")
    seconds = measure(libs, workloads, cores, args.repeats)
    text = (
        f"Thread scaling, {available} CPUs available; median of {args.repeats}, "
        "each run a fresh process pinned to that many CPUs.\n\n"
        + markdown(libs, workloads, cores, seconds)
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.plot:
        plot(libs, workloads, cores, seconds, args.plot)


if __name__ == "__main__":
    main()
