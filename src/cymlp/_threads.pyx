"""BLAS at one thread while the engine runs (and which OpenBLAS kernels it runs).

The engine threads its work with OpenMP and calls BLAS from inside those threads, so
BLAS's own pool must stay at one thread meanwhile (two pools that spin starve each other
on few cores, and OpenBLAS gives different bits at different thread counts). Engine calls
may overlap (predict from several Python threads), so the limit is reference-counted: the
first call in saves the thread counts and sets them to one, the last call out restores
what the first one saved.

OpenBLAS's pthreads pool is process-wide, and threadpoolctl (3.8 and later) lets only
one Python thread change it: calls from any other thread are silently ignored. An engine
call from a worker thread must still get its limit, so OpenBLAS's own setter is called
directly; other libraries go through threadpoolctl.

This module is compiled (Cython) although it is plain Python: compiled code never stops
to run a signal handler, so a Ctrl-C arriving around an engine call is raised after the
limit has been taken or given back, never between the count and the thread counts (as
Python code, the KeyboardInterrupt could be raised as __exit__ began, and BLAS stayed at
one thread for good). Where the setters are threadpoolctl's (BLAS other than OpenBLAS),
they are Python code and that window remains.

Also here: how many OpenMP threads an engine call may use (engine_threads), which is one
in a process forked from one whose OpenMP threads had started.
"""

import ctypes
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Callable[[int], Any], int]] = []
_libraries: list[tuple[Any, Callable[[int], Any]]] | None = None


def _openblas_setter(lib: Any) -> Callable[[int], Any] | None:
    """OpenBLAS's process-wide openblas_set_num_threads (under any of the prefixes and
    suffixes the wheels use), or None where OpenBLAS threads with OpenMP (its limit is
    then per calling thread, and threadpoolctl sets it from any thread)."""
    if getattr(lib, "internal_api", None) != "openblas":
        return None
    if getattr(lib, "threading_layer", None) == "openmp":
        return None
    dynlib = ctypes.CDLL(lib.filepath)  # already loaded: the same handle
    for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
        setter = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
        if setter is not None:
            setter.argtypes = [ctypes.c_int]
            setter.restype = None
            return setter
    return None


def _blas_libraries() -> list[tuple[Any, Callable[[int], Any]]]:
    """Each loaded BLAS with the function that sets its thread count."""
    found = []
    for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
        found.append((lib, _openblas_setter(lib) or lib.set_num_threads))
    return found


class _SingleThreadedBLAS:
    def __init__(self) -> None:
        self._entered = False

    def __enter__(self) -> None:
        global _depth, _saved, _libraries
        with _lock:
            if _depth == 0:
                if _libraries is None:
                    _libraries = _blas_libraries()
                _saved = [(setter, lib.num_threads) for lib, setter in _libraries]
                for setter, threads in _saved:
                    if threads != 1:
                        setter(1)
            _depth += 1
            self._entered = True

    def __exit__(self, *exc: object) -> None:
        global _depth
        if not self._entered:  # a caller interrupted before __enter__ ran
            return
        self._entered = False
        with _lock:
            _depth -= 1
            if _depth == 0:
                for setter, threads in _saved:
                    if threads != 1:
                        setter(threads)


def blas_single_threaded() -> _SingleThreadedBLAS:
    """Context manager: BLAS at one thread inside (safe to nest and to overlap, and from
    any thread)."""
    return _SingleThreadedBLAS()


# OpenMP threads do not survive fork(). GNU OpenMP (libgomp, which GCC builds link)
# keeps its pool's bookkeeping in the child, whose first parallel region with more than
# one thread then waits forever for threads that exist only in the parent (a fit after
# multiprocessing's "fork" start method hung). One thread runs no pool, so a child of a
# process whose engine had started its threads runs single-threaded. A child of one that
# had not keeps every thread: its pool starts afresh.
_threads_started = False
_threads_lost = False


def engine_threads(available: int) -> int:
    """The OpenMP threads an engine call may use, given omp_get_max_threads()."""
    global _threads_started
    if _threads_lost:
        return 1
    if available > 1:
        _threads_started = True
    return available


def _after_fork_in_child() -> None:
    global _threads_lost, _lock, _depth
    _threads_lost = _threads_lost or _threads_started
    # A call in another of the parent's threads may have held the lock or the BLAS limit
    # at the fork; that thread does not exist here.
    _lock = threading.Lock()
    if _depth:
        _depth = 0
        for setter, threads in _saved:
            if threads != 1:
                setter(threads)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


# OpenBLAS kernel families (openblas_get_corename) whose single-precision GEMM multiplies
# small products straight from the operands, without packing them first: OpenBLAS's
# "small matrix" kernels, built for its AVX-512 targets (Cooperlake and Sapphire Rapids
# use the SkylakeX ones; only SkylakeX was measured).
_SMALL_UNPACKED_CORES = {"skylakex", "cooperlake", "sapphirerapids"}


def blas_multiplies_small_unpacked() -> bool:
    """True if the engine's BLAS (scipy's) is an OpenBLAS running kernels that multiply
    small products without packing them (the engine then cuts thin batches finer).
    False whenever that cannot be told: it only tunes the speed."""
    try:
        blas = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # threadpoolctl could not inspect this platform's libraries
        return False
    openblas = [lib for lib in blas if getattr(lib, "internal_api", None) == "openblas"]
    scipys = [lib for lib in openblas if "scipy" in str(lib.filepath).replace("scipy_", "")]
    if scipys:  # the wheels: scipy.libs/ (numpy.libs/ holds numpy's own OpenBLAS)
        openblas = scipys
    elif len(openblas) != len(blas):  # another BLAS loaded: scipy's may be that one
        return False
    cores = {str(getattr(lib, "architecture", "")).lower() for lib in openblas}
    return bool(cores) and cores <= _SMALL_UNPACKED_CORES
