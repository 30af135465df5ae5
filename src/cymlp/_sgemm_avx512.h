/* cymlp's own single-precision GEMM for x86-64 CPUs with AVX-512 (see _blas.pyx).

   Row-major C (M x N) = alpha op(A) (M x K) op(B) (K x N) + beta C, single-threaded: the
   engine calls it from its OpenMP threads, one output block each, like the BLAS it
   replaces there. Why not OpenBLAS: on the engine's blocks (a few hundred rows and
   columns) OpenBLAS copies both operands into its packed formats at every call; here
   op(B) is copied once per 32-column panel and reused by every row of A, and A is read
   where it lies (A^T, in weight gradients, is copied once per block of rows).

   The loop nest: M in blocks (cymlp_sgemm_avx512), K in near-equal slices of at most
   KC, N in panels of NR = 32 columns (two 16-float vectors), then tiles of MR = 8 rows.
   A panel of op(B) (up to KC x 32 floats, 32 KB) is copied contiguously into a stack
   buffer, where it stays in L1 while every row tile of the block runs over it; the
   8 x 32 tile of C lives in 16 vector registers; each step along K broadcasts one
   element of each of the tile's 8 rows of op(A) and multiplies it into the panel's two
   vectors.

   Edges: a panel narrower than 32 columns is padded with zeros and stored through a
   mask (at most 16 columns: one vector, cymlp_tile_half); a tile of fewer than 8 rows
   repeats its last row of A (or reads zeros, when copied) in the unused registers and
   does not store them, so no load or store leaves the operands' extent.

   Results are deterministic: each entry of C sums its K products in order with fused
   multiply-adds, as OpenBLAS's kernels do, so products at most KC deep mostly give
   OpenBLAS's bits; deeper ones are sliced differently and differ in the last bits. */
#ifndef CYMLP_SGEMM_AVX512_H
#define CYMLP_SGEMM_AVX512_H

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CYMLP_HAVE_SGEMM_AVX512 1
#else
#define CYMLP_HAVE_SGEMM_AVX512 0
#endif

#if CYMLP_HAVE_SGEMM_AVX512
#include <immintrin.h>
#include <stdlib.h>

#define CYMLP_MR 8
#define CYMLP_NR 32
#define CYMLP_KC 256
#define CYMLP_MC 512 /* rows of C per block, A read in place */
#define CYMLP_MC_T 128 /* rows of C per block, op(A) = A^T copied */
#define CYMLP_AVX512 __attribute__((target("avx512f")))

/* The mask of the first n (0..16) lanes. */
static inline CYMLP_AVX512 __mmask16 cymlp_lanes(long n) {
    return n >= 16 ? (__mmask16) 0xFFFF : n <= 0 ? (__mmask16) 0 : (__mmask16) ((1u << n) - 1);
}

/* Bp[32 k + j] = op(B)[k0 + k, j0 + j] for k < kc, j < nc; zero for nc <= j < 32.
   op(B) = B (trans_b = 0): row k0 + k of B, 32 consecutive floats;
   op(B) = B^T: column k0 + k of rows j0 .. j0 + nc of B. */
static CYMLP_AVX512 void cymlp_pack_panel(int trans_b, const float* B, long ldb, long k0,
                                          long kc, long j0, long nc, float* Bp) {
    long k, j;
    if (!trans_b) {
        __mmask16 m0 = cymlp_lanes(nc), m1 = cymlp_lanes(nc - 16);
        for (k = 0; k < kc; k++) {
            const float* src = B + (k0 + k) * ldb + j0;
            _mm512_store_ps(Bp + CYMLP_NR * k, _mm512_maskz_loadu_ps(m0, src));
            _mm512_store_ps(Bp + CYMLP_NR * k + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
        return;
    }
    if (nc == CYMLP_NR && ldb <= 0x3FFFFFF) { /* 32 full rows: gather a column at a time */
        __m512i rows = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32((int) ldb));
        const float* top = B + j0 * ldb + k0;
        const float* bottom = top + 16 * ldb;
        for (k = 0; k < kc; k++) {
            _mm512_store_ps(Bp + CYMLP_NR * k, _mm512_i32gather_ps(rows, top + k, 4));
            _mm512_store_ps(Bp + CYMLP_NR * k + 16, _mm512_i32gather_ps(rows, bottom + k, 4));
        }
        return;
    }
    for (j = 0; j < CYMLP_NR; j++) {
        const float* src = B + (j0 + j) * ldb + k0;
        if (j < nc)
            for (k = 0; k < kc; k++)
                Bp[CYMLP_NR * k + j] = src[k];
        else
            for (k = 0; k < kc; k++)
                Bp[CYMLP_NR * k + j] = 0.0f;
    }
}

/* C[0:mr, 0:nc] = alpha * sum_k op(A)[r, k] Bp[k, :] + (first ? beta C : C), where
   op(A)[r, k] = A[r ars + k aks]: cymlp_tile for 17 to 32 columns (two vectors per row),
   cymlp_tile_half for up to 16 (one vector: a narrow tail is not computed 32 wide). The
   accumulators are named variables (macros), not an array: GCC kept an array of them
   partly on the stack. */
#define CYMLP_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define CYMLP_ROW_PTR(r) const float* a##r = A + (r < mr ? r : mr - 1) * ars;
#define CYMLP_ROW_ZERO(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
#define CYMLP_ROW_FMA2(r)                                                               \
    {                                                                                   \
        __m512 x = _mm512_set1_ps(a##r[k * aks]);                                       \
        c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0);                                      \
        c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1);                                      \
    }
