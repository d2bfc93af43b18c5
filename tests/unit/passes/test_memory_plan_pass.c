/* Unit tests of the moai-memory-plan pass on IR: attributes on small
 * functions (in-place, views, returned values, weights), diagnostics, the
 * pass object, and the example models, whose arena must stay within 10% of
 * the live-set lower bound. Every plan is re-checked from the attributes
 * alone by check_func_plan, which recomputes lifetimes independently of the
 * pass and hands the result to moai_memory_plan_check. */
#include <stdio.h>
#include <string.h>

#include "driver/compile.h"
#include "driver/pipeline.h"
#include "ir/dialect.h"
#include "ir/pass_util.h"
#include "memory_plan/memory_plan.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Pass.h"
#include "moai_test.h"

static MlirContext g_ctx;
static moai_diag_sink_t g_diag;

static int suite_init(void) {
  moai_status_t s = moai_context_create(false, &g_ctx);
  if (s) {
    moai_status_free(s);
    return 1;
  }
  moai_diag_attach(g_ctx, &g_diag, NULL);
  return 0;
}

static int suite_clean(void) {
  moai_diag_detach(&g_diag);
  mlirContextDestroy(g_ctx);
  return 0;
}

/* ---- reading the plan back ------------------------------------------------ */

static MlirAttribute attr(MlirOperation op, const char *name) {
  return mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
}

static int64_t int_attr(MlirOperation op, const char *name) {
  MlirAttribute a = attr(op, name);
  return !mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a)
             ? mlirIntegerAttrGetValueInt(a) : -1;
}

static MlirOperation first_func(MlirModule m) {
  return mlirBlockGetFirstOperation(mlirModuleGetBody(m));
}

static MlirBlock body(MlirOperation func) {
  return mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
}

/* The op defining %name's position: the n-th op of the body (0-based). */
static MlirOperation nth_op(MlirOperation func, int n) {
  MlirOperation op = mlirBlockGetFirstOperation(body(func));
  while (n-- > 0) op = mlirOperationGetNextInBlock(op);
  return op;
}

/* Offset of result r of `op` (-1 when it has none). */
static int64_t result_offset(MlirOperation op, int r) {
  MlirAttribute a = attr(op, "moai.offsets");
  if (mlirAttributeIsNull(a) || !mlirAttributeIsADenseI64Array(a) ||
      r >= mlirDenseArrayGetNumElements(a))
    return -1;
  return mlirDenseI64ArrayGetElement(a, r);
}

static int64_t arg_offset(MlirOperation func, int a) {
  MlirAttribute all = attr(func, "arg_attrs");
  if (mlirAttributeIsNull(all) || !mlirAttributeIsAArray(all)) return -1;
  MlirAttribute d = mlirArrayAttrGetElement(all, a);
  MlirAttribute o = mlirDictionaryAttrGetElementByName(
      d, mlirStringRefCreateFromCString("moai.offset"));
  return mlirAttributeIsNull(o) ? -1 : mlirIntegerAttrGetValueInt(o);
}

static uint64_t type_bytes(MlirType t) {
  MlirType e = mlirShapedTypeGetElementType(t);
  uint64_t elem = mlirTypeIsAInteger(e)
                      ? (mlirIntegerTypeGetWidth(e) == 1 ? 1 : mlirIntegerTypeGetWidth(e) / 8)
                      : mlirFloatTypeGetWidth(e) / 8;
  for (intptr_t d = 0; d < mlirShapedTypeGetRank(t); ++d)
    elem *= (uint64_t)mlirShapedTypeGetDimSize(t, d);
  return elem;
}

static bool name_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

enum { kMaxValues = 4096, kMaxOps = 4096 };

typedef struct ir_plan_t {
  MlirValue values[kMaxValues];
  moai_buffer_req_t reqs[kMaxValues];
  uint64_t offsets[kMaxValues];
  int64_t def_pos[kMaxValues];
  MlirOperation ops[kMaxOps];
  size_t nvalues, nops;
} ir_plan_t;

static ir_plan_t g_plan;

