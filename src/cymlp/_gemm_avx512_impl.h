/* The body of cymlp's AVX-512 GEMM for one element type, included once per type by
   _gemm_avx512.h, which defines first:
     CYMLP_T            the element type (float, double)
     CYMLP_V            its 512-bit vector type (__m512, __m512d)
     CYMLP_MASK         a mask of that many lanes (__mmask16, __mmask8)
     CYMLP_W            lanes per vector (16, 8)
     CYMLP_OP(op)       the intrinsic _mm512_<op>_ps / _pd
     CYMLP_FN(name)     name with the type's suffix (_s, _d)
     CYMLP_INDEX, CYMLP_ROW_INDEX(ld), CYMLP_GATHER(index, p)
                        a vector of W offsets, the offsets 0, ld, ..., (W - 1) ld, and a
                        gather of the W values at p + those offsets
   A panel is NR = 2 W columns wide (two vectors): 32 floats or 16 doubles. */
#define CYMLP_NR (2 * CYMLP_W)

/* The mask of the first n (0..W) lanes. */
static inline CYMLP_AVX512 CYMLP_MASK CYMLP_FN(cymlp_lanes)(long n) {
    return n >= CYMLP_W ? (CYMLP_MASK) ((1u << CYMLP_W) - 1)
                        : n <= 0 ? (CYMLP_MASK) 0 : (CYMLP_MASK) ((1u << n) - 1);
}

/* Bp[NR k + j] = op(B)[k0 + k, j0 + j] for k < kc, j < nc; zero for nc <= j < NR.
   op(B) = B (trans_b = 0): row k0 + k of B, NR consecutive values;
   op(B) = B^T: column k0 + k of rows j0 .. j0 + nc of B. */
static CYMLP_AVX512 void CYMLP_FN(cymlp_pack_panel)(int trans_b, const CYMLP_T* B, long ldb,
                                                    long k0, long kc, long j0, long nc,
                                                    CYMLP_T* Bp) {
    long k, j;
    if (!trans_b) {
        CYMLP_MASK m0 = CYMLP_FN(cymlp_lanes)(nc), m1 = CYMLP_FN(cymlp_lanes)(nc - CYMLP_W);
        for (k = 0; k < kc; k++) {
            const CYMLP_T* src = B + (k0 + k) * ldb + j0;
            CYMLP_OP(store)(Bp + CYMLP_NR * k, CYMLP_OP(maskz_loadu)(m0, src));
            CYMLP_OP(store)(Bp + CYMLP_NR * k + CYMLP_W,
                            CYMLP_OP(maskz_loadu)(m1, src + CYMLP_W));
        }
        return;
    }
    if (nc == CYMLP_NR && ldb <= 0x3FFFFFF) { /* NR full rows: gather a column at a time */
        CYMLP_INDEX rows = CYMLP_ROW_INDEX(ldb);
        const CYMLP_T* top = B + j0 * ldb + k0;
        const CYMLP_T* bottom = top + CYMLP_W * ldb;
        for (k = 0; k < kc; k++) {
            CYMLP_OP(store)(Bp + CYMLP_NR * k, CYMLP_GATHER(rows, top + k));
            CYMLP_OP(store)(Bp + CYMLP_NR * k + CYMLP_W, CYMLP_GATHER(rows, bottom + k));
        }
        return;
    }
    for (j = 0; j < CYMLP_NR; j++) {
        const CYMLP_T* src = B + (j0 + j) * ldb + k0;
        if (j < nc)
            for (k = 0; k < kc; k++)
                Bp[CYMLP_NR * k + j] = src[k];
        else
            for (k = 0; k < kc; k++)
                Bp[CYMLP_NR * k + j] = 0;
    }
}

/* Ask for rows r0 .. r0 + nr of A, columns k0 .. k0 + kc, to be brought into L2
   (prefetches never fault, and these addresses lie inside A anyway). */
static inline CYMLP_AVX512 void CYMLP_FN(cymlp_prefetch_rows)(const CYMLP_T* A, long lda,
                                                              long r0, long nr, long k0,
                                                              long kc) {
    long r;
    for (r = r0; r < r0 + nr; r++) {
        const char* p = (const char*) (A + r * lda + k0);
        const char* last = (const char*) (A + r * lda + k0 + kc - 1);
        for (; p <= last; p += 64)
            _mm_prefetch(p, _MM_HINT_T1);
        _mm_prefetch(last, _MM_HINT_T1);
    }
}

