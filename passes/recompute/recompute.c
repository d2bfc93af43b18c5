/* moai-recompute: see recompute.h. */
#include "recompute/recompute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "ir/dialect.h"
#include "ir/op_defs.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/Diagnostics.h"
#include "partition/cuts.h"

static bool name_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

static MlirOperation def_op(MlirValue v) {
  return mlirValueIsAOpResult(v) ? mlirOpResultGetOwner(v) : (MlirOperation){NULL};
}

typedef struct rc_t {
  MlirContext ctx;
  MlirBlock block;
  moai_cuts_t cuts;
  bool selective;
  moai_pmap_t clones; /* value -> its recomputed copy (MlirValue ptr) */
  MlirOperation anchor;
  size_t recomputed;
  bool oom;
} rc_t;

/* Whether `v`, used by the backward, is kept from the forward. */
static bool kept(const rc_t *R, MlirValue v) {
  MlirOperation d = def_op(v);
  if (mlirOperationIsNull(d)) return true; /* a graph input */
  if (moai_cuts_position(&R->cuts, d) >= (int64_t)R->cuts.n) return true; /* not forward */
  if (moai_pmap_get(&R->cuts.dep, v.ptr, 0) != (MOAI_DEP_WEIGHT | MOAI_DEP_INPUT)) return true;
  for (size_t k = 0; k < R->cuts.count; ++k)
    if (mlirValueEqual(R->cuts.value[k], v)) return true; /* a checkpoint */
  MlirStringRef nm = mlirIdentifierStr(mlirOperationGetName(d));
  const moai_op_def_t *def = moai_op_def_find(nm.data, nm.length);
  if (def && (def->flags & (MOAI_OP_FLAG_RANDOM | MOAI_OP_FLAG_SIDE_EFFECT))) return true;
  if (R->selective && (name_is(d, "moai.matmul") || name_is(d, "moai.gemm"))) {
    /* A GEMM by a weight: an operand that depends on weights only. */
    for (intptr_t k = 0; k < mlirOperationGetNumOperands(d); ++k)
      if (moai_pmap_get(&R->cuts.dep, mlirOperationGetOperand(d, k).ptr, 0) == MOAI_DEP_WEIGHT)
        return true;
  }
  return false;
}

/* v's recomputed copy (built before R->anchor), or v when it is kept. */
static MlirValue recompute(rc_t *R, MlirValue v) {
  if (kept(R, v)) return v;
  int64_t have = moai_pmap_get(&R->clones, v.ptr, 0);
  if (have) return (MlirValue){(const void *)(uintptr_t)have};
  MlirOperation d = def_op(v);
  intptr_t n = mlirOperationGetNumOperands(d);
  MlirValue operands[64];
  if (n > 64) return v; /* no moai op has this many */
  for (intptr_t k = 0; k < n; ++k) {
    operands[k] = recompute(R, mlirOperationGetOperand(d, k));
    if (R->oom) return v;
  }
  MlirOperation c = mlirOperationClone(d);
  for (intptr_t k = 0; k < n; ++k) mlirOperationSetOperand(c, k, operands[k]);
  mlirOperationSetAttributeByName(c, mlirStringRefCreateFromCString("moai.recomputed"),
                                  mlirUnitAttrGet(R->ctx));
  mlirBlockInsertOwnedOperationBefore(R->block, R->anchor, c);
  R->recomputed++;
  for (intptr_t k = 0; k < mlirOperationGetNumResults(d); ++k)
    if (!moai_pmap_put(&R->clones, mlirOperationGetResult(d, k).ptr,
                       (int64_t)(uintptr_t)mlirOperationGetResult(c, k).ptr))
      R->oom = true;
  return mlirOperationGetResult(c, mlirOpResultGetResultNumber(v));
}

/* The segment (between checkpoints) forward op position p lies in. */
static size_t segment_of(const moai_cuts_t *c, int64_t p) {
  size_t s = 0;
  while (s < c->count && p > c->after[s]) ++s;
  return s;
}


static bool fail(MlirOperation at, const char *msg) {
  char buf[512];
  snprintf(buf, sizeof(buf), "moai-recompute: %s", msg);
  mlirEmitError(mlirOperationGetLocation(at), buf);
  return false;
}

