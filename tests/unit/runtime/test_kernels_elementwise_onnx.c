/* Elementwise kernels against ONNX's own node test data (Debian's
 * libonnx-testdata, /usr/share/libonnx-testdata/data/node, or
 * $MOAI_ONNX_TESTDATA_DIR): outputs computed by onnx's numpy reference,
 * independently of moai.
 *
 * Every single-node test model whose op maps to an elementwise kernel is
 * run. model.onnx gives the node's attributes, translated here the way the
 * compiler does (negative axes normalised; Slice starts/steps, Reduce axes
 * and ConstantOfShape's value folded from inputs/attributes into the ABI's
 * attribute structs; shape-only inputs of Expand/Reshape/... dropped) and,
 * where the node takes them as inputs, Slice's and Reduce's parameters once
 * more as runtime operands (moai_ops.h runtime_params/runtime_axes), and
 * test_data_set_0 gives the inputs and the expected outputs, whose shapes
 * are the kernel's output shapes. The reference kernels (1 thread) and the
 * optimised ones (3 threads) must both match: bitwise for integers, bools
 * and exact float ops (data movement, comparisons, +-*, /, min/max, casts),
 * within rtol 1e-5 for the transcendental ones. Cases whose dtypes moai's
 * kernels do not support (strings, float8, ...) are skipped and listed with
 * MOAI_TEST_VERBOSE=1; at least k_min_cases must run. One deviation from
 * the data is deliberate and checked: see fix_bf16_truncation. */

#include "test_kernels_elementwise_support.h"

#define MAX_VALUES 12
#include "onnx_testdata_support.h"

static const int k_min_cases = 200;

/* ---- the op map ---- */

typedef enum form_e {
  F_PLAIN,   /* every node input is an operand, no attributes */
  F_DATA,    /* only input 0 (shape-like inputs are folded) */
  F_SPECIAL, /* translated case by case */
} form_t;

static const struct {
  const char *op;
  moai_kernel_id_t id;
  form_t form;
  bool inexact; /* compared within a tolerance */
} k_ops[] = {
    {"Add", MOAI_KERNEL_ADD, F_PLAIN, false},
    {"Sub", MOAI_KERNEL_SUB, F_PLAIN, false},
    {"Mul", MOAI_KERNEL_MUL, F_PLAIN, false},
    {"Div", MOAI_KERNEL_DIV, F_PLAIN, false},
    {"Pow", MOAI_KERNEL_POW, F_PLAIN, true},
    {"Equal", MOAI_KERNEL_EQUAL, F_PLAIN, false},
    {"Less", MOAI_KERNEL_LESS, F_PLAIN, false},
    {"LessOrEqual", MOAI_KERNEL_LESS_OR_EQUAL, F_PLAIN, false},
    {"Greater", MOAI_KERNEL_GREATER, F_PLAIN, false},
    {"GreaterOrEqual", MOAI_KERNEL_GREATER_OR_EQUAL, F_PLAIN, false},
    {"And", MOAI_KERNEL_AND, F_PLAIN, false},
    {"Or", MOAI_KERNEL_OR, F_PLAIN, false},
    {"Not", MOAI_KERNEL_NOT, F_PLAIN, false},
    {"Where", MOAI_KERNEL_WHERE, F_PLAIN, false},
    {"Max", MOAI_KERNEL_MAX, F_PLAIN, false},
    {"Min", MOAI_KERNEL_MIN, F_PLAIN, false},
    {"Neg", MOAI_KERNEL_NEG, F_PLAIN, false},
    {"Abs", MOAI_KERNEL_ABS, F_PLAIN, false},
    {"Sqrt", MOAI_KERNEL_SQRT, F_PLAIN, true},
    {"Exp", MOAI_KERNEL_EXP, F_PLAIN, true},
    {"Log", MOAI_KERNEL_LOG, F_PLAIN, true},
    {"Sin", MOAI_KERNEL_SIN, F_PLAIN, true},
    {"Cos", MOAI_KERNEL_COS, F_PLAIN, true},
    {"Tanh", MOAI_KERNEL_TANH, F_PLAIN, true},
    {"Sigmoid", MOAI_KERNEL_SIGMOID, F_PLAIN, true},
    {"Erf", MOAI_KERNEL_ERF, F_PLAIN, true},
    {"Relu", MOAI_KERNEL_RELU, F_PLAIN, false},
    {"LeakyRelu", MOAI_KERNEL_LEAKY_RELU, F_SPECIAL, false},
    {"Gelu", MOAI_KERNEL_GELU, F_SPECIAL, true},
    {"Clip", MOAI_KERNEL_CLIP, F_SPECIAL, false},
    {"Cast", MOAI_KERNEL_CAST, F_DATA, false},
    {"Expand", MOAI_KERNEL_EXPAND, F_DATA, false},
    {"Transpose", MOAI_KERNEL_TRANSPOSE, F_SPECIAL, false},
    {"Slice", MOAI_KERNEL_SLICE, F_SPECIAL, false},
    {"Concat", MOAI_KERNEL_CONCAT, F_SPECIAL, false},
    {"Split", MOAI_KERNEL_SPLIT, F_SPECIAL, false},
    {"Gather", MOAI_KERNEL_GATHER, F_SPECIAL, false},
    {"ConstantOfShape", MOAI_KERNEL_CONSTANT_OF_SHAPE, F_SPECIAL, false},
    {"Range", MOAI_KERNEL_RANGE, F_PLAIN, true},
    {"ReduceSum", MOAI_KERNEL_REDUCE_SUM, F_SPECIAL, true},
    {"ReduceMean", MOAI_KERNEL_REDUCE_MEAN, F_SPECIAL, true},
    {"ReduceMax", MOAI_KERNEL_REDUCE_MAX, F_SPECIAL, false},
    {"Identity", MOAI_KERNEL_COPY, F_DATA, false},
    {"Reshape", MOAI_KERNEL_COPY, F_DATA, false},
    {"Squeeze", MOAI_KERNEL_COPY, F_DATA, false},
    {"Unsqueeze", MOAI_KERNEL_COPY, F_DATA, false},
    {"Flatten", MOAI_KERNEL_COPY, F_DATA, false},
};

