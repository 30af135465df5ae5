# Type stub of the compiled module _blas.pyx (the Python-visible part).
from typing import Any

from numpy.typing import NDArray

def own_gemm(enable: bool | None = None, small_to_blas: bool | None = None) -> bool: ...
def own_gemm_supported() -> bool: ...
def kernel_takes(trans_a: bool, m: int, n: int, k: int) -> bool: ...
def small_products_to_blas() -> bool: ...
def packed_b_size(n: int, k: int, dtype: Any) -> int: ...
def aligned_empty(size: int, dtype: Any) -> NDArray[Any]: ...
def _gemm(
    trans_a: bool,
    trans_b: bool,
    alpha: float,
    A: NDArray[Any],
    B: NDArray[Any],
    beta: float,
    C: NDArray[Any],
    packed: bool = False,
) -> None: ...
def _gemm_bias_act(
    A: NDArray[Any],
    B: NDArray[Any],
    C: NDArray[Any],
    bias: NDArray[Any],
    relu: bool,
    watch: bool,
    packed: bool = False,
) -> tuple[bool, bool]: ...
