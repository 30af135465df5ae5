"""pytest-benchmark fixtures: sizes, data and library availability, shared by the whole session.

pytest bench/ --benchmark-only                  # full sizes (run alone on the machine)
BENCH_QUICK=1 pytest bench/ --benchmark-only    # tiny sizes, a check that everything runs
BENCH_ROUNDS=5 ...                              # timed rounds per workload (default 3)
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads  # noqa: E402


@pytest.fixture(scope="session")
def sizes():
    return workloads.get_sizes()


@pytest.fixture(scope="session")
def rounds():
    return int(os.environ.get("BENCH_ROUNDS", "3"))


@pytest.fixture
def require():
    """require(lib): skip the test when `lib` cannot be imported (cymlp not built, no torch)."""

    def check(lib):
        reason = workloads.available(lib)
        if reason:
            pytest.skip(reason)

    return check