/* Reads model.onnx and test_data_set_0. 1: loaded; 0: cannot read
 * (reason in why); -1: not a single-node model of an elementwise op. */
static int case_load(onnx_case_t *c, const char *root, const char *name, int *op_index, char *why,
                     size_t why_len) {
  memset(c, 0, sizeof *c);
  c->name = name;
  char path[1400];
  snprintf(path, sizeof path, "%s/%s/model.onnx", root, name);
  if (!case_read_model(c, path)) {
    snprintf(why, why_len, "cannot read model.onnx");
    return 0;
  }
  const Onnx__GraphProto *g = c->model->graph;
  if (g->n_node != 1) return -1;
  c->node = g->node[0];
  if (c->node->domain && c->node->domain[0] && strcmp(c->node->domain, "ai.onnx")) return -1;
  *op_index = -1;
  for (size_t i = 0; i < sizeof k_ops / sizeof k_ops[0]; ++i)
    if (!strcmp(c->node->op_type, k_ops[i].op)) *op_index = (int)i;
  if (*op_index < 0) return -1;
  for (size_t i = 0; i < g->n_input && i < MAX_VALUES; ++i) {
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%zu.pb", root, name, i);
    int32_t dt = declared_dtype(g->input[i]);
    if (!dtype_size_or_0(dt) || !load_value(path, g->input[i]->name, dt, &c->inputs[c->n_inputs])) {
      snprintf(why, why_len, "input %zu: not a tensor of a moai dtype", i);
      return -2;
    }
    ++c->n_inputs;
  }
  for (size_t i = 0; i < g->n_output && i < MAX_VALUES; ++i) {
    snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_%zu.pb", root, name, i);
    int32_t dt = declared_dtype(g->output[i]);
    if (!dtype_size_or_0(dt) || !load_value(path, g->output[i]->name, dt, &c->outputs[c->n_outputs])) {
      snprintf(why, why_len, "output %zu: not a tensor of a moai dtype", i);
      return -2;
    }
    ++c->n_outputs;
  }
  return 1;
}

/* Slice's starts/ends/axes/steps (inputs since opset 10, attributes before)
 * into per-axis first index and step, clamped as ONNX specifies. */