bool moai_recompute_run(MlirOperation module, moai_recompute_stats_t *out_stats) {
  moai_recompute_stats_t stats = {0};
  if (out_stats) *out_stats = stats;
  MlirAttribute par = ad_attr(module, "moai.parallel");
  MlirAttribute mode = mlirAttributeIsNull(par) || !mlirAttributeIsADictionary(par)
                           ? (MlirAttribute){NULL}
                           : mlirDictionaryAttrGetElementByName(par, mlirStringRefCreateFromCString("recompute"));
  if (mlirAttributeIsNull(mode)) return true;
  if (!mlirAttributeIsAString(mode)) return fail(module, "moai.parallel.recompute must be a string");
  MlirStringRef m = mlirStringAttrGetValue(mode);
  bool none = mlirStringRefEqual(m, mlirStringRefCreateFromCString("none"));
  bool full = mlirStringRefEqual(m, mlirStringRefCreateFromCString("full"));
  bool selective = mlirStringRefEqual(m, mlirStringRefCreateFromCString("selective"));
  if (!none && !full && !selective)
    return fail(module, "moai.parallel.recompute must be \"none\", \"selective\" or \"full\"");
  if (none) return true;
  MlirOperation func = moai_module_func(module, "main");
  if (mlirOperationIsNull(func)) return fail(module, "the module has no func.func @main");
  MlirBlock block = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
  MlirOperation ret = mlirBlockGetTerminator(block);
  MlirAttribute first = ad_attr(func, "res_attrs");
  bool autodiffed = mlirOperationGetNumOperands(ret) >= 2 && !mlirAttributeIsNull(first) &&
                    mlirArrayAttrGetNumElements(first) >= 2;
  if (!autodiffed) return fail(func, "@main is not the output of moai-autodiff; run it first");
  /* The forward: every op up to the loss's. */
  MlirOperation loss_def = def_op(mlirOperationGetOperand(ret, 0));
  if (mlirOperationIsNull(loss_def)) return true;
  size_t limit = 0;
  for (MlirOperation op = mlirBlockGetFirstOperation(block); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op)) {
    ++limit;
    if (mlirOperationEqual(op, loss_def)) break;
  }
  rc_t R = {.ctx = mlirOperationGetContext(module), .block = block, .selective = selective};
  if (!moai_cuts_find(block, limit, false, &R.cuts)) return fail(func, "out of memory");
  /* Backward uses of recomputed values, grouped by the segment of the value;
   * each segment's copies go before its first such use. */
  size_t segments = R.cuts.count + 1;
  MlirOperation *anchor = calloc(segments, sizeof(*anchor));
  bool ok = anchor != NULL;
  for (MlirOperation op = mlirOperationGetNextInBlock(loss_def); ok && !mlirOperationEqual(op, ret);
       op = mlirOperationGetNextInBlock(op))
    for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); ++k) {
      MlirValue v = mlirOperationGetOperand(op, k);
      if (kept(&R, v)) continue;
      size_t s = segment_of(&R.cuts, moai_cuts_position(&R.cuts, def_op(v)));
      if (mlirOperationIsNull(anchor[s])) anchor[s] = op;
    }
  /* Later segments first: their backward comes first. The last segment (the
   * loss's) is kept: its backward starts right after its forward, so there
   * is nothing to gain. */
  for (size_t s = segments - 1; ok && s-- > 0;) {
    if (mlirOperationIsNull(anchor[s])) continue;
    R.anchor = anchor[s];
    for (MlirOperation op = anchor[s]; ok && !mlirOperationEqual(op, ret);
         op = mlirOperationGetNextInBlock(op)) {
      if (mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString("moai.recomputed")).ptr)
        continue;
      for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); ++k) {
        MlirValue v = mlirOperationGetOperand(op, k);
        MlirOperation d = def_op(v);
        if (mlirOperationIsNull(d) || kept(&R, v) ||
            segment_of(&R.cuts, moai_cuts_position(&R.cuts, d)) != s)
          continue;
        MlirValue c = recompute(&R, v);
        if (R.oom) ok = false;
        else mlirOperationSetOperand(op, k, c);
      }
    }
  }
  stats.checkpoints = R.cuts.count;
  stats.recomputed = R.recomputed;
  free(anchor);
  moai_pmap_free(&R.clones);
  moai_cuts_free(&R.cuts);
  if (!ok) return fail(func, "out of memory");
  if (out_stats) *out_stats = stats;
  return true;
}

static void run_pass(MlirOperation op, MlirExternalPass pass, const void *options) {
  (void)options;
  if (!moai_recompute_run(op, NULL)) mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_recompute_pass_create(void) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiRecompute",
      .argument = "moai-recompute",
      .description = "recompute forward activations in the backward (moai.parallel recompute = "
                     "selective or full) instead of keeping them",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  char unused = 0;
  return moai_external_pass_create(&def, &unused, sizeof(unused));
}
