"""cymlp: multilayer perceptrons with a compiled (Cython + BLAS + OpenMP) training engine,
as scikit-learn drop-in estimators."""

from importlib.metadata import PackageNotFoundError, version

from ._classes import MLPClassifier, MLPRegressor
from ._persistence import load

try:
    __version__ = version("cymlp")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = ["MLPClassifier", "MLPRegressor", "load", "__version__"]
