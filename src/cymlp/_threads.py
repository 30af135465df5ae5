"""BLAS at one thread while the engine runs.

The engine threads its work with OpenMP and calls BLAS from inside those threads, so
BLAS's own pool must stay at one thread meanwhile (two pools that spin starve each other
on few cores). Engine calls may overlap (predict from several Python threads), so the
limit is reference-counted: the first call in saves the thread counts and sets them to
one, the last call out restores what the first one saved.
"""

import threading
from typing import Any

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Any, int]] = []
_libraries: list[Any] | None = None


class _SingleThreadedBLAS:
    def __enter__(self) -> None:
        global _depth, _saved, _libraries
        with _lock:
            if _depth == 0:
                if _libraries is None:
                    _libraries = ThreadpoolController().select(user_api="blas").lib_controllers
                _saved = [(lib, lib.num_threads) for lib in _libraries]
                for lib, threads in _saved:
                    if threads != 1:
                        lib.set_num_threads(1)
            _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, threads in _saved:
                    if threads != 1:
                        lib.set_num_threads(threads)


def blas_single_threaded() -> _SingleThreadedBLAS:
    """Context manager: BLAS at one thread inside (safe to nest and to overlap)."""
    return _SingleThreadedBLAS()
