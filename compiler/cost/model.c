/* Transformer summaries built from numbers; parameter counts. */
#include "cost/model.h"

moai_model_desc_t moai_model_gpt(int64_t layers, int64_t hidden, int64_t heads, int64_t vocab,
                                 int64_t seq, int64_t batch) {
  moai_model_desc_t m = {0};
  m.is_decoder = true;
  m.layers = layers;
  m.hidden = hidden;
  m.heads = m.kv_heads = heads;
  m.head_dim = hidden / heads;
  m.ffn = 4 * hidden;
  m.dropout = m.biases = m.layernorm = m.learned_positions = m.tied_embeddings = true;
  m.vocab = vocab;
  m.seq = seq;
  m.batch = batch;
  m.dtype_bytes = 2;
  m.params = moai_model_count_params(&m);
  return m;
}

/* q [h,hq], k and v [h,hkv], o [hq,h], the MLP's 2 or 3 [h,f] matrices;
 * with biases hq + 2 hkv + h (attention) and f (x2 for SwiGLU) + h (MLP);
 * two norms of 2h (LayerNorm) or h (RMSNorm). GPT: 12h^2 + 13h, [N21] Eq. 2. */
int64_t moai_model_layer_params(const moai_model_desc_t *m) {
  int64_t h = m->hidden, hq = m->heads * m->head_dim, hkv = m->kv_heads * m->head_dim;
  int64_t mats = m->swiglu ? 3 : 2;
  int64_t p = h * hq + 2 * h * hkv + hq * h + mats * h * m->ffn;
  if (m->biases) p += hq + 2 * hkv + h + (mats - 1) * m->ffn + h;
  p += 2 * (m->layernorm ? 2 * h : h);
  return p;
}

int64_t moai_model_count_params(const moai_model_desc_t *m) {
  int64_t h = m->hidden;
  int64_t p = m->layers * moai_model_layer_params(m) + m->vocab * h;
  if (m->learned_positions) p += m->seq * h;
  if (!m->tied_embeddings) p += m->vocab * h;
  p += m->layernorm ? 2 * h : h;
  return p;
}

double moai_model_params_eq2(int64_t l, int64_t h, int64_t V, int64_t s) {
  double hd = (double)h, ld = (double)l;
  return 12.0 * ld * hd * hd *
         (1.0 + 13.0 / (12.0 * hd) + ((double)V + (double)s) / (12.0 * ld * hd));
}
