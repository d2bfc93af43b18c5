/* The cost model (docs/cost-model.md). Sources:
 *  [N21] Narayanan et al., "Efficient Large-Scale Language Model Training on
 *        GPU Clusters Using Megatron-LM", SC'21 (Eq. 2, Eq. 3, bubble, p2p).
 *  [K22] Korthikanti et al., "Reducing Activation Recomputation in Large
 *        Transformer Models", 2022 (Table 2, Sec. 4.1).
 *  [R20] Rajbhandari et al., "ZeRO", SC'20 (bytes per parameter, ZeRO-1).
 *  [P20] Patarasuk & Yuan, bandwidth-optimal ring all-reduce; alpha-beta. */
#include "cost/cost.h"

#include <math.h>
#include <string.h>

const char *moai_recompute_name(moai_recompute_t r) {
  return r == MOAI_RECOMPUTE_FULL ? "full" : r == MOAI_RECOMPUTE_SELECTIVE ? "selective" : "none";
}

double moai_cost_memory_budget(const moai_cluster_t *c) {
  return c->memory_bytes * c->memory_usable_fraction;
}

double moai_cost_flops_eq3(int64_t l, int64_t h, int64_t V, int64_t s, int64_t B) {
  double hd = (double)h;
  return 96.0 * (double)B * (double)s * (double)l * hd * hd *
         (1.0 + (double)s / (6.0 * hd) + (double)V / (16.0 * (double)l * hd));
}

/* Matmul FLOPs are 2 per multiply-add; per token a layer multiplies by
 * q [h,hq], k and v [h,hkv], o [hq,h] and the MLP's 2 (GELU) or 3 (SwiGLU)
 * [h,f] matrices; attention adds QK^T and AV, 2 s hq each per token, with
 * no causal halving, as [N21] Eq. 3 counts (24 s h^2 + 4 s^2 h for GPT). */
double moai_cost_layer_forward_flops(const moai_model_desc_t *m) {
  double s = (double)m->seq, h = (double)m->hidden;
  double hq = (double)(m->heads * m->head_dim), hkv = (double)(m->kv_heads * m->head_dim);
  double mats = m->swiglu ? 3.0 : 2.0;
  double weights = h * hq + 2.0 * h * hkv + hq * h + mats * h * (double)m->ffn;
  return 2.0 * s * weights + 4.0 * s * s * hq;
}

/* [K22] Sec. 4.1 / Table 2, at d bytes per element and 1-byte dropout
 * masks. Per layer for s x b tokens:
 *   replicated over tp: 2 norm inputs (2d sbh), QKV input and MLP input
 *     (2d sbh), 2 residual dropout masks (2 sbh)          -> 10 sbh for GPT
 *   split over tp: Q, K (d sb (hq+hkv)), V (d sb hkv), output projection
 *     input (d sb hq); MLP: GELU input and output (2d sbf) or SwiGLU gate,
 *     up and product (3d sbf)                              -> 24 sbh for GPT
 *   attention scores, split over tp: softmax output (d a s^2 b), dropout
 *     mask and output (a s^2 b (1+d))                      -> 5 a s^2 b
 * Selective recomputation drops the scores; full keeps the layer input
 * (d sbh, "2sbh" in Table 2). */
double moai_cost_layer_activation_bytes(const moai_model_desc_t *m, int64_t b, int64_t tp,
                                        moai_recompute_t r) {
  double d = (double)m->dtype_bytes, sb = (double)m->seq * (double)b, h = (double)m->hidden;
  double t = (double)tp, s = (double)m->seq;
  if (r == MOAI_RECOMPUTE_FULL) return d * sb * h;
  double hq = (double)(m->heads * m->head_dim), hkv = (double)(m->kv_heads * m->head_dim);
  double replicated = 4.0 * d * sb * h + (m->dropout ? 2.0 * sb * h : 0.0);
  double mlp = (m->swiglu ? 3.0 : 2.0) * d * sb * (double)m->ffn;
  double split = d * sb * (hq + hkv) + d * sb * hkv + d * sb * hq + mlp;
  double scores = (double)m->heads * s * s * (double)b * (d + (m->dropout ? 1.0 + d : 0.0));
  double bytes = replicated + split / t;
  if (r == MOAI_RECOMPUTE_NONE) bytes += scores / t;
  return bytes;
}

