# Subnormal floats flushed to zero inside the engine (as TensorFlow does in its kernels).
# An arithmetic instruction that meets a subnormal operand or result takes a microcode
# assist of about a hundred cycles on x86 cores; Adam's moment estimates of parameters
# whose gradient stays near zero (the weights of always-blank pixels, of dead units)
# decay into that range, and the assists then took half of a small network's training
# time.
#
# fp_enter() sets flush-to-zero (and denormals-are-zero) in the calling thread's
# floating-point control register; the matching fp_leave() puts back what was there.
# They nest (a per-thread depth count: only the outermost pair changes anything), so an
# engine call brackets its work with one pair and every parallel region brackets each
# thread's share with another: all the call's arithmetic runs in one mode on every
# thread, whatever the thread count, and no thread keeps the mode after the call.
# (The helpers are static, so each module that cimports this file has its own count.)
# Where the platform has no such control they do nothing.

cdef extern from *:
    """
    #if defined(_MSC_VER)
        #define CYMLP_THREAD_LOCAL __declspec(thread)
    #else
        #define CYMLP_THREAD_LOCAL __thread
    #endif
    #if defined(__x86_64__) || defined(_M_X64) || (defined(__i386__) && defined(__SSE2__))
        #include <xmmintrin.h>
        typedef unsigned int cymlp_fpmode;
        static inline cymlp_fpmode cymlp_fp_get(void) { return _mm_getcsr(); }
        static inline void cymlp_fp_set(cymlp_fpmode m) { _mm_setcsr(m); }
        /* MXCSR bits: flush-to-zero (15) and denormals-are-zero (6) */
        #define CYMLP_FP_FLUSH 0x8040u
        #define CYMLP_FP_CONTROL 1
    #elif defined(__aarch64__) && defined(__GNUC__)
        typedef unsigned long long cymlp_fpmode;
        static inline cymlp_fpmode cymlp_fp_get(void) {
            cymlp_fpmode m;
            __asm__ __volatile__("mrs %0, fpcr" : "=r"(m));
            return m;
        }
        static inline void cymlp_fp_set(cymlp_fpmode m) {
            __asm__ __volatile__("msr fpcr, %0" : : "r"(m));
        }
        /* FPCR bit 24: flush-to-zero */
        #define CYMLP_FP_FLUSH (1ull << 24)
        #define CYMLP_FP_CONTROL 1
    #else
        #define CYMLP_FP_CONTROL 0
    #endif
    #if CYMLP_FP_CONTROL
        static CYMLP_THREAD_LOCAL int cymlp_fp_depth = 0;
        static CYMLP_THREAD_LOCAL cymlp_fpmode cymlp_fp_saved;
        static inline void cymlp_fp_enter(void) {
            if (cymlp_fp_depth++ == 0) {
                cymlp_fp_saved = cymlp_fp_get();
                cymlp_fp_set(cymlp_fp_saved | CYMLP_FP_FLUSH);
            }
        }
        static inline void cymlp_fp_leave(void) {
            if (--cymlp_fp_depth == 0) cymlp_fp_set(cymlp_fp_saved);
        }
    #else
        static inline void cymlp_fp_enter(void) {}
        static inline void cymlp_fp_leave(void) {}
    #endif
    """
    void fp_enter "cymlp_fp_enter" () noexcept nogil
    void fp_leave "cymlp_fp_leave" () noexcept nogil
