/* Unit tests for the TorchScript operator table (frontends/torchscript
 * aten*.c, value.c): the moai ops calls build, their result types,
 * compile-time folding of sizes and masks, PyTorch's type promotion, and
 * the error messages. Numeric agreement with PyTorch is checked end to end
 * by the TorchScript import tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/dialect.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/IR.h"
#include "moai_test.h"
#include "torchscript/value.h"

typedef struct fx_t {
  MlirContext ctx;
  MlirModule module;
  MlirBlock block;
  MlirOperation ret;
  moai_ts_arena_t *arena;
  moai_ts_emit_t em;
} fx_t;

/* A module with func @main(`sig`) whose body the calls fill; its return
 * is put back by fx_verify. */
static void fx_init(fx_t *f, const char *sig) {
  memset(f, 0, sizeof(*f));
  CU_ASSERT_PTR_NULL_FATAL(moai_context_create(false, &f->ctx));
  char text[1024];
  snprintf(text, sizeof(text), "func.func @main(%s) { func.return }", sig);
  f->module = mlirModuleCreateParse(f->ctx, mlirStringRefCreateFromCString(text));
  CU_ASSERT_FALSE_FATAL(mlirModuleIsNull(f->module));
  MlirOperation fn = mlirBlockGetFirstOperation(mlirModuleGetBody(f->module));
  f->block = mlirRegionGetFirstBlock(mlirOperationGetRegion(fn, 0));
  f->ret = mlirBlockGetFirstOperation(f->block);
  mlirOperationRemoveFromParent(f->ret);
  f->arena = moai_ts_arena_create();
  CU_ASSERT_PTR_NOT_NULL_FATAL(f->arena);
  f->em = (moai_ts_emit_t){.ctx = f->ctx,
                           .block = f->block,
                           .arena = f->arena,
                           .archive = "m.pt",
                           .file = "code/__torch__/m.py",
                           .line = 12,
                           .loc = mlirLocationFileLineColGet(
                               f->ctx, mlirStringRefCreateFromCString("m.pt:code/__torch__/m.py"), 12, 1)};
}

static bool fx_verify(fx_t *f) {
  mlirBlockAppendOwnedOperation(f->block, f->ret);
  return mlirOperationVerify(mlirModuleGetOperation(f->module));
}

static void fx_free(fx_t *f) {
  moai_ts_arena_destroy(f->arena);
  mlirModuleDestroy(f->module);
  mlirContextDestroy(f->ctx);
}

static size_t fx_op_count(fx_t *f) {
  size_t n = 0;
  for (MlirOperation op = mlirBlockGetFirstOperation(f->block);
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op))
    ++n;
  return n;
}

static size_t fx_count(fx_t *f, const char *name) {
  size_t n = 0;
  for (MlirOperation op = mlirBlockGetFirstOperation(f->block);
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
    if (s.length == strlen(name) && memcmp(s.data, name, s.length) == 0) ++n;
  }
  return n;
}

/* ------------------------------------------------------------- values */

