/* moai-partition: see partition.h. */
#include "partition/partition.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "ir/op_defs.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"
#include "partition/cuts.h"
#include "simplify/simplify.h"

/* ---- state ------------------------------------------------------------- */

enum { REPLICATED = -1 };

typedef struct part_t {
  ad_t ad; /* builder: new ops go before ad.anchor */
  MlirContext ctx;
  MlirOperation module, func;
  MlirBlock block;
  int64_t tp, t, pp, s;
  moai_pmap_t shard;  /* value -> split dimension (absent: replicated) */
  moai_pmap_t copies; /* value -> its moai.tp_copy result (an MlirValue ptr) */
  bool failed;
} part_t;

static bool name_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

static MlirStringRef op_name(MlirOperation op) {
  return mlirIdentifierStr(mlirOperationGetName(op));
}

/* Reports `fmt` at op's location (the module's when op is null). */
static bool fail_at(part_t *P, MlirOperation op, const char *fmt, ...) {
  char msg[1024];
  int n = snprintf(msg, sizeof(msg), "moai-partition: ");
  if (!mlirOperationIsNull(op)) {
    MlirStringRef nm = op_name(op);
    n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%.*s: ", (int)nm.length, nm.data);
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
  va_end(ap);
  mlirEmitError(mlirOperationGetLocation(mlirOperationIsNull(op) ? P->module : op), msg);
  P->failed = true;
  return false;
}

static int64_t dict_int(MlirAttribute dict, const char *key, int64_t fallback) {
  if (mlirAttributeIsNull(dict) || !mlirAttributeIsADictionary(dict)) return fallback;
  MlirAttribute a = mlirDictionaryAttrGetElementByName(dict, mlirStringRefCreateFromCString(key));
  return !mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a) ? mlirIntegerAttrGetValueInt(a)
                                                               : fallback;
}

static MlirStringRef io_name(MlirOperation func, const char *which, intptr_t i) {
  MlirAttribute arr = ad_attr(func, which);
  if (mlirAttributeIsNull(arr) || !mlirAttributeIsAArray(arr) ||
      i >= mlirArrayAttrGetNumElements(arr))
    return mlirStringRefCreate(NULL, 0);
  MlirAttribute d = mlirArrayAttrGetElement(arr, i);
  if (!mlirAttributeIsADictionary(d)) return mlirStringRefCreate(NULL, 0);
  MlirAttribute n = mlirDictionaryAttrGetElementByName(d, mlirStringRefCreateFromCString("moai.name"));
  return !mlirAttributeIsNull(n) && mlirAttributeIsAString(n) ? mlirStringAttrGetValue(n)
                                                             : mlirStringRefCreate(NULL, 0);
}

static MlirAttribute name_dict(part_t *P, const char *name) {
  MlirNamedAttribute na = ad_named(&P->ad, "moai.name", ad_str_attr(&P->ad, name));
  return mlirDictionaryAttrGet(P->ctx, 1, &na);
}

static int shard_of(const part_t *P, MlirValue v) {
  return (int)moai_pmap_get(&P->shard, v.ptr, REPLICATED);
}

/* Global dims of v (its type is local when split). */
static int global_dims(const part_t *P, MlirValue v, int64_t *d) {
  int r = ad_dims(v, d);
  int s = shard_of(P, v);
  if (s >= 0 && s < r) d[s] *= P->tp;
  return r;
}

/* Marks v split along `dim` and gives it its local type. */
static bool split_value(part_t *P, MlirOperation at, MlirValue v, int dim) {
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(v, d);
  if (dim < 0 || dim >= r) return fail_at(P, at, "internal: split dimension %d of a rank-%d value", dim, r);
  if (d[dim] % P->tp != 0)
    return fail_at(P, at, "dimension %d of size %lld cannot be split over tp=%lld ranks (not "
                          "divisible; e.g. more tensor ranks than attention heads): choose a "
                          "smaller tp", dim, (long long)d[dim], (long long)P->tp);
  d[dim] /= P->tp;
  mlirValueSetType(v, ad_tensor_type(&P->ad, r, d, ad_elem(v)));
  if (!moai_pmap_put(&P->shard, v.ptr, dim)) return fail_at(P, at, "out of memory");
  return true;
}

static MlirOperation def_op(MlirValue v) {
  return mlirValueIsAOpResult(v) ? mlirOpResultGetOwner(v) : (MlirOperation){NULL};
}

static int use_count(MlirValue v) {
  int n = 0;
  for (MlirOpOperand u = mlirValueGetFirstUse(v); !mlirOpOperandIsNull(u); u = mlirOpOperandGetNextUse(u))
    ++n;
  return n;
}

/* ---- tensor parallelism ------------------------------------------------- */

/* The moai.weight behind `b` (itself, or the only use of its 2-D transpose),
 * with *transposed set. Null when b is not a weight. */
static MlirOperation weight_behind(MlirValue b, bool *transposed) {
  MlirOperation d = def_op(b);
  *transposed = false;
  if (mlirOperationIsNull(d)) return d;
  if (name_is(d, "moai.weight")) return d;
  if (name_is(d, "moai.transpose") && ad_rank(b) == 2) {
    MlirOperation w = def_op(mlirOperationGetOperand(d, 0));
    if (!mlirOperationIsNull(w) && name_is(w, "moai.weight")) {
      *transposed = true;
      return w;
    }
  }
  return (MlirOperation){NULL};
}

static MlirStringRef weight_name(MlirOperation w) {
  MlirAttribute n = ad_attr(w, "name");
  return !mlirAttributeIsNull(n) && mlirAttributeIsAString(n) ? mlirStringAttrGetValue(n)
                                                              : mlirStringRefCreate("?", 1);
}

