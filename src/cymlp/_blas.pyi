# Type stub of the compiled module _blas.pyx (the Python-visible part).
from typing import Any

from numpy.typing import NDArray

def own_gemm(enable: bool | None = None, small_to_blas: bool | None = None) -> bool: ...
def own_gemm_supported() -> bool: ...
def kernel_takes(trans_a: bool, m: int, n: int, k: int) -> bool: ...
def small_products_to_blas() -> bool: ...
def _gemm(
    trans_a: bool,
    trans_b: bool,
    alpha: float,
    A: NDArray[Any],
    B: NDArray[Any],
    beta: float,
    C: NDArray[Any],
) -> None: ...