static moai_ts_value_t *v_new(fx_t *f, moai_ts_kind_t kind) {
  moai_ts_value_t *v = moai_ts_arena_alloc(f->arena, sizeof(*v));
  v->kind = kind;
  return v;
}
static moai_ts_value_t *v_arg(fx_t *f, int i) {
  moai_ts_value_t *v = v_new(f, MOAI_TS_TENSOR);
  v->tensor = mlirBlockGetArgument(f->block, i);
  return v;
}
static moai_ts_value_t *v_int(fx_t *f, int64_t i) {
  moai_ts_value_t *v = v_new(f, MOAI_TS_INT);
  v->i = i;
  return v;
}
static moai_ts_value_t *v_float(fx_t *f, double x) {
  moai_ts_value_t *v = v_new(f, MOAI_TS_FLOAT);
  v->f = x;
  return v;
}
static moai_ts_value_t *v_bool(fx_t *f, bool b) {
  moai_ts_value_t *v = v_new(f, MOAI_TS_BOOL);
  v->b = b;
  return v;
}
static moai_ts_value_t *v_none(fx_t *f) { return v_new(f, MOAI_TS_NONE); }
static moai_ts_value_t *v_str(fx_t *f, const char *s) {
  moai_ts_value_t *v = v_new(f, MOAI_TS_STR);
  v->str = s;
  return v;
}
static moai_ts_value_t *v_list(fx_t *f, size_t n, moai_ts_value_t **items) {
  moai_ts_value_t *v = v_new(f, MOAI_TS_LIST);
  v->len = n;
  v->items = moai_ts_arena_alloc(f->arena, (n + 1) * sizeof(*items));
  memcpy(v->items, items, n * sizeof(*items));
  return v;
}
static moai_ts_value_t *v_ints(fx_t *f, size_t n, const int64_t *xs) {
  moai_ts_value_t *items[8];
  for (size_t i = 0; i < n; ++i) items[i] = v_int(f, xs[i]);
  return v_list(f, n, items);
}
/* A 0-dim known tensor (a CONSTANTS.c<i>: not a wrapped number). */
static moai_ts_value_t *v_const_f64(fx_t *f, double x) {
  moai_ts_value_t *v = v_new(f, MOAI_TS_TENSOR);
  moai_ts_const_t *k = moai_ts_arena_alloc(f->arena, sizeof(*k));
  k->dtype = MOAI_PK_F64;
  k->numel = 1;
  k->data = moai_ts_arena_alloc(f->arena, 8);
  *(double *)k->data = x;
  v->konst = k;
  return v;
}
static moai_ts_value_t *v_const_i64(fx_t *f, int64_t x) {
  moai_ts_value_t *v = v_const_f64(f, 0);
  v->konst->dtype = MOAI_PK_I64;
  *(int64_t *)v->konst->data = x;
  return v;
}

/* Calls fn with positional args; the result, or NULL with the status in
 * *out_status (freed by the caller). */
static moai_ts_value_t *call(fx_t *f, const char *fn, size_t n,
                             moai_ts_value_t **args) {
  moai_ts_value_t *out = NULL;
  moai_status_t s = moai_ts_call_op(&f->em, fn, args, n, NULL, 0, &out);
  if (s) {
    fprintf(stderr, "\n  %s: %s\n", fn, moai_status_message(s));
    moai_status_free(s);
    return NULL;
  }
  return out;
}
#define CALL(f, fn, ...)                                                     \
  call((f), (fn), sizeof((moai_ts_value_t *[]){__VA_ARGS__}) /               \
                      sizeof(moai_ts_value_t *),                             \
       (moai_ts_value_t *[]){__VA_ARGS__})

/* The status message of a failing call (static buffer). */
static const char *call_error(fx_t *f, const char *fn, size_t n,
                              moai_ts_value_t **args) {
  static char msg[1024];
  moai_ts_value_t *out = NULL;
  moai_status_t s = moai_ts_call_op(&f->em, fn, args, n, NULL, 0, &out);
  if (!s) return "(no error)";
  snprintf(msg, sizeof(msg), "%s", moai_status_message(s));
  moai_status_free(s);
  return msg;
}
#define CALL_ERROR(f, fn, ...)                                               \
  call_error((f), (fn), sizeof((moai_ts_value_t *[]){__VA_ARGS__}) /         \
                            sizeof(moai_ts_value_t *),                       \
             (moai_ts_value_t *[]){__VA_ARGS__})

static void append_cb(MlirStringRef s, void *user) {
  char *buf = user;
  size_t n = strlen(buf);
  if (n + s.length < 255) {
    memcpy(buf + n, s.data, s.length);
    buf[n + s.length] = 0;
  }
}
static const char *type_str(moai_ts_value_t *v) {
  static char buf[256];
  buf[0] = 0;
  if (!v || v->kind != MOAI_TS_TENSOR || mlirValueIsNull(v->tensor))
    return "(no value)";
  mlirTypePrint(mlirValueGetType(v->tensor), append_cb, buf);
  return buf;
}

#define ASSERT_TYPE(v, want)                                                 \
  do {                                                                       \
    const char *got_ = type_str(v);                                          \
    if (strcmp(got_, (want)) != 0)                                           \
      fprintf(stderr, "\n  line %d: type %s, want %s\n", __LINE__, got_, (want)); \
    CU_ASSERT_STRING_EQUAL(got_, (want));                                    \
  } while (0)

#define ASSERT_CONTAINS(s, sub)                                              \
  do {                                                                       \
    if (!strstr((s), (sub)))                                                 \
      fprintf(stderr, "\n  line %d: '%s' lacks '%s'\n", __LINE__, (s), (sub)); \
    CU_ASSERT_PTR_NOT_NULL(strstr((s), (sub)));                              \
  } while (0)