/* Splits weight op `w` along `axis` (this rank's slice); `via` is the
 * transpose between it and its user, if any. */
static bool split_weight(part_t *P, MlirOperation user, MlirOperation w, int axis,
                         MlirOperation via) {
  MlirValue wv = mlirOperationGetResult(w, 0);
  MlirStringRef n = weight_name(w);
  if (shard_of(P, wv) >= 0 || use_count(wv) != 1 ||
      (!mlirOperationIsNull(via) && use_count(mlirOperationGetResult(via, 0)) != 1))
    return fail_at(P, user, "weight '%.*s' is used by more than one op (tied weights); tensor "
                            "parallelism splits a weight for one use: use tp=1",
                   (int)n.length, n.data);
  if (!split_value(P, user, wv, axis)) return false;
  mlirOperationSetAttributeByName(w, mlirStringRefCreateFromCString("shard_axis"), ad_i64_attr(&P->ad, axis));
  mlirOperationSetAttributeByName(w, mlirStringRefCreateFromCString("shard_index"), ad_i64_attr(&P->ad, P->t));
  mlirOperationSetAttributeByName(w, mlirStringRefCreateFromCString("shard_count"), ad_i64_attr(&P->ad, P->tp));
  if (!mlirOperationIsNull(via)) return split_value(P, user, mlirOperationGetResult(via, 0), 1 - axis);
  return true;
}

/* x through moai.tp_copy (one per value, built before `at`). */
static MlirValue tp_copy(part_t *P, MlirOperation at, MlirValue x) {
  int64_t have = moai_pmap_get(&P->copies, x.ptr, 0);
  if (have) return (MlirValue){(const void *)(uintptr_t)have};
  P->ad.anchor = at;
  P->ad.loc = mlirOperationGetLocation(at);
  MlirType t = mlirValueGetType(x);
  MlirValue c = ad_build(&P->ad, "tp_copy", &x, 1, 0, &t, 1, NULL, 0, NULL);
  if (!mlirValueIsNull(c)) moai_pmap_put(&P->copies, x.ptr, (int64_t)(uintptr_t)c.ptr);
  return c;
}

/* Replaces the uses of `of` by `with`, except in with's own definer. */
static void replace_uses(MlirValue of, MlirValue with) {
  MlirOperation keep = def_op(with);
  if (mlirOperationIsNull(keep)) mlirValueReplaceAllUsesOfWith(of, with);
  else mlirValueReplaceAllUsesExcept(of, with, 1, &keep);
}

/* An all-reduce of `v` built after `after`; v's other uses read it. */
static MlirValue all_reduce_after(part_t *P, MlirOperation after, MlirValue v, const char *op) {
  MlirOperation next = mlirOperationGetNextInBlock(after);
  P->ad.anchor = next;
  P->ad.loc = mlirOperationGetLocation(after);
  MlirNamedAttribute attrs[2] = {ad_named(&P->ad, "op", ad_str_attr(&P->ad, op)),
                                 ad_named(&P->ad, "group", ad_str_attr(&P->ad, "tp"))};
  MlirType t = mlirValueGetType(v);
  MlirValue r = ad_build(&P->ad, "all_reduce", &v, 1, 0, &t, 1, attrs, 2, NULL);
  if (!mlirValueIsNull(r)) replace_uses(v, r);
  return r;
}

static MlirValue all_reduce_here(part_t *P, MlirValue v, const char *op) {
  MlirNamedAttribute attrs[2] = {ad_named(&P->ad, "op", ad_str_attr(&P->ad, op)),
                                 ad_named(&P->ad, "group", ad_str_attr(&P->ad, "tp"))};
  MlirType t = mlirValueGetType(v);
  return ad_build(&P->ad, "all_reduce", &v, 1, 0, &t, 1, attrs, 2, NULL);
}

static MlirValue reduce_axis(part_t *P, const char *name, MlirValue v, int64_t axis, bool keep) {
  int64_t d[AD_MAX_RANK], o[AD_MAX_RANK];
  int r = ad_dims(v, d), ro = 0;
  for (int i = 0; i < r; ++i)
    if (i != axis) o[ro++] = d[i];
    else if (keep) o[ro++] = 1;
  MlirType t = ad_tensor_type(&P->ad, ro, o, ad_elem(v));
  MlirValue in[2] = {v, ad_i64s(&P->ad, 1, &axis)};
  MlirNamedAttribute a = ad_named(&P->ad, "keepdims", ad_i64_attr(&P->ad, keep ? 1 : 0));
  return ad_build(&P->ad, name, in, 2, 0, &t, 1, &a, 1, NULL);
}

/* MatMul with all operands replicated: column-parallel when b is a weight. */
static bool matmul_column(part_t *P, MlirOperation op) {
  MlirValue a = mlirOperationGetOperand(op, 0), b = mlirOperationGetOperand(op, 1);
  bool tr;
  MlirOperation w = weight_behind(b, &tr);
  if (mlirOperationIsNull(w) || ad_rank(b) != 2 || ad_rank(a) < 2) return true;
  int64_t db[AD_MAX_RANK];
  ad_dims(b, db);
  if (db[1] % P->tp != 0) return true; /* stays replicated */
  if (!split_weight(P, op, w, tr ? 0 : 1, tr ? def_op(b) : (MlirOperation){NULL})) return false;
  MlirValue c = tp_copy(P, op, a);
  if (mlirValueIsNull(c)) return fail_at(P, op, "could not build moai.tp_copy");
  mlirOperationSetOperand(op, 0, c);
  MlirValue out = mlirOperationGetResult(op, 0);
  return split_value(P, op, out, ad_rank(out) - 1);
}

