/* moai-fuse: rewrites the op chains exporters emit for attention, RMSNorm,
 * SwiGLU and rotary embeddings into moai.attention, rms_norm, swiglu and
 * rotary, and linear layers into gemm (docs/passes.md, moai-fuse):
 *   softmax(matmul(q, transpose_last2(k')) {/ c | * c} [+ mask]) @ v'
 *     with k', v' = k, v or the grouped-query repeat
 *     reshape(expand(unsqueeze(k, 2)))      -> moai.attention(q, k, v, mask?) {scale}
 *     with mask = where(C and key padding != 0, 0, neg), C a causal /
 *     sliding-window pattern           -> moai.attention(q, k, v, key_padding)
 *                                            {scale, causal, window, masked_value = neg}
 *   w * (x / sqrt(mean(x^2, -1, keepdim) + eps)), or x * (1 / sqrt(...))
 *                                             -> moai.rms_norm(x, w) {epsilon}
 *   matmul(x [..., K], transpose(w [N, K]))   -> reshape(gemm(reshape(x, [rows, K]), w)
 *                                                {transB = 1}, [..., N])
 *   mul(mul(g, sigmoid(g)), u), operands of one shape -> moai.swiglu(g, u)
 *   add(mul(x, cos), mul(concat(neg(x[..., D/2:]), x[..., :D/2]), sin)),
 *     cos/sin broadcasting to x                 -> moai.rotary(x, cos, sin)
 * (every add and mul in either operand order).
 * A chain is fused only when its intermediate values have no other users. */
#ifndef MOAI_PASSES_FUSE_H
#define MOAI_PASSES_FUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_fuse_options_t {
  bool attention; /* fuse attention chains */
  bool rms_norm;  /* fuse RMSNorm chains */
  bool linear;    /* matmul by a transposed 2-D weight -> gemm {transB} */
  bool swiglu;    /* fuse silu(g) * u */
  bool rotary;    /* fuse rotary position embeddings */
} moai_fuse_options_t;

typedef struct moai_fuse_stats_t {
  size_t attention; /* moai.attention ops made */
  size_t rms_norm;  /* moai.rms_norm ops made */
  size_t linear;    /* matmul(x, transpose(w)) rewritten to gemm */
  size_t swiglu;    /* moai.swiglu ops made */
  size_t rotary;    /* moai.rotary ops made */
} moai_fuse_stats_t;

moai_fuse_options_t moai_fuse_options_default(void);

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_fuse_pass_create(const moai_fuse_options_t *options);

/* The pass's logic on one operation (usually a module); *out_stats may be
 * NULL. */
void moai_fuse_run(MlirOperation root, const moai_fuse_options_t *options,
                   moai_fuse_stats_t *out_stats);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_FUSE_H */
