/* A transformer summarised in the numbers the cost model needs
 * (docs/cost-model.md, "Model"). Built from numbers (the Megatron table) or
 * extracted from a moai-dialect module. Plain values; nothing allocates. */
#ifndef MOAI_COST_MODEL_H
#define MOAI_COST_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_model_desc_t {
  /* false: not a recognised decoder; only `params`, `batch`,
   * `dtype_bytes` and `generic_activation_bytes` are meaningful and the
   * planner offers data parallelism alone. */
  bool is_decoder;
  int64_t layers, hidden, heads, kv_heads, head_dim;
  int64_t ffn;        /* MLP width */
  bool swiglu;        /* 3 MLP matrices (gate, up, down) instead of 2 */
  bool dropout;       /* dropout masks are stored (Megatron's GPT) */
  bool biases;        /* linear layers carry biases */
  bool layernorm;     /* LayerNorm (weight + bias) instead of RMSNorm */
  bool learned_positions; /* an s x h position embedding (GPT) */
  bool tied_embeddings;   /* lm_head shares the embedding */
  int64_t vocab, seq, batch; /* batch: the global batch per optimizer step */
  int64_t params;     /* every trainable parameter */
  int dtype_bytes;    /* 2: bf16 mixed precision, 4: f32 */
  int64_t generic_activation_bytes; /* non-decoders: the arena per sample */
} moai_model_desc_t;

/* Megatron's GPT (Narayanan et al. SC'21): 4h GELU MLP, h-wide q/k/v,
 * biases, LayerNorm, learned positions, tied embeddings, dropout, bf16. */
moai_model_desc_t moai_model_gpt(int64_t layers, int64_t hidden, int64_t heads,
                                 int64_t vocab, int64_t seq, int64_t batch);

/* Parameters of one decoder layer (attention, MLP, norms, biases). */
int64_t moai_model_layer_params(const moai_model_desc_t *m);

/* Every parameter: layers, embeddings, final norm, lm_head. */
int64_t moai_model_count_params(const moai_model_desc_t *m);

/* Narayanan et al. SC'21, Eq. 2: P = 12 l h^2 (1 + 13/(12h) + (V+s)/(12lh)). */
double moai_model_params_eq2(int64_t layers, int64_t hidden, int64_t vocab, int64_t seq);

/* Recognises a decoder in a module after moai-shape-infer from its
 * moai.weight ops (embedding [V,h], per-layer q/k/v/o, gate/up/down or
 * fc1/fc2, norms) and its graph inputs ([batch, seq] token ids). When the
 * module is not a recognisable decoder, fails with the reason and still
 * fills *out_generic with the weights' parameter count and batch (from the
 * first input) so that data parallelism alone can be planned. */
moai_status_t moai_model_extract(MlirModule module, moai_model_desc_t *out,
                                 moai_model_desc_t *out_generic) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_COST_MODEL_H */
