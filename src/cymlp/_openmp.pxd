# The OpenMP runtime calls the engine makes, usable in builds without OpenMP: with OpenMP
# (the compiler defines _OPENMP under -fopenmp / /openmp) they are <omp.h>'s; without it
# (CYMLP_NO_OPENMP=1, or a compiler without OpenMP) serial stand-ins, so that no OpenMP
# header or runtime library is needed. (Cython's own `cimport openmp` always includes
# <omp.h> and links against the runtime.) Same pattern as scikit-learn's
# sklearn/utils/_openmp_helpers.pxd.

cdef extern from *:
    """
    #ifdef _OPENMP
        #include <omp.h>
        #define CYMLP_OPENMP 1
    #else
        #define CYMLP_OPENMP 0
        static inline int omp_get_max_threads(void) { return 1; }
        static inline int omp_get_thread_num(void) { return 0; }
    #endif
    """
    # 1 when the module was compiled with OpenMP
    const bint CYMLP_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
