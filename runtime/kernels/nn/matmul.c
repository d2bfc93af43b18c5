/* MatMul and Gemm (ONNX opset 21).
 *
 * matmul: numpy semantics. A [..., M, K] or [K], B [..., K, N] or [K]; a 1-D
 * A is a row [1, K] and a 1-D B a column [K, 1] whose unit axis is dropped
 * from the result; batch axes broadcast (right-aligned) to the output's.
 * f32, f64; f16 and bf16 computed in f32; int32 and int64 wrap around
 * (two's complement), like numpy.
 *
 * gemm: Y = alpha * A' * B' + beta * C, A' = trans_a ? A^T : A (likewise B),
 * C optional and unidirectionally broadcastable to [M, N]. f32, f64, f16,
 * bf16.
 *
 * The optimised loop nest tiles the output into MB x NB blocks (the unit of
 * work split across threads) and, inside a tile, runs k in KB slices with an
 * (i, k, j) order whose inner loop is an axpy over a contiguous row of B and
 * C that GCC vectorises at -O3; when B' is not row-contiguous (trans_b, or a
 * single output column) it runs (i, j, k) dot products instead.
 *
 * On AVX2 and AVX-512, f32 goes through the packed GEMM of gemm.h instead
 * (cache-blocked, packed panels, register micro-kernels); the other dtypes
 * keep the portable loops. */
#include <math.h>

#include "kernels/nn/gemm.h"
#include "kernels/nn/nn_internal.h"

enum { MM_MB = 32, MM_NB = 256, MM_KB = 128, MM_HALF_NB = 128 };

/* One product C[b] (M x N) += alpha * A[b]' * B[b]' per batch index b, with
 * element strides; the bias is applied by the caller. */
typedef struct mm_problem_t {
  int64_t M, N, K, batch;
  int64_t as_i, as_k, bs_k, bs_j; /* element strides of A'(i,k), B'(k,j) */
  const unsigned char *a, *b;
  unsigned char *c;
  size_t esize;
  /* batch broadcasting: output batch dims, and A's and B's batch strides
   * (elements, 0 where the operand's dim is 1 or missing) */
  int nb;
  int64_t bdims[MOAI_MAX_RANK], a_bstride[MOAI_MAX_RANK], b_bstride[MOAI_MAX_RANK];
  /* gemm's bias: C(i, j) = bias[i * c_si + j * c_sj] */
  const unsigned char *bias;
  int64_t c_si, c_sj;
  double alpha, beta;
} mm_problem_t;

/* Element offsets of A's and B's matrices for output batch index b. */
static void mm_batch_offsets(const mm_problem_t *p, int64_t b, int64_t *aoff, int64_t *boff) {
  int64_t ao = 0, bo = 0;
  for (int d = p->nb - 1; d >= 0; --d) {
    int64_t idx = b % p->bdims[d];
    b /= p->bdims[d];
    ao += idx * p->a_bstride[d];
    bo += idx * p->b_bstride[d];
  }
  *aoff = ao;
  *boff = bo;
}

/* Fills strides for a batch operand of rank r (its last `mat` axes are the
 * matrix) right-aligned against the output batch dims. */
static void mm_batch_strides(const moai_tensor_t *t, int mat, int nb, int64_t mat_elems,
                             int64_t *out) {
  int r = t->rank - mat;
  int64_t stride = mat_elems;
  for (int d = nb - 1; d >= 0; --d) {
    int td = d - (nb - r);
    if (td >= 0) {
      out[d] = t->dims[td] == 1 ? 0 : stride;
      stride *= t->dims[td];
    } else {
      out[d] = 0;
    }
  }
}