static int64_t value_index(const ir_plan_t *p, MlirValue v) {
  for (size_t i = 0; i < p->nvalues; ++i)
    if (mlirValueEqual(p->values[i], v)) return (int64_t)i;
  return -1;
}

static int64_t op_position(const ir_plan_t *p, MlirOperation op) {
  for (size_t i = 0; i < p->nops; ++i)
    if (mlirOperationEqual(p->ops[i], op)) return (int64_t)i;
  return -1;
}

/* The live-set lower bound by brute force: at every position, the sum of
 * the (rounded) sizes of the buffers whose members' lifetimes cover it. */
static size_t root_of(const ir_plan_t *p, size_t i) {
  while (p->reqs[i].alias_of >= 0) i = (size_t)p->reqs[i].alias_of;
  return i;
}

static uint64_t brute_lower_bound(const ir_plan_t *p, int64_t end) {
  uint64_t best = 0;
  for (int64_t pos = -1; pos <= end; ++pos) {
    uint64_t live = 0;
    for (size_t r = 0; r < p->nvalues; ++r) {
      if (root_of(p, r) != r) continue; /* each buffer once, at its root */
      int64_t first = INT64_MAX, last = INT64_MIN;
      uint64_t size = 0;
      for (size_t m = 0; m < p->nvalues; ++m) {
        if (root_of(p, m) != r) continue;
        if (p->reqs[m].first < first) first = p->reqs[m].first;
        if (p->reqs[m].last > last) last = p->reqs[m].last;
        uint64_t sz = (p->reqs[m].size + 63) / 64 * 64;
        if (sz > size) size = sz;
      }
      if (first <= pos && pos <= last) live += size;
    }
    if (live > best) best = live;
  }
  return best;
}

#define FAIL_PLAN(...)                           \
  do {                                           \
    fprintf(stderr, "plan check: " __VA_ARGS__); \
    fprintf(stderr, "\n");                       \
    return false;                                \
  } while (0)

/* Re-derives every buffer's lifetime from the IR, joins values the
 * attributes say share a buffer (moai.alias, moai.inplace), checks that
 * in-place ops only took over dying, unreturned buffers of the same size,
 * and that the placement is valid (moai_memory_plan_check) and the attributes
 * agree with a recomputed lower bound. */
