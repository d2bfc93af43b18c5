/* moai-optimizer's gradient buckets (data parallelism, docs/training.md
 * "Data parallelism"): where each gradient's moai.accumulate goes in @main,
 * and the moai.grad_ready ops that let the runtime sum a bucket of finished
 * gradients over the dp group while the backward goes on, as PyTorch's
 * DistributedDataParallel does (Li et al., "PyTorch Distributed", VLDB 2020:
 * gradients are grouped in reverse order of use into buckets of
 * bucket_cap_mb = 25 MiB, each all-reduced as soon as all its gradients are
 * ready). */
#include <stdlib.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "ir/op_defs.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"
#include "optimizer/optimizer.h"
#include "optimizer/optimizer_internal.h"

size_t moai_grad_buckets_assign(const uint64_t *bytes, size_t n, uint64_t cap_bytes,
                                size_t max_count, uint32_t *out_bucket) {
  size_t buckets = 0, count = 0;
  uint64_t filled = 0;
  for (size_t i = 0; i < n; ++i) {
    if (count == 0) ++buckets;
    out_bucket[i] = (uint32_t)(buckets - 1);
    filled += bytes[i];
    ++count;
    /* Closed once it reaches the cap (so it may pass it by this weight) or
     * holds as many accumulators as one op takes. */
    if (filled >= cap_bytes || (max_count && count >= max_count)) {
      count = 0;
      filled = 0;
    }
  }
  return buckets;
}

static bool op_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

static bool attr_str_is(MlirOperation op, const char *attr, const char *value) {
  MlirAttribute a = ad_attr(op, attr);
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a)) return false;
  MlirStringRef s = mlirStringAttrGetValue(a);
  return s.length == strlen(value) && memcmp(s.data, value, s.length) == 0;
}

MlirOperation opt_accumulate_anchor(MlirValue grad, MlirOperation floor, MlirOperation ret) {
  MlirOperation after = mlirValueIsAOpResult(grad) ? mlirOpResultGetOwner(grad)
                                                   : (MlirOperation){NULL};
  /* A gradient computed before the floor (a constant, say) waits for it. */
  if (!mlirOperationIsNull(floor) &&
      (mlirOperationIsNull(after) || mlirOperationIsBeforeInBlock(after, floor)))
    after = floor;
  if (mlirOperationIsNull(after)) return ret; /* a block argument: no producer to follow */
  MlirOperation next = mlirOperationGetNextInBlock(after);
  return mlirOperationIsNull(next) ? ret : next;
}

MlirOperation opt_pipeline_floor(MlirOperation module, MlirOperation main, MlirOperation ret) {
  MlirAttribute pipe = ad_attr(module, "moai.pipeline");
  if (mlirAttributeIsNull(pipe) || !mlirAttributeIsADictionary(pipe)) return (MlirOperation){NULL};
  MlirAttribute send = mlirDictionaryAttrGetElementByName(pipe, mlirStringRefCreateFromCString("send"));
  MlirAttribute res = ad_attr(main, "res_attrs");
  if (mlirAttributeIsNull(send) || mlirAttributeIsNull(res)) return (MlirOperation){NULL};
  intptr_t n = mlirOperationGetNumOperands(ret);
  for (intptr_t i = 0; i < n && i < mlirArrayAttrGetNumElements(res); ++i) {
    MlirAttribute d = mlirArrayAttrGetElement(res, i);
    if (!mlirAttributeIsADictionary(d)) continue;
    MlirAttribute name = mlirDictionaryAttrGetElementByName(d, mlirStringRefCreateFromCString("moai.name"));
    if (mlirAttributeIsNull(name) || !mlirAttributeEqual(name, send)) continue;
    MlirValue v = mlirOperationGetOperand(ret, i);
    return mlirValueIsAOpResult(v) ? mlirOpResultGetOwner(v) : (MlirOperation){NULL};
  }
  return (MlirOperation){NULL};
}

/* Bytes of a static tensor type; the cap for anything else (it then fills
 * a bucket by itself). */
