/* The cost model against Megatron-LM SC'21 Table 1 (Narayanan et al.):
 * for every row, the planner picks the published (t, p) or a plan it
 * predicts faster, and its predicted TFLOP/s per GPU (Eq. 3 FLOPs, full
 * recomputation, as the paper counts) for the published (t, p) is within
 * 25% of the published figure. Prints the table side by side. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cost/planner.h"
#include "moai_test.h"

typedef struct row_t {
  double params_b;
  int64_t heads, hidden, layers, t, p, gpus, batch;
  double tflops;
} row_t;

static const row_t kRows[] = {
    {1.7, 24, 2304, 24, 1, 1, 32, 512, 137},       {3.6, 32, 3072, 30, 2, 1, 64, 512, 138},
    {7.5, 32, 4096, 36, 4, 1, 128, 512, 142},      {18.4, 48, 6144, 40, 8, 1, 256, 1024, 135},
    {39.1, 64, 8192, 48, 8, 2, 512, 1536, 138},    {76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140},
    {145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148}, {310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155},
    {529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163},
    {1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163},
};
#define ROWS (sizeof(kRows) / sizeof(kRows[0]))
static const int64_t V = 51200, S = 2048;

/* 8 A100-80GB per server, NVLink inside, HDR InfiniBand between; the
 * figures of examples/clusters/a100-80gb-2x8-infiniband.json. */
static moai_cluster_t megatron_cluster(int64_t gpus) {
  moai_cluster_t c = {.nodes = gpus / 8, .devices_per_node = 8};
  snprintf(c.name, sizeof(c.name), "Megatron A100-80GB x %lld", (long long)gpus);
  c.memory_bytes = 80.0 * 1024 * 1024 * 1024;
  c.memory_usable_fraction = 0.9;
  c.peak_flops_f32 = 19.5e12;
  c.peak_flops_bf16 = c.peak_flops_f16 = 312e12;
  c.memory_bandwidth = 2.039e12;
  c.intra_bandwidth = 300e9;
  c.intra_latency = 5e-6;
  c.inter_bandwidth = 25e9;
  c.inter_latency = 10e-6;
  return c;
}

static void test_eq2_parameter_counts(void) {
  for (size_t i = 0; i < ROWS; ++i) {
    const row_t *r = &kRows[i];
    double p = moai_model_params_eq2(r->layers, r->hidden, V, S) / 1e9;
    CU_ASSERT_DOUBLE_EQUAL(round(p * 10) / 10, r->params_b, 1e-9);
    /* The layer-by-layer count adds the final LayerNorm (2h) to Eq. 2. */
    moai_model_desc_t m = moai_model_gpt(r->layers, r->hidden, r->heads, V, S, r->batch);
    double eq2 = moai_model_params_eq2(r->layers, r->hidden, V, S) + 2.0 * r->hidden;
    CU_ASSERT_DOUBLE_EQUAL((double)m.params / eq2, 1.0, 1e-12);
  }
}

/* The fastest fitting plan with the published (t, p) and full
 * recomputation (the paper's setting), over micro-batch counts. */
static bool published(const moai_model_desc_t *m, const moai_cluster_t *c, const row_t *r,
                      moai_candidate_t *out) {
  bool found = false;
  int64_t dp = r->gpus / (r->t * r->p);
  for (int64_t mb = 1; mb <= r->batch / dp; ++mb) {
    moai_strategy_t s = {dp, r->t, r->p, mb, MOAI_RECOMPUTE_FULL, 0};
    moai_cost_t cost;
    if (!moai_cost_evaluate(m, c, &s, &cost, NULL)) continue;
    if (cost.memory_bytes > moai_cost_memory_budget(c)) continue;
    if (!found || cost.step_seconds < out->cost.step_seconds) {
      out->strategy = s;
      out->cost = cost;
      found = true;
    }
  }
  return found;
}

static void test_megatron_table(void) {
  printf("\n  params    t   p  GPUs batch | published TFLOP/s | moai (t,p) TFLOP/s  err  | "
         "planner: dp  tp  pp   mb recompute  zero  step_s  TFLOP/s  mem_GiB\n");
  double worst = 0;
  for (size_t i = 0; i < ROWS; ++i) {
    const row_t *r = &kRows[i];
    moai_model_desc_t m = moai_model_gpt(r->layers, r->hidden, r->heads, V, S, r->batch);
    moai_cluster_t c = megatron_cluster(r->gpus);
    moai_candidate_t pub;
    bool found = published(&m, &c, r, &pub);
    CU_ASSERT_TRUE(found);
    if (!found) continue;
    double eq3 = moai_cost_flops_eq3(r->layers, r->hidden, V, S, r->batch);
    CU_ASSERT_DOUBLE_EQUAL(pub.cost.hardware_flops / eq3, 1.0, 1e-9);
    double tflops = eq3 / pub.cost.step_seconds / (double)r->gpus / 1e12;
    double err = tflops / r->tflops - 1.0;
    if (fabs(err) > worst) worst = fabs(err);
    CU_ASSERT_TRUE(fabs(err) <= 0.25);

    moai_plan_result_t plan;
    moai_status_t st = moai_plan_search(&m, &c, NULL, &plan);
    CU_ASSERT_PTR_NULL(st);
    moai_status_free(st);
    if (st) continue;
    CU_ASSERT_TRUE(plan.found);
    const moai_candidate_t *b = &plan.best;
    bool same = b->strategy.tp == r->t && b->strategy.pp == r->p;
    CU_ASSERT_TRUE(same || b->cost.step_seconds <= pub.cost.step_seconds);
    double ptf = b->cost.hardware_flops / b->cost.step_seconds / (double)r->gpus / 1e12;
    printf("  %6.1fB %3lld %3lld %5lld %5lld | %17.0f | %18.1f %+5.1f%% | %10lld %3lld %3lld %4lld %-9s %5d %7.2f %8.1f %8.1f%s\n",
           r->params_b, (long long)r->t, (long long)r->p, (long long)r->gpus, (long long)r->batch,
           r->tflops, tflops, 100 * err, (long long)b->strategy.dp, (long long)b->strategy.tp,
           (long long)b->strategy.pp, (long long)b->strategy.micro_batches,
           moai_recompute_name(b->strategy.recompute), b->strategy.zero, b->cost.step_seconds, ptf,
           b->cost.memory_bytes / (1024.0 * 1024 * 1024), same ? "  (published t,p)" : "");
    moai_plan_result_reset(&plan);
  }
  printf("  worst error of the predicted TFLOP/s at the published (t, p): %.1f%%\n", 100 * worst);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {{"eq2_parameter_counts", test_eq2_parameter_counts},
                                {"megatron_table", test_megatron_table},
                                CU_TEST_INFO_NULL};
  moai_test_add_suite("megatron", tests);
}