/* -------------------------------------------------------------- tests */

/* A Mistral attention block's ops as traced: sizes fold to ints, linear on a
 * 3-D input is MatMul(x, Transpose(W)), reshape/transpose/softmax. */
static void test_attention_ops(void) {
  fx_t f;
  fx_init(&f, "%x: tensor<2x16x64xf32>, %wq: tensor<64x64xf32>, "
              "%mask: tensor<1x1x16x16xf32>");
  moai_ts_value_t *x = v_arg(&f, 0), *wq = v_arg(&f, 1), *mask = v_arg(&f, 2);
  moai_ts_value_t *b = CALL(&f, "ops.prim.NumToTensor", CALL(&f, "torch.size", x, v_int(&f, 0)));
  moai_ts_value_t *s = CALL(&f, "ops.prim.NumToTensor", CALL(&f, "torch.size", x, v_int(&f, 1)));
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_EQUAL(fx_op_count(&f), 0); /* nothing emitted for sizes */
  moai_ts_value_t *bi = CALL(&f, "int", b), *si = CALL(&f, "int", s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bi);
  CU_ASSERT_EQUAL(bi->kind, MOAI_TS_INT);
  CU_ASSERT_EQUAL(bi->i, 2);
  CU_ASSERT_EQUAL(si->i, 16);
  moai_ts_value_t *q = CALL(&f, "torch.linear", x, wq);
  ASSERT_TYPE(q, "tensor<2x16x64xf32>");
  CU_ASSERT_EQUAL(fx_count(&f, "moai.transpose"), 1);
  CU_ASSERT_EQUAL(fx_count(&f, "moai.matmul"), 1);
  moai_ts_value_t *dims4[4] = {bi, si, v_int(&f, 4), v_int(&f, 16)};
  moai_ts_value_t *q4 = CALL(&f, "torch.reshape", q, v_list(&f, 4, dims4));
  ASSERT_TYPE(q4, "tensor<2x16x4x16xf32>");
  moai_ts_value_t *qt = CALL(&f, "torch.transpose", q4, v_int(&f, 1), v_int(&f, 2));
  ASSERT_TYPE(qt, "tensor<2x4x16x16xf32>");
  moai_ts_value_t *kt = CALL(&f, "ops.aten.transpose", qt, v_int(&f, 2), v_int(&f, 3));
  moai_ts_value_t *sc = CALL(&f, "torch.matmul", qt, kt);
  ASSERT_TYPE(sc, "tensor<2x4x16x16xf32>");
  /* CONSTANTS.c1 is a 0-dim float64 tensor: the result stays float32. */
  moai_ts_value_t *scaled = CALL(&f, "torch.div", sc, v_const_f64(&f, 4.0));
  ASSERT_TYPE(scaled, "tensor<2x4x16x16xf32>");
  moai_ts_value_t *probs = CALL(&f, "torch.softmax", CALL(&f, "torch.add", scaled, mask), v_int(&f, -1));
  ASSERT_TYPE(probs, "tensor<2x4x16x16xf32>");
  CU_ASSERT_EQUAL(fx_count(&f, "moai.softmax"), 1);
  /* Rotary half: floor_divide of a NumToTensor by a CONSTANTS int folds. */
  moai_ts_value_t *half = CALL(&f, "torch.floor_divide",
                               CALL(&f, "ops.prim.NumToTensor", CALL(&f, "torch.size", qt, v_int(&f, 3))),
                               v_const_i64(&f, 2));
  CU_ASSERT_PTR_NOT_NULL_FATAL(half);
  CU_ASSERT_PTR_NOT_NULL_FATAL(half->konst);
  CU_ASSERT_TRUE(mlirValueIsNull(half->tensor));
  moai_ts_value_t *hi = CALL(&f, "int", half);
  CU_ASSERT_EQUAL(hi->i, 8);
  moai_ts_value_t *tail = CALL(&f, "torch.slice", qt, v_int(&f, 3), hi, v_int(&f, INT64_MAX));
  ASSERT_TYPE(tail, "tensor<2x4x16x8xf32>");
  moai_ts_value_t *parts[2] = {CALL(&f, "torch.neg", tail),
                               CALL(&f, "torch.slice", qt, v_int(&f, 3), v_int(&f, 0), hi)};
  moai_ts_value_t *rot = CALL(&f, "torch.cat", v_list(&f, 2, parts), v_int(&f, -1));
  ASSERT_TYPE(rot, "tensor<2x4x16x16xf32>");
  /* A whole-range slice is the tensor itself. */
  moai_ts_value_t *same = CALL(&f, "torch.slice", qt, v_int(&f, 0), v_int(&f, 0), v_int(&f, INT64_MAX));
  CU_ASSERT_PTR_EQUAL(same, qt);
  CU_ASSERT_TRUE(fx_verify(&f));
  fx_free(&f);
}

