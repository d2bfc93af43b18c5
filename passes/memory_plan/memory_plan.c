/* moai-memory-plan on IR: lifetimes of a function's activations, views and
 * in-place reuse, then moai_memory_plan_buffers (buffer_plan.c) places them.
 *
 * Positions are indices of the ops of the function's block. A graph input is
 * live from -1; a result from its op to its last user; a value returned by
 * func.return until `end` (one past the last op), so graph outputs are never
 * overwritten. Like ggml-alloc's ggml_gallocr, a view shares its parent's
 * buffer and keeps it alive, and an elementwise op takes over its parent's
 * buffer when the parent dies at that op. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/dialect.h"
#include "ir/dtype.h"
#include "ir/op_defs.h"
#include "ir/pass_util.h"
#include "memory_plan/memory_plan.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"

/* ---- a pointer -> index map (open addressing) ---------------------------- */

typedef struct ptr_map_t {
  const void **keys;
  size_t *vals;
  size_t cap; /* power of two, > 2 x entries */
} ptr_map_t;

static bool map_init(ptr_map_t *m, size_t n) {
  m->cap = 16;
  while (m->cap < 2 * n + 1) m->cap *= 2;
  m->keys = calloc(m->cap, sizeof(*m->keys));
  m->vals = calloc(m->cap, sizeof(*m->vals));
  return m->keys && m->vals;
}

static void map_free(ptr_map_t *m) {
  free(m->keys);
  free(m->vals);
}

static size_t map_slot(const ptr_map_t *m, const void *key) {
  size_t h = (size_t)((uintptr_t)key * 0x9e3779b97f4a7c15ull >> 7);
  size_t j = h & (m->cap - 1);
  while (m->keys[j] && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
  return j;
}

static void map_put(ptr_map_t *m, const void *key, size_t val) {
  size_t j = map_slot(m, key);
  m->keys[j] = key;
  m->vals[j] = val;
}

static bool map_get(const ptr_map_t *m, const void *key, size_t *out) {
  size_t j = map_slot(m, key);
  if (!m->keys[j]) return false;
  *out = m->vals[j];
  return true;
}

/* ---- the function being planned ------------------------------------------ */

typedef enum op_kind_e {
  KIND_NONE,        /* not in the arena: weights, constants, other dialects */
  KIND_PLAIN,       /* results get their own buffers */
  KIND_VIEW,        /* result 0 may share operand 0's buffer */
  KIND_ELEMENTWISE, /* result 0 may take over a dying operand's buffer */
} op_kind_t;

typedef struct value_info_t {
  uint64_t bytes; /* exact, before rounding */
  int64_t numel;
} value_info_t;

typedef struct plan_t {
  MlirOperation func;
  MlirBlock block;
  const moai_memory_plan_options_t *options;
  size_t nops, nargs, nvalues;
  int64_t end; /* position of "after the last op" */
  MlirOperation *ops;
  op_kind_t *kinds;
  size_t *first_value; /* per op: index of its result 0 among values */
  int *alias;          /* per op: operand index result 0 views, or -1 */
  int *inplace;        /* per op: operand index result 0 reuses, or -1 */
  MlirValue *values;   /* block arguments, then planned results in op order */
  value_info_t *info;
  moai_buffer_req_t *reqs;
  size_t *parent;      /* union-find over values: buffer sharing */
  uint64_t *offsets;
  ptr_map_t op_pos, value_index;
} plan_t;

static bool name_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

static void emit_error(MlirOperation op, const char *fmt, ...)
    MOAI_PRINTF(2, 3);

/* A diagnostic at `op`, prefixed with the pass's name. */
static void emit_error(MlirOperation op, const char *fmt, ...) {
  char msg[512];
  int n = snprintf(msg, sizeof(msg), "moai-memory-plan: ");
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, args);
  va_end(args);
  mlirEmitError(mlirOperationGetLocation(op), msg);
}