static bool check_func_plan(MlirOperation func, uint64_t *out_arena,
                            uint64_t *out_lower) {
  ir_plan_t *p = &g_plan;
  memset(p, 0, sizeof(*p));
  MlirBlock b = body(func);
  for (MlirOperation op = mlirBlockGetFirstOperation(b); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op)) {
    if (p->nops == kMaxOps) FAIL_PLAN("too many ops");
    p->ops[p->nops++] = op;
  }
  int64_t end = (int64_t)p->nops;
  for (intptr_t a = 0; a < mlirBlockGetNumArguments(b); ++a) {
    p->values[p->nvalues] = mlirBlockGetArgument(b, a);
    p->def_pos[p->nvalues] = -1;
    int64_t off = arg_offset(func, (int)a);
    if (off < 0) FAIL_PLAN("argument %d has no moai.offset", (int)a);
    p->offsets[p->nvalues++] = (uint64_t)off;
  }
  for (size_t pos = 0; pos < p->nops; ++pos) {
    MlirOperation op = p->ops[pos];
    bool planned = moai_op_is_moai(op) && !name_is(op, "moai.weight") &&
                   !name_is(op, "moai.constant");
    bool has = !mlirAttributeIsNull(attr(op, "moai.offsets"));
    if (planned != has) FAIL_PLAN("op %zu: moai.offsets %s", pos, has ? "unexpected" : "missing");
    if (!planned) continue;
    for (intptr_t r = 0; r < mlirOperationGetNumResults(op); ++r) {
      if (p->nvalues == kMaxValues) FAIL_PLAN("too many values");
      int64_t off = result_offset(op, (int)r);
      if (off < 0) FAIL_PLAN("op %zu result %d: no offset", pos, (int)r);
      p->values[p->nvalues] = mlirOperationGetResult(op, r);
      p->def_pos[p->nvalues] = (int64_t)pos;
      p->offsets[p->nvalues++] = (uint64_t)off;
    }
  }
  for (size_t i = 0; i < p->nvalues; ++i) {
    int64_t last = p->def_pos[i];
    for (MlirOpOperand u = mlirValueGetFirstUse(p->values[i]); !mlirOpOperandIsNull(u);
         u = mlirOpOperandGetNextUse(u)) {
      MlirOperation owner = mlirOpOperandGetOwner(u);
      int64_t at = name_is(owner, "func.return") ? end : op_position(p, owner);
      if (at > last) last = at;
    }
    p->reqs[i] = (moai_buffer_req_t){type_bytes(mlirValueGetType(p->values[i])),
                                     p->def_pos[i], last, -1};
  }
  /* Sharing declared by the attributes. */
  for (size_t i = 0; i < p->nvalues; ++i) {
    if (p->def_pos[i] < 0) continue;
    MlirOperation op = p->ops[p->def_pos[i]];
    if (!mlirValueEqual(mlirOperationGetResult(op, 0), p->values[i])) continue;
    int64_t k = int_attr(op, "moai.alias");
    int64_t inplace = int_attr(op, "moai.inplace");
    if (k >= 0 && inplace >= 0) FAIL_PLAN("op %lld: both alias and in-place", (long long)p->def_pos[i]);
    if (inplace >= 0) k = inplace;
    if (k < 0) continue;
    int64_t src = value_index(p, mlirOperationGetOperand(op, k));
    if (src < 0) FAIL_PLAN("op %lld shares a buffer not in the arena", (long long)p->def_pos[i]);
    if (p->reqs[src].size != p->reqs[i].size) FAIL_PLAN("op %lld: shared buffer of another size", (long long)p->def_pos[i]);
    p->reqs[i].alias_of = src;
  }
  /* In place: every value already in the operand's buffer dies here. */
  for (size_t i = 0; i < p->nvalues; ++i) {
    if (p->def_pos[i] < 0) continue;
    MlirOperation op = p->ops[p->def_pos[i]];
    int64_t k = int_attr(op, "moai.inplace");
    if (k < 0 || !mlirValueEqual(mlirOperationGetResult(op, 0), p->values[i])) continue;
    size_t root = root_of(p, i);
    for (size_t j = 0; j < p->nvalues; ++j) {
      if (root_of(p, j) == root && p->def_pos[j] < p->def_pos[i] &&
          p->reqs[j].last > p->def_pos[i])
        FAIL_PLAN("op %lld writes in place over a value used later", (long long)p->def_pos[i]);
    }
  }
  int64_t arena = int_attr(func, "moai.arena_size");
  int64_t lower = int_attr(func, "moai.live_lower_bound");
  if (arena < 0 || lower < 0 || int_attr(func, "moai.arena_alignment") != 64)
    FAIL_PLAN("function attributes missing");
  moai_status_t s = moai_memory_plan_check(p->reqs, p->nvalues, 64, p->offsets,
                                           (uint64_t)arena);
  if (s) {
    fprintf(stderr, "plan check: %s\n", moai_status_message(s));
    moai_status_free(s);
    return false;
  }
  uint64_t best = brute_lower_bound(p, end);
  if (best != (uint64_t)lower)
    FAIL_PLAN("lower bound %lld, recomputed %llu", (long long)lower, (unsigned long long)best);
  if (out_arena) *out_arena = (uint64_t)arena;
  if (out_lower) *out_lower = (uint64_t)lower;
  return true;
}

/* ---- running the pass on text -------------------------------------------- */

static MlirModule parse(const char *text) {
  MlirModule m = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(text));
  if (mlirModuleIsNull(m)) fprintf(stderr, "does not parse:\n%s\n", text);
  return m;
}

static moai_memory_plan_options_t checked_options(void) {
  moai_memory_plan_options_t o = moai_memory_plan_options_default();
  o.check = true;
  return o;
}

