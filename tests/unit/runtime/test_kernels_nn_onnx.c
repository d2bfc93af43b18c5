/* nn kernels against ONNX's own node test data (Debian's libonnx-testdata,
 * /usr/share/libonnx-testdata/data/node, or $MOAI_ONNX_TESTDATA_DIR): an
 * implementation independent of moai.
 *
 * Every single-node test whose folder starts with one of `k_prefixes` and
 * whose op is one of the nn kernels' is run: model.onnx gives the node's
 * attributes (translated here into the ABI's attribute structs the way the
 * compiler does: negative axes normalised, auto_pad resolved into pads,
 * CumSum's axis and Trilu's k folded from their constant inputs, and then
 * once more passed as runtime operands; MaxPool's Indices compared too), the
 * test_data_set_0 protobufs give the inputs and the expected outputs, whose
 * shapes are the kernel's output shapes. Both the optimised kernel (3
 * threads) and the reference (1 thread) must match at ONNX's backend-test
 * tolerance (numpy allclose, rtol 1e-3, atol 1e-7). The *_expanded variants
 * (the same op decomposed into others) and ops of other families that share
 * a prefix (MatMulInteger, ConvInteger, ConvTranspose) are skipped. A missing
 * data folder fails the test; at least k_min_cases must run, so that a
 * reader that silently skips everything cannot pass. Set MOAI_TEST_VERBOSE=1 to list every case. */

#include "moai_test.h"
#include "test_kernels_nn_support.h"

#define ONNX_RTOL 1e-3
#define ONNX_ATOL 1e-7
#define MAX_VALUES 8
#include "onnx_testdata_support.h"

static const char *const k_prefixes[] = {
    "test_matmul", "test_gemm", "test_softmax", "test_logsoftmax", "test_sce",
    "test_conv", "test_basic_conv", "test_maxpool", "test_averagepool",
    "test_globalaveragepool", "test_batchnorm", "test_layer_normalization",
    "test_cumsum", "test_tril", "test_triu"};
static const int k_min_cases = 120;

/* Reads model.onnx and test_data_set_0: 1 when done, 0 (with `why`) when
 * a file cannot be read, -1 when the model is not a single node. */
static int case_load(onnx_case_t *c, const char *dir, char *why, size_t why_len) {
  memset(c, 0, sizeof(*c));
  c->name = strrchr(dir, '/') + 1;
  char path[1200];
  snprintf(path, sizeof(path), "%s/model.onnx", dir);
  if (!case_read_model(c, path)) {
    snprintf(why, why_len, "cannot read %.200s", path);
    return 0;
  }
  const Onnx__GraphProto *g = c->model->graph;
  if (g->n_node != 1) {
    snprintf(why, why_len, "%zu nodes", g->n_node);
    return -1;
  }
  c->node = g->node[0];
  for (size_t i = 0; i < g->n_input && i < MAX_VALUES; ++i) {
    snprintf(path, sizeof(path), "%s/test_data_set_0/input_%zu.pb", dir, i);
    if (!load_value(path, g->input[i]->name, ONNX_ANY_DTYPE, &c->inputs[c->n_inputs])) {
      snprintf(why, why_len, "cannot read %.200s", path);
      return 0;
    }
    ++c->n_inputs;
  }
  for (size_t i = 0; i < g->n_output && i < MAX_VALUES; ++i) {
    snprintf(path, sizeof(path), "%s/test_data_set_0/output_%zu.pb", dir, i);
    if (!load_value(path, g->output[i]->name, ONNX_ANY_DTYPE, &c->outputs[c->n_outputs])) {
      snprintf(why, why_len, "cannot read %.200s", path);
      return 0;
    }
    ++c->n_outputs;
  }
  return 1;
}

/* The integer value of a constant input (CumSum axis, Trilu k). */
static int64_t value_scalar(const value_t *v) { return (int64_t)nn_load(v->data, v->dtype, 0); }