/* Gather(weight [V, h], ids) with replicated ids: vocabulary-parallel. */
static bool gather_vocab(part_t *P, MlirOperation op) {
  MlirValue data = mlirOperationGetOperand(op, 0), ids = mlirOperationGetOperand(op, 1);
  MlirOperation w = def_op(data);
  if (mlirOperationIsNull(w) || !name_is(w, "moai.weight") || ad_attr_int(op, "axis", 0) != 0 ||
      ad_rank(data) != 2)
    return true;
  int64_t dd[AD_MAX_RANK];
  ad_dims(data, dd);
  if (dd[0] % P->tp != 0) return true;
  if (!split_weight(P, op, w, 0, (MlirOperation){NULL})) return false;
  int64_t vl = dd[0] / P->tp, start = P->t * vl;
  P->ad.anchor = op;
  P->ad.loc = mlirOperationGetLocation(op);
  MlirType i64 = mlirIntegerTypeGet(P->ctx, 64);
  MlirValue id = mlirTypeEqual(ad_elem(ids), i64) ? ids : ad_cast(&P->ad, ids, i64);
  MlirValue local = ad_sub(&P->ad, id, ad_scalar(&P->ad, i64, (double)start));
  MlirValue valid = ad_binary(&P->ad, "and",
                              ad_compare(&P->ad, "greater_or_equal", local, ad_scalar(&P->ad, i64, 0)),
                              ad_compare(&P->ad, "less", local, ad_scalar(&P->ad, i64, (double)vl)));
  MlirValue idx = ad_where(&P->ad, valid, local, ad_scalar(&P->ad, i64, 0));
  mlirOperationSetOperand(op, 1, idx);
  /* The gather now reads local rows: mask rows of other ranks, then sum. */
  MlirValue out = mlirOperationGetResult(op, 0);
  P->ad.anchor = mlirOperationGetNextInBlock(op);
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(idx, d);
  d[r] = 1;
  MlirValue mask = ad_cast(&P->ad, ad_reshape(&P->ad, valid, r + 1, d), ad_elem(out));
  MlirValue masked = ad_mul(&P->ad, out, mask);
  MlirValue sum = all_reduce_here(P, masked, "sum");
  if (mlirValueIsNull(sum)) return fail_at(P, op, "could not build the vocabulary-parallel gather");
  MlirOperation mul_op = def_op(masked);
  mlirValueReplaceAllUsesExcept(out, sum, 1, &mul_op);
  return true;
}

/* The graph input `v` comes from through views, slices and casts, or null. */
static MlirStringRef input_source(part_t *P, MlirValue v) {
  while (mlirValueIsAOpResult(v)) {
    MlirOperation d = mlirOpResultGetOwner(v);
    if (!name_is(d, "moai.reshape") && !name_is(d, "moai.squeeze") && !name_is(d, "moai.unsqueeze") &&
        !name_is(d, "moai.flatten") && !name_is(d, "moai.identity") && !name_is(d, "moai.slice") &&
        !name_is(d, "moai.cast") && !name_is(d, "moai.transpose"))
      return mlirStringRefCreate(NULL, 0);
    v = mlirOperationGetOperand(d, 0);
  }
  return io_name(P->func, "arg_attrs", mlirBlockArgumentGetArgNumber(v));
}

/* SoftmaxCrossEntropyLoss over class-split scores [N, C/tp]: Megatron's
 * parallel cross-entropy. loss_i = log(sum_all exp(z)) - z[label_i] with z =
 * scores - max over all ranks; the max, the sum of exponentials and the
 * target logit (zero on ranks that do not own the label) are all-reduced. */