/* The sliding-window mask: arange, comparisons and & of known tensors fold
 * to a known bool tensor; no op is emitted until it meets the input mask. */
static void test_mask_folds(void) {
  fx_t f;
  fx_init(&f, "%am: tensor<2x16xi64>");
  moai_ts_value_t *am = v_arg(&f, 0);
  moai_ts_value_t *s = CALL(&f, "ops.prim.NumToTensor", CALL(&f, "torch.size", am, v_int(&f, 1)));
  moai_ts_value_t *idx = CALL(&f, "torch.arange", s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
  CU_ASSERT_PTR_NOT_NULL_FATAL(idx->konst);
  CU_ASSERT_EQUAL(idx->konst->dtype, MOAI_PK_I64);
  CU_ASSERT_EQUAL(idx->konst->numel, 16);
  CU_ASSERT_EQUAL(((int64_t *)idx->konst->data)[15], 15);
  moai_ts_value_t *i = CALL(&f, "torch.unsqueeze", idx, v_int(&f, 1));
  moai_ts_value_t *j = CALL(&f, "torch.unsqueeze", idx, v_int(&f, 0));
  moai_ts_value_t *le = CALL(&f, "torch.le", j, i);
  moai_ts_value_t *win = CALL(&f, "torch.lt", CALL(&f, "torch.sub", i, j), v_int(&f, 8));
  moai_ts_value_t *allowed = CALL(&f, "torch.__and__", le, win);
  CU_ASSERT_PTR_NOT_NULL_FATAL(allowed);
  CU_ASSERT_PTR_NOT_NULL_FATAL(allowed->konst);
  CU_ASSERT_EQUAL(allowed->konst->dtype, MOAI_PK_BOOL_DT);
  CU_ASSERT_EQUAL(allowed->konst->rank, 2);
  const uint8_t *m = allowed->konst->data;
  CU_ASSERT_EQUAL(m[5 * 16 + 5], 1);  /* i == j */
  CU_ASSERT_EQUAL(m[5 * 16 + 6], 0);  /* j > i */
  CU_ASSERT_EQUAL(m[9 * 16 + 2], 1);  /* i - j = 7 */
  CU_ASSERT_EQUAL(m[10 * 16 + 2], 0); /* i - j = 8: outside the window */
  CU_ASSERT_EQUAL(fx_op_count(&f), 0);
  moai_ts_value_t *a4 = CALL(&f, "torch.unsqueeze", CALL(&f, "torch.unsqueeze", allowed, v_int(&f, 0)), v_int(&f, 1));
  moai_ts_value_t *pm = CALL(&f, "torch.ne", CALL(&f, "torch.unsqueeze", CALL(&f, "torch.unsqueeze", am, v_int(&f, 1)), v_int(&f, 2)), v_int(&f, 0));
  ASSERT_TYPE(pm, "tensor<2x1x1x16xi1>");
  moai_ts_value_t *both = CALL(&f, "torch.__and__", a4, pm);
  ASSERT_TYPE(both, "tensor<2x1x16x16xi1>");
  moai_ts_value_t *zero = CALL(&f, "torch.zeros", v_ints(&f, 0, NULL), v_int(&f, 6));
  moai_ts_value_t *neg = CALL(&f, "torch.full", v_ints(&f, 0, NULL), v_float(&f, -3.4028234663852886e+38), v_int(&f, 6));
  CU_ASSERT_EQUAL(zero->konst->dtype, MOAI_PK_F32);
  moai_ts_value_t *bias = CALL(&f, "torch.where", both, zero, neg);
  ASSERT_TYPE(bias, "tensor<2x1x16x16xf32>");
  /* position_ids-like folding: cumsum and clamp of known data. */
  int64_t ones[4] = {0, 1, 1, 1};
  moai_ts_value_t *t = CALL(&f, "torch.tensor", v_ints(&f, 4, ones));
  moai_ts_value_t *cs = CALL(&f, "torch.cumsum", t, v_int(&f, -1));
  CU_ASSERT_PTR_NOT_NULL_FATAL(cs);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cs->konst);
  CU_ASSERT_EQUAL(((int64_t *)cs->konst->data)[3], 3);
  moai_ts_value_t *tri = CALL(&f, "torch.triu", CALL(&f, "torch.ones", v_ints(&f, 2, (int64_t[]){3, 3}), v_int(&f, 11)), v_int(&f, 1));
  CU_ASSERT_PTR_NOT_NULL_FATAL(tri->konst);
  CU_ASSERT_EQUAL(((uint8_t *)tri->konst->data)[1], 1);
  CU_ASSERT_EQUAL(((uint8_t *)tri->konst->data)[3], 0);
  CU_ASSERT_TRUE(fx_verify(&f));
  fx_free(&f);
}