static MlirModule plan(const char *text, moai_memory_plan_stats_t *stats) {
  MlirModule m = parse(text);
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_memory_plan_options_t o = checked_options();
  CU_ASSERT_FATAL(moai_memory_plan_run(mlirModuleGetOperation(m), &o, stats));
  CU_ASSERT_TRUE(mlirOperationVerify(mlirModuleGetOperation(m)));
  CU_ASSERT_TRUE(check_func_plan(first_func(m), NULL, NULL));
  return m;
}

/* exp, add and neg each take over the buffer of an operand dying at them,
 * the reshape is a view: one 256-byte buffer holds everything, the input's. */
static void test_inplace_and_view_chain(void) {
  const char *text =
      "func.func @f(%x: tensor<4x16xf32> {moai.name = \"x\"}) -> tensor<64xf32> {\n"
      "  %c = \"moai.constant\"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>\n"
      "  %0 = \"moai.exp\"(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>\n"
      "  %1 = \"moai.add\"(%c, %0) : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>\n"
      "  %s = \"moai.constant\"() {value = dense<64> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "  %2 = \"moai.reshape\"(%1, %s) {allowzero = 0 : i64} : (tensor<4x16xf32>, tensor<1xi64>) -> tensor<64xf32>\n"
      "  %3 = \"moai.neg\"(%2) : (tensor<64xf32>) -> tensor<64xf32>\n"
      "  return %3 : tensor<64xf32>\n"
      "}\n";
  moai_memory_plan_stats_t st;
  MlirModule m = plan(text, &st);
  MlirOperation f = first_func(m);
  CU_ASSERT_EQUAL(int_attr(f, "moai.arena_size"), 256);
  CU_ASSERT_EQUAL(int_attr(f, "moai.live_lower_bound"), 256);
  CU_ASSERT_EQUAL(arg_offset(f, 0), 0);
  CU_ASSERT_EQUAL(result_offset(nth_op(f, 0), 0), -1); /* constant: none */
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 1), "moai.inplace"), 0);
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 2), "moai.inplace"), 1); /* operand 1 */
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 4), "moai.alias"), 0);
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 4), "moai.inplace"), -1);
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 5), "moai.inplace"), 0);
  for (int i = 1; i <= 5; ++i)
    if (i != 3) CU_ASSERT_EQUAL(result_offset(nth_op(f, i), 0), 0);
  CU_ASSERT_EQUAL(st.inplace, 3);
  CU_ASSERT_EQUAL(st.views, 1);
  CU_ASSERT_EQUAL(st.values, 5);
  /* moai.name is kept next to the offset. */
  MlirAttribute d = mlirArrayAttrGetElement(attr(f, "arg_attrs"), 0);
  CU_ASSERT_FALSE(mlirAttributeIsNull(mlirDictionaryAttrGetElementByName(
      d, mlirStringRefCreateFromCString("moai.name"))));
  /* Planning again replaces the attributes instead of adding to them. */
  moai_memory_plan_options_t o = checked_options();
  CU_ASSERT_TRUE(moai_memory_plan_run(mlirModuleGetOperation(m), &o, NULL));
  CU_ASSERT_EQUAL(mlirDictionaryAttrGetNumElements(
                      mlirArrayAttrGetElement(attr(f, "arg_attrs"), 0)), 2);
  CU_ASSERT_TRUE(check_func_plan(f, NULL, NULL));
  mlirModuleDestroy(m);
}

/* A value used later, or returned, is never written over; graph outputs keep
 * their own buffers to the end. */
