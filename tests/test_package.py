"""The package around the estimators: show_versions, __version__, typing markers."""

import sys
from pathlib import Path

import pytest

import cymlp
from cymlp import _kernels

REPO = Path(__file__).resolve().parents[1]


def test_show_versions_prints_the_report(capsys):
    cymlp.show_versions()
    out = capsys.readouterr().out
    for section in ("System:", "Python dependencies:", "cymlp build:", "Threadpool info:"):
        assert section in out
    for name in ("python", "machine", "numpy", "scipy", "scikit-learn", "threadpoolctl"):
        assert f"{name}: " in out
    assert f"cymlp: {cymlp.__version__}" in out
    assert f"debug build: {_kernels.DEBUG_BUILD}" in out
    # the engine's runtimes: BLAS (scipy's OpenBLAS) and OpenMP, with thread counts
    assert "user_api: blas" in out
    assert "user_api: openmp" in out
    assert "num_threads: " in out


def test_show_versions_info():
    from cymlp._show_versions import _get_info

    info = _get_info()
    assert info["cymlp build"]["debug build"] is bool(_kernels.DEBUG_BUILD)
    assert Path(info["cymlp build"]["location"]) == Path(cymlp.__file__).parent
    assert info["cymlp build"]["optimizer loops"] in ("avx2", "baseline")
    assert info["cymlp build"]["GEMM"].startswith(("cymlp AVX-512 kernel", "BLAS ("))
    deps = info["Python dependencies"]
    import numpy
    import sklearn

    assert deps["numpy"] == numpy.__version__
    assert deps["scikit-learn"] == sklearn.__version__
    apis = {lib["user_api"] for lib in info["Threadpool info"]}
    assert {"blas", "openmp"} <= apis
    assert all(lib["num_threads"] >= 1 for lib in info["Threadpool info"])


def test_show_versions_missing_package():
    from cymlp._show_versions import _package_version

    assert _package_version("surely-not-an-installed-package-name") is None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_version_comes_from_pyproject():
    import tomllib

    with open(REPO / "pyproject.toml", "rb") as f:
        assert cymlp.__version__ == tomllib.load(f)["project"]["version"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_version_from_pyproject_fallback(tmp_path):
    from cymlp import _version_from_pyproject

    pyproject = tmp_path / "pyproject.toml"
    assert _version_from_pyproject(pyproject) == "0+unknown"  # missing
    pyproject.write_text('[project]\nname = "cymlp"\nversion = "9.8.7"\n')
    assert _version_from_pyproject(pyproject) == "9.8.7"
    pyproject.write_text('[project]\nname = "other"\nversion = "9.8.7"\n')
    assert _version_from_pyproject(pyproject) == "0+unknown"
    pyproject.write_text("[project\nname = ")
    assert _version_from_pyproject(pyproject) == "0+unknown"


def test_typing_markers_are_installed():
    """py.typed and the stubs of the compiled modules ship with the package."""
    package = Path(cymlp.__file__).parent
    assert (package / "py.typed").is_file()
    for stub in ("_engine.pyi", "_optim.pyi", "_kernels.pyi"):
        assert (package / stub).is_file()