/* Store the accumulated tile acc (row r: acc[2r], acc[2r + 1]) into C, whose first
   column is column j0 of the product; then ep's epilogue, unless ep is NULL. */
static inline CYMLP_AVX512 void CYMLP_FN(cymlp_store_tile)(const CYMLP_V* acc, CYMLP_T* C,
                                                           long ldc, long mr, long nc,
                                                           CYMLP_T alpha, CYMLP_T beta,
                                                           int first, const cymlp_epilogue* ep,
                                                           long j0) {
    CYMLP_MASK m0 = CYMLP_FN(cymlp_lanes)(nc), m1 = CYMLP_FN(cymlp_lanes)(nc - CYMLP_W);
    CYMLP_V al = CYMLP_OP(set1)(alpha), be = CYMLP_OP(set1)(first ? beta : 1);
    CYMLP_V zero = CYMLP_OP(setzero)(), b0 = zero, b1 = zero, d0, d1;
    CYMLP_MASK bad = 0;
    int read_c = !first || beta != 0; /* beta = 0: C is not read (it may hold NaN) */
    int bias = ep != NULL && ep->bias != NULL, relu = ep != NULL && ep->relu;
    int watch = ep != NULL && ep->nonfinite != NULL;
    long r;
    if (bias) {
        const CYMLP_T* bj = (const CYMLP_T*) ep->bias + j0;
        b0 = CYMLP_OP(maskz_loadu)(m0, bj);
        b1 = CYMLP_OP(maskz_loadu)(m1, bj + CYMLP_W);
    }
    for (r = 0; r < mr; r++) {
        CYMLP_T* cr = C + r * ldc;
        CYMLP_V x0 = CYMLP_OP(mul)(al, acc[2 * r]), x1 = CYMLP_OP(mul)(al, acc[2 * r + 1]);
        if (read_c) {
            x0 = CYMLP_OP(fmadd)(be, CYMLP_OP(maskz_loadu)(m0, cr), x0);
            x1 = CYMLP_OP(fmadd)(be, CYMLP_OP(maskz_loadu)(m1, cr + CYMLP_W), x1);
        }
        if (watch) { /* x - x is NaN exactly where x is NaN or infinite */
            d0 = CYMLP_OP(sub)(x0, x0);
            d1 = CYMLP_OP(sub)(x1, x1);
            bad |= (CYMLP_UNORDERED(d0) & m0) | (CYMLP_UNORDERED(d1) & m1);
        }
        if (bias) {
            x0 = CYMLP_OP(add)(x0, b0);
            x1 = CYMLP_OP(add)(x1, b1);
        }
        if (relu) { /* max(0, x) is x where x is NaN: its second operand */
            x0 = CYMLP_OP(max)(zero, x0);
            x1 = CYMLP_OP(max)(zero, x1);
        }
        CYMLP_OP(mask_storeu)(cr, m0, x0);
        if (nc > CYMLP_W)
            CYMLP_OP(mask_storeu)(cr + CYMLP_W, m1, x1);
    }
    if (bad)
        *ep->nonfinite = 1;
}

/* C[0:mr, 0:nc] = alpha * sum_k op(A)[r, k] Bp[k, :] + (first ? beta C : C), where
   op(A)[r, k] = A[r ars + k aks]: cymlp_tile for more than W columns (two vectors per
   row), cymlp_tile_half for up to W (one vector: a narrow tail is not computed twice as
   wide). */
CYMLP_DEFINE_TILE(CYMLP_FN(cymlp_tile), CYMLP_LOAD_TWO, CYMLP_ROW_FMA2)
CYMLP_DEFINE_TILE(CYMLP_FN(cymlp_tile_half), CYMLP_LOAD_ONE, CYMLP_ROW_FMA1)

/* Ap[(t kc + k) MR + r] = op(A)[i0 + t MR + r, k0 + k] for op(A) = A^T: rows i0 .. i0 + mr
   of A^T, columns k0 .. k0 + kc, copied tile by tile (MR rows each, k-major), zero past
   mr. Row i of A^T is column i of A, so each k reads one contiguous run of row k0 + k. */