static void mm_setup_matmul(const moai_exec_t *ex, const moai_op_desc_t *op, mm_problem_t *p) {
  const moai_tensor_t *ta = moai_op_in(op, 0), *tb = moai_op_in(op, 1), *tc = moai_op_out(op, 0);
  int ra = ta->rank, rb = tb->rank;
  memset(p, 0, sizeof(*p));
  p->M = ra >= 2 ? ta->dims[ra - 2] : 1;
  p->K = ta->dims[ra - 1];
  p->N = rb >= 2 ? tb->dims[rb - 1] : 1;
  p->as_i = p->K;
  p->as_k = 1;
  p->bs_k = p->N;
  p->bs_j = 1;
  p->nb = tc->rank - (ra >= 2) - (rb >= 2);
  p->batch = 1;
  for (int d = 0; d < p->nb; ++d) {
    p->bdims[d] = tc->dims[d];
    p->batch *= tc->dims[d];
  }
  mm_batch_strides(ta, ra >= 2 ? 2 : 1, p->nb, p->M * p->K, p->a_bstride);
  mm_batch_strides(tb, rb >= 2 ? 2 : 1, p->nb, p->K * p->N, p->b_bstride);
  p->a = moai_tensor_ptr(ex, ta);
  p->b = moai_tensor_ptr(ex, tb);
  p->c = moai_tensor_ptr(ex, tc);
  p->esize = moai_nn_dtype_size(tc->dtype);
  p->alpha = 1.0;
  p->beta = 0.0;
}

static void mm_setup_gemm(const moai_exec_t *ex, const moai_op_desc_t *op, mm_problem_t *p) {
  const moai_attrs_gemm_t *at = moai_op_attrs(op);
  const moai_tensor_t *ta = moai_op_in(op, 0), *tb = moai_op_in(op, 1), *tc = moai_op_in(op, 2);
  const moai_tensor_t *ty = moai_op_out(op, 0);
  memset(p, 0, sizeof(*p));
  p->M = ty->dims[0];
  p->N = ty->dims[1];
  p->K = at->trans_a ? ta->dims[0] : ta->dims[1];
  p->as_i = at->trans_a ? 1 : p->K;
  p->as_k = at->trans_a ? p->M : 1;
  p->bs_k = at->trans_b ? 1 : p->N;
  p->bs_j = at->trans_b ? p->K : 1;
  p->batch = 1;
  p->a = moai_tensor_ptr(ex, ta);
  p->b = moai_tensor_ptr(ex, tb);
  p->c = moai_tensor_ptr(ex, ty);
  p->esize = moai_nn_dtype_size(ty->dtype);
  p->alpha = at->alpha;
  p->beta = at->beta;
  p->bias = op->n_in > 2 ? moai_tensor_ptr(ex, tc) : NULL;
  if (p->bias) {
    int r = tc->rank;
    int64_t d0 = r == 2 ? tc->dims[0] : 1, d1 = r >= 1 ? tc->dims[r - 1] : 1;
    p->c_si = d0 == 1 ? 0 : d1;
    p->c_sj = d1 == 1 ? 0 : 1;
  }
}

/* ---- reference: plain loops, double (or 64-bit integer) accumulation ---- */

#define MM_REF_FLOAT(name, T, LOAD, STORE)                                         \
  static void name(const mm_problem_t *p, int ith, int nth) {                      \
    long long begin, end;                                                          \
    moai_split_range(p->batch * p->M, ith, nth, &begin, &end);                     \
    const T *A = (const T *)p->a, *B = (const T *)p->b, *bias = (const T *)p->bias; \
    T *C = (T *)p->c;                                                              \
    for (long long row = begin; row < end; ++row) {                                \
      int64_t b = row / p->M, i = row % p->M, aoff, boff;                          \
      mm_batch_offsets(p, b, &aoff, &boff);                                        \
      for (int64_t j = 0; j < p->N; ++j) {                                         \
        double acc = 0.0;                                                          \
        for (int64_t k = 0; k < p->K; ++k)                                         \
          acc += (double)LOAD(A[aoff + i * p->as_i + k * p->as_k]) *               \
                 (double)LOAD(B[boff + k * p->bs_k + j * p->bs_j]);                \
        double y = p->alpha * acc;                                                 \
        if (bias) y += p->beta * (double)LOAD(bias[i * p->c_si + j * p->c_sj]);    \
        C[(b * p->M + i) * p->N + j] = STORE(y);                                   \
      }                                                                            \
    }                                                                              \
  }

#define MM_ID(x) (x)
#define MM_F32(x) ((float)(x))
#define MM_H2F(x) moai_f16_to_f32(x)
#define MM_F2H(x) moai_f32_to_f16((float)(x))
#define MM_B2F(x) moai_bf16_to_f32(x)
#define MM_F2B(x) moai_f32_to_bf16((float)(x))

MM_REF_FLOAT(mm_ref_f32, float, MM_ID, MM_F32)
MM_REF_FLOAT(mm_ref_f64, double, MM_ID, MM_ID)
MM_REF_FLOAT(mm_ref_f16, uint16_t, MM_H2F, MM_F2H)
MM_REF_FLOAT(mm_ref_bf16, uint16_t, MM_B2F, MM_F2B)

