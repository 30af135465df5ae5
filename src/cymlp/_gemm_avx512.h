/* cymlp's own GEMM for x86-64 CPUs with AVX-512, float32 and float64 (see _blas.pyx;
   the body, written once for both types, is _gemm_avx512_impl.h).

   Row-major C (M x N) = alpha op(A) (M x K) op(B) (K x N) + beta C, single-threaded: the
   engine calls it from its OpenMP threads, one output block each, like the BLAS it
   replaces there. Why not OpenBLAS: on the engine's blocks (a few hundred rows and
   columns) OpenBLAS copies both operands into its packed formats at every call; here
   op(B) is copied once per 32-column panel and reused by every row of A, and A is read
   where it lies (A^T, in weight gradients, is copied once per block of rows).

   The loop nest: M in blocks (cymlp_gemm_avx512_s / _d), K in near-equal slices of at
   most KC, N in panels of NR columns (two vectors: 32 floats or 16 doubles), then tiles
   of MR = 8 rows. A panel of op(B) (up to KC x NR values, 32 KB) is copied contiguously
   into a stack buffer (or read where cymlp_pack_b put every panel beforehand, for an
   op(B) that many calls share), where it stays in L1 while every row tile of the block
   runs over it; the 8 x NR tile of C lives in 16 vector registers; each step along K
   broadcasts one element of each of the tile's 8 rows of op(A) and multiplies it into
   the panel's two vectors. The last slice's stores can also add a bias, apply relu and
   look for NaN and infinity (cymlp_epilogue), while the tile is in registers.

   Edges: a panel narrower than NR columns is padded with zeros and stored through a
   mask (at most one vector wide: cymlp_tile_half); a tile of fewer than 8 rows
   repeats its last row of A (or reads zeros, when copied) in the unused registers and
   does not store them, so no load or store leaves the operands' extent.

   Results are deterministic: each entry of C sums its K products in order with fused
   multiply-adds, as OpenBLAS's kernels do, so products at most KC deep can give
   OpenBLAS's bits (the fits checked here did); deeper ones are sliced differently and
   differ in the last bits (tests/test_gemm.py). */
#ifndef CYMLP_GEMM_AVX512_H
#define CYMLP_GEMM_AVX512_H

/* What the GEMM does to C after its last slice of K, fused into the tiles' stores (the
   forward pass's epilogue, while C is still in registers): first, where nonfinite is
   not NULL, *nonfinite = 1 if an entry is NaN or infinite; then C += bias (n values,
   when not NULL), then max(0, C) where relu (NaN for NaN, as the separate epilogue). */
typedef struct {
    const void* bias;
    int relu;
    int* nonfinite;
} cymlp_epilogue;

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CYMLP_HAVE_GEMM_AVX512 1
#else
#define CYMLP_HAVE_GEMM_AVX512 0
#endif

#if CYMLP_HAVE_GEMM_AVX512
#include <immintrin.h>

#define CYMLP_MR 8
#define CYMLP_KC 256
#define CYMLP_MC 512 /* rows of C per block, A read in place */
#define CYMLP_MC_T 128 /* rows of C per block, op(A) = A^T copied */
/* the copy of A^T is written tile by tile: a block of MC_T rows must be whole tiles, or
   its last tile runs past the block buffer */
_Static_assert(CYMLP_MC_T % CYMLP_MR == 0, "MC_T must be a multiple of MR");
/* How far ahead the first panel prefetches A's rows: two tiles (predicting 60000 rows
   5 % faster than with none; one and four tiles measured no better) */
#define CYMLP_PREFETCH_ROWS (2 * CYMLP_MR)
#define CYMLP_AVX512 __attribute__((target("avx512f")))

/* K is cut into near-equal slices of at most KC: slice s of n starts at s K / n. */
static inline long cymlp_n_slices(long K) { return (K + CYMLP_KC - 1) / CYMLP_KC; }
static inline long cymlp_slice_start(long s, long n_slices, long K) { return s * K / n_slices; }

/* The tiles' register blocking, for the type being defined: the accumulators are named
   variables (macros), not an array, because GCC kept an array of them partly on the
   stack; the two tiles differ only in the panel vectors loaded and multiplied. */