static bool sce_parallel(part_t *P, MlirOperation op) {
  MlirValue scores = mlirOperationGetOperand(op, 0), labels = mlirOperationGetOperand(op, 1);
  if (shard_of(P, scores) != 1 || ad_rank(scores) != 2 || shard_of(P, labels) >= 0)
    return fail_at(P, op, "only [N, C] scores split along the classes can be tensor-parallel");
  if (mlirOperationGetNumOperands(op) > 2)
    return fail_at(P, op, "class weights are not supported with tensor parallelism; use tp=1");
  if (mlirOperationGetNumResults(op) > 1 && use_count(mlirOperationGetResult(op, 1)) > 0)
    return fail_at(P, op, "its log_prob output is used; not supported with tensor parallelism");
  bool mean = ad_attr_str_is(op, "reduction", "mean", true);
  if (!mean && !ad_attr_str_is(op, "reduction", "sum", false))
    return fail_at(P, op, "reduction 'none' is not supported with tensor parallelism");
  MlirAttribute ii = ad_attr(op, "ignore_index");
  ad_t *ad = &P->ad;
  ad->anchor = op;
  ad->loc = mlirOperationGetLocation(op);
  int64_t d[AD_MAX_RANK];
  ad_dims(scores, d);
  int64_t n = d[0], cl = d[1];
  MlirType f = ad_elem(scores), i64 = mlirIntegerTypeGet(P->ctx, 64);
  MlirValue m = all_reduce_here(P, reduce_axis(P, "reduce_max", scores, 1, true), "max");
  MlirValue z = ad_sub(ad, scores, m);
  MlirValue se = all_reduce_here(P, reduce_axis(P, "reduce_sum", ad_unary(ad, "exp", z), 1, true), "sum");
  MlirValue lse = ad_unary(ad, "log", se);
  MlirValue lab = mlirTypeEqual(ad_elem(labels), i64) ? labels : ad_cast(ad, labels, i64);
  MlirValue local = ad_sub(ad, lab, ad_scalar(ad, i64, (double)(P->t * cl)));
  int64_t col[2] = {n, 1};
  int64_t *iota = malloc((size_t)cl * sizeof(*iota));
  if (!iota) return fail_at(P, op, "out of memory");
  for (int64_t i = 0; i < cl; ++i) iota[i] = i;
  MlirValue iv = ad_i64s(ad, (int)cl, iota);
  free(iota);
  MlirValue onehot = ad_cast(ad, ad_compare(ad, "equal", ad_reshape(ad, local, 2, col), iv), f);
  MlirValue picked = all_reduce_here(P, reduce_axis(P, "reduce_sum", ad_mul(ad, z, onehot), 1, true), "sum");
  MlirValue nll = ad_reshape(ad, ad_sub(ad, lse, picked), 1, &n);
  MlirValue valid = (MlirValue){NULL};
  if (!mlirAttributeIsNull(ii)) {
    MlirValue ign = ad_compare(ad, "equal", lab, ad_scalar(ad, i64, (double)mlirIntegerAttrGetValueInt(ii)));
    valid = ad_cast(ad, ad_unary(ad, "not", ign), f);
    nll = ad_mul(ad, nll, valid);
  }
  int64_t axis0 = 0;
  MlirValue total = ad_reduce_sum(ad, nll, 1, &axis0, false);
  MlirValue loss = total;
  if (mean) {
    MlirValue count = mlirValueIsNull(valid) ? ad_scalar(ad, f, (double)n)
                                             : ad_reduce_sum(ad, valid, 1, &axis0, false);
    loss = ad_div(ad, total, count);
    if (!mlirValueIsNull(loss))
      mlirOperationSetAttributeByName(def_op(loss), mlirStringRefCreateFromCString("moai.token_mean"),
                                      mlirUnitAttrGet(P->ctx));
    MlirStringRef src = input_source(P, labels);
    if (src.length)
      mlirOperationSetAttributeByName(P->module, mlirStringRefCreateFromCString("moai.labels_input"),
                                      mlirStringAttrGet(P->ctx, src));
    if (!mlirAttributeIsNull(ii))
      mlirOperationSetAttributeByName(P->module, mlirStringRefCreateFromCString("moai.ignore_index"), ii);
  }
  if (ad->failed || mlirValueIsNull(loss)) return fail_at(P, op, "could not build the parallel cross-entropy");
  mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(op, 0), loss);
  return true;
}

/* Where dimension d of a tensor of dims a[0..ra) lands after a reshape to
 * b[0..rb) when it is split in tp contiguous blocks: the first output dim
 * with the same outer element count whose size tp divides; -1 if none. */
static int reshape_dim(const int64_t *a, int ra, int d, const int64_t *b, int rb, int64_t tp) {
  (void)ra;
  int64_t outer = 1;
  for (int i = 0; i < d; ++i) outer *= a[i];
  int64_t p = 1;
  for (int e = 0; e < rb; ++e) {
    if (p == outer && b[e] % tp == 0 && b[e] >= tp) return e;
    p *= b[e];
    if (p > outer) break;
  }
  return -1;
}

static bool const_ints_of(MlirValue v, int64_t *buf, int cap, int *n) {
  *n = ad_const_ints(v, buf, cap);
  return *n >= 0;
}

/* Normalises axis a of rank r. */
static int64_t norm_axis(int64_t a, int r) { return a < 0 ? a + r : a; }

/* Replaces op's shape operand (operand 1: Reshape's or Expand's target) by
 * the global shape go[0..ro) with dimension e divided by tp. */
static void set_local_shape(part_t *P, MlirOperation op, const int64_t *go, int ro, int e) {
  int64_t loc[AD_MAX_RANK];
  memcpy(loc, go, sizeof(loc));
  loc[e] /= P->tp;
  P->ad.anchor = op;
  P->ad.loc = mlirOperationGetLocation(op);
  mlirOperationSetOperand(op, 1, ad_i64s(&P->ad, ro, loc));
}