/* Integers wrap: accumulate in uint64_t (defined overflow), truncate. */
#define MM_REF_INT(name, T)                                                        \
  static void name(const mm_problem_t *p, int ith, int nth) {                      \
    long long begin, end;                                                          \
    moai_split_range(p->batch * p->M, ith, nth, &begin, &end);                     \
    const T *A = (const T *)p->a, *B = (const T *)p->b;                            \
    T *C = (T *)p->c;                                                              \
    for (long long row = begin; row < end; ++row) {                                \
      int64_t b = row / p->M, i = row % p->M, aoff, boff;                          \
      mm_batch_offsets(p, b, &aoff, &boff);                                        \
      for (int64_t j = 0; j < p->N; ++j) {                                         \
        uint64_t acc = 0;                                                          \
        for (int64_t k = 0; k < p->K; ++k)                                         \
          acc += (uint64_t)(int64_t)A[aoff + i * p->as_i + k * p->as_k] *          \
                 (uint64_t)(int64_t)B[boff + k * p->bs_k + j * p->bs_j];           \
        C[(b * p->M + i) * p->N + j] = (T)acc;                                     \
      }                                                                            \
    }                                                                              \
  }

MM_REF_INT(mm_ref_i32, int32_t)
MM_REF_INT(mm_ref_i64, int64_t)

/* ---- optimised: tiled (i, k, j) loop nest ---- */

/* C tile [i0,i1) x [j0,j1) (row stride ldc) += alpha * A' * B'. T is float,
 * double, or an unsigned type for wrapping integer products. */
#define MM_CORE(name, T)                                                            \
  static void name(const T *restrict A, int64_t as_i, int64_t as_k,                 \
                   const T *restrict B, int64_t bs_k, int64_t bs_j,                 \
                   T *restrict C, int64_t ldc, int64_t i0, int64_t i1, int64_t j0,  \
                   int64_t j1, int64_t K, T alpha) {                                \
    int64_t nj = j1 - j0;                                                           \
    if (bs_j == 1 && nj > 1) {                                                      \
      for (int64_t k0 = 0; k0 < K; k0 += MM_KB) {                                   \
        int64_t k1 = k0 + MM_KB < K ? k0 + MM_KB : K;                               \
        for (int64_t i = i0; i < i1; ++i) {                                         \
          T *restrict crow = C + i * ldc + j0;                                      \
          for (int64_t k = k0; k < k1; ++k) {                                       \
            T a = alpha * A[i * as_i + k * as_k];                                   \
            const T *restrict brow = B + k * bs_k + j0;                             \
            for (int64_t j = 0; j < nj; ++j) crow[j] += a * brow[j];                \
          }                                                                         \
        }                                                                           \
      }                                                                             \
      return;                                                                       \
    }                                                                               \
    for (int64_t i = i0; i < i1; ++i) {                                             \
      const T *arow = A + i * as_i;                                                 \
      for (int64_t j = j0; j < j1; ++j) {                                           \
        const T *bcol = B + j * bs_j;                                               \
        T acc = 0;                                                                  \
        if (as_k == 1 && bs_k == 1) {                                               \
          /* eight partial sums: GCC's SLP vectoriser turns them into a vector */   \
          T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                        \
          int64_t k = 0;                                                            \
          for (; k + 8 <= K; k += 8)                                                \
            for (int u = 0; u < 8; ++u) s[u] += arow[k + u] * bcol[k + u];          \
          for (; k < K; ++k) acc += arow[k] * bcol[k];                              \
          acc += ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])); \
        } else {                                                                    \
          for (int64_t k = 0; k < K; ++k) acc += arow[k * as_k] * bcol[k * bs_k];   \
        }                                                                           \
        C[i * ldc + j] += alpha * acc;                                              \
      }                                                                             \
    }                                                                               \
  }

MM_CORE(mm_core_f32, float)
MM_CORE(mm_core_f64, double)
MM_CORE(mm_core_u32, uint32_t)
MM_CORE(mm_core_u64, uint64_t)