/* Whether a dropout is the identity: no training_mode operand, or a constant
 * false one (inference). */
static bool dropout_is_identity(MlirOperation op, const moai_op_def_t *def) {
  MlirAttribute seg = mlirOperationGetAttributeByName(
      op, mlirStringRefCreateFromCString("operandSegmentSizes"));
  if (mlirAttributeIsNull(seg) || !mlirAttributeIsADenseI32Array(seg))
    return mlirOperationGetNumOperands(op) == 1;
  int32_t sizes[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
  int32_t counts[MOAI_OP_MAX_OPERANDS] = {0};
  intptr_t n = mlirDenseArrayGetNumElements(seg);
  if (n > (intptr_t)(sizeof(sizes) / sizeof(sizes[0]))) return false;
  for (intptr_t i = 0; i < n; ++i) sizes[i] = mlirDenseI32ArrayGetElement(seg, i);
  if (!moai_op_def_decode_segments(def, false, sizes, (size_t)n, counts))
    return false;
  if (counts[2] == 0) return true;
  MlirValue mode = mlirOperationGetOperand(op, counts[0] + counts[1]);
  if (!mlirValueIsAOpResult(mode)) return false;
  MlirOperation producer = mlirOpResultGetOwner(mode);
  if (!name_is(producer, "moai.constant")) return false;
  MlirAttribute value = mlirOperationGetAttributeByName(
      producer, mlirStringRefCreateFromCString("value"));
  if (mlirAttributeIsNull(value) || !mlirAttributeIsADenseElements(value) ||
      !mlirDenseElementsAttrIsSplat(value))
    return false;
  MlirType elem = mlirShapedTypeGetElementType(mlirAttributeGetType(value));
  return mlirTypeIsAInteger(elem) && mlirIntegerTypeGetWidth(elem) == 1 &&
         !mlirDenseElementsAttrGetBoolSplatValue(value);
}

static op_kind_t classify(MlirOperation op) {
  /* moai.state lives in the persistent region (training plans); ops without
   * results (moai.accumulate, the optimizer ops) need no buffer but, as
   * users, keep their operands alive until they run. */
  if (!moai_op_is_moai(op) || name_is(op, "moai.weight") ||
      name_is(op, "moai.constant") || name_is(op, "moai.state") ||
      mlirOperationGetNumResults(op) == 0)
    return KIND_NONE;
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  const moai_op_def_t *def = moai_op_def_find(name.data, name.length);
  if (!def) return KIND_PLAIN;
  static const char *const kViews[] = {"reshape", "squeeze", "unsqueeze",
                                       "flatten", "identity", "tp_copy"};
  for (size_t i = 0; i < sizeof(kViews) / sizeof(kViews[0]); ++i)
    if (strcmp(def->name, kViews[i]) == 0) return KIND_VIEW;
  if (strcmp(def->name, "dropout") == 0)
    return dropout_is_identity(op, def) ? KIND_VIEW : KIND_PLAIN;
  /* An all-reduce reads element k and writes element k of a tensor of one
   * size: its kernel copies input to output when they differ, then reduces
   * the output in place, so it may take over a dying input's buffer. */
  if (strcmp(def->name, "all_reduce") == 0) return KIND_ELEMENTWISE;
  if ((def->flags & MOAI_OP_FLAG_ELEMENTWISE) &&
      mlirOperationGetNumResults(op) == 1)
    return KIND_ELEMENTWISE;
  return KIND_PLAIN;
}

/* Size of a value of `type`; false when it is not a static tensor of a
 * supported dtype or does not fit. */
static bool type_bytes(MlirType type, value_info_t *out, const char **why) {
  *why = "has no static shape; run moai-shape-infer first";
  if (!mlirTypeIsARankedTensor(type) || !mlirShapedTypeHasStaticShape(type))
    return false;
  *why = "has an element type moai does not support";
  size_t elem = moai_dtype_size(
      moai_dtype_from_mlir(mlirShapedTypeGetElementType(type)));
  if (!elem) return false;
  *why = "is too large for the arena";
  uint64_t numel = 1;
  for (intptr_t d = 0; d < mlirShapedTypeGetRank(type); ++d) {
    uint64_t dim = (uint64_t)mlirShapedTypeGetDimSize(type, d);
    if (dim && numel > (UINT64_C(1) << 56) / dim) return false;
    numel *= dim;
  }
  out->numel = (int64_t)numel;
  out->bytes = numel * elem;
  return true;
}

static void plan_free(plan_t *p) {
  free(p->ops);
  free(p->kinds);
  free(p->first_value);
  free(p->alias);
  free(p->inplace);
  free(p->values);
  free(p->info);
  free(p->reqs);
  free(p->parent);
  free(p->offsets);
  map_free(&p->op_pos);
  map_free(&p->value_index);
}

/* Collects ops and values and allocates the tables. */
static bool plan_collect(plan_t *p) {
  for (MlirOperation op = mlirBlockGetFirstOperation(p->block);
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op))
    p->nops++;
  p->end = (int64_t)p->nops;
  p->nargs = (size_t)mlirBlockGetNumArguments(p->block);
  size_t n = p->nops ? p->nops : 1;
  p->ops = malloc(n * sizeof(*p->ops));
  p->kinds = malloc(n * sizeof(*p->kinds));
  p->first_value = malloc(n * sizeof(*p->first_value));
  p->alias = malloc(n * sizeof(*p->alias));
  p->inplace = malloc(n * sizeof(*p->inplace));
  if (!p->ops || !p->kinds || !p->first_value || !p->alias || !p->inplace)
    return false;
  size_t nvalues = p->nargs, pos = 0;
  for (MlirOperation op = mlirBlockGetFirstOperation(p->block);
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op), ++pos) {
    p->ops[pos] = op;
    p->kinds[pos] = classify(op);
    p->first_value[pos] = nvalues;
    p->alias[pos] = p->inplace[pos] = -1;
    if (p->kinds[pos] != KIND_NONE)
      nvalues += (size_t)mlirOperationGetNumResults(op);
  }
  p->nvalues = nvalues;
  size_t m = nvalues ? nvalues : 1;
  p->values = malloc(m * sizeof(*p->values));
  p->info = malloc(m * sizeof(*p->info));
  p->reqs = malloc(m * sizeof(*p->reqs));
  p->parent = malloc(m * sizeof(*p->parent));
  p->offsets = malloc(m * sizeof(*p->offsets));
  return p->values && p->info && p->reqs && p->parent && p->offsets &&
         map_init(&p->op_pos, p->nops) && map_init(&p->value_index, nvalues);
}

