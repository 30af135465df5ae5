"""cymlp: multilayer perceptrons with a compiled (Cython + BLAS + OpenMP) training engine,
as scikit-learn drop-in estimators."""

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ._classes import MLPClassifier, MLPRegressor
from ._convert import from_sklearn
from ._persistence import load
from ._show_versions import show_versions


def _version_from_pyproject(pyproject: Path) -> str:
    """The project version written in `pyproject` (for a source tree run uninstalled,
    where there is no package metadata); "0+unknown" if it cannot be read."""
    if sys.version_info >= (3, 11):  # tomllib
        import tomllib

        try:
            with open(pyproject, "rb") as f:
                project = tomllib.load(f).get("project", {})
        except (OSError, ValueError):  # missing, unreadable, or not TOML
            return "0+unknown"
        if project.get("name") == "cymlp" and isinstance(project.get("version"), str):
            return project["version"]
    return "0+unknown"


try:
    __version__ = version("cymlp")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = _version_from_pyproject(Path(__file__).resolve().parents[2] / "pyproject.toml")

__all__ = ["MLPClassifier", "MLPRegressor", "from_sklearn", "load", "show_versions", "__version__"]