/* One op with at least one split operand. */
static bool carry_split(part_t *P, MlirOperation op) {
  MlirStringRef nm = op_name(op);
  const moai_op_def_t *def = moai_op_def_find(nm.data, nm.length);
  intptr_t n_in = mlirOperationGetNumOperands(op);
  MlirValue out = mlirOperationGetNumResults(op) ? mlirOperationGetResult(op, 0) : (MlirValue){NULL};
  int64_t go[AD_MAX_RANK], gi[AD_MAX_RANK];
  int ro = mlirValueIsNull(out) ? 0 : ad_dims(out, go); /* results are still global */
  bool unary = name_is(op, "moai.cast") || name_is(op, "moai.identity") ||
               name_is(op, "moai.dropout") || name_is(op, "moai.clip");
  if ((def && (def->flags & MOAI_OP_FLAG_ELEMENTWISE)) || unary) {
    int rd = -1;
    intptr_t n_data = unary ? 1 : n_in;
    for (intptr_t k = 0; k < n_data; ++k) {
      MlirValue v = mlirOperationGetOperand(op, k);
      int s = shard_of(P, v);
      if (s < 0) continue;
      int at = s + (ro - ad_rank(v));
      if (rd >= 0 && rd != at)
        return fail_at(P, op, "its operands are split along different dimensions");
      rd = at;
    }
    for (intptr_t k = 0; k < n_in; ++k) {
      MlirValue v = mlirOperationGetOperand(op, k);
      if (shard_of(P, v) >= 0 || (unary && k > 0)) continue;
      int r = ad_rank(v);
      int at = rd - (ro - r);
      int64_t d[AD_MAX_RANK];
      ad_dims(v, d);
      if (at < 0 || d[at] == 1) continue; /* broadcast along the split */
      bool tr;
      MlirOperation w = weight_behind(v, &tr);
      if (!mlirOperationIsNull(w) && !tr) {
        if (!split_weight(P, op, w, at, (MlirOperation){NULL})) return false;
        continue;
      }
      return fail_at(P, op, "operand %ld is a full tensor along dimension %d, which the other "
                            "operand splits over tp ranks; not supported", (long)k, at);
    }
    for (intptr_t k = 0; k < mlirOperationGetNumResults(op); ++k)
      if (!split_value(P, op, mlirOperationGetResult(op, k), rd)) return false;
    return true;
  }
  MlirValue x = mlirOperationGetOperand(op, 0);
  int sx = shard_of(P, x);
  if (name_is(op, "moai.reshape") || name_is(op, "moai.squeeze") || name_is(op, "moai.unsqueeze") ||
      name_is(op, "moai.flatten")) {
    for (intptr_t k = 1; k < n_in; ++k)
      if (shard_of(P, mlirOperationGetOperand(op, k)) >= 0)
        return fail_at(P, op, "its shape operand is split");
    int ri = global_dims(P, x, gi);
    int e = reshape_dim(gi, ri, sx, go, ro, P->tp);
    if (e < 0)
      return fail_at(P, op, "the dimension split over tp=%lld ranks does not map onto one output "
                            "dimension divisible by tp", (long long)P->tp);
    if (name_is(op, "moai.reshape")) set_local_shape(P, op, go, ro, e);
    return split_value(P, op, out, e);
  }
  if (name_is(op, "moai.transpose")) {
    int64_t perm[AD_MAX_RANK];
    int n = ad_attr_ints(op, "perm", perm, AD_MAX_RANK);
    for (int e = 0; e < n; ++e)
      if (perm[e] == sx) return split_value(P, op, out, e);
    return fail_at(P, op, "internal: permutation without the split dimension");
  }
  if (name_is(op, "moai.expand")) {
    if (shard_of(P, mlirOperationGetOperand(op, 1)) >= 0) return fail_at(P, op, "its shape operand is split");
    int e = sx + (ro - ad_rank(x));
    set_local_shape(P, op, go, ro, e);
    return split_value(P, op, out, e);
  }
  if (name_is(op, "moai.slice")) {
    int64_t axes[AD_MAX_RANK];
    int n = 0;
    int r = ad_rank(x);
    if (n_in >= 4) {
      if (!const_ints_of(mlirOperationGetOperand(op, 3), axes, AD_MAX_RANK, &n))
        return fail_at(P, op, "its axes are not constant");
    } else {
      n = r;
      for (int i = 0; i < r; ++i) axes[i] = i;
    }
    for (int i = 0; i < n; ++i)
      if (norm_axis(axes[i], r) == sx)
        return fail_at(P, op, "it slices the dimension split over tp ranks");
    return split_value(P, op, out, sx);
  }
  if (name_is(op, "moai.concat")) {
    int64_t axis = norm_axis(ad_attr_int(op, "axis", 0), ro);
    for (intptr_t k = 0; k < n_in; ++k)
      if (shard_of(P, mlirOperationGetOperand(op, k)) != sx)
        return fail_at(P, op, "its operands are not split alike");
    if (axis == sx) return fail_at(P, op, "it concatenates along the dimension split over tp ranks");
    return split_value(P, op, out, sx);
  }
  if (name_is(op, "moai.softmax") || name_is(op, "moai.log_softmax")) {
    if (norm_axis(ad_attr_int(op, "axis", -1), ro) == sx)
      return fail_at(P, op, "it normalises along the dimension split over tp ranks");
    return split_value(P, op, out, sx);
  }
  if (name_is(op, "moai.reduce_sum") || name_is(op, "moai.reduce_mean") ||
      name_is(op, "moai.reduce_max")) {
    int r = ad_rank(x);
    int64_t axes[AD_MAX_RANK];
    int n = 0;
    if (n_in >= 2) {
      if (!const_ints_of(mlirOperationGetOperand(op, 1), axes, AD_MAX_RANK, &n))
        return fail_at(P, op, "its axes are not constant");
    }
    if (n == 0) return fail_at(P, op, "it reduces every dimension, including the split one");
    bool keep = ad_attr_int(op, "keepdims", 1) != 0;
    int e = sx;
    for (int i = 0; i < n; ++i) {
      int64_t a = norm_axis(axes[i], r);
      if (a == sx) return fail_at(P, op, "it reduces the dimension split over tp ranks");
      if (a < sx && !keep) --e;
    }
    return split_value(P, op, out, e);
  }
  if (name_is(op, "moai.matmul")) {
    MlirValue a = x, b = mlirOperationGetOperand(op, 1);
    int sa = shard_of(P, a), sb = shard_of(P, b);
    int ra = ad_rank(a), rb = ad_rank(b);
    if (ra < 2 || rb < 2) return fail_at(P, op, "1-D operands are not supported with tensor parallelism");
    if (sa == ra - 1) {
      /* Contraction split: row-parallel (a weight b is split to match). */
      if (sb < 0) {
        bool tr;
        MlirOperation w = weight_behind(b, &tr);
        if (mlirOperationIsNull(w) || rb != 2)
          return fail_at(P, op, "its first operand is split along the contraction dimension, but "
                                "the second is neither a weight nor split alike");
        if (!split_weight(P, op, w, tr ? 1 : 0, tr ? def_op(b) : (MlirOperation){NULL})) return false;
      } else if (sb != rb - 2) {
        return fail_at(P, op, "its operands are split along different dimensions");
      }
      return !mlirValueIsNull(all_reduce_after(P, op, out, "sum")) ||
             fail_at(P, op, "could not build the all-reduce");
    }
    if (sb == rb - 2) return fail_at(P, op, "its second operand is split along the contraction dimension only");
    int e = -1;
    if (sa >= 0) e = sa == ra - 2 ? ro - 2 : sa + (ro - ra);
    if (sb >= 0) {
      int eb = sb == rb - 1 ? ro - 1 : sb + (ro - rb);
      if (e >= 0 && e != eb) return fail_at(P, op, "its operands are split along different dimensions");
      e = eb;
    }
    /* A replicated operand with a full batch dimension along the split. */
    MlirValue other = sa >= 0 ? b : a;
    if (shard_of(P, other) < 0 && e < ro - 2) {
      int64_t d[AD_MAX_RANK];
      int r = ad_dims(other, d);
      int at = e - (ro - r);
      if (at >= 0 && d[at] != 1)
        return fail_at(P, op, "one operand is split along a batch dimension the other has whole");
    }
    if (sa == ra - 2 && sb >= 0) return fail_at(P, op, "both operands split along their rows and columns");
    return split_value(P, op, out, e);
  }
  if (name_is(op, "moai.softmax_cross_entropy_loss")) return sce_parallel(P, op);
  return fail_at(P, op, "cannot carry a tensor split over tp=%lld ranks through this op (operand "
                        "0 split along dimension %d); choose tp=1 or a strategy without tensor "
                        "parallelism", (long long)P->tp, sx);
}