/* Sizes every value; diagnoses the first one without a static size. */
static bool plan_size_values(plan_t *p) {
  const char *why;
  for (size_t a = 0; a < p->nargs; ++a) {
    MlirValue v = mlirBlockGetArgument(p->block, (intptr_t)a);
    p->values[a] = v;
    if (!type_bytes(mlirValueGetType(v), &p->info[a], &why)) {
      emit_error(p->func, "argument %zu %s", a, why);
      return false;
    }
  }
  for (size_t pos = 0; pos < p->nops; ++pos) {
    map_put(&p->op_pos, p->ops[pos].ptr, pos);
    if (p->kinds[pos] == KIND_NONE) continue;
    intptr_t nres = mlirOperationGetNumResults(p->ops[pos]);
    for (intptr_t r = 0; r < nres; ++r) {
      size_t i = p->first_value[pos] + (size_t)r;
      p->values[i] = mlirOperationGetResult(p->ops[pos], r);
      if (!type_bytes(mlirValueGetType(p->values[i]), &p->info[i], &why)) {
        emit_error(p->ops[pos], "result %d %s", (int)r, why);
        return false;
      }
    }
  }
  for (size_t i = 0; i < p->nvalues; ++i) map_put(&p->value_index, p->values[i].ptr, i);
  return true;
}

