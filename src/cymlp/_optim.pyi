# Type stub of the compiled module _optim.pyx (the Python-visible part).
from typing import Any, ClassVar, TypeVar

from numpy.typing import DTypeLike, NDArray

_O = TypeVar("_O", bound="_Optimizer")

def _tuning(parallel_min: int | None = None) -> int: ...
def _loops(allow_avx2: bool | None = None) -> str: ...
def chunk_bounds(segments: list[tuple[int, int]]) -> NDArray[Any]: ...

# The optimizers' shared base; `kind` and the two rates are set by every subclass.
class _Optimizer:
    kind: ClassVar[str]
    learning_rate_init: float
    learning_rate: float
    @property
    def base_learning_rate(self) -> float: ...
    def set_base_learning_rate(self, lr: float) -> None: ...
    def after_steps(self, n_steps: int) -> None: ...
    def iteration_ends(self, time_step: int) -> None: ...
    def trigger_stopping(self, msg: str, verbose: bool | int) -> bool: ...
    def snapshot(self: _O) -> _O: ...

class SGDOptimizer(_Optimizer):
    lr_schedule: str
    momentum: float
    nesterov: bool
    power_t: float
    velocity: NDArray[Any]
    def __init__(
        self,
        n_params: int,
        dtype: DTypeLike,
        learning_rate_init: float = 0.1,
        lr_schedule: str = "constant",
        momentum: float = 0.9,
        nesterov: bool = True,
        power_t: float = 0.5,
    ) -> None: ...
    def config(self) -> dict[str, Any]: ...
    def buffers(self) -> tuple[NDArray[Any], NDArray[Any]]: ...
    def state_arrays(self) -> list[NDArray[Any]]: ...

class AdamOptimizer(_Optimizer):
    beta_1: float
    beta_2: float
    epsilon: float
    t: int
    m: NDArray[Any]
    v: NDArray[Any]
    def __init__(
        self,
        n_params: int,
        dtype: DTypeLike,
        learning_rate_init: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None: ...
    def config(self) -> dict[str, Any]: ...
    def buffers(self) -> tuple[NDArray[Any], NDArray[Any]]: ...
    def state_arrays(self) -> list[NDArray[Any]]: ...

class AdamWOptimizer(AdamOptimizer):
    weight_decay: float
    def __init__(
        self,
        n_params: int,
        dtype: DTypeLike,
        learning_rate_init: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None: ...

class RMSpropOptimizer(_Optimizer):
    rho: float
    epsilon: float
    v: NDArray[Any]
    def __init__(
        self,
        n_params: int,
        dtype: DTypeLike,
        learning_rate_init: float = 0.001,
        rho: float = 0.9,
        epsilon: float = 1e-8,
    ) -> None: ...
    def config(self) -> dict[str, Any]: ...
    def buffers(self) -> tuple[NDArray[Any], NDArray[Any]]: ...
    def state_arrays(self) -> list[NDArray[Any]]: ...