/* The tiles: batch x ceil(M / MB) x ceil(N / NB), split across threads. */
#define MM_OPT(name, T, CORE)                                                       \
  static void name(const mm_problem_t *p, int ith, int nth) {                       \
    int64_t mt = moai_nn_cdiv(p->M, MM_MB), nt = moai_nn_cdiv(p->N, MM_NB);          \
    long long begin, end;                                                           \
    moai_split_range(p->batch * mt * nt, ith, nth, &begin, &end);                   \
    const T *A = (const T *)p->a, *B = (const T *)p->b, *bias = (const T *)p->bias; \
    T *C = (T *)p->c;                                                               \
    T alpha = (T)p->alpha, beta = (T)p->beta;                                       \
    for (long long u = begin; u < end; ++u) {                                       \
      int64_t b = u / (mt * nt), ti = (u / nt) % mt, tj = u % nt, aoff, boff;       \
      int64_t i0 = ti * MM_MB, i1 = i0 + MM_MB < p->M ? i0 + MM_MB : p->M;          \
      int64_t j0 = tj * MM_NB, j1 = j0 + MM_NB < p->N ? j0 + MM_NB : p->N;          \
      mm_batch_offsets(p, b, &aoff, &boff);                                         \
      T *Cb = C + b * p->M * p->N;                                                  \
      for (int64_t i = i0; i < i1; ++i)                                             \
        for (int64_t j = j0; j < j1; ++j)                                           \
          Cb[i * p->N + j] = bias ? beta * bias[i * p->c_si + j * p->c_sj] : (T)0;  \
      CORE(A + aoff, p->as_i, p->as_k, B + boff, p->bs_k, p->bs_j, Cb, p->N, i0,    \
           i1, j0, j1, p->K, alpha);                                                \
    }                                                                               \
  }

MM_OPT(mm_opt_f32, float, mm_core_f32)
MM_OPT(mm_opt_f64, double, mm_core_f64)
MM_OPT(mm_opt_u32, uint32_t, mm_core_u32)
MM_OPT(mm_opt_u64, uint64_t, mm_core_u64)

/* ---- packed f32 (gemm.h) ---- */

/* Splits one [M, N] output into g = gm x gn blocks, choosing the factors
 * that minimise what each block packs: a block of m x n rows and columns
 * packs m x K of A and K x n of B, so gm/gn follow the aspect ratio. */
static void mm_packed_grid(int64_t M, int64_t N, int g, int *out_gm, int *out_gn) {
  int best_gm = 1;
  int64_t best = -1;
  for (int gm = 1; gm <= g; ++gm) {
    if (g % gm) continue;
    int64_t cost = moai_nn_cdiv(M, gm) + moai_nn_cdiv(N, g / gm);
    if (best < 0 || cost < best) {
      best = cost;
      best_gm = gm;
    }
  }
  *out_gm = best_gm;
  *out_gn = g / best_gm;
}

/* Work split without a barrier: when the batch divides evenly over the
 * threads each thread takes whole matrices; otherwise every matrix is cut
 * into nth blocks (rows or columns, whichever packs less). Each thread packs
 * the panels of its own blocks (its share of A, all of B it touches), which
 * duplicates the B packing across row blocks but needs no shared buffer:
 * packing a K x n panel (under a cycle per float) costs what some 10 to 30
 * of the block's rows of FMAs do (K n / 32 cycles each on AVX-512), small
 * against blocks of hundreds of rows. */