static bool tensor_parallel(part_t *P) {
  size_t n = 0, cap = 256;
  MlirOperation *ops = malloc(cap * sizeof(*ops));
  MlirOperation ret = mlirBlockGetTerminator(P->block);
  for (MlirOperation op = mlirBlockGetFirstOperation(P->block); ops && !mlirOperationEqual(op, ret);
       op = mlirOperationGetNextInBlock(op)) {
    if (n == cap) {
      MlirOperation *g = realloc(ops, 2 * cap * sizeof(*ops));
      if (!g) {
        free(ops);
        ops = NULL;
        break;
      }
      ops = g;
      cap *= 2;
    }
    ops[n++] = op;
  }
  if (!ops) return fail_at(P, (MlirOperation){NULL}, "out of memory");
  for (size_t i = 0; i < n && !P->failed; ++i) {
    MlirOperation op = ops[i];
    if (name_is(op, "moai.weight") || name_is(op, "moai.constant") || name_is(op, "moai.tp_copy") ||
        name_is(op, "moai.all_reduce"))
      continue;
    bool any = false;
    for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); ++k)
      any |= shard_of(P, mlirOperationGetOperand(op, k)) >= 0;
    if (any) {
      if (!carry_split(P, op)) break;
    } else if (name_is(op, "moai.matmul")) {
      if (!matmul_column(P, op)) break;
    } else if (name_is(op, "moai.gather")) {
      if (!gather_vocab(P, op)) break;
    }
  }
  free(ops);
  if (P->failed) return false;
  for (intptr_t k = 0; k < mlirOperationGetNumOperands(ret); ++k)
    if (shard_of(P, mlirOperationGetOperand(ret, k)) >= 0)
      return fail_at(P, ret, "output %ld would be split over tp ranks; the outputs of a "
                             "tensor-parallel program must be whole", (long)k);
  return true;
}

/* ---- pipeline stages ---------------------------------------------------- */

static MlirValue add_input(part_t *P, MlirType type, const char *name) {
  MlirValue arg = mlirBlockAddArgument(P->block, type, mlirOperationGetLocation(P->func));
  MlirType ft = mlirTypeAttrGetValue(ad_attr(P->func, "function_type"));
  intptr_t ni = mlirFunctionTypeGetNumInputs(ft), no = mlirFunctionTypeGetNumResults(ft);
  MlirType in[64], res[64];
  MlirAttribute attrs[64];
  if (ni + 1 > 64 || no > 64) {
    fail_at(P, (MlirOperation){NULL}, "more than 63 graph inputs are not supported with pipelines");
    return (MlirValue){NULL};
  }
  MlirAttribute old = ad_attr(P->func, "arg_attrs");
  for (intptr_t i = 0; i < ni; ++i) {
    in[i] = mlirFunctionTypeGetInput(ft, i);
    attrs[i] = !mlirAttributeIsNull(old) && i < mlirArrayAttrGetNumElements(old)
                   ? mlirArrayAttrGetElement(old, i) : mlirDictionaryAttrGet(P->ctx, 0, NULL);
  }
  in[ni] = type;
  attrs[ni] = name_dict(P, name);
  for (intptr_t i = 0; i < no; ++i) res[i] = mlirFunctionTypeGetResult(ft, i);
  mlirOperationSetAttributeByName(P->func, mlirStringRefCreateFromCString("function_type"),
                                  mlirTypeAttrGet(mlirFunctionTypeGet(P->ctx, ni + 1, in, no, res)));
  mlirOperationSetAttributeByName(P->func, mlirStringRefCreateFromCString("arg_attrs"),
                                  mlirArrayAttrGet(P->ctx, ni + 1, attrs));
  return arg;
}

