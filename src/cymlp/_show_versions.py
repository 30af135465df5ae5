"""show_versions(): what a bug report should say about the installation.

Versions of Python and of the libraries cymlp runs on, whether the compiled extensions
are a debug build, and the BLAS and OpenMP runtimes loaded in the process (as
threadpoolctl sees them) with their thread counts.
"""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

_DEPENDENCIES = ["numpy", "scipy", "scikit-learn", "threadpoolctl", "joblib", "pandas"]


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _get_info() -> dict[str, Any]:
    """Everything show_versions prints, as a dict of sections."""
    from threadpoolctl import threadpool_info

    import cymlp

    from . import _blas, _engine, _kernels, _optim  # noqa: F401 (_engine loads OpenMP)

    return {
        "System": {
            "python": sys.version.replace("\n", " "),
            "executable": sys.executable,
            "machine": platform.platform(),
        },
        "Python dependencies": {
            "cymlp": cymlp.__version__,
            **{name: _package_version(name) for name in _DEPENDENCIES},
        },
        "cymlp build": {
            "debug build": bool(_kernels.DEBUG_BUILD),
            "OpenMP": bool(_engine.OPENMP_BUILD),
            "optimizer loops": _optim._loops(),
            "GEMM": _gemm_description(_blas),
            "location": str(cymlp.__path__[0]),
        },
        "Threadpool info": threadpool_info(),
    }


def _gemm_description(blas: Any) -> str:
    """Which code multiplies matrices: cymlp's AVX-512 kernel or the BLAS."""
    if not blas.own_gemm():
        why = (
            "no AVX-512F kernel for this CPU or compiler"
            if not blas.own_gemm_supported()
            else "CYMLP_GEMM=blas"
        )
        return f"BLAS ({why})"
    if blas.small_products_to_blas():
        return "cymlp AVX-512 kernel (BLAS for products under 2^18 and shallow gradients)"
    return "cymlp AVX-512 kernel"


def _format_block(entries: dict[str, Any]) -> list[str]:
    width = max(len(key) for key in entries)
    return [f"{key:>{width}}: {value}" for key, value in entries.items()]


def show_versions() -> None:
    """Print the versions and the run-time set-up that matter for a bug report.

    Prints the Python version and platform; the versions of cymlp, numpy, scipy,
    scikit-learn, threadpoolctl, joblib and pandas (None where not installed); whether
    cymlp's compiled extensions are a debug build (``CYMLP_DEBUG=1``), which variant of
    the optimizer's loops this CPU runs ("avx2" or "baseline"), whether matrix products
    run on cymlp's AVX-512 kernel or on the BLAS, and where the package lives;
    and, as threadpoolctl reports them, the BLAS and OpenMP libraries loaded in this
    process with the number of threads each would use.

    The engine trains with one OpenMP pool of that many threads and holds BLAS at one
    thread while it runs, so the OpenMP entry's ``num_threads`` is the number of threads
    training and prediction use.

    See Also
    --------
    sklearn.show_versions : The same report for scikit-learn.

    Examples
    --------
    >>> import cymlp
    >>> cymlp.show_versions()  # doctest: +SKIP
    System:
        python: 3.12.3 (main, ...) [GCC 13.2.0]
    ...
    """
    info = _get_info()
    lines: list[str] = []
    for section, entries in info.items():
        lines.append(f"\n{section}:")
        if isinstance(entries, dict):
            lines += ["    " + line for line in _format_block(entries)]
            continue
        for i, library in enumerate(entries):  # threadpool info: one block per library
            if i:
                lines.append("")
            lines += ["    " + line for line in _format_block(library)]
    print("\n".join(lines))