#define CYMLP_ROW_FMA1(r) c##r##0 = _mm512_fmadd_ps(_mm512_set1_ps(a##r[k * aks]), b0, c##r##0);
#define CYMLP_ROW_SAVE(r) acc[2 * r] = c##r##0; acc[2 * r + 1] = c##r##1;

/* Store the accumulated tile acc (row r: acc[2r], acc[2r + 1]) into C. */
static inline CYMLP_AVX512 void cymlp_store_tile(const __m512* acc, float* C, long ldc,
                                                 long mr, long nc, float alpha, float beta,
                                                 int first) {
    __mmask16 m0 = cymlp_lanes(nc), m1 = cymlp_lanes(nc - 16);
    __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(first ? beta : 1.0f);
    int read_c = !first || beta != 0.0f; /* beta = 0: C is not read (it may hold NaN) */
    long r;
    for (r = 0; r < mr; r++) {
        float* cr = C + r * ldc;
        __m512 x0 = _mm512_mul_ps(al, acc[2 * r]), x1 = _mm512_mul_ps(al, acc[2 * r + 1]);
        if (read_c) {
            x0 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m0, cr), x0);
            x1 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m1, cr + 16), x1);
        }
        _mm512_mask_storeu_ps(cr, m0, x0);
        if (nc > 16)
            _mm512_mask_storeu_ps(cr + 16, m1, x1);
    }
}

/* The two tiles: their loops differ only in the panel vectors loaded and multiplied. */
#define CYMLP_DEFINE_TILE(NAME, LOAD_PANEL, ROW_FMA)                                    \
    static CYMLP_AVX512 void NAME(long kc, const float* A, long ars, long aks,          \
                                  const float* Bp, float* C, long ldc, long mr, long nc, \
                                  float alpha, float beta, int first) {                 \
        CYMLP_ROWS(CYMLP_ROW_PTR)                                                       \
        CYMLP_ROWS(CYMLP_ROW_ZERO)                                                      \
        __m512 acc[2 * CYMLP_MR];                                                       \
        long k;                                                                         \
        for (k = 0; k < kc; k++) {                                                      \
            LOAD_PANEL                                                                  \
            CYMLP_ROWS(ROW_FMA)                                                         \
        }                                                                               \
        CYMLP_ROWS(CYMLP_ROW_SAVE)                                                      \
        cymlp_store_tile(acc, C, ldc, mr, nc, alpha, beta, first);                      \
    }
#define CYMLP_LOAD_TWO                                                                  \
    __m512 b0 = _mm512_load_ps(Bp + CYMLP_NR * k);                                      \
    __m512 b1 = _mm512_load_ps(Bp + CYMLP_NR * k + 16);
#define CYMLP_LOAD_ONE __m512 b0 = _mm512_load_ps(Bp + CYMLP_NR * k);
CYMLP_DEFINE_TILE(cymlp_tile, CYMLP_LOAD_TWO, CYMLP_ROW_FMA2)
CYMLP_DEFINE_TILE(cymlp_tile_half, CYMLP_LOAD_ONE, CYMLP_ROW_FMA1)

/* Ap[(t kc + k) MR + r] = op(A)[i0 + t MR + r, k0 + k] for op(A) = A^T: rows i0 .. i0 + mr
   of A^T, columns k0 .. k0 + kc, copied tile by tile (MR rows each, k-major), zero past
   mr. Row i of A^T is column i of A, so each k reads one contiguous run of row k0 + k. */