static bool pipeline_stage(part_t *P) {
  MlirOperation ret = mlirBlockGetTerminator(P->block);
  moai_cuts_t cuts;
  if (!moai_cuts_find(P->block, SIZE_MAX, true, &cuts))
    return fail_at(P, (MlirOperation){NULL}, "out of memory");
  size_t n = cuts.n, m = cuts.count;
  MlirOperation *ops = cuts.ops;
  const double *prefix = cuts.prefix;
  const int64_t *cand = cuts.after;
  const MlirValue *cval = cuts.value;
  int64_t stages = P->pp;
  if ((int64_t)m < stages - 1) {
    fail_at(P, (MlirOperation){NULL}, "the model has %zu places where a single activation "
            "crosses (layer boundaries), too few for pp=%lld stages: choose a smaller pp",
            m, (long long)stages);
    goto done;
  }
  /* Dynamic programming: best[k][j] = the smallest possible maximum stage
   * cost of stages 0..k with cut k after candidate j. */
  double total = prefix[n];
  size_t K = (size_t)stages - 1;
  double *best = calloc((K ? K : 1) * (m ? m : 1), sizeof(*best));
  int64_t *from = calloc((K ? K : 1) * (m ? m : 1), sizeof(*from));
  int64_t *cut = calloc(K + 1, sizeof(*cut));
  if (!best || !from || !cut) {
    free(best);
    free(from);
    free(cut);
    fail_at(P, (MlirOperation){NULL}, "out of memory");
    goto done;
  }
  for (size_t k = 0; k < K; ++k)
    for (size_t j = 0; j < m; ++j) {
      double c = prefix[cand[j] + 1];
      if (k == 0) {
        best[j] = c;
        from[j] = -1;
        continue;
      }
      best[k * m + j] = 1e300;
      from[k * m + j] = -1;
      for (size_t i = 0; i < j; ++i) {
        double v = best[(k - 1) * m + i];
        double seg = c - prefix[cand[i] + 1];
        if (seg > v) v = seg;
        if (v < best[k * m + j]) {
          best[k * m + j] = v;
          from[k * m + j] = (int64_t)i;
        }
      }
    }
  if (K) {
    double b = 1e300;
    int64_t arg = -1;
    for (size_t j = 0; j < m; ++j) {
      double v = best[(K - 1) * m + j];
      double seg = total - prefix[cand[j] + 1];
      if (seg > v) v = seg;
      if (v < b && (K == 1 || from[(K - 1) * m + j] >= 0)) {
        b = v;
        arg = (int64_t)j;
      }
    }
    for (size_t k = K; k-- > 0;) {
      cut[k] = arg;
      arg = from[k * m + arg];
    }
  }
  free(best);
  free(from);
  /* Tied weights across stages. */
  for (size_t i = 0; i < n && !P->failed; ++i) {
    if (!name_is(ops[i], "moai.weight") || !ad_attr_int(ops[i], "trainable", 0)) continue;
    int64_t seen = -1;
    for (MlirOpOperand u = mlirValueGetFirstUse(mlirOperationGetResult(ops[i], 0));
         !mlirOpOperandIsNull(u); u = mlirOpOperandGetNextUse(u)) {
      int64_t j = moai_cuts_position(&cuts, mlirOpOperandGetOwner(u));
      int64_t st = 0;
      while (st < (int64_t)K && j > cand[cut[st]]) ++st;
      if (seen >= 0 && st != seen) {
        MlirStringRef nm = weight_name(ops[i]);
        fail_at(P, ops[i], "weight '%.*s' is used by pipeline stages %lld and %lld (tied "
                "weights); not supported: use pp=1", (int)nm.length, nm.data, (long long)seen,
                (long long)st);
      }
      seen = st;
    }
  }
  if (P->failed) {
    free(cut);
    goto done;
  }
  {
    int64_t s = P->s;
    MlirValue prev = s > 0 ? cval[cut[s - 1]] : (MlirValue){NULL};
    MlirValue next = s < stages - 1 ? cval[cut[s]] : (MlirValue){NULL};
    int64_t prev_at = s > 0 ? cand[cut[s - 1]] : -1;
    free(cut);
    MlirNamedAttribute pa[6];
    int npa = 0;
    pa[npa++] = ad_named(&P->ad, "stage", ad_i64_attr(&P->ad, s));
    pa[npa++] = ad_named(&P->ad, "stages", ad_i64_attr(&P->ad, stages));
    if (!mlirValueIsNull(prev)) {
      MlirValue r = add_input(P, mlirValueGetType(prev), "pp.recv");
      if (mlirValueIsNull(r)) goto done;
      /* Uses after the cut read the received activation. */
      MlirOpOperand u = mlirValueGetFirstUse(prev);
      while (!mlirOpOperandIsNull(u)) {
        MlirOpOperand nextu = mlirOpOperandGetNextUse(u);
        MlirOperation owner = mlirOpOperandGetOwner(u);
        if (moai_cuts_position(&cuts, owner) > prev_at)
          mlirOperationSetOperand(owner, mlirOpOperandGetOperandNumber(u), r);
        u = nextu;
      }
      pa[npa++] = ad_named(&P->ad, "recv", ad_str_attr(&P->ad, "pp.recv"));
      pa[npa++] = ad_named(&P->ad, "send_grad", ad_str_attr(&P->ad, "grad.pp.recv"));
      MlirAttribute names[1] = {ad_str_attr(&P->ad, "pp.recv")};
      mlirOperationSetAttributeByName(P->module, mlirStringRefCreateFromCString("moai.autodiff_inputs"),
                                      mlirArrayAttrGet(P->ctx, 1, names));
    }
    if (!mlirValueIsNull(next)) {
      MlirValue g = add_input(P, mlirValueGetType(next), "pp.grad_out");
      if (mlirValueIsNull(g)) goto done;
      P->ad.anchor = ret;
      P->ad.loc = mlirOperationGetLocation(ret);
      int64_t axes[AD_MAX_RANK];
      int r = ad_rank(next);
      for (int i = 0; i < r; ++i) axes[i] = i;
      MlirValue loss = ad_reduce_sum(&P->ad, ad_mul(&P->ad, next, g), r, axes, false);
      if (mlirValueIsNull(loss) || P->ad.failed) {
        fail_at(P, (MlirOperation){NULL}, "could not build the stage's vector-Jacobian product");
        goto done;
      }
      MlirValue res[2] = {loss, next};
      MlirOperationState st = mlirOperationStateGet(mlirStringRefCreateFromCString("func.return"),
                                                    mlirOperationGetLocation(ret));
      mlirOperationStateAddOperands(&st, 2, res);
      MlirOperation nret = mlirOperationCreate(&st);
      mlirBlockInsertOwnedOperationBefore(P->block, ret, nret);
      mlirOperationDestroy(ret);
      MlirType ft = mlirTypeAttrGetValue(ad_attr(P->func, "function_type"));
      intptr_t ni = mlirFunctionTypeGetNumInputs(ft);
      MlirType in[64];
      for (intptr_t i = 0; i < ni && i < 64; ++i) in[i] = mlirFunctionTypeGetInput(ft, i);
      MlirType out[2] = {mlirValueGetType(loss), mlirValueGetType(next)};
      mlirOperationSetAttributeByName(P->func, mlirStringRefCreateFromCString("function_type"),
                                      mlirTypeAttrGet(mlirFunctionTypeGet(P->ctx, ni, in, 2, out)));
      MlirAttribute ra[2] = {name_dict(P, "loss"), name_dict(P, "pp.send")};
      mlirOperationSetAttributeByName(P->func, mlirStringRefCreateFromCString("res_attrs"),
                                      mlirArrayAttrGet(P->ctx, 2, ra));
      pa[npa++] = ad_named(&P->ad, "recv_grad", ad_str_attr(&P->ad, "pp.grad_out"));
      pa[npa++] = ad_named(&P->ad, "send", ad_str_attr(&P->ad, "pp.send"));
    }
    mlirOperationSetAttributeByName(P->module, mlirStringRefCreateFromCString("moai.pipeline"),
                                    mlirDictionaryAttrGet(P->ctx, npa, pa));
  }
done:
  moai_cuts_free(&cuts);
  return !P->failed;
}

