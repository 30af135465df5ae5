# Type stub of the compiled module _kernels.pyx (the Python-visible part).
from typing import Any

import numpy as np
from numpy.typing import NDArray

DEBUG_BUILD: bool

def _softmax_exp(x: NDArray[np.float32]) -> NDArray[np.float32]: ...
def all_finite(x: Any) -> bool | None: ...
