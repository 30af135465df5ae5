# Subnormal floats flushed to zero inside the engine (as TensorFlow does in its kernels).
# An arithmetic instruction that meets a subnormal operand or result takes a microcode
# assist of about a hundred cycles on x86 cores; Adam's moment estimates of parameters
# whose gradient stays near zero (the weights of always-blank pixels, of dead units)
# decay into that range, and the assists then took half of a small network's training
# time. Flush-to-zero and denormals-are-zero are set in the floating-point control
# register of each thread the engine runs on, and the old setting is put back when the
# call ends. Where the platform has no such control, these are no-ops.

cdef extern from *:
    """
    #if defined(__x86_64__) || defined(_M_X64) || (defined(__i386__) && defined(__SSE2__))
        #include <xmmintrin.h>
        /* MXCSR bits: flush-to-zero (15) and denormals-are-zero (6) */
        static inline unsigned long long cymlp_flush_subnormals(void) {
            unsigned int old = _mm_getcsr();
            _mm_setcsr(old | 0x8040u);
            return old;
        }
        static inline unsigned long long cymlp_current_fp(void) { return _mm_getcsr(); }
        static inline void cymlp_restore_fp(unsigned long long old) {
            _mm_setcsr((unsigned int) old);
        }
    #elif defined(__aarch64__) && defined(__GNUC__)
        /* FPCR bit 24: flush-to-zero */
        static inline unsigned long long cymlp_flush_subnormals(void) {
            unsigned long long old;
            __asm__ __volatile__("mrs %0, fpcr" : "=r"(old));
            __asm__ __volatile__("msr fpcr, %0" : : "r"(old | (1ull << 24)));
            return old;
        }
        static inline unsigned long long cymlp_current_fp(void) {
            unsigned long long now;
            __asm__ __volatile__("mrs %0, fpcr" : "=r"(now));
            return now;
        }
        static inline void cymlp_restore_fp(unsigned long long old) {
            __asm__ __volatile__("msr fpcr, %0" : : "r"(old));
        }
    #else
        static inline unsigned long long cymlp_flush_subnormals(void) { return 0; }
        static inline unsigned long long cymlp_current_fp(void) { return 0; }
        static inline void cymlp_restore_fp(unsigned long long old) { (void) old; }
    #endif
    """
    # sets flush-to-zero in this thread; returns the setting to restore
    unsigned long long flush_subnormals "cymlp_flush_subnormals" () noexcept nogil
    # this thread's setting, unchanged
    unsigned long long current_fp "cymlp_current_fp" () noexcept nogil
    void restore_fp "cymlp_restore_fp" (unsigned long long old) noexcept nogil