/* The most loaded stage is at least ceil(l/p) layers; the optimum bottleneck
 * is n + e for an integer n and e one of 0, first_extra, last_extra, so
 * trying each (3l candidates, O(p) check) finds it exactly: the min-max
 * contiguous partition ("linear partition") that a DP over layers computes,
 * specialised to uniform layers. */
static bool partition_fits(int64_t layers, int64_t p, double fe, double le, double x,
                           int64_t *out) {
  int64_t rem = layers;
  for (int64_t i = 0; i < p; ++i) {
    double extra = (i == 0 ? fe : 0.0) + (i == p - 1 ? le : 0.0);
    double capd = floor(x - extra + 1e-9);
    if (capd < 1) return false;
    int64_t cap = (int64_t)capd;
    int64_t n = rem - (p - 1 - i);
    if (n > cap) n = cap;
    if (i == p - 1 && rem > cap) return false;
    if (out) out[i] = i == p - 1 ? rem : n;
    rem -= (i == p - 1 ? rem : n);
  }
  return rem == 0;
}

double moai_cost_partition_layers(int64_t layers, int64_t p, double fe, double le,
                                  int64_t *out_layers) {
  double best = INFINITY;
  const double extras[4] = {0.0, fe, le, fe + le};
  for (int64_t n = 1; n <= layers; ++n)
    for (int k = 0; k < 4; ++k) {
      double x = (double)n + extras[k];
      if (x < best && partition_fits(layers, p, fe, le, x, NULL)) best = x;
    }
  if (out_layers && isfinite(best)) (void)partition_fits(layers, p, fe, le, best, out_layers);
  return best;
}

/* Ring all-reduce [P20]: 2(d-1)/d n bytes per device over the slowest link,
 * 2(d-1) latency steps. */
static double allreduce_seconds(double n, int64_t d, double bw, double alpha) {
  if (d <= 1 || n <= 0) return 0.0;
  double dd = (double)d;
  return 2.0 * (dd - 1.0) / dd * n / (bw * MOAI_COST_LINK_EFFICIENCY) + 2.0 * (dd - 1.0) * alpha;
}

/* Hierarchical data-parallel all-reduce. Ranks are ordered tp fastest, then
 * dp, then pp (Megatron's order), so a node of g devices holds
 * gi = min(dp, g/tp) members of a dp group: reduce-scatter + all-gather
 * inside the node, and an all-reduce of n/gi bytes between nodes, the gi
 * node-local shards in parallel over each device's own link. */
static double dp_allreduce_seconds(double n, int64_t dp, int64_t tp, const moai_cluster_t *c,
                                   double *out_bytes) {
  if (dp <= 1) return *out_bytes = 0.0, 0.0;
  int64_t gi = c->devices_per_node / tp;
  if (gi < 1) gi = 1;
  if (gi > dp) gi = dp;
  int64_t ni = dp / gi;
  double t = allreduce_seconds(n, gi, c->intra_bandwidth, c->intra_latency) +
             allreduce_seconds(n / (double)gi, ni, c->inter_bandwidth, c->inter_latency);
  *out_bytes = (gi > 1 ? 2.0 * (double)(gi - 1) / (double)gi * n : 0.0) +
               (ni > 1 ? 2.0 * (double)(ni - 1) / (double)ni * n / (double)gi : 0.0);
  return t;
}