/* Lifetime of value i: from its definition to its last user (an op of the
 * block, or the one a nested user sits in); func.return pins it to `end`. */
static void plan_lifetime(plan_t *p, size_t i, int64_t def_pos) {
  int64_t last = def_pos;
  for (MlirOpOperand use = mlirValueGetFirstUse(p->values[i]);
       !mlirOpOperandIsNull(use); use = mlirOpOperandGetNextUse(use)) {
    MlirOperation owner = mlirOpOperandGetOwner(use);
    size_t pos;
    while (!mlirOperationIsNull(owner) && !map_get(&p->op_pos, owner.ptr, &pos))
      owner = mlirOperationGetParentOperation(owner);
    if (mlirOperationIsNull(owner)) continue;
    int64_t at = name_is(owner, "func.return") ? p->end : (int64_t)pos;
    if (at > last) last = at;
  }
  p->reqs[i] = (moai_buffer_req_t){.size = p->info[i].bytes, .first = def_pos,
                                   .last = last, .alias_of = -1};
  p->parent[i] = i;
}

static size_t find_root(size_t *parent, size_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

/* Views share operand 0's buffer when that operand is in the arena. */
static void plan_views(plan_t *p, moai_memory_plan_stats_t *stats) {
  for (size_t pos = 0; pos < p->nops; ++pos) {
    if (p->kinds[pos] != KIND_VIEW || mlirOperationGetNumOperands(p->ops[pos]) < 1)
      continue;
    size_t src, res = p->first_value[pos];
    if (!map_get(&p->value_index, mlirOperationGetOperand(p->ops[pos], 0).ptr, &src))
      continue;
    if (p->info[src].bytes != p->info[res].bytes) continue; /* not a view */
    p->reqs[res].alias_of = (int64_t)src;
    p->parent[res] = find_root(p->parent, src);
    p->alias[pos] = 0;
    stats->views++;
  }
}

/* An elementwise op writes into the buffer of an operand that dies at it,
 * of the same size and element count (so element k of the result overwrites
 * exactly element k of the operand after reading it), unless the buffer is
 * returned (live to `end`). Decided in op order, so a buffer's last use is
 * final when it is examined: later ops only extend buffers they create. */
static void plan_inplace(plan_t *p, moai_memory_plan_stats_t *stats) {
  int64_t *last = malloc((p->nvalues ? p->nvalues : 1) * sizeof(*last));
  if (!last) return; /* in-place reuse is an optimisation: skip it */
  for (size_t j = 0; j < p->nvalues; ++j) last[j] = INT64_MIN;
  for (size_t j = 0; j < p->nvalues; ++j) {
    size_t r = find_root(p->parent, j);
    if (p->reqs[j].last > last[r]) last[r] = p->reqs[j].last;
  }
  for (size_t pos = 0; pos < p->nops; ++pos) {
    if (p->kinds[pos] != KIND_ELEMENTWISE) continue;
    size_t res = p->first_value[pos];
    if (!p->info[res].bytes) continue;
    intptr_t nopd = mlirOperationGetNumOperands(p->ops[pos]);
    for (intptr_t k = 0; k < nopd; ++k) {
      size_t src;
      if (!map_get(&p->value_index,
                   mlirOperationGetOperand(p->ops[pos], k).ptr, &src))
        continue;
      size_t root = find_root(p->parent, src);
      if (last[root] != (int64_t)pos || p->info[src].bytes != p->info[res].bytes ||
          p->info[src].numel != p->info[res].numel)
        continue;
      size_t res_root = find_root(p->parent, res);
      p->reqs[res].alias_of = (int64_t)src;
      p->parent[res_root] = root;
      if (last[res_root] > last[root]) last[root] = last[res_root];
      p->inplace[pos] = (int)k;
      stats->inplace++;
      break;
    }
  }
  free(last);
}

static MlirAttribute i64_attr(MlirContext ctx, int64_t v) {
  return mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), v);
}