static CYMLP_AVX512 void cymlp_pack_transposed_rows(const float* A, long lda, long i0,
                                                    long mr, long k0, long kc, float* Ap) {
    long t, k;
    for (t = 0; t * CYMLP_MR < mr; t++) {
        __mmask16 rows = cymlp_lanes(mr - t * CYMLP_MR < CYMLP_MR ? mr - t * CYMLP_MR
                                                                   : CYMLP_MR);
        const float* src = A + k0 * lda + i0 + t * CYMLP_MR;
        float* dst = Ap + t * kc * CYMLP_MR;
        for (k = 0; k < kc; k++)
            _mm256_storeu_ps(dst + k * CYMLP_MR, _mm512_castps512_ps256(
                                 _mm512_maskz_loadu_ps(rows, src + k * lda)));
    }
}

/* The GEMM; M, N, K > 0. Rows of C in blocks: with A read in place (op(A) = A), blocks
   of MC rows, whose slice of A stays in L2 while the panels pass over it. With op(A) =
   A^T, whose rows are columns of A (one float from each of kc rows of A, kc pages apart
   for a wide A: measured 20 % slower than a contiguous A in place), blocks of MC_T rows,
   copied into Ap first and reused by every panel; in place when there is only one panel
   (the output layer's gradient, 10 columns: the copy took as long as the product). */
static CYMLP_AVX512 void cymlp_sgemm_avx512(int trans_a, int trans_b, long M, long N, long K,
                                            float alpha, const float* A, long lda,
                                            const float* B, long ldb, float beta, float* C,
                                            long ldc) {
    float Bp[CYMLP_KC * CYMLP_NR] __attribute__((aligned(64)));
    long n_slices = (K + CYMLP_KC - 1) / CYMLP_KC; /* K in near-equal slices <= KC */
    /* on the heap (up to MC_T x KC floats, 128 KB); should that fail, A^T is read in place */
    size_t ap_size = (size_t) ((M < CYMLP_MC_T ? (M + CYMLP_MR - 1) / CYMLP_MR * CYMLP_MR
                                               : CYMLP_MC_T)
                               * ((K + n_slices - 1) / n_slices) * sizeof(float) + 63) / 64 * 64;
    float* Ap = trans_a && N > CYMLP_NR ? (float*) aligned_alloc(64, ap_size) : NULL;
    long block = Ap != NULL ? CYMLP_MC_T : CYMLP_MC;
    long ars = trans_a ? 1 : lda, aks = trans_a ? lda : 1;
    long s, k0, kc, j0, nc, i1, mc, i0, mr;
    for (i1 = 0; i1 < M; i1 += block) {
        mc = M - i1 < block ? M - i1 : block;
        for (s = 0; s < n_slices; s++) {
            k0 = s * K / n_slices;
            kc = (s + 1) * K / n_slices - k0;
            if (Ap != NULL)
                cymlp_pack_transposed_rows(A, lda, i1, mc, k0, kc, Ap);
            for (j0 = 0; j0 < N; j0 += CYMLP_NR) {
                nc = N - j0 < CYMLP_NR ? N - j0 : CYMLP_NR;
                cymlp_pack_panel(trans_b, B, ldb, k0, kc, j0, nc, Bp);
                for (i0 = i1; i0 < i1 + mc; i0 += CYMLP_MR) {
                    mr = i1 + mc - i0 < CYMLP_MR ? i1 + mc - i0 : CYMLP_MR;
                    if (Ap != NULL)
                        (nc > 16 ? cymlp_tile : cymlp_tile_half)(
                            kc, Ap + (i0 - i1) * kc, 1, CYMLP_MR, Bp, C + i0 * ldc + j0, ldc,
                            mr, nc, alpha, beta, s == 0);
                    else
                        (nc > 16 ? cymlp_tile : cymlp_tile_half)(
                            kc, A + i0 * ars + k0 * aks, ars, aks, Bp, C + i0 * ldc + j0, ldc,
                            mr, nc, alpha, beta, s == 0);
                }
            }
        }
    }
    free(Ap);
}

/* Whether this CPU (and its OS) runs AVX-512F code. */
static int cymlp_sgemm_avx512_supported(void) {
    return __builtin_cpu_supports("avx512f");
}

#else /* other compilers and CPUs: never called */
static void cymlp_sgemm_avx512(int trans_a, int trans_b, long M, long N, long K, float alpha,
                               const float* A, long lda, const float* B, long ldb,
                               float beta, float* C, long ldc) {
    (void) trans_a; (void) trans_b; (void) M; (void) N; (void) K; (void) alpha; (void) A;
    (void) lda; (void) B; (void) ldb; (void) beta; (void) C; (void) ldc;
}
static int cymlp_sgemm_avx512_supported(void) { return 0; }
#endif

#endif