static CYMLP_AVX512 void CYMLP_FN(cymlp_pack_transposed_rows)(const CYMLP_T* A, long lda,
                                                              long i0, long mr, long k0,
                                                              long kc, CYMLP_T* Ap) {
    CYMLP_MASK tile = CYMLP_FN(cymlp_lanes)(CYMLP_MR);
    long t, k;
    for (t = 0; t * CYMLP_MR < mr; t++) {
        CYMLP_MASK rows = CYMLP_FN(cymlp_lanes)(
            mr - t * CYMLP_MR < CYMLP_MR ? mr - t * CYMLP_MR : CYMLP_MR);
        const CYMLP_T* src = A + k0 * lda + i0 + t * CYMLP_MR;
        CYMLP_T* dst = Ap + t * kc * CYMLP_MR;
        for (k = 0; k < kc; k++)
            CYMLP_OP(mask_storeu)(dst + k * CYMLP_MR, tile,
                                  CYMLP_OP(maskz_loadu)(rows, src + k * lda));
    }
}

/* Each thread's copy of a block of A^T (MC_T x KC values: 128 KB of floats, 256 KB of
   doubles), thread-local rather than on the stack (too large for small thread stacks)
   or allocated per call (the engine allocates nothing inside its epoch loop). */
static __thread CYMLP_T CYMLP_FN(cymlp_transposed_block)[CYMLP_MC_T * CYMLP_KC]
    __attribute__((aligned(64)));

/* Every panel of op(B) (K x N) in the order and layout the GEMM below copies them one at
   a time: slice after slice of K, panel after panel, kc x NR values each, panel (s, j0)
   at k0 Npad + j0 kc (Npad: N rounded up to NR). For products whose op(B) stays the same
   over many calls (prediction's weights): packed once, read in place by every call. */
static inline long CYMLP_FN(cymlp_packed_b_size)(long N, long K) {
    return (N + CYMLP_NR - 1) / CYMLP_NR * CYMLP_NR * K;
}

static CYMLP_AVX512 void CYMLP_FN(cymlp_pack_b)(int trans_b, const CYMLP_T* B, long ldb,
                                                long N, long K, CYMLP_T* Bpacked) {
    long n_slices = cymlp_n_slices(K), npad = CYMLP_FN(cymlp_packed_b_size)(N, 1);
    long s, k0, kc, j0;
    for (s = 0; s < n_slices; s++) {
        k0 = cymlp_slice_start(s, n_slices, K);
        kc = cymlp_slice_start(s + 1, n_slices, K) - k0;
        for (j0 = 0; j0 < N; j0 += CYMLP_NR)
            CYMLP_FN(cymlp_pack_panel)(trans_b, B, ldb, k0, kc, j0,
                                       N - j0 < CYMLP_NR ? N - j0 : CYMLP_NR,
                                       Bpacked + k0 * npad + j0 * kc);
    }
}

/* The GEMM; M, N, K > 0. Rows of C in blocks: with A read in place (op(A) = A), blocks
   of MC rows, whose slice of A stays in L2 while the panels pass over it. With op(A) =
   A^T, whose rows are columns of A (one value from each of kc rows of A, kc pages apart
   for a wide A: measured 20 % slower than a contiguous A in place), blocks of MC_T rows,
   copied into the thread's block buffer first and reused by every panel; in place when
   there is only one panel (the output layer's gradient, 10 columns: the copy took as
   long as the product). Bpacked: op(B) already packed (cymlp_pack_b), or NULL; ep: the
   epilogue fused into the last slice's stores, or NULL.

   A read in place may come straight from memory (prediction's input). Each tile asks
   for a few rows of the block and slice that come next, so that they are in L2 when
   their turn comes and the reads from memory are spread over the whole product; the
   first block and slice, which nothing fetched ahead, ask for the rows PREFETCH_ROWS
   ahead while the first panel passes. */