static bool check(const moai_model_desc_t *m, const moai_cluster_t *c, const moai_strategy_t *s,
                  const char **why) {
  int64_t devices = moai_cluster_device_count(c);
  if (s->dp < 1 || s->tp < 1 || s->pp < 1 || s->micro_batches < 1)
    return *why = "degrees and micro-batches must be at least 1", false;
  if (s->dp * s->tp * s->pp != devices)
    return *why = "dp x tp x pp is not the device count", false;
  if (m->batch % s->dp != 0) return *why = "dp does not divide the global batch", false;
  if ((m->batch / s->dp) % s->micro_batches != 0)
    return *why = "micro-batches do not divide the batch per data-parallel rank", false;
  if (s->zero && s->dp == 1) return *why = "ZeRO-1 needs dp > 1", false;
  if (!m->is_decoder) {
    if (s->tp > 1 || s->pp > 1)
      return *why = "not a recognised decoder: data parallelism only", false;
    if (s->recompute != MOAI_RECOMPUTE_NONE)
      return *why = "not a recognised decoder: no recomputation", false;
    return true;
  }
  if (s->tp > c->devices_per_node || c->devices_per_node % s->tp != 0)
    return *why = "tp does not divide the devices of a node", false;
  if (m->heads % s->tp != 0) return *why = "tp does not divide the attention heads", false;
  if (m->kv_heads % s->tp != 0) return *why = "tp does not divide the key/value heads", false;
  if (s->pp > m->layers) return *why = "more pipeline stages than layers", false;
  if (s->pp > 1 && s->micro_batches < s->pp)
    return *why = "fewer micro-batches than pipeline stages", false;
  return true;
}

/* Non-decoders: data parallelism over the weights found in the module;
 * 6 FLOPs per parameter per token ([N21] / PaLM's 6N, a token per sample
 * since the sequence is unknown), activations from the memory plan. */
static void evaluate_generic(const moai_model_desc_t *m, const moai_cluster_t *c,
                             const moai_strategy_t *s, moai_cost_t *o) {
  double P = (double)m->params, d = (double)m->dtype_bytes;
  int64_t b = m->batch / s->dp / s->micro_batches;
  double peak = moai_cluster_peak_flops(c, m->dtype_bytes) * MOAI_COST_GEMM_EFFICIENCY;
  o->micro_batch_size = b;
  o->model_flops = o->hardware_flops = 6.0 * P * (double)m->batch;
  o->compute_seconds = o->hardware_flops / (double)s->dp / peak;
  double bytes = 0;
  o->dp_comm_seconds = dp_allreduce_seconds(P * d, s->dp, 1, c, &bytes);
  o->comm_bytes = bytes;
  double state = d == 2 ? 12.0 : 8.0;
  o->weight_bytes = P * d;
  o->grad_bytes = P * d;
  o->optimizer_bytes = P * state / (s->zero ? (double)s->dp : 1.0);
  o->activation_bytes = (double)m->generic_activation_bytes * (double)b;
  o->optimizer_seconds = P * (d == 2 ? 30.0 : 28.0) / (s->zero ? (double)s->dp : 1.0) /
                         c->memory_bandwidth;
  o->step_seconds = o->compute_seconds + o->dp_comm_seconds + o->optimizer_seconds;
  o->memory_bytes = o->weight_bytes + o->grad_bytes + o->optimizer_bytes + o->activation_bytes;
}