/* PyTorch's promotion: numbers do not widen a tensor's dtype, an int tensor
 * with a float number gives float32, comparisons give bool. */
static void test_promotion(void) {
  fx_t f;
  fx_init(&f, "%x: tensor<4xf32>, %n: tensor<4xi64>, %h: tensor<4xf64>");
  moai_ts_value_t *x = v_arg(&f, 0), *n = v_arg(&f, 1), *h = v_arg(&f, 2);
  ASSERT_TYPE(CALL(&f, "torch.mul", x, v_float(&f, 2.5)), "tensor<4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.mul", n, v_float(&f, 2.5)), "tensor<4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.add", n, v_int(&f, 1)), "tensor<4xi64>");
  ASSERT_TYPE(CALL(&f, "torch.add", x, h), "tensor<4xf64>");
  ASSERT_TYPE(CALL(&f, "torch.div", n, v_int(&f, 2)), "tensor<4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.eq", n, v_int(&f, 3)), "tensor<4xi1>");
  ASSERT_TYPE(CALL(&f, "torch.pow", x, v_int(&f, 2)), "tensor<4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.sqrt", n), "tensor<4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.to", n, v_int(&f, 6)), "tensor<4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.sum", n), "tensor<i64>");
  ASSERT_TYPE(CALL(&f, "torch.mean", x, v_ints(&f, 1, (int64_t[]){-1}), v_bool(&f, true)), "tensor<1xf32>");
  /* add with alpha: other * alpha, then the add. */
  ASSERT_TYPE(CALL(&f, "torch.add", x, x, v_int(&f, 2)), "tensor<4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.rsub", x, v_int(&f, 1)), "tensor<4xf32>");
  /* A float64 CONSTANTS scalar with a float32 tensor: an f32 constant. */
  size_t before = fx_count(&f, "moai.cast");
  ASSERT_TYPE(CALL(&f, "torch.add", x, v_const_f64(&f, 1e-6)), "tensor<4xf32>");
  CU_ASSERT_EQUAL(fx_count(&f, "moai.cast"), before);
  const char *e = CALL_ERROR(&f, "torch.mean", n);
  ASSERT_CONTAINS(e, "m.pt: code/__torch__/m.py:12: torch.mean: mean of a int64 tensor");
  CU_ASSERT_TRUE(fx_verify(&f));
  fx_free(&f);
}

