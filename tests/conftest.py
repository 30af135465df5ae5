"""Shared test set-up: the `restore_blas_threads` fixture, and the CI rule.

Under CI (the CI environment variable set, as .ci/run does), a test skipped because an
optional dependency could not be imported (pytest.importorskip) fails the run: CI installs
every optional feature's dependencies, so such a skip means a broken install, not a
missing feature."""

import os

import pytest

_import_skips = []


def _import_skip(report):
    return report.skipped and "could not import" in str(report.longrepr)


def pytest_collectreport(report):
    if _import_skip(report):
        _import_skips.append(report.nodeid)


def pytest_runtest_logreport(report):
    if _import_skip(report):
        _import_skips.append(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("CI") and _import_skips:
        terminalreporter.write_line(
            "CI: skipped for a failed import (optional dependencies must be installed): "
            + ", ".join(_import_skips),
            red=True,
        )


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI") and _import_skips and exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture
def restore_blas_threads():
    """Put the BLAS thread counts back whatever a test did to them (so one failing test
    does not slow down or change the rest of the session)."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    before = {lib.filepath: lib.num_threads for lib in controller.lib_controllers}
    yield
    for lib in controller.lib_controllers:
        if lib.filepath in before and lib.num_threads != before[lib.filepath]:
            lib.set_num_threads(before[lib.filepath])