/* Window attributes as the compiler lowers them (auto_pad -> pads). */
static void window_attrs(const onnx_case_t *c, const value_t *x, const value_t *y,
                         const value_t *w, moai_attrs_window_t *at) {
  memset(at, 0, sizeof(*at));
  int r = x->rank - 2;
  at->spatial_rank = r;
  at->count_include_pad = (int32_t)attr_i(c, "count_include_pad", 0);
  at->group = attr_i(c, "group", 1);
  attr_ints(c, "strides", at->strides, (size_t)r, 1);
  attr_ints(c, "dilations", at->dilations, (size_t)r, 1);
  if (!attr_ints(c, "kernel_shape", at->kernel, (size_t)r, 1) && w)
    for (int a = 0; a < r; ++a) at->kernel[a] = w->dims[2 + a];
  attr_ints(c, "pads", at->pads, 2 * (size_t)r, 0);
  at->storage_order = (int32_t)attr_i(c, "storage_order", 0);
  int upper = attr_s_is(c, "auto_pad", "SAME_UPPER"), lower = attr_s_is(c, "auto_pad", "SAME_LOWER");
  if (attr_s_is(c, "auto_pad", "VALID")) memset(at->pads, 0, sizeof(at->pads));
  if (upper || lower)
    for (int a = 0; a < r; ++a) {
      int64_t total = (y->dims[2 + a] - 1) * at->strides[a] +
                      (at->kernel[a] - 1) * at->dilations[a] + 1 - x->dims[2 + a];
      if (total < 0) total = 0;
      int64_t small = total / 2, big = total - small;
      at->pads[a] = upper ? small : big;
      at->pads[r + a] = upper ? big : small;
    }
}

/* Whether the node has a parameter input the kernels can also read at run
 * time (CumSum's axis, Trilu's k). */
static int has_runtime_form(const onnx_case_t *c) {
  const char *t = c->node->op_type;
  return !strcmp(t, "CumSum") || (!strcmp(t, "Trilu") && node_input(c, 1) != NULL);
}

/* Kernel id, operand list and attributes for the node; 0 when the op is not
 * one of the nn kernels (`why` says which). Operands are node input indices
 * (-1: absent optional). With `runtime`, CumSum's axis and Trilu's k stay
 * operands (runtime_axis, runtime_k) instead of being folded. */