/* The causal-LM loss: slices, reshape with -1, cross_entropy_loss. */
static void test_loss(void) {
  fx_t f;
  fx_init(&f, "%logits: tensor<2x16x256xf32>, %labels: tensor<2x16xi64>");
  moai_ts_value_t *lg = v_arg(&f, 0), *lb = v_arg(&f, 1);
  moai_ts_value_t *sl = CALL(&f, "torch.slice", lg, v_int(&f, 1), v_int(&f, 0), v_int(&f, -1));
  ASSERT_TYPE(sl, "tensor<2x15x256xf32>");
  moai_ts_value_t *in = CALL(&f, "torch.reshape", sl, v_ints(&f, 2, (int64_t[]){-1, 256}));
  ASSERT_TYPE(in, "tensor<30x256xf32>");
  moai_ts_value_t *tg = CALL(&f, "torch.reshape", CALL(&f, "torch.slice", lb, v_int(&f, 1), v_int(&f, 1), v_int(&f, INT64_MAX)), v_ints(&f, 1, (int64_t[]){-1}));
  ASSERT_TYPE(tg, "tensor<30xi64>");
  moai_ts_value_t *loss = CALL(&f, "torch.cross_entropy_loss", in, tg);
  ASSERT_TYPE(loss, "tensor<f32>");
  MlirOperation op = mlirOpResultGetOwner(loss->tensor);
  MlirAttribute red = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString("reduction"));
  MlirAttribute ign = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString("ignore_index"));
  CU_ASSERT_TRUE(mlirStringRefEqual(mlirStringAttrGetValue(red), mlirStringRefCreateFromCString("mean")));
  CU_ASSERT_EQUAL(mlirIntegerAttrGetValueInt(ign), -100);
  /* nll_loss after log_softmax is the same loss on the scores. */
  moai_ts_value_t *ls = CALL(&f, "torch.log_softmax", in, v_int(&f, 1));
  moai_ts_value_t *nll = CALL(&f, "torch.nll_loss_nd", ls, tg, v_none(&f), v_int(&f, 2), v_int(&f, -100));
  ASSERT_TYPE(nll, "tensor<f32>");
  CU_ASSERT_PTR_EQUAL(mlirOperationGetOperand(mlirOpResultGetOwner(nll->tensor), 0).ptr, in->tensor.ptr);
  const char *e = CALL_ERROR(&f, "torch.nll_loss", in, tg);
  ASSERT_CONTAINS(e, "only supported on a log_softmax");
  e = CALL_ERROR(&f, "torch.cross_entropy_loss", in, tg, v_none(&f), v_int(&f, 1), v_int(&f, -100), v_float(&f, 0.1));
  ASSERT_CONTAINS(e, "label_smoothing 0.1 is not supported");
  CU_ASSERT_TRUE(fx_verify(&f));
  fx_free(&f);
}

/* The CNN as traced: _convolution, training batch_norm, pools, clamp,
 * adaptive pool to 1x1, flatten, dropout p=0, linear with bias (Gemm),
 * gelu. */