bool moai_cost_evaluate(const moai_model_desc_t *m, const moai_cluster_t *c,
                        const moai_strategy_t *s, moai_cost_t *out, const char **why) {
  const char *w = NULL;
  if (!check(m, c, s, &w)) {
    if (why) *why = w;
    return false;
  }
  moai_cost_t o;
  memset(&o, 0, sizeof(o));
  if (!m->is_decoder) {
    evaluate_generic(m, c, s, &o);
    *out = o;
    return true;
  }
  const int64_t p = s->pp, mb = s->micro_batches, b = m->batch / s->dp / mb;
  const double t = (double)s->tp, d = (double)m->dtype_bytes;
  const double sb = (double)m->seq * (double)b, h = (double)m->hidden, V = (double)m->vocab;
  const double peak = moai_cluster_peak_flops(c, m->dtype_bytes) * MOAI_COST_GEMM_EFFICIENCY;
  const double hbm = c->memory_bandwidth;
  o.micro_batch_size = b;

  /* One layer, one micro-batch, forward, per device: roofline sum of the
   * tp-split GEMMs and of the elementwise ops, which move each stored
   * activation byte MOAI_COST_ELEMENTWISE_TRAFFIC times (written, read). */
  double layer_flops = moai_cost_layer_forward_flops(m) * (double)b;
  double score_flops = 4.0 * (double)m->seq * (double)m->seq * (double)(m->heads * m->head_dim) *
                       (double)b;
  double act_none = moai_cost_layer_activation_bytes(m, b, s->tp, MOAI_RECOMPUTE_NONE);
  double act_sel = moai_cost_layer_activation_bytes(m, b, s->tp, MOAI_RECOMPUTE_SELECTIVE);
  double fwd = layer_flops / t / peak + MOAI_COST_ELEMENTWISE_TRAFFIC * act_none / hbm;
  /* Megatron tensor parallelism [N21 Sec. 2.3]: 2 all-reduces of the s b h
   * activations per layer forward (after attention and MLP), 2 backward;
   * full recomputation repeats the forward ones. */
  double tp_msg = d * sb * h;
  double tp_ar = 2.0 * allreduce_seconds(tp_msg, s->tp, c->intra_bandwidth, c->intra_latency);
  double layer_fwd = fwd + tp_ar, layer_bwd = 2.0 * fwd + tp_ar;
  double layer_rec = 0.0;
  if (s->recompute == MOAI_RECOMPUTE_FULL) layer_rec = layer_fwd;
  else if (s->recompute == MOAI_RECOMPUTE_SELECTIVE)
    layer_rec = score_flops / t / peak + MOAI_COST_ELEMENTWISE_TRAFFIC * (act_none - act_sel) / hbm;
  double layer_time = layer_fwd + layer_bwd + layer_rec;
  /* Logits and loss on the last stage: 2 s b h V / t FLOPs forward, twice
   * that backward ([N21] Eq. 3's V/16lh term), plus the fp32 softmax. */
  double head_time = 3.0 * (2.0 * sb * h * V / t / peak) +
                     3.0 * MOAI_COST_ELEMENTWISE_TRAFFIC * sb * V / t * 4.0 / hbm;
  double embed_time = 3.0 * MOAI_COST_ELEMENTWISE_TRAFFIC * d * sb * h / hbm;

  int64_t stage_layers[4096];
  if (p > (int64_t)(sizeof(stage_layers) / sizeof(stage_layers[0]))) {
    if (why) *why = "more than 4096 pipeline stages";
    return false;
  }
  double bottleneck = p == 1 ? (double)m->layers + (embed_time + head_time) / layer_time
                             : moai_cost_partition_layers(m->layers, p, embed_time / layer_time,
                                                          head_time / layer_time, stage_layers);
  if (p == 1) stage_layers[0] = m->layers;
  int64_t max_layers = 0;
  for (int64_t i = 0; i < p; ++i)
    if (stage_layers[i] > max_layers) max_layers = stage_layers[i];
  o.max_stage_layers = max_layers;

  /* Pipeline p2p [N21 Sec. 4.1, scatter/gather]: each boundary sends the
   * s b h activations forward and their gradient backward, split over tp;
   * across nodes when a stage (tp x dp devices) fills a node. */
  double p2p = 0.0;
  if (p > 1) {
    bool across = s->tp * s->dp >= c->devices_per_node;
    double bw = across ? c->inter_bandwidth : c->intra_bandwidth;
    double lat = across ? c->inter_latency : c->intra_latency;
    p2p = 2.0 * (d * sb * h / t / (bw * MOAI_COST_LINK_EFFICIENCY) + lat);
  }
  double per_mb = bottleneck * layer_time + p2p;
  /* 1F1B [N21 Sec. 2.2]: (m + p - 1) slots of the slowest stage; the
   * bubble is (p-1)/m of the ideal time. */
  o.bubble_fraction = (double)(p - 1) / (double)mb;
  o.bubble_seconds = (double)(p - 1) * per_mb;
  double slots = (double)(mb + p - 1);
  double tp_per_layer = (2.0 + (s->recompute == MOAI_RECOMPUTE_FULL ? 1.0 : 0.0)) * tp_ar;
  o.compute_seconds = (double)mb * bottleneck * (layer_time - tp_per_layer);
  o.recompute_seconds = (double)mb * (double)max_layers * layer_rec;
  o.tp_comm_seconds = (double)mb * (double)max_layers * tp_per_layer;
  o.pp_comm_seconds = (double)mb * p2p;

  /* Parameters of each stage per device; the first stage holds the
   * embeddings (and learned positions), the last the final norm and the
   * lm_head (a copy of the embedding when tied and p > 1, as Megatron). */
  double lp = (double)moai_model_layer_params(m);
  double emb = V * h + (m->learned_positions ? (double)m->seq * h : 0.0);
  double head = (m->layernorm ? 2.0 : 1.0) * h + (m->tied_embeddings && p == 1 ? 0.0 : V * h);
  double worst_mem = 0.0, worst_params = 0.0;
  double state = d == 2 ? 12.0 : 8.0; /* [R20]: fp32 master+m+v, or m+v */
  double shard = s->zero ? (double)s->dp : 1.0;
  for (int64_t i = 0; i < p; ++i) {
    double params = (double)stage_layers[i] * lp + (i == 0 ? emb : 0.0) + (i == p - 1 ? head : 0.0);
    params /= t;
    double inflight = (double)(p - i < mb ? p - i : mb); /* 1F1B: p - i micro-batches alive */
    double act = (double)stage_layers[i] * inflight *
                 moai_cost_layer_activation_bytes(m, b, s->tp, s->recompute);
    /* Temporaries: the layer being recomputed holds its full activations;
     * the last stage holds the logits (d bytes) and their fp32 softmax. */
    double tmp = s->recompute == MOAI_RECOMPUTE_FULL ? act_none
                 : s->recompute == MOAI_RECOMPUTE_SELECTIVE ? act_none - act_sel : 0.0;
    if (i == p - 1) tmp += sb * V / t * (d + 4.0);
    double weights = params * d, grads = params * d, opt = params * state / shard;
    double total = weights + grads + opt + act + tmp;
    if (params > worst_params) worst_params = params;
    if (total > worst_mem) {
      worst_mem = total;
      o.weight_bytes = weights;
      o.grad_bytes = grads;
      o.optimizer_bytes = opt;
      o.activation_bytes = act;
      o.temp_bytes = tmp;
    }
  }
  o.memory_bytes = worst_mem;

  /* Data parallel: the gradients of the largest stage, reduce-scattered and
   * all-gathered (ZeRO-1 gathers parameters instead of gradients: the same
   * volume [R20 Sec. 7]). */
  double dp_bytes = 0.0;
  o.dp_comm_seconds = dp_allreduce_seconds(worst_params * d, s->dp, s->tp, c, &dp_bytes);
  /* AdamW reads w, g, master, m, v and writes w, master, m, v: 30 bytes per
   * parameter in mixed precision, 28 in f32; ZeRO-1 updates a 1/dp shard. */
  o.optimizer_seconds = worst_params * (d == 2 ? 30.0 : 28.0) / shard / hbm;
  o.step_seconds = slots * per_mb + o.dp_comm_seconds + o.optimizer_seconds;

  double tp_bytes = s->tp > 1 ? 2.0 * (t - 1.0) / t * tp_msg : 0.0;
  o.comm_bytes = dp_bytes + (double)mb * (double)max_layers *
                                (4.0 + (s->recompute == MOAI_RECOMPUTE_FULL ? 2.0 : 0.0)) * tp_bytes +
                 (p > 1 ? (double)mb * 2.0 * d * sb * h / t : 0.0);

  double fl = moai_cost_layer_forward_flops(m) * (double)m->batch * (double)m->layers +
              2.0 * (double)m->seq * (double)m->batch * h * V;
  o.model_flops = 3.0 * fl;
  double rec = s->recompute == MOAI_RECOMPUTE_FULL
                   ? moai_cost_layer_forward_flops(m) * (double)m->batch * (double)m->layers
               : s->recompute == MOAI_RECOMPUTE_SELECTIVE
                   ? 4.0 * (double)m->seq * (double)m->seq * (double)(m->heads * m->head_dim) *
                         (double)m->batch * (double)m->layers
                   : 0.0;
  o.hardware_flops = o.model_flops + rec;
  *out = o;
  return true;
}