static void test_no_inplace_when_live_or_returned(void) {
  const char *text =
      "func.func @g(%x: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {\n"
      "  %0 = \"moai.exp\"(%x) : (tensor<16xf32>) -> tensor<16xf32>\n"
      "  %1 = \"moai.neg\"(%0) : (tensor<16xf32>) -> tensor<16xf32>\n"
      "  %2 = \"moai.sqrt\"(%x) : (tensor<16xf32>) -> tensor<16xf32>\n"
      "  %3 = \"moai.add\"(%1, %2) : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>\n"
      "  %4 = \"moai.equal\"(%3, %3) : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xi1>\n"
      "  return %0, %3 : tensor<16xf32>, tensor<16xf32>\n"
      "}\n";
  MlirModule m = plan(text, NULL);
  MlirOperation f = first_func(m);
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 0), "moai.inplace"), -1); /* x used later */
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 1), "moai.inplace"), -1); /* %0 returned */
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 2), "moai.inplace"), 0);
  CU_ASSERT_EQUAL(result_offset(nth_op(f, 2), 0), arg_offset(f, 0));
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 3), "moai.inplace"), 0);
  CU_ASSERT_EQUAL(result_offset(nth_op(f, 3), 0), result_offset(nth_op(f, 1), 0));
  /* Returned %3 is used by equal, but outlives it: equal (an unused result,
   * another size) gets its own buffer. */
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 4), "moai.inplace"), -1);
  CU_ASSERT_NOT_EQUAL(result_offset(nth_op(f, 4), 0), result_offset(nth_op(f, 3), 0));
  CU_ASSERT_NOT_EQUAL(result_offset(nth_op(f, 0), 0), result_offset(nth_op(f, 3), 0));
  mlirModuleDestroy(m);
}

/* Views of weights and constants copy; dropout is a view only in inference;
 * its mask, multi-result ops and zero-size tensors all get offsets. */
static void test_views_dropout_weights(void) {
  const char *text =
      "func.func @h(%x: tensor<8xf32>, %z: tensor<0x4xf32>) -> (tensor<2x4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xi1>, tensor<0x4xf32>, tensor<8xf32>) {\n"
      "  %w = \"moai.weight\"() {file = \"m.onnx\", length = 32 : i64, name = \"w\", offset = 0 : i64, storage = \"raw\", trainable = 0 : i64} : () -> tensor<8xf32>\n"
      "  %s = \"moai.constant\"() {value = dense<[2, 4]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "  %0 = \"moai.reshape\"(%w, %s) {allowzero = 0 : i64} : (tensor<8xf32>, tensor<2xi64>) -> tensor<2x4xf32>\n"
      "  %r = \"moai.constant\"() {value = dense<5.000000e-01> : tensor<f32>} : () -> tensor<f32>\n"
      "  %f = \"moai.constant\"() {value = dense<false> : tensor<i1>} : () -> tensor<i1>\n"
      "  %t = \"moai.constant\"() {value = dense<true> : tensor<i1>} : () -> tensor<i1>\n"
      "  %1 = \"moai.dropout\"(%x) {operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<8xf32>) -> tensor<8xf32>\n"
      "  %2 = \"moai.dropout\"(%x, %r, %f) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<8xf32>, tensor<f32>, tensor<i1>) -> tensor<8xf32>\n"
      "  %3:2 = \"moai.dropout\"(%x, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<8xf32>, tensor<f32>, tensor<i1>) -> (tensor<8xf32>, tensor<8xi1>)\n"
      "  %4 = \"moai.identity\"(%z) : (tensor<0x4xf32>) -> tensor<0x4xf32>\n"
      "  %5 = \"moai.exp\"(%w) : (tensor<8xf32>) -> tensor<8xf32>\n"
      "  return %0, %1, %2, %3#0, %3#1, %4, %5 : tensor<2x4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xi1>, tensor<0x4xf32>, tensor<8xf32>\n"
      "}\n";
  moai_memory_plan_stats_t st;
  MlirModule m = plan(text, &st);
  MlirOperation f = first_func(m);
  CU_ASSERT_EQUAL(result_offset(nth_op(f, 0), 0), -1); /* weight: none */
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 2), "moai.alias"), -1); /* copies */
  CU_ASSERT_TRUE(result_offset(nth_op(f, 2), 0) >= 0);
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 6), "moai.alias"), 0);
  CU_ASSERT_EQUAL(result_offset(nth_op(f, 6), 0), arg_offset(f, 0));
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 7), "moai.alias"), 0);
  CU_ASSERT_EQUAL(result_offset(nth_op(f, 7), 0), arg_offset(f, 0));
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 8), "moai.alias"), -1); /* training */
  CU_ASSERT_NOT_EQUAL(result_offset(nth_op(f, 8), 0), arg_offset(f, 0));
  CU_ASSERT_NOT_EQUAL(result_offset(nth_op(f, 8), 1), result_offset(nth_op(f, 8), 0));
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 9), "moai.alias"), 0); /* zero-size view */
  CU_ASSERT_EQUAL(int_attr(nth_op(f, 10), "moai.inplace"), -1); /* of a weight */
  CU_ASSERT_EQUAL(st.views, 3);
  /* Buffers: x (with two views), %0, %3#0, %3#1, %5 of 64 bytes each, all
   * returned; z and %4 take no room. */
  CU_ASSERT_EQUAL(int_attr(f, "moai.arena_size"), 5 * 64);
  mlirModuleDestroy(m);
}

