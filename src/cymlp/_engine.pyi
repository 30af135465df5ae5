# Type stub of the compiled module _engine.pyx (the Python-visible part).
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._optim import AdamOptimizer, SGDOptimizer

HIDDEN_ACTIVATIONS: dict[str, int]
OUTPUT_ACTIVATIONS: dict[str, int]
DEFAULT_CHUNK: int

def blas_single_threaded() -> AbstractContextManager[Any]: ...
def _tuning(
    block: int | None = None,
    split_min_flops: float | None = None,
    gather_split_min: int | None = None,
) -> dict[str, float]: ...

class Network:
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def layer_units(self) -> list[int]: ...
    @property
    def hidden_activation(self) -> str: ...
    @property
    def output_activation(self) -> str: ...
    @property
    def params(self) -> NDArray[Any]: ...
    @property
    def grads(self) -> NDArray[Any]: ...
    @property
    def coefs(self) -> list[NDArray[Any]]: ...
    @property
    def intercepts(self) -> list[NDArray[Any]]: ...
    @property
    def n_weights(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    def __init__(
        self,
        layer_units: Sequence[int],
        hidden_activation: str,
        output_activation: str,
        dtype: DTypeLike,
    ) -> None: ...
    def astype(self, dtype: DTypeLike) -> Network: ...
    def reserve(self, rows: int) -> None: ...
    def release(self) -> None: ...
    def sum_sq_weights(self) -> float: ...
    def train_epoch(
        self,
        X: Any,
        Y: ArrayLike,
        sample_weight: ArrayLike | None,
        order: ArrayLike | None,
        batch_size: int,
        alpha: float,
        optimizer: SGDOptimizer | AdamOptimizer,
    ) -> float: ...
    def loss_and_grad(
        self, X: Any, Y: ArrayLike, sample_weight: ArrayLike | None = None, alpha: float = 0.0
    ) -> tuple[float, NDArray[Any]]: ...
    def predict(self, X: Any, chunk: int = ...) -> NDArray[Any]: ...