static void mm_packed_f32(const mm_problem_t *p, int ith, int nth, moai_sgemm_block_fn_t fn) {
  enum { COL_UNIT = 16 }; /* column blocks in whole vectors */
  if (p->M <= 1 || p->N <= 1 || p->K == 0) { /* GEMV and empty sums */
    mm_opt_f32(p, ith, nth);
    return;
  }
  int g = p->batch % nth == 0 ? 1 : nth, gm, gn;
  mm_packed_grid(p->M, p->N, g, &gm, &gn);
  long long begin, end;
  moai_split_range(p->batch * g, ith, nth, &begin, &end);
  const float *A = (const float *)p->a, *B = (const float *)p->b, *bias = (const float *)p->bias;
  float *C = (float *)p->c;
  float alpha = (float)p->alpha, beta = (float)p->beta;
  for (long long u = begin; u < end; ++u) {
    int64_t b = u / g, t = u % g, aoff, boff;
    long long i0, i1, c0, c1;
    moai_split_range(p->M, (int)(t / gn), gm, &i0, &i1);
    moai_split_range(moai_nn_cdiv(p->N, COL_UNIT), (int)(t % gn), gn, &c0, &c1);
    int64_t j0 = c0 * COL_UNIT, j1 = c1 * COL_UNIT < p->N ? c1 * COL_UNIT : p->N;
    if (i0 >= i1 || j0 >= j1) continue;
    mm_batch_offsets(p, b, &aoff, &boff);
    float *Cb = C + b * p->M * p->N;
    if (bias)
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) Cb[i * p->N + j] = beta * bias[i * p->c_si + j * p->c_sj];
    moai_sgemm_block_t blk = {
        .m = i1 - i0, .n = j1 - j0, .k = p->K,
        .a = A + aoff + i0 * p->as_i, .as_i = p->as_i, .as_k = p->as_k,
        .b = B + boff + j0 * p->bs_j, .bs_k = p->bs_k, .bs_j = p->bs_j,
        .c = Cb + i0 * p->N + j0, .ldc = p->N, .alpha = alpha, .accumulate = bias != NULL,
    };
    if (fn(&blk)) continue;
    /* no packing buffer (out of memory): the portable loops */
    if (!bias)
      for (int64_t i = i0; i < i1; ++i) memset(Cb + i * p->N + j0, 0, (size_t)(j1 - j0) * sizeof(float));
    mm_core_f32(A + aoff, p->as_i, p->as_k, B + boff, p->bs_k, p->bs_j, Cb, p->N, i0, i1, j0, j1,
                p->K, alpha);
  }
}

static void mm_avx2_f32(const mm_problem_t *p, int ith, int nth) {
  mm_packed_f32(p, ith, nth, moai_sgemm_block_avx2);
}
static void mm_avx512_f32(const mm_problem_t *p, int ith, int nth) {
  mm_packed_f32(p, ith, nth, moai_sgemm_block_avx512);
}

/* Half types: one output row slice of MM_HALF_NB columns at a time, summed
 * in a float accumulator on the stack, converted once at the end. */
#define MM_OPT_HALF(name, LOAD, STORE)                                              \
  static void name(const mm_problem_t *p, int ith, int nth) {                       \
    int64_t nt = moai_nn_cdiv(p->N, MM_HALF_NB);                                     \
    long long begin, end;                                                           \
    moai_split_range(p->batch * p->M * nt, ith, nth, &begin, &end);                 \
    const uint16_t *A = (const uint16_t *)p->a, *B = (const uint16_t *)p->b;        \
    const uint16_t *bias = (const uint16_t *)p->bias;                               \
    uint16_t *C = (uint16_t *)p->c;                                                 \
    float alpha = (float)p->alpha, beta = (float)p->beta;                           \
    for (long long u = begin; u < end; ++u) {                                       \
      int64_t b = u / (p->M * nt), i = (u / nt) % p->M, tj = u % nt, aoff, boff;    \
      int64_t j0 = tj * MM_HALF_NB, nj = p->N - j0 < MM_HALF_NB ? p->N - j0 : MM_HALF_NB; \
      float acc[MM_HALF_NB];                                                        \
      mm_batch_offsets(p, b, &aoff, &boff);                                         \
      for (int64_t j = 0; j < nj; ++j) acc[j] = 0.0f;                               \
      for (int64_t k = 0; k < p->K; ++k) {                                          \
        float a = LOAD(A[aoff + i * p->as_i + k * p->as_k]);                        \
        const uint16_t *brow = B + boff + k * p->bs_k + j0 * p->bs_j;               \
        for (int64_t j = 0; j < nj; ++j) acc[j] += a * LOAD(brow[j * p->bs_j]);     \
      }                                                                             \
      uint16_t *crow = C + (b * p->M + i) * p->N + j0;                              \
      for (int64_t j = 0; j < nj; ++j) {                                            \
        float y = alpha * acc[j];                                                   \
        if (bias) y += beta * LOAD(bias[i * p->c_si + (j0 + j) * p->c_sj]);         \
        crow[j] = STORE(y);                                                         \
      }                                                                             \
    }                                                                               \
  }

MM_OPT_HALF(mm_opt_f16, MM_H2F, moai_f32_to_f16)
MM_OPT_HALF(mm_opt_bf16, MM_B2F, moai_f32_to_bf16)

/* ---- dispatch ---- */

typedef void (*mm_fn_t)(const mm_problem_t *p, int ith, int nth);

