"""Timings of cymlp, scikit-learn and PyTorch on the same data, libraries interleaved per workload
(test ids run workload by workload: sgd256-cymlp, sgd256-sklearn, sgd256-torch, sgd32-cymlp, ...),
and the GEMM throughput of scipy's OpenBLAS at the network's shapes. No assertions on time."""

import pytest

import workloads

WORKLOADS = list(workloads.get_workloads(workloads.get_sizes()))
CASES = [(w, lib) for w in WORKLOADS for lib in workloads.LIBS]


@pytest.mark.parametrize("name, lib", CASES, ids=[f"{w}-{lib}" for w, lib in CASES])
def test_workload(benchmark, sizes, rounds, require, name, lib):
    require(lib)
    workload = workloads.get_workloads(sizes)[name]
    X, y = workloads.dataset(workload, sizes)
    run = workloads.prepare(lib, workload, X, y)
    benchmark.group = f"{name}: {workload.title}"
    benchmark.extra_info.update(
        library=lib,
        n_samples=len(X),
        epochs=workload.epochs,
        useful_gflop=workloads.useful_flops(workload, X) / 1e9,
    )
    result = benchmark.pedantic(
        run, setup=workloads.settle, rounds=rounds, iterations=1, warmup_rounds=0
    )
    if lib != "torch" and not workload.predict:  # same work: no early stop, no extra epoch
        assert result.n_iter_ == workload.epochs


def _gemm_cases():
    sizes = workloads.get_sizes()
    cases = [(f"square {s}", s, s, s, False, False) for s in sizes.gemm_square]
    net = (workloads.N_FEATURES, 256, 128, workloads.N_CLASSES)
    for batch in (256, 32):
        cases += [
            (f"b{batch} {label}", *shape) for label, *shape in workloads.training_gemms(net, batch)
        ]
    return cases


GEMMS = _gemm_cases()


@pytest.mark.parametrize("label, m, n, k, trans_a, trans_b", GEMMS, ids=[g[0] for g in GEMMS])
def test_gemm(benchmark, label, m, n, k, trans_a, trans_b):
    a, b, c = workloads.gemm_operands(m, n, k, trans_a, trans_b)
    benchmark.group = "sgemm (scipy OpenBLAS)"
    benchmark(workloads.rowmajor_sgemm, a, b, c, trans_a, trans_b)
    benchmark.extra_info["gflops_at_median"] = 2.0 * m * n * k / benchmark.stats.stats.median / 1e9