static int slice_attrs(const onnx_case_t *c, const value_t *x, moai_attrs_slice_t *a) {
  memset(a, 0, sizeof *a);
  for (int j = 0; j < x->rank; ++j) a->step[j] = 1;
  int64_t starts[MOAI_MAX_RANK], axes[MOAI_MAX_RANK], steps[MOAI_MAX_RANK];
  int64_t n;
  if (c->opset >= 10) {
    const value_t *s = node_input(c, 1), *ax = node_input(c, 3), *st = node_input(c, 4);
    n = value_numel(s);
    for (int64_t i = 0; i < n; ++i) {
      starts[i] = value_int(s, i);
      axes[i] = ax ? value_int(ax, i) : i;
      steps[i] = st ? value_int(st, i) : 1;
    }
  } else {
    const Onnx__AttributeProto *s = attr(c, "starts"), *ax = attr(c, "axes");
    n = (int64_t)s->n_ints;
    for (int64_t i = 0; i < n; ++i) {
      starts[i] = s->ints[i];
      axes[i] = ax ? ax->ints[i] : i;
      steps[i] = 1;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t axis = axes[i] < 0 ? axes[i] + x->rank : axes[i];
    if (axis < 0 || axis >= x->rank) return 0;
    int64_t d = x->dims[axis], s = starts[i];
    if (s < 0) s += d;
    if (steps[i] > 0) s = s < 0 ? 0 : s > d ? d : s;
    else s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
    a->start[axis] = s;
    a->step[axis] = steps[i];
  }
  return 1;
}

/* The reduce axes mask: from input 1 (ReduceSum since 13, the others since
 * 18) or the axes attribute; none given reduces all unless
 * noop_with_empty_axes. */
static uint64_t reduce_mask(const onnx_case_t *c, const value_t *x) {
  int64_t axes[MOAI_MAX_RANK];
  int64_t n = 0;
  const value_t *ax = node_input(c, 1);
  const Onnx__AttributeProto *aa = attr(c, "axes");
  if (ax) {
    n = value_numel(ax);
    for (int64_t i = 0; i < n; ++i) axes[i] = value_int(ax, i);
  } else if (aa) {
    n = (int64_t)aa->n_ints;
    for (int64_t i = 0; i < n; ++i) axes[i] = aa->ints[i];
  }
  if (n == 0) return attr_i(c, "noop_with_empty_axes", 0) ? 0 : (1ull << x->rank) - 1;
  uint64_t mask = 0;
  for (int64_t i = 0; i < n; ++i) mask |= 1ull << (axes[i] < 0 ? axes[i] + x->rank : axes[i]);
  return mask;
}

/* Whether the node's parameters are operands the kernels can also read at
 * run time (Slice since opset 10, a Reduce with an axes input). */
static bool has_runtime_form(const onnx_case_t *c) {
  const char *t = c->node->op_type;
  if (!strcmp(t, "Slice")) return c->opset >= 10;
  return !strncmp(t, "Reduce", 6) && node_input(c, 1) != NULL;
}

/* Builds the kernel's op in k from the node: the parameters folded as the
 * compiler folds constants, or (runtime) passed as operands with the
 * runtime_* flag, as it lowers parameters computed at run time. 1 on
 * success; 0 when the case cannot be expressed (why says so). */
static int translate(const onnx_case_t *c, int op_index, bool runtime, kt_t *k, char *why,
                     size_t why_len) {
  const char *t = c->node->op_type;
  const value_t *x = node_input(c, 0);
  const value_t *ops[MAX_VALUES];
  int n_ops = 0;
  unsigned char attrs[512];
  size_t attrs_size = 0;
  moai_kernel_id_t id = k_ops[op_index].id;
  if (k_ops[op_index].form == F_PLAIN) {
    for (size_t i = 0; i < c->node->n_input; ++i) ops[n_ops++] = node_input(c, i);
  } else if (k_ops[op_index].form == F_DATA) {
    ops[n_ops++] = x;
  } else if (!strcmp(t, "LeakyRelu")) {
    ops[n_ops++] = x;
    moai_attrs_leaky_relu_t a = {attr(c, "alpha") ? attr(c, "alpha")->f : 0.01f};
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "Gelu")) {
    ops[n_ops++] = x;
    const Onnx__AttributeProto *ap = attr(c, "approximate");
    moai_attrs_gelu_t a = {ap && ap->s.len == 4 && !memcmp(ap->s.data, "tanh", 4)};
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "Clip")) {
    if (c->opset < 11) {
      snprintf(why, why_len, "Clip opset %lld takes attributes", (long long)c->opset);
      return 0;
    }
    for (size_t i = 0; i < 3; ++i) ops[n_ops++] = node_input(c, i);
  } else if (!strcmp(t, "Transpose")) {
    ops[n_ops++] = x;
    moai_attrs_transpose_t a;
    memset(&a, 0, sizeof a);
    const Onnx__AttributeProto *p = attr(c, "perm");
    for (int j = 0; j < x->rank; ++j) a.perm[j] = p ? p->ints[j] : x->rank - 1 - j;
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "Slice") && runtime) {
    for (size_t i = 0; i < 5; ++i) ops[n_ops++] = node_input(c, i);
    moai_attrs_slice_t a;
    memset(&a, 0, sizeof a);
    a.runtime_params = 1;
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "Slice")) {
    ops[n_ops++] = x;
    moai_attrs_slice_t a;
    if (!slice_attrs(c, x, &a)) {
      snprintf(why, why_len, "bad slice axes");
      return 0;
    }
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "Concat")) {
    for (size_t i = 0; i < c->node->n_input; ++i) ops[n_ops++] = node_input(c, i);
    int64_t axis = attr_i(c, "axis", 0);
    moai_attrs_axis_t a = {axis < 0 ? axis + x->rank : axis};
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "Split")) {
    ops[n_ops++] = x;
    int64_t axis = attr_i(c, "axis", 0);
    moai_attrs_axis_t a = {axis < 0 ? axis + x->rank : axis};
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "Gather")) {
    ops[n_ops++] = x;
    ops[n_ops++] = node_input(c, 1);
    int64_t axis = attr_i(c, "axis", 0);
    moai_attrs_axis_t a = {axis < 0 ? axis + x->rank : axis};
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (!strcmp(t, "ConstantOfShape")) {
    moai_attrs_fill_t a;
    memset(&a, 0, sizeof a);
    const Onnx__AttributeProto *v = attr(c, "value");
    if (v && v->t) {
      value_t val;
      if (!tensor_to_value(v->t, "value", &val)) {
        snprintf(why, why_len, "value dtype not in moai");
        return 0;
      }
      memcpy(a.value, val.data, val.bytes);
      free(val.data);
    }
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else if (runtime) { /* ReduceSum, ReduceMean, ReduceMax with an axes input */
    ops[n_ops++] = x;
    ops[n_ops++] = node_input(c, 1);
    moai_attrs_reduce_t a = {.keepdims = (int32_t)attr_i(c, "keepdims", 1), .runtime_axes = 1,
                             .noop_with_empty_axes = (int32_t)attr_i(c, "noop_with_empty_axes", 0)};
    memcpy(attrs, &a, attrs_size = sizeof a);
  } else { /* ReduceSum, ReduceMean, ReduceMax */
    ops[n_ops++] = x;
    moai_attrs_reduce_t a = {.axes_mask = reduce_mask(c, x),
                             .keepdims = (int32_t)attr_i(c, "keepdims", 1)};
    memcpy(attrs, &a, attrs_size = sizeof a);
  }
  kt_begin(k, id, (uint32_t)n_ops, (uint32_t)c->n_outputs);
  for (int i = 0; i < n_ops; ++i) {
    if (!ops[i]) continue; /* absent optional operand */
    memcpy(kt_set(k, (uint32_t)i, ops[i]->dtype, ops[i]->rank, ops[i]->dims), ops[i]->data,
           ops[i]->bytes);
  }
  for (int o = 0; o < c->n_outputs; ++o)
    kt_set(k, (uint32_t)(n_ops + o), c->outputs[o].dtype, c->outputs[o].rank, c->outputs[o].dims);
  if (attrs_size) kt_attrs(k, attrs, attrs_size);
  return 1;
}

/* onnx 1.12 generated its f32 -> bf16 Cast data by truncation; the Cast
 * spec (and moai) round to nearest even (onnx >= 1.14 regenerated the data
 * so). Checks that the expected data is the truncation of the input, then
 * expects the rounded values instead. Returns 0 if the data is otherwise. */
static int fix_bf16_truncation(onnx_case_t *c) {
  const value_t *x = &c->inputs[0];
  value_t *y = &c->outputs[0];
  if (x->dtype != MOAI_ABI_F32 || y->dtype != MOAI_ABI_BF16) return 0;
  for (int64_t i = 0; i < value_numel(x); ++i) {
    float f = ((const float *)x->data)[i];
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t *o = (uint16_t *)y->data + i;
    if (f == f && *o != (uint16_t)(u >> 16)) return 0;
    *o = kt_f32_to_bf16(f);
  }
  return 1;
}

/* 1 pass, 0 fail, -1 skipped (why). Ops with runtime parameters run both
 * forms. */
static int run_form(onnx_case_t *c, int op_index, bool runtime, kt_t *k, char *why,
                    size_t why_len);
static int run_case(onnx_case_t *c, int op_index, kt_t *k, char *why, size_t why_len) {
  int r = run_form(c, op_index, false, k, why, why_len);
  if (r == 1 && has_runtime_form(c)) r = run_form(c, op_index, true, k, why, why_len);
  return r;
}

static int run_form(onnx_case_t *c, int op_index, bool runtime, kt_t *k, char *why,
                    size_t why_len) {
  if (!translate(c, op_index, runtime, k, why, why_len)) return -1;
  if (!strcmp(c->name, "test_cast_FLOAT_to_BFLOAT16"))
    KT_CHECK(fix_bf16_truncation(c), "onnx %s: expected data is not the truncation of the input",
             c->name);
  const bool inexact = k_ops[op_index].inexact;
  static const struct { moai_isa_t isa; int nth; } runs[] = {{MOAI_ISA_REFERENCE, 1},
                                                             {MOAI_ISA_GENERIC, 3}};
  int ok = 1;
  for (size_t r = 0; r < 2; ++r) {
    moai_isa_t isa = r ? moai_isa_detect() : runs[r].isa;
    for (int o = 0; o < c->n_outputs; ++o)
      memset(kt_ptr(k, k->op->n_in + (uint32_t)o), 0x5a, c->outputs[o].bytes);
    if (!kt_run(k, isa, runs[r].nth)) {
      if (strstr(k->status.message, "unsupported")) {
        snprintf(why, why_len, "%s", k->status.message);
        return -1;
      }
      KT_CHECK(0, "onnx %s (%s%s): kernel failed: %s", c->name, moai_isa_name(isa),
               runtime ? ", runtime params" : "", k->status.message);
      ok = 0;
      continue;
    }
    for (int o = 0; o < c->n_outputs; ++o) {
      const value_t *v = &c->outputs[o];
      const void *got = kt_ptr(k, k->op->n_in + (uint32_t)o);
      int64_t bad = kt_compare(got, v->data, v->dtype, value_numel(v), inexact ? 1e-5 : 0,
                               inexact ? 1e-7 : 0);
      /* exact float ops still tolerate -0 vs +0 from numpy */
      if (bad >= 0 && !inexact && kt_is_float(v->dtype))
        bad = kt_compare(got, v->data, v->dtype, value_numel(v), 1e-300, 0);
      if (bad >= 0) {
        KT_CHECK(0, "onnx %s (%s%s %s, nth %d): output %d element %lld is %.9g, expected %.9g",
                 c->name, moai_kernel_name(k->op->kernel), runtime ? " runtime params" : "",
                 moai_isa_name(isa), runs[r].nth, o, (long long)bad,
                 kt_load(got, v->dtype, bad), kt_load(v->data, v->dtype, bad));
        ok = 0;
      }
    }
  }
  return ok;
}

static void test_onnx_node_data(void) {
  const char *root = onnx_testdata_root();
  char **names = NULL;
  size_t n = onnx_testdata_list(root, NULL, &names);
  const bool verbose = getenv("MOAI_TEST_VERBOSE") != NULL;
  int passed = 0, failed = 0, skipped = 0;
  kt_t *k = kt_create();
  for (size_t i = 0; i < n; ++i) {
    char why[256] = "";
    onnx_case_t c;
    int op_index = -1;
    int r = case_load(&c, root, names[i], &op_index, why, sizeof why);
    if (r == -1) { /* not ours: silently */
      case_free(&c);
      free(names[i]);
      continue;
    }
    if (r == 1) r = run_case(&c, op_index, k, why, sizeof why);
    else if (r == -2) r = -1;
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
  kt_destroy(k);
  free(names);
  fprintf(stderr, "\n  ONNX node tests (elementwise): %d passed, %d failed, %d skipped\n", passed,
          failed, skipped);
  KT_CHECK(failed == 0, "%d ONNX node tests failed", failed);
  KT_CHECK(passed >= k_min_cases, "only %d ONNX node tests ran (want >= %d)", passed, k_min_cases);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"onnx_node_data", test_onnx_node_data},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("kernels_elementwise_onnx", tests);
}