static const mm_fn_t mm_ref_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_ref_f32, [MOAI_ABI_F64] = mm_ref_f64,
    [MOAI_ABI_F16] = mm_ref_f16, [MOAI_ABI_BF16] = mm_ref_bf16,
    [MOAI_ABI_I32] = mm_ref_i32, [MOAI_ABI_I64] = mm_ref_i64,
};
static const mm_fn_t mm_opt_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_opt_f32, [MOAI_ABI_F64] = mm_opt_f64,
    [MOAI_ABI_F16] = mm_opt_f16, [MOAI_ABI_BF16] = mm_opt_bf16,
    [MOAI_ABI_I32] = mm_opt_u32, [MOAI_ABI_I64] = mm_opt_u64,
};
static const mm_fn_t mm_avx2_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_avx2_f32, [MOAI_ABI_F64] = mm_opt_f64,
    [MOAI_ABI_F16] = mm_opt_f16, [MOAI_ABI_BF16] = mm_opt_bf16,
    [MOAI_ABI_I32] = mm_opt_u32, [MOAI_ABI_I64] = mm_opt_u64,
};
static const mm_fn_t mm_avx512_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_avx512_f32, [MOAI_ABI_F64] = mm_opt_f64,
    [MOAI_ABI_F16] = mm_opt_f16, [MOAI_ABI_BF16] = mm_opt_bf16,
    [MOAI_ABI_I32] = mm_opt_u32, [MOAI_ABI_I64] = mm_opt_u64,
};
/* Gemm's float-only subset. */
static const mm_fn_t gemm_ref_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_ref_f32, [MOAI_ABI_F64] = mm_ref_f64,
    [MOAI_ABI_F16] = mm_ref_f16, [MOAI_ABI_BF16] = mm_ref_bf16,
};
static const mm_fn_t gemm_opt_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_opt_f32, [MOAI_ABI_F64] = mm_opt_f64,
    [MOAI_ABI_F16] = mm_opt_f16, [MOAI_ABI_BF16] = mm_opt_bf16,
};

static const mm_fn_t gemm_avx2_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_avx2_f32, [MOAI_ABI_F64] = mm_opt_f64,
    [MOAI_ABI_F16] = mm_opt_f16, [MOAI_ABI_BF16] = mm_opt_bf16,
};
static const mm_fn_t gemm_avx512_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = mm_avx512_f32, [MOAI_ABI_F64] = mm_opt_f64,
    [MOAI_ABI_F16] = mm_opt_f16, [MOAI_ABI_BF16] = mm_opt_bf16,
};

static void mm_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                   const mm_fn_t *table, int gemm) {
  int32_t dtype = moai_op_out(op, 0)->dtype;
  mm_fn_t fn = MOAI_NN_LOOKUP(table, dtype);
  if (!fn) {
    moai_nn_fail_dtype(ex, op, ith, gemm ? "gemm" : "matmul", dtype);
    return;
  }
  mm_problem_t p;
  if (gemm)
    mm_setup_gemm(ex, op, &p);
  else
    mm_setup_matmul(ex, op, &p);
  fn(&p, ith, nth);
}

static void matmul_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, mm_ref_by_dtype, 0);
}
static void matmul_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, mm_opt_by_dtype, 0);
}
static void matmul_avx2(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, mm_avx2_by_dtype, 0);
}
static void matmul_avx512(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, mm_avx512_by_dtype, 0);
}
static void gemm_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, gemm_ref_by_dtype, 1);
}
static void gemm_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, gemm_opt_by_dtype, 1);
}
static void gemm_avx2(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, gemm_avx2_by_dtype, 1);
}
static void gemm_avx512(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  mm_run(ex, op, ith, nth, gemm_avx512_by_dtype, 1);
}

void moai_nn_register_matmul(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_MATMUL] = matmul_ref;
    table[MOAI_KERNEL_GEMM] = gemm_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_MATMUL] = matmul_opt;
    table[MOAI_KERNEL_GEMM] = gemm_opt;
  } else if (isa == MOAI_ISA_AVX2) {
    table[MOAI_KERNEL_MATMUL] = matmul_avx2;
    table[MOAI_KERNEL_GEMM] = gemm_avx2;
  } else if (isa == MOAI_ISA_AVX512) {
    table[MOAI_KERNEL_MATMUL] = matmul_avx512;
    table[MOAI_KERNEL_GEMM] = gemm_avx512;
  }
}