static void set_attr(MlirOperation op, const char *name, MlirAttribute attr) {
  mlirOperationSetAttributeByName(op, mlirStringRefCreateFromCString(name), attr);
}

/* arg_attrs with moai.offset added to (or replaced in) each dictionary. */
static bool plan_write_args(plan_t *p, MlirContext ctx) {
  MlirAttribute old = mlirOperationGetAttributeByName(
      p->func, mlirStringRefCreateFromCString("arg_attrs"));
  bool have = !mlirAttributeIsNull(old) && mlirAttributeIsAArray(old) &&
              mlirArrayAttrGetNumElements(old) == (intptr_t)p->nargs;
  MlirAttribute *dicts = malloc((p->nargs ? p->nargs : 1) * sizeof(*dicts));
  if (!dicts) return false;
  MlirIdentifier key = mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("moai.offset"));
  bool ok = true;
  for (size_t a = 0; ok && a < p->nargs; ++a) {
    MlirAttribute d = have ? mlirArrayAttrGetElement(old, (intptr_t)a)
                           : mlirAttributeGetNull();
    intptr_t n = !mlirAttributeIsNull(d) && mlirAttributeIsADictionary(d)
                     ? mlirDictionaryAttrGetNumElements(d) : 0;
    MlirNamedAttribute *elems = malloc((size_t)(n + 1) * sizeof(*elems));
    if (!elems) {
      ok = false;
      break;
    }
    intptr_t m = 0;
    for (intptr_t e = 0; e < n; ++e) {
      MlirNamedAttribute na = mlirDictionaryAttrGetElement(d, e);
      if (!mlirIdentifierEqual(na.name, key)) elems[m++] = na;
    }
    elems[m++] = mlirNamedAttributeGet(key, i64_attr(ctx, (int64_t)p->offsets[a]));
    dicts[a] = mlirDictionaryAttrGet(ctx, m, elems);
    free(elems);
  }
  if (ok && p->nargs)
    set_attr(p->func, "arg_attrs", mlirArrayAttrGet(ctx, (intptr_t)p->nargs, dicts));
  free(dicts);
  return ok;
}

static bool plan_write(plan_t *p, uint64_t arena, uint64_t lower) {
  MlirContext ctx = mlirOperationGetContext(p->func);
  set_attr(p->func, "moai.arena_size", i64_attr(ctx, (int64_t)arena));
  set_attr(p->func, "moai.live_lower_bound", i64_attr(ctx, (int64_t)lower));
  set_attr(p->func, "moai.arena_alignment",
           i64_attr(ctx, (int64_t)p->options->alignment));
  if (!plan_write_args(p, ctx)) return false;
  for (size_t pos = 0; pos < p->nops; ++pos) {
    MlirOperation op = p->ops[pos];
    mlirOperationRemoveAttributeByName(op, mlirStringRefCreateFromCString("moai.inplace"));
    mlirOperationRemoveAttributeByName(op, mlirStringRefCreateFromCString("moai.alias"));
    if (p->kinds[pos] == KIND_NONE) continue;
    intptr_t nres = mlirOperationGetNumResults(op);
    int64_t offs[MOAI_OP_MAX_RESULTS * MOAI_VARIADIC_SLOTS];
    if (nres > (intptr_t)(sizeof(offs) / sizeof(offs[0]))) return false;
    for (intptr_t r = 0; r < nres; ++r)
      offs[r] = (int64_t)p->offsets[p->first_value[pos] + (size_t)r];
    set_attr(op, "moai.offsets", mlirDenseI64ArrayGet(ctx, nres, offs));
    if (p->inplace[pos] >= 0) set_attr(op, "moai.inplace", i64_attr(ctx, p->inplace[pos]));
    if (p->alias[pos] >= 0) set_attr(op, "moai.alias", i64_attr(ctx, p->alias[pos]));
  }
  return true;
}