static uint64_t type_bytes(MlirType t) {
  if (!mlirTypeIsARankedTensor(t) || !mlirShapedTypeHasStaticShape(t))
    return MOAI_GRAD_BUCKET_CAP_BYTES;
  MlirType elem = mlirShapedTypeGetElementType(t);
  uint64_t n = mlirTypeIsAFloat(elem) ? (uint64_t)mlirFloatTypeGetWidth(elem) / 8 : 4;
  for (intptr_t d = 0; d < mlirShapedTypeGetRank(t); ++d)
    n *= (uint64_t)mlirShapedTypeGetDimSize(t, d);
  return n;
}

static int64_t data_parallel_ranks(MlirOperation module) {
  MlirAttribute par = ad_attr(module, "moai.parallel");
  if (mlirAttributeIsNull(par) || !mlirAttributeIsADictionary(par)) return 1;
  MlirAttribute dp = mlirDictionaryAttrGetElementByName(par, mlirStringRefCreateFromCString("dp"));
  return !mlirAttributeIsNull(dp) && mlirAttributeIsAInteger(dp) ? mlirIntegerAttrGetValueInt(dp)
                                                                 : 1;
}

bool opt_insert_grad_ready(ad_t *ad, MlirOperation module, MlirBlock block) {
  if (data_parallel_ranks(module) <= 1) return true;
  /* The gradient accumulations in block order (the order the backward
   * finishes the gradients). */
  size_t n = 0, cap = 0;
  MlirOperation *acc = NULL;
  uint64_t *bytes = NULL;
  for (MlirOperation op = mlirBlockGetFirstOperation(block); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op)) {
    if (!op_is(op, "moai.accumulate")) continue;
    MlirValue target = mlirOperationGetOperand(op, 0);
    if (!mlirValueIsAOpResult(target) ||
        !attr_str_is(mlirOpResultGetOwner(target), "role", "grad"))
      continue;
    if (n == cap) {
      size_t grown = cap ? 2 * cap : 64;
      MlirOperation *a = realloc(acc, grown * sizeof(*a));
      if (a) acc = a;
      uint64_t *b = a ? realloc(bytes, grown * sizeof(*b)) : NULL;
      if (b) bytes = b;
      if (!a || !b) {
        free(acc);
        free(bytes);
        mlirEmitError(ad->loc, "moai-optimizer: out of memory");
        ad->failed = true;
        return false;
      }
      cap = grown;
    }
    acc[n] = op;
    bytes[n++] = type_bytes(mlirValueGetType(target));
  }
  uint32_t *bucket = calloc(n ? n : 1, sizeof(*bucket));
  if (!bucket) {
    free(acc);
    free(bytes);
    mlirEmitError(ad->loc, "moai-optimizer: out of memory");
    ad->failed = true;
    return false;
  }
  moai_grad_buckets_assign(bytes, n, MOAI_GRAD_BUCKET_CAP_BYTES, MOAI_VARIADIC_SLOTS, bucket);
  /* One grad_ready after the last accumulation of each bucket. */
  MlirOperation saved = ad->anchor;
  MlirLocation saved_loc = ad->loc;
  for (size_t first = 0; first < n && !ad->failed;) {
    size_t end = first;
    while (end < n && bucket[end] == bucket[first]) ++end;
    MlirValue grads[MOAI_VARIADIC_SLOTS];
    for (size_t i = first; i < end; ++i) grads[i - first] = mlirOperationGetOperand(acc[i], 0);
    ad->anchor = mlirOperationGetNextInBlock(acc[end - 1]);
    ad->loc = mlirOperationGetLocation(acc[end - 1]);
    MlirNamedAttribute attr = ad_named(ad, "bucket", ad_i64_attr(ad, bucket[first]));
    ad_build(ad, "grad_ready", grads, (int)(end - first), (int)(end - first), NULL, 0, &attr, 1,
             NULL);
    first = end;
  }
  ad->anchor = saved;
  ad->loc = saved_loc;
  free(acc);
  free(bytes);
  free(bucket);
  return !ad->failed;
}