static void test_cnn_ops(void) {
  fx_t f;
  fx_init(&f, "%img: tensor<2x3x16x16xf32>, %w: tensor<8x3x3x3xf32>, %b: tensor<8xf32>, "
              "%g: tensor<8xf32>, %be: tensor<8xf32>, %rm: tensor<8xf32>, %rv: tensor<8xf32>, "
              "%fw: tensor<10x8xf32>, %fb: tensor<10xf32>, %t: tensor<2xi64>");
  moai_ts_value_t *x = CALL(&f, "torch._convolution", v_arg(&f, 0), v_arg(&f, 1), v_arg(&f, 2),
                            v_ints(&f, 2, (int64_t[]){1, 1}), v_ints(&f, 2, (int64_t[]){1, 1}),
                            v_ints(&f, 2, (int64_t[]){1, 1}), v_bool(&f, false),
                            v_ints(&f, 2, (int64_t[]){0, 0}), v_int(&f, 1), v_bool(&f, false),
                            v_bool(&f, false), v_bool(&f, true), v_bool(&f, true));
  ASSERT_TYPE(x, "tensor<2x8x16x16xf32>");
  x = CALL(&f, "torch.batch_norm", x, v_arg(&f, 3), v_arg(&f, 4), v_arg(&f, 5), v_arg(&f, 6),
           v_bool(&f, true), v_float(&f, 0.1), v_float(&f, 1e-5), v_bool(&f, true));
  ASSERT_TYPE(x, "tensor<2x8x16x16xf32>");
  MlirOperation bn = mlirOpResultGetOwner(x->tensor);
  CU_ASSERT_EQUAL(mlirOperationGetNumResults(bn), 3);
  CU_ASSERT_EQUAL(mlirIntegerAttrGetValueInt(mlirOperationGetAttributeByName(bn, mlirStringRefCreateFromCString("training_mode"))), 1);
  double mom = mlirFloatAttrGetValueDouble(mlirOperationGetAttributeByName(bn, mlirStringRefCreateFromCString("momentum")));
  CU_ASSERT_DOUBLE_EQUAL(mom, 0.9, 1e-6);
  x = CALL(&f, "torch.relu", x);
  x = CALL(&f, "torch.max_pool2d", x, v_ints(&f, 2, (int64_t[]){2, 2}), v_ints(&f, 0, NULL),
           v_ints(&f, 2, (int64_t[]){0, 0}), v_ints(&f, 2, (int64_t[]){1, 1}));
  ASSERT_TYPE(x, "tensor<2x8x8x8xf32>");
  x = CALL(&f, "torch.leaky_relu", x, v_float(&f, 0.1));
  x = CALL(&f, "torch.avg_pool2d", x, v_ints(&f, 2, (int64_t[]){2, 2}), v_ints(&f, 0, NULL),
           v_ints(&f, 2, (int64_t[]){0, 0}), v_bool(&f, false), v_bool(&f, false));
  ASSERT_TYPE(x, "tensor<2x8x4x4xf32>");
  x = CALL(&f, "torch.clamp", x, v_float(&f, -6.0), v_float(&f, 6.0));
  ASSERT_TYPE(x, "tensor<2x8x4x4xf32>");
  x = CALL(&f, "torch.adaptive_avg_pool2d", x, v_ints(&f, 2, (int64_t[]){1, 1}));
  ASSERT_TYPE(x, "tensor<2x8x1x1xf32>");
  x = CALL(&f, "torch.flatten", x, v_int(&f, 1));
  ASSERT_TYPE(x, "tensor<2x8xf32>");
  moai_ts_value_t *d = CALL(&f, "torch.dropout", x, v_float(&f, 0.0), v_bool(&f, true));
  CU_ASSERT_PTR_EQUAL(d, x);
  x = CALL(&f, "torch.linear", x, v_arg(&f, 7), v_arg(&f, 8));
  ASSERT_TYPE(x, "tensor<2x10xf32>");
  CU_ASSERT_EQUAL(fx_count(&f, "moai.gemm"), 1);
  x = CALL(&f, "torch.gelu", x);
  moai_ts_value_t *loss = CALL(&f, "torch.cross_entropy_loss", x, v_arg(&f, 9));
  ASSERT_TYPE(loss, "tensor<f32>");
  const char *e = CALL_ERROR(&f, "torch.dropout", x, v_float(&f, 0.5), v_bool(&f, true));
  ASSERT_CONTAINS(e, "torch.dropout: p = 0.5 in training mode is not supported");
  CU_ASSERT_TRUE(fx_verify(&f));
  fx_free(&f);
}

/* Split-like ops give tuples; stack, embedding, expand, permute. */
static void test_shape_ops(void) {
  fx_t f;
  fx_init(&f, "%x: tensor<2x6x4xf32>, %emb: tensor<10x4xf32>, %ids: tensor<2x3xi64>");
  moai_ts_value_t *x = v_arg(&f, 0);
  moai_ts_value_t *ch = CALL(&f, "torch.chunk", x, v_int(&f, 2), v_int(&f, 1));
  CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
  CU_ASSERT_EQUAL(ch->kind, MOAI_TS_TUPLE);
  CU_ASSERT_EQUAL(ch->len, 2);
  ASSERT_TYPE(ch->items[1], "tensor<2x3x4xf32>");
  moai_ts_value_t *sp = CALL(&f, "torch.split", x, v_ints(&f, 2, (int64_t[]){1, 5}), v_int(&f, 1));
  CU_ASSERT_EQUAL(sp->len, 2);
  ASSERT_TYPE(sp->items[1], "tensor<2x5x4xf32>");
  moai_ts_value_t *st = CALL(&f, "torch.stack", v_list(&f, 2, ch->items), v_int(&f, 0));
  ASSERT_TYPE(st, "tensor<2x2x3x4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.permute", x, v_ints(&f, 3, (int64_t[]){2, 0, 1})), "tensor<4x2x6xf32>");
  ASSERT_TYPE(CALL(&f, "torch.expand", CALL(&f, "torch.unsqueeze", x, v_int(&f, 1)),
                   v_ints(&f, 4, (int64_t[]){-1, 3, -1, -1})), "tensor<2x3x6x4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.embedding", v_arg(&f, 1), v_arg(&f, 2)), "tensor<2x3x4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.select", x, v_int(&f, 1), v_int(&f, -1)), "tensor<2x4xf32>");
  ASSERT_TYPE(CALL(&f, "torch.view", x, v_ints(&f, 2, (int64_t[]){12, -1})), "tensor<12x4xf32>");
  moai_ts_value_t *sz = CALL(&f, "torch.size", x);
  CU_ASSERT_EQUAL(sz->kind, MOAI_TS_LIST);
  CU_ASSERT_EQUAL(sz->len, 3);
  CU_ASSERT_EQUAL(sz->items[1]->i, 6);
  CU_ASSERT_EQUAL(CALL(&f, "torch.numel", x)->i, 48);
  CU_ASSERT_EQUAL(CALL(&f, "torch.dim", x)->i, 3);
  CU_ASSERT_TRUE(fx_verify(&f));
  fx_free(&f);
}