/* ---- the pass ----------------------------------------------------------- */

static MlirOperation find_main(MlirOperation module) {
  MlirBlock body = mlirRegionGetFirstBlock(mlirOperationGetRegion(module, 0));
  for (MlirOperation op = mlirBlockGetFirstOperation(body); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op)) {
    if (!name_is(op, "func.func")) continue;
    MlirAttribute sym = ad_attr(op, "sym_name");
    if (!mlirAttributeIsNull(sym) && mlirStringRefEqual(mlirStringAttrGetValue(sym),
                                                        mlirStringRefCreateFromCString("main")))
      return op;
  }
  return (MlirOperation){NULL};
}

static void dce(MlirOperation module) {
  moai_simplify_options_t o = {.dce = true, .cse = false};
  moai_simplify_run(module, &o, NULL);
}

bool moai_partition_run(MlirOperation module) {
  part_t P = {.module = module, .ctx = mlirOperationGetContext(module)};
  MlirAttribute par = ad_attr(module, "moai.parallel");
  P.tp = dict_int(par, "tp", 1);
  P.pp = dict_int(par, "pp", 1);
  if (P.tp <= 1 && P.pp <= 1) return true;
  MlirAttribute dev = ad_attr(module, "moai.device");
  if (mlirAttributeIsNull(dev) || !mlirAttributeIsADictionary(dev))
    return fail_at(&P, (MlirOperation){NULL}, "the mesh has tp=%lld pp=%lld but the module has no "
                   "moai.device = {tp = T, pp = S} saying which device to make", (long long)P.tp,
                   (long long)P.pp);
  P.t = dict_int(dev, "tp", -1);
  P.s = dict_int(dev, "pp", -1);
  if (P.t < 0 || P.t >= P.tp || P.s < 0 || P.s >= P.pp)
    return fail_at(&P, (MlirOperation){NULL}, "moai.device = {tp = %lld, pp = %lld} lies outside "
                   "the mesh tp=%lld pp=%lld", (long long)P.t, (long long)P.s, (long long)P.tp,
                   (long long)P.pp);
  if (!mlirAttributeIsNull(ad_attr(module, "moai.pipeline")))
    return fail_at(&P, (MlirOperation){NULL}, "the module is already partitioned (moai.pipeline)");
  P.func = find_main(module);
  if (mlirOperationIsNull(P.func))
    return fail_at(&P, (MlirOperation){NULL}, "the module has no func.func @main");
  P.block = mlirRegionGetFirstBlock(mlirOperationGetRegion(P.func, 0));
  P.ad = (ad_t){.ctx = P.ctx, .block = P.block, .anchor = mlirBlockGetTerminator(P.block),
                .loc = mlirOperationGetLocation(P.func)};
  bool ok = true;
  if (P.pp > 1) {
    ok = pipeline_stage(&P);
    if (ok) dce(module);
  }
  if (ok && P.tp > 1) {
    ok = tensor_parallel(&P);
    if (ok) dce(module);
  }
  ok = ok && !P.ad.failed && !P.failed;
  moai_pmap_free(&P.shard);
  moai_pmap_free(&P.copies);
  ad_map_free(&P.ad.grads);
  ad_map_free(&P.ad.needs);
  return ok;
}

static void run_pass(MlirOperation op, MlirExternalPass pass, const void *options) {
  (void)options;
  if (!moai_partition_run(op)) mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_partition_pass_create(void) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiPartition",
      .argument = "moai-partition",
      .description = "make the program of one device (moai.device) of the moai.parallel mesh: "
                     "its pipeline stage and tensor-parallel slice",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  char unused = 0;
  return moai_external_pass_create(&def, &unused, sizeof(unused));
}