static void test_options_off(void) {
  const char *text =
      "func.func @f(%x: tensor<16xf32>) -> tensor<16xf32> {\n"
      "  %0 = \"moai.exp\"(%x) : (tensor<16xf32>) -> tensor<16xf32>\n"
      "  %1 = \"moai.identity\"(%0) : (tensor<16xf32>) -> tensor<16xf32>\n"
      "  %2 = \"moai.neg\"(%1) : (tensor<16xf32>) -> tensor<16xf32>\n"
      "  return %2 : tensor<16xf32>\n"
      "}\n";
  MlirModule m = parse(text);
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_memory_plan_options_t o = checked_options();
  o.views = o.inplace = false;
  moai_memory_plan_stats_t st;
  CU_ASSERT_TRUE(moai_memory_plan_run(mlirModuleGetOperation(m), &o, &st));
  CU_ASSERT_EQUAL(st.views + st.inplace, 0);
  CU_ASSERT_TRUE(check_func_plan(first_func(m), NULL, NULL));
  /* x|%0|%1|%2, each overlapping only its neighbours: two slots. */
  CU_ASSERT_EQUAL(int_attr(first_func(m), "moai.arena_size"), 128);
  o = checked_options();
  CU_ASSERT_TRUE(moai_memory_plan_run(mlirModuleGetOperation(m), &o, &st));
  CU_ASSERT_EQUAL(int_attr(first_func(m), "moai.arena_size"), 64);
  CU_ASSERT_EQUAL(int_attr(nth_op(first_func(m), 1), "moai.alias"), 0);
  mlirModuleDestroy(m);
}

static void expect_diag(const char *text, const char *needle) {
  MlirModule m = parse(text);
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_memory_plan_options_t o = checked_options();
  g_diag.error_count = 0;
  CU_ASSERT_FALSE(moai_memory_plan_run(mlirModuleGetOperation(m), &o, NULL));
  moai_status_t s = moai_diag_take_status(&g_diag, MOAI_INTERNAL, "no diagnostic");
  const char *msg = moai_status_message(s);
  if (!strstr(msg, needle)) fprintf(stderr, "diagnostic: %s\n", msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, needle));
  moai_status_free(s);
  mlirModuleDestroy(m);
}

static void test_errors(void) {
  expect_diag(
      "func.func @f(%x: tensor<4xf32>) -> tensor<*xf32> {\n"
      "  %0 = \"moai.exp\"(%x) : (tensor<4xf32>) -> tensor<*xf32>\n"
      "  return %0 : tensor<*xf32>\n"
      "}\n",
      "moai-memory-plan: result 0 has no static shape; run moai-shape-infer first");
  expect_diag(
      "func.func @f(%x: tensor<?xf32>) -> tensor<?xf32> {\n"
      "  return %x : tensor<?xf32>\n"
      "}\n",
      "moai-memory-plan: argument 0 has no static shape");
  moai_memory_plan_options_t o = checked_options();
  o.alignment = 48;
  MlirModule m = parse("func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
                       "  return %x : tensor<4xf32>\n}\n");
  CU_ASSERT_FALSE(moai_memory_plan_run(mlirModuleGetOperation(m), &o, NULL));
  moai_status_free(moai_diag_take_status(&g_diag, MOAI_INTERNAL, ""));
  mlirModuleDestroy(m);
}

