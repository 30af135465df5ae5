"""Type aliases of the public API, and typed views of the scikit-learn decorators it uses.

scikit-learn ships no type information, so to a type checker its decorators return `Any`
and would erase the signatures of the methods they wrap. For type checkers only, they are
declared here as returning the decorated function unchanged (which, apart from the
wrapping, is what they do); at run time they are scikit-learn's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

#: Input data: a dense array-like (ndarray, nested lists, pandas DataFrame) or a SciPy
#: sparse matrix / array.
MatrixLike = ArrayLike | sp.spmatrix | sp.sparray
#: A file path.
PathLike = str | os.PathLike[str]
#: The `hidden_layer_sizes` parameter: one width or one width per hidden layer.
LayerSizes = int | Sequence[int] | NDArray[np.integer[Any]]
#: The `random_state` parameter.
RandomStateLike = int | np.random.RandomState | None

Activation = Literal[
    "identity", "logistic", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu",
    "softplus",
]  # fmt: skip
Solver = Literal["lbfgs", "sgd", "adam", "adamw", "rmsprop"]
LearningRate = Literal["constant", "invscaling", "adaptive"]
RegressionLoss = Literal["squared_error", "poisson", "absolute_error", "huber"]
Init = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal"]

_F = TypeVar("_F", bound=Callable[..., Any])

if TYPE_CHECKING:

    def fit_context(*, prefer_skip_nested_validation: bool) -> Callable[[_F], _F]: ...

    def available_if(check: Callable[[Any], Any]) -> Callable[[_F], _F]: ...

else:
    from sklearn.base import _fit_context as fit_context
    from sklearn.utils.metaestimators import available_if

__all__ = [
    "Activation",
    "Init",
    "LayerSizes",
    "LearningRate",
    "MatrixLike",
    "PathLike",
    "RandomStateLike",
    "RegressionLoss",
    "Solver",
    "available_if",
    "fit_context",
]