/* Errors name the archive, file, line and operator. */
static void test_errors(void) {
  fx_t f;
  fx_init(&f, "%x: tensor<2x6xf32>");
  moai_ts_value_t *x = v_arg(&f, 0);
  const char *e = CALL_ERROR(&f, "torch.foo", x);
  CU_ASSERT_STRING_EQUAL(e, "m.pt: code/__torch__/m.py:12: unsupported operator "
                            "torch.foo (see docs/torchscript.md for the list)");
  e = CALL_ERROR(&f, "torch.reshape", x, v_str(&f, "a"));
  CU_ASSERT_STRING_EQUAL(e, "m.pt: code/__torch__/m.py:12: torch.reshape: argument "
                            "'shape' must be a list of ints, not a string");
  e = CALL_ERROR(&f, "torch.reshape", x, v_ints(&f, 2, (int64_t[]){5, 5}));
  ASSERT_CONTAINS(e, "torch.reshape: shape has 25 elements, the tensor 12");
  e = CALL_ERROR(&f, "torch.transpose", x, v_int(&f, 0), v_int(&f, 2));
  ASSERT_CONTAINS(e, "torch.transpose: dim 2 out of range for rank 2");
  e = CALL_ERROR(&f, "torch.add", x, v_arg(&f, 0), v_int(&f, 1), v_int(&f, 1));
  ASSERT_CONTAINS(e, "torch.add: takes at most 3 arguments, 4 given");
  e = CALL_ERROR(&f, "torch.matmul", x, x);
  ASSERT_CONTAINS(e, "m.pt: code/__torch__/m.py:12: torch.matmul: ");
  e = CALL_ERROR(&f, "int", x);
  ASSERT_CONTAINS(e, "int: of a tensor computed at run time");
  moai_ts_kwarg_t kw = {"bogus", v_int(&f, 1)};
  moai_ts_value_t *out = NULL;
  moai_status_t s = moai_ts_call_op(&f.em, "torch.softmax", &x, 1, &kw, 1, &out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  ASSERT_CONTAINS(moai_status_message(s), "torch.softmax: has no argument 'bogus'");
  moai_status_free(s);
  /* Keyword arguments fill their slots. */
  kw = (moai_ts_kwarg_t){"dim", v_int(&f, -1)};
  s = moai_ts_call_op(&f.em, "torch.softmax", &x, 1, &kw, 1, &out);
  CU_ASSERT_PTR_NULL(s);
  moai_status_free(s);
  CU_ASSERT_TRUE(fx_verify(&f));
  fx_free(&f);
}

static void test_names(void) {
  const char *const *names = moai_ts_op_names();
  size_t n = 0;
  for (; names[n]; ++n) {
    CU_ASSERT_TRUE(moai_ts_op_known(names[n]));
    if (n) CU_ASSERT_TRUE(strcmp(names[n - 1], names[n]) < 0);
  }
  CU_ASSERT_TRUE(n > 100);
  CU_ASSERT_TRUE(moai_ts_op_known("ops.aten.linear"));
  CU_ASSERT_TRUE(moai_ts_op_known("ops.prim.NumToTensor"));
  CU_ASSERT_FALSE(moai_ts_op_known("torch.foo"));
  CU_ASSERT_FALSE(moai_ts_op_known("ops.aten.foo"));
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"attention_ops", test_attention_ops},
      {"mask_folds", test_mask_folds},
      {"promotion", test_promotion},
      {"loss", test_loss},
      {"cnn_ops", test_cnn_ops},
      {"shape_ops", test_shape_ops},
      {"errors", test_errors},
      {"names", test_names},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("ts_aten", tests);
}