static int translate(const onnx_case_t *c, int runtime, uint32_t *kernel, int *ops, int *n_ops,
                     unsigned char *attrs, uint32_t *attrs_size, char *why, size_t why_len) {
  const char *t = c->node->op_type;
  const value_t *x = node_input(c, 0);
  int n_in = (int)c->node->n_input;
  *n_ops = 0;
  *attrs_size = 0;
  for (int i = 0; i < n_in; ++i) ops[(*n_ops)++] = c->node->input[i][0] ? i : -1;
  if (!strcmp(t, "MatMul")) {
    *kernel = MOAI_KERNEL_MATMUL;
  } else if (!strcmp(t, "Gemm")) {
    *kernel = MOAI_KERNEL_GEMM;
    moai_attrs_gemm_t at = {attr_f(c, "alpha", 1.0f), attr_f(c, "beta", 1.0f),
                            (int32_t)attr_i(c, "transA", 0), (int32_t)attr_i(c, "transB", 0)};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "Softmax") || !strcmp(t, "LogSoftmax")) {
    if (c->opset < 13) {
      snprintf(why, why_len, "%s opset %lld (< 13)", t, (long long)c->opset);
      return 0;
    }
    *kernel = t[0] == 'S' ? MOAI_KERNEL_SOFTMAX : MOAI_KERNEL_LOG_SOFTMAX;
    int64_t axis = attr_i(c, "axis", -1);
    moai_attrs_axis_t at = {axis < 0 ? axis + x->rank : axis};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "SoftmaxCrossEntropyLoss")) {
    *kernel = MOAI_KERNEL_SOFTMAX_CROSS_ENTROPY_LOSS;
    const Onnx__AttributeProto *ii = attr(c, "ignore_index");
    moai_attrs_sce_t at = {attr_s_is(c, "reduction", "none") ? 0
                           : attr_s_is(c, "reduction", "sum") ? 1 : 2,
                           ii != NULL, ii ? ii->i : 0};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "Conv") || !strcmp(t, "MaxPool") || !strcmp(t, "AveragePool")) {
    *kernel = t[0] == 'C' ? MOAI_KERNEL_CONV : t[0] == 'M' ? MOAI_KERNEL_MAX_POOL
                                                           : MOAI_KERNEL_AVERAGE_POOL;
    moai_attrs_window_t at;
    window_attrs(c, x, node_output(c, 0), t[0] == 'C' ? node_input(c, 1) : NULL, &at);
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "GlobalAveragePool")) {
    *kernel = MOAI_KERNEL_GLOBAL_AVERAGE_POOL;
  } else if (!strcmp(t, "BatchNormalization")) {
    *kernel = MOAI_KERNEL_BATCH_NORMALIZATION;
    moai_attrs_batch_norm_t at = {attr_f(c, "epsilon", 1e-5f), attr_f(c, "momentum", 0.9f),
                                  (int32_t)attr_i(c, "training_mode", 0), 0};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "LayerNormalization")) {
    *kernel = MOAI_KERNEL_LAYER_NORMALIZATION;
    int64_t axis = attr_i(c, "axis", -1);
    moai_attrs_layer_norm_t at = {axis < 0 ? axis + x->rank : axis, attr_f(c, "epsilon", 1e-5f), 0};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "CumSum") && runtime) {
    *kernel = MOAI_KERNEL_CUMSUM;
    moai_attrs_cumsum_t at = {.exclusive = (int32_t)attr_i(c, "exclusive", 0),
                              .reverse = (int32_t)attr_i(c, "reverse", 0), .runtime_axis = 1};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "Trilu") && runtime) {
    *kernel = MOAI_KERNEL_TRILU;
    moai_attrs_trilu_t at = {.upper = (int32_t)attr_i(c, "upper", 1), .runtime_k = 1};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
  } else if (!strcmp(t, "CumSum")) {
    *kernel = MOAI_KERNEL_CUMSUM;
    int64_t axis = value_scalar(node_input(c, 1));
    moai_attrs_cumsum_t at = {.axis = axis < 0 ? axis + x->rank : axis,
                              .exclusive = (int32_t)attr_i(c, "exclusive", 0),
                              .reverse = (int32_t)attr_i(c, "reverse", 0)};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
    *n_ops = 1; /* the axis is folded */
  } else if (!strcmp(t, "Trilu")) {
    *kernel = MOAI_KERNEL_TRILU;
    const value_t *k = node_input(c, 1);
    moai_attrs_trilu_t at = {.k = k ? value_scalar(k) : 0, .upper = (int32_t)attr_i(c, "upper", 1)};
    memcpy(attrs, &at, *attrs_size = sizeof(at));
    *n_ops = 1; /* k is folded */
  } else {
    snprintf(why, why_len, "op %s is not an nn kernel", t);
    return 0;
  }
  return 1;
}

/* Runs one form of a case with both kernel versions: 1 when it passes, 0
 * when it fails, -1 (with `why`) when its op is not an nn kernel. */