static CYMLP_AVX512 void CYMLP_FN(cymlp_gemm_avx512)(int trans_a, int trans_b, long M, long N,
                                                     long K, CYMLP_T alpha, const CYMLP_T* A,
                                                     long lda, const CYMLP_T* B, long ldb,
                                                     const CYMLP_T* Bpacked, CYMLP_T beta,
                                                     CYMLP_T* C, long ldc,
                                                     const cymlp_epilogue* ep) {
    CYMLP_T Bp[CYMLP_KC * CYMLP_NR] __attribute__((aligned(64)));
    long n_slices = cymlp_n_slices(K), npad = CYMLP_FN(cymlp_packed_b_size)(N, 1);
    CYMLP_T* Ap = trans_a && N > CYMLP_NR ? CYMLP_FN(cymlp_transposed_block) : NULL;
    long block = Ap != NULL ? CYMLP_MC_T : CYMLP_MC;
    long ars = trans_a ? 1 : lda, aks = trans_a ? lda : 1;
    long s, k0, kc, j0, nc, i1, mc, i0, mr, ahead;
    long tiles, next_i, next_s, next_k0, next_kc, next_mc, next_step, next_done;
    const CYMLP_T* panel;
    for (i1 = 0; i1 < M; i1 += block) {
        mc = M - i1 < block ? M - i1 : block;
        for (s = 0; s < n_slices; s++) {
            k0 = cymlp_slice_start(s, n_slices, K);
            kc = cymlp_slice_start(s + 1, n_slices, K) - k0;
            /* the rows of A the next block and slice read, next_step rows per tile */
            next_s = s + 1 < n_slices ? s + 1 : 0;
            next_i = next_s > 0 ? i1 : i1 + block;
            next_mc = trans_a || next_i >= M ? 0 : M - next_i < block ? M - next_i : block;
            next_k0 = cymlp_slice_start(next_s, n_slices, K);
            next_kc = cymlp_slice_start(next_s + 1, n_slices, K) - next_k0;
            tiles = npad / CYMLP_NR * ((mc + CYMLP_MR - 1) / CYMLP_MR);
            next_step = (next_mc + tiles - 1) / tiles;
            next_done = 0;
            if (Ap != NULL)
                CYMLP_FN(cymlp_pack_transposed_rows)(A, lda, i1, mc, k0, kc, Ap);
            for (j0 = 0; j0 < N; j0 += CYMLP_NR) {
                nc = N - j0 < CYMLP_NR ? N - j0 : CYMLP_NR;
                if (Bpacked != NULL) {
                    panel = Bpacked + k0 * npad + j0 * kc;
                } else {
                    CYMLP_FN(cymlp_pack_panel)(trans_b, B, ldb, k0, kc, j0, nc, Bp);
                    panel = Bp;
                }
                for (i0 = i1; i0 < i1 + mc; i0 += CYMLP_MR) {
                    mr = i1 + mc - i0 < CYMLP_MR ? i1 + mc - i0 : CYMLP_MR;
                    if (next_done < next_mc) {
                        CYMLP_FN(cymlp_prefetch_rows)(
                            A, lda, next_i + next_done,
                            next_mc - next_done < next_step ? next_mc - next_done : next_step,
                            next_k0, next_kc);
                        next_done += next_step;
                    }
                    ahead = i0 + CYMLP_PREFETCH_ROWS;
                    if (!trans_a && i1 == 0 && s == 0 && j0 == 0 && ahead < mc)
                        CYMLP_FN(cymlp_prefetch_rows)(
                            A, lda, ahead, mc - ahead < CYMLP_MR ? mc - ahead : CYMLP_MR, k0, kc);
                    if (Ap != NULL)
                        (nc > CYMLP_W ? CYMLP_FN(cymlp_tile) : CYMLP_FN(cymlp_tile_half))(
                            kc, Ap + (i0 - i1) * kc, 1, CYMLP_MR, panel, C + i0 * ldc + j0, ldc,
                            mr, nc, alpha, beta, s == 0, s == n_slices - 1 ? ep : NULL, j0);
                    else
                        (nc > CYMLP_W ? CYMLP_FN(cymlp_tile) : CYMLP_FN(cymlp_tile_half))(
                            kc, A + i0 * ars + k0 * aks, ars, aks, panel, C + i0 * ldc + j0, ldc,
                            mr, nc, alpha, beta, s == 0, s == n_slices - 1 ? ep : NULL, j0);
                }
            }
        }
    }
}

#undef CYMLP_NR