/* The pass object: runs in a pass manager, fails the pipeline on a
 * diagnostic, and every instance made is destroyed. */
static void test_pass_object(void) {
  long before = moai_external_pass_live_count();
  MlirModule m = parse("func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
                       "  %0 = \"moai.relu\"(%x) : (tensor<4xf32>) -> tensor<4xf32>\n"
                       "  return %0 : tensor<4xf32>\n}\n");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  MlirPassManager pm = mlirPassManagerCreate(g_ctx);
  moai_memory_plan_options_t o = checked_options();
  mlirPassManagerAddOwnedPass(pm, moai_memory_plan_pass_create(&o));
  CU_ASSERT_TRUE(mlirLogicalResultIsSuccess(
      mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(m))));
  CU_ASSERT_EQUAL(int_attr(first_func(m), "moai.arena_size"), 64);
  mlirModuleDestroy(m);
  m = parse("func.func @f(%x: tensor<?xf32>) -> tensor<?xf32> {\n"
            "  return %x : tensor<?xf32>\n}\n");
  CU_ASSERT_TRUE(mlirLogicalResultIsFailure(
      mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(m))));
  moai_status_free(moai_diag_take_status(&g_diag, MOAI_INTERNAL, ""));
  mlirModuleDestroy(m);
  mlirPassManagerDestroy(pm);
  CU_ASSERT_EQUAL(moai_external_pass_live_count(), before);
}

/* ---- the example models ---------------------------------------------------- */

static void check_model(const char *rel) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", moai_test_source_dir(), rel);
  moai_compile_options_t co = moai_compile_options_default();
  co.model_path = path;
  MlirModule m = {NULL};
  moai_status_t s = moai_compile_module(g_ctx, &co, &g_diag, &m);
  if (s) fprintf(stderr, "%s: %s\n", rel, moai_status_message(s));
  CU_ASSERT_FATAL(s == NULL);
  MlirOperation f = first_func(m);
  uint64_t arena = 0, lower = 0;
  CU_ASSERT_TRUE(check_func_plan(f, &arena, &lower));
  /* Re-planning with the checker on gives the same plan. */
  moai_memory_plan_options_t o = checked_options();
  moai_memory_plan_stats_t st;
  CU_ASSERT_TRUE(moai_memory_plan_run(mlirModuleGetOperation(m), &o, &st));
  CU_ASSERT_EQUAL(st.arena_size, arena);
  uint64_t sum = 0;
  for (size_t i = 0; i < g_plan.nvalues; ++i) sum += (g_plan.reqs[i].size + 63) / 64 * 64;
  printf("\n    %-32s arena %8llu  lower bound %8llu  (+%.1f%%)  no reuse %9llu"
         "  views %zu  in-place %zu",
         rel, (unsigned long long)arena, (unsigned long long)lower,
         lower ? 100.0 * (double)(arena - lower) / (double)lower : 0.0,
         (unsigned long long)sum, st.views, st.inplace);
  CU_ASSERT_TRUE(lower > 0);
  CU_ASSERT_TRUE(arena >= lower);
  CU_ASSERT_TRUE(arena * 10 <= lower * 11); /* within 10% */
  mlirModuleDestroy(m);
}

static void test_models(void) {
  check_model("examples/mistral/mistral_infer.onnx");
  check_model("examples/mistral/mistral_train.onnx");
  check_model("examples/cnn/cnn.onnx");
  check_model("examples/cnn/cnn_train.onnx");
  printf("\n");
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"inplace_and_view_chain", test_inplace_and_view_chain},
      {"no_inplace_when_live_or_returned", test_no_inplace_when_live_or_returned},
      {"views_dropout_weights", test_views_dropout_weights},
      {"options_off", test_options_off},
      {"errors", test_errors},
      {"pass_object", test_pass_object},
      {"models", test_models},
      CU_TEST_INFO_NULL};
  CU_pSuite suite = CU_add_suite("memory_plan_pass", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