static int run_form(const onnx_case_t *c, int runtime, char *why, size_t why_len) {
  uint32_t kernel;
  int ops[MAX_VALUES], n_ops;
  unsigned char attrs[NN_MAX_ATTRS];
  uint32_t attrs_size;
  if (!translate(c, runtime, &kernel, ops, &n_ops, attrs, &attrs_size, why, why_len)) return -1;
  size_t need = 0;
  for (int i = 0; i < c->n_inputs; ++i) need += c->inputs[i].bytes + 64;
  for (int i = 0; i < c->n_outputs; ++i) need += c->outputs[i].bytes + 64;
  nn_case_t k;
  if (!nn_case_init(&k, kernel, need + 64)) return 0;
  for (int i = 0; i < n_ops; ++i) {
    const value_t *v = ops[i] >= 0 ? node_input(c, (size_t)ops[i]) : NULL;
    if (!v) {
      nn_case_add_in_none(&k);
      continue;
    }
    uint32_t idx = nn_case_add_in(&k, v->dtype, v->rank, v->dims);
    memcpy(nn_case_in_ptr(&k, idx), v->data, v->bytes);
  }
  for (size_t i = 0; i < c->node->n_output; ++i) {
    const value_t *v = node_output(c, i);
    if (v)
      nn_case_add_out(&k, v->dtype, v->rank, v->dims);
    else
      nn_case_add_out_none(&k);
  }
  nn_case_set_attrs(&k, attrs, attrs_size);

  int ok = 1;
  static const struct { moai_isa_t isa; int nth; } runs[] = {{MOAI_ISA_GENERIC, 3},
                                                             {MOAI_ISA_REFERENCE, 1}};
  for (size_t r = 0; r < 2; ++r) {
    moai_kernel_status_t st;
    char what[1300];
    snprintf(what, sizeof(what), "%s [%s%s]", c->name,
             moai_isa_name(runs[r].isa), runtime ? ", runtime parameter" : "");
    nn_case_poison_outputs(&k);
    if (nn_case_run(&k, runs[r].isa, runs[r].nth, &st)) {
      fprintf(stderr, "%s: kernel failed: %s\n", what, st.message);
      ok = 0;
      continue;
    }
    for (uint32_t i = 0; i < k.n_out; ++i) {
      const value_t *v = node_output(c, i);
      if (!v) continue;
      if (nn_compare(what, v->dtype, nn_case_out_ptr(&k, i), v->data, moai_tensor_numel(&k.out[i]),
                     ONNX_RTOL, ONNX_ATOL))
        ok = 0;
    }
  }
  nn_case_free(&k);
  return ok;
}

/* Both forms of a case whose parameter can come at run time. */
static int run_case(const onnx_case_t *c, char *why, size_t why_len) {
  int r = run_form(c, 0, why, why_len);
  if (r == 1 && has_runtime_form(c)) r = run_form(c, 1, why, why_len);
  return r;
}

static int has_wanted_prefix(const char *name) {
  for (size_t i = 0; i < sizeof(k_prefixes) / sizeof(k_prefixes[0]); ++i)
    if (!strncmp(name, k_prefixes[i], strlen(k_prefixes[i]))) return 1;
  return 0;
}

static void test_onnx_node_data(void) {
  const char *root = onnx_testdata_root();
  char **names = NULL;
  size_t n = onnx_testdata_list(root, has_wanted_prefix, &names);
  int verbose = getenv("MOAI_TEST_VERBOSE") != NULL;
  int passed = 0, failed = 0, skipped = 0;
  for (size_t i = 0; i < n; ++i) {
    char dir[1024], why[256] = "";
    snprintf(dir, sizeof(dir), "%s/%s", root, names[i]);
    onnx_case_t c;
    int r = case_load(&c, dir, why, sizeof(why));
    if (r > 0) r = run_case(&c, why, sizeof(why));
    if (r < 0) {
      ++skipped;
      if (verbose) fprintf(stderr, "  skip %s (%s)\n", names[i], why);
    } else if (r) {
      ++passed;
      if (verbose) fprintf(stderr, "  pass %s\n", names[i]);
    } else {
      ++failed;
      fprintf(stderr, "  FAIL %s %s\n", names[i], why);
    }
    case_free(&c);
    free(names[i]);
  }
  free(names);
  fprintf(stderr, "\n  ONNX node tests: %d passed, %d failed, %d skipped\n", passed, failed,
          skipped);
  CU_ASSERT_EQUAL(failed, 0);
  CU_ASSERT(passed >= k_min_cases);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"ONNX node test data", test_onnx_node_data},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_nn_onnx", tests);
}