static bool plan_function(MlirOperation func,
                          const moai_memory_plan_options_t *options,
                          moai_memory_plan_stats_t *stats) {
  MlirRegion body = mlirOperationGetRegion(func, 0);
  MlirBlock block = mlirRegionGetFirstBlock(body);
  if (mlirBlockIsNull(block)) return true; /* a declaration */
  if (!mlirBlockIsNull(mlirBlockGetNextInRegion(block))) {
    emit_error(func, "functions with more than one block are not supported");
    return false;
  }
  plan_t p = {.func = func, .block = block, .options = options};
  bool ok = false;
  if (!plan_collect(&p)) {
    emit_error(func, "out of memory");
    goto done;
  }
  if (!plan_size_values(&p)) goto done;
  for (size_t a = 0; a < p.nargs; ++a) plan_lifetime(&p, a, -1);
  for (size_t pos = 0; pos < p.nops; ++pos) {
    if (p.kinds[pos] == KIND_NONE) continue;
    intptr_t nres = mlirOperationGetNumResults(p.ops[pos]);
    for (intptr_t r = 0; r < nres; ++r)
      plan_lifetime(&p, p.first_value[pos] + (size_t)r, (int64_t)pos);
  }
  moai_memory_plan_stats_t local = {0};
  if (options->views) plan_views(&p, &local);
  if (options->inplace) plan_inplace(&p, &local);
  uint64_t arena = 0, lower = 0;
  moai_status_t status = moai_memory_plan_buffers(
      p.reqs, p.nvalues, options->alignment, p.offsets, &arena, &lower);
  if (!status && options->check)
    status = moai_memory_plan_check(p.reqs, p.nvalues, options->alignment,
                                    p.offsets, arena);
  if (status) {
    emit_error(func, "%s", moai_status_message(status));
    moai_status_free(status);
    goto done;
  }
  if (!plan_write(&p, arena, lower)) {
    emit_error(func, "out of memory");
    goto done;
  }
  stats->arena_size += arena;
  stats->live_lower_bound += lower;
  stats->functions++;
  stats->values += p.nvalues;
  stats->views += local.views;
  stats->inplace += local.inplace;
  ok = true;
done:
  plan_free(&p);
  return ok;
}

static bool plan_regions(MlirOperation op, const moai_memory_plan_options_t *o,
                         moai_memory_plan_stats_t *stats) {
  if (name_is(op, "func.func")) return plan_function(op, o, stats);
  bool ok = true;
  for (intptr_t r = 0; r < mlirOperationGetNumRegions(op); ++r)
    for (MlirBlock b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, r));
         !mlirBlockIsNull(b); b = mlirBlockGetNextInRegion(b))
      for (MlirOperation it = mlirBlockGetFirstOperation(b);
           !mlirOperationIsNull(it); it = mlirOperationGetNextInBlock(it))
        ok = plan_regions(it, o, stats) && ok;
  return ok;
}

moai_memory_plan_options_t moai_memory_plan_options_default(void) {
  return (moai_memory_plan_options_t){
      .alignment = 64,
      .views = true,
      .inplace = true,
#ifdef NDEBUG
      .check = false,
#else
      .check = true,
#endif
  };
}

bool moai_memory_plan_run(MlirOperation root,
                          const moai_memory_plan_options_t *options,
                          moai_memory_plan_stats_t *out_stats) {
  moai_memory_plan_stats_t stats = {0};
  bool ok = plan_regions(root, options, &stats);
  if (out_stats) *out_stats = stats;
  return ok;
}

static void run_pass(MlirOperation op, MlirExternalPass pass,
                     const void *options) {
  if (!moai_memory_plan_run(op, options, NULL))
    mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_memory_plan_pass_create(const moai_memory_plan_options_t *options) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiMemoryPlan",
      .argument = "moai-memory-plan",
      .description = "Static arena offsets for activations",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  return moai_external_pass_create(&def, options, sizeof(*options));
}