#define CYMLP_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define CYMLP_ROW_PTR(r) const CYMLP_T* a##r = A + (r < mr ? r : mr - 1) * ars;
#define CYMLP_ROW_ZERO(r) CYMLP_V c##r##0 = CYMLP_OP(setzero)(), c##r##1 = CYMLP_OP(setzero)();
#define CYMLP_ROW_FMA2(r)                                                               \
    {                                                                                   \
        CYMLP_V x = CYMLP_OP(set1)(a##r[k * aks]);                                      \
        c##r##0 = CYMLP_OP(fmadd)(x, b0, c##r##0);                                      \
        c##r##1 = CYMLP_OP(fmadd)(x, b1, c##r##1);                                      \
    }
#define CYMLP_ROW_FMA1(r) c##r##0 = CYMLP_OP(fmadd)(CYMLP_OP(set1)(a##r[k * aks]), b0, c##r##0);
#define CYMLP_ROW_SAVE(r) acc[2 * r] = c##r##0; acc[2 * r + 1] = c##r##1;
#define CYMLP_LOAD_TWO                                                                  \
    CYMLP_V b0 = CYMLP_OP(load)(Bp + CYMLP_NR * k);                                     \
    CYMLP_V b1 = CYMLP_OP(load)(Bp + CYMLP_NR * k + CYMLP_W);
#define CYMLP_LOAD_ONE CYMLP_V b0 = CYMLP_OP(load)(Bp + CYMLP_NR * k);
#define CYMLP_DEFINE_TILE(NAME, LOAD_PANEL, ROW_FMA)                                    \
    static CYMLP_AVX512 void NAME(long kc, const CYMLP_T* A, long ars, long aks,        \
                                  const CYMLP_T* Bp, CYMLP_T* C, long ldc, long mr,     \
                                  long nc, CYMLP_T alpha, CYMLP_T beta, int first,      \
                                  const cymlp_epilogue* ep, long j0) {                  \
        CYMLP_ROWS(CYMLP_ROW_PTR)                                                       \
        CYMLP_ROWS(CYMLP_ROW_ZERO)                                                      \
        CYMLP_V acc[2 * CYMLP_MR];                                                      \
        long k;                                                                         \
        for (k = 0; k < kc; k++) {                                                      \
            LOAD_PANEL                                                                  \
            CYMLP_ROWS(ROW_FMA)                                                         \
        }                                                                               \
        CYMLP_ROWS(CYMLP_ROW_SAVE)                                                      \
        CYMLP_FN(cymlp_store_tile)(acc, C, ldc, mr, nc, alpha, beta, first, ep, j0);    \
    }

/* float32: cymlp_gemm_avx512_s */
#define CYMLP_T float
#define CYMLP_V __m512
#define CYMLP_MASK __mmask16
#define CYMLP_W 16
#define CYMLP_OP(op) _mm512_##op##_ps
#define CYMLP_FN(name) name##_s
#define CYMLP_INDEX __m512i
#define CYMLP_ROW_INDEX(ld)                                                             \
    _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,  \
                                         14, 15),                                       \
                       _mm512_set1_epi32((int) (ld)))
#define CYMLP_GATHER(index, p) _mm512_i32gather_ps(index, p, 4)
#define CYMLP_UNORDERED(x) _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q)
#include "_gemm_avx512_impl.h"
#undef CYMLP_T
#undef CYMLP_V
#undef CYMLP_MASK
#undef CYMLP_W
#undef CYMLP_OP
#undef CYMLP_FN
#undef CYMLP_INDEX
#undef CYMLP_ROW_INDEX
#undef CYMLP_GATHER
#undef CYMLP_UNORDERED

/* float64: cymlp_gemm_avx512_d */
#define CYMLP_T double
#define CYMLP_V __m512d
#define CYMLP_MASK __mmask8
#define CYMLP_W 8
#define CYMLP_OP(op) _mm512_##op##_pd
#define CYMLP_FN(name) name##_d
#define CYMLP_INDEX __m256i
#define CYMLP_ROW_INDEX(ld)                                                             \
    _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),                       \
                       _mm256_set1_epi32((int) (ld)))
#define CYMLP_GATHER(index, p) _mm512_i32gather_pd(index, p, 8)
#define CYMLP_UNORDERED(x) _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q)
#include "_gemm_avx512_impl.h"

/* Whether this CPU (and its OS) runs AVX-512F code. */
static int cymlp_gemm_avx512_supported(void) {
    return __builtin_cpu_supports("avx512f");
}

#else /* other compilers and CPUs: never called */
#define CYMLP_GEMM_STUB(T, SFX)                                                         \
    static void cymlp_gemm_avx512_##SFX(int trans_a, int trans_b, long M, long N, long K, \
                                        T alpha, const T* A, long lda, const T* B,      \
                                        long ldb, const T* Bpacked, T beta, T* C,       \
                                        long ldc, const cymlp_epilogue* ep) {           \
        (void) trans_a; (void) trans_b; (void) M; (void) N; (void) K; (void) alpha;     \
        (void) A; (void) lda; (void) B; (void) ldb; (void) Bpacked; (void) beta;        \
        (void) C; (void) ldc; (void) ep;                                                \
    }                                                                                   \
    static long cymlp_packed_b_size_##SFX(long N, long K) { (void) N; (void) K; return 0; } \
    static void cymlp_pack_b_##SFX(int trans_b, const T* B, long ldb, long N, long K,   \
                                   T* Bpacked) {                                        \
        (void) trans_b; (void) B; (void) ldb; (void) N; (void) K; (void) Bpacked;       \
    }
CYMLP_GEMM_STUB(float, s)
CYMLP_GEMM_STUB(double, d)
static int cymlp_gemm_avx512_supported(void) { return 0; }
#endif

#endif
