#include "simplify/simplify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/dialect.h"
#include "ir/op_defs.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"

/* Ops that may be merged or removed: moai ops that neither draw random
 * numbers nor write an operand in place (moai.accumulate and the optimizer
 * ops have no results, so they would look dead, and two identical
 * accumulations are two additions). Two moai.state ops of one name are the
 * same tensor, so merging them is sound. */
static bool op_is_pure_moai(MlirOperation op) {
  if (!moai_op_is_moai(op)) return false;
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  const moai_op_def_t *def = moai_op_def_find(name.data, name.length);
  return def && !(def->flags & (MOAI_OP_FLAG_RANDOM | MOAI_OP_FLAG_SIDE_EFFECT));
}

static bool op_is_dead(MlirOperation op) {
  intptr_t n = mlirOperationGetNumResults(op);
  for (intptr_t i = 0; i < n; ++i)
    if (!mlirOpOperandIsNull(mlirValueGetFirstUse(mlirOperationGetResult(op, i))))
      return false;
  return true;
}

/* ---- CSE: an open-addressing table of ops keyed by structure ---------- */

typedef struct cse_table_t {
  MlirOperation *slots;
  uint64_t *hashes;
  size_t capacity; /* power of two */
  size_t count;
} cse_table_t;

static uint64_t mix(uint64_t h, const void *p) {
  h ^= (uint64_t)(uintptr_t)p + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static uint64_t op_hash(MlirOperation op) {
  uint64_t h = mix(0, mlirOperationGetName(op).ptr);
  for (intptr_t i = 0; i < mlirOperationGetNumOperands(op); ++i)
    h = mix(h, mlirOperationGetOperand(op, i).ptr);
  for (intptr_t i = 0; i < mlirOperationGetNumAttributes(op); ++i) {
    MlirNamedAttribute a = mlirOperationGetAttribute(op, i);
    h = mix(h, a.name.ptr);
    h = mix(h, a.attribute.ptr);
  }
  for (intptr_t i = 0; i < mlirOperationGetNumResults(op); ++i)
    h = mix(h, mlirValueGetType(mlirOperationGetResult(op, i)).ptr);
  return h;
}

/* Attributes, operands and types are uniqued by the context, so pointer
 * equality is structural equality. Attribute dictionaries are sorted. */
static bool op_equal(MlirOperation a, MlirOperation b) {
  if (mlirOperationGetName(a).ptr != mlirOperationGetName(b).ptr) return false;
  intptr_t n = mlirOperationGetNumOperands(a);
  if (n != mlirOperationGetNumOperands(b)) return false;
  for (intptr_t i = 0; i < n; ++i)
    if (mlirOperationGetOperand(a, i).ptr != mlirOperationGetOperand(b, i).ptr)
      return false;
  n = mlirOperationGetNumAttributes(a);
  if (n != mlirOperationGetNumAttributes(b)) return false;
  for (intptr_t i = 0; i < n; ++i) {
    MlirNamedAttribute x = mlirOperationGetAttribute(a, i);
    MlirNamedAttribute y = mlirOperationGetAttribute(b, i);
    if (x.name.ptr != y.name.ptr || x.attribute.ptr != y.attribute.ptr)
      return false;
  }
  n = mlirOperationGetNumResults(a);
  if (n != mlirOperationGetNumResults(b)) return false;
  for (intptr_t i = 0; i < n; ++i)
    if (mlirValueGetType(mlirOperationGetResult(a, i)).ptr !=
        mlirValueGetType(mlirOperationGetResult(b, i)).ptr)
      return false;
  return true;
}

static bool table_grow(cse_table_t *t) {
  size_t cap = t->capacity ? t->capacity * 2 : 256;
  MlirOperation *slots = calloc(cap, sizeof(*slots));
  uint64_t *hashes = calloc(cap, sizeof(*hashes));
  if (!slots || !hashes) {
    free(slots);
    free(hashes);
    return false;
  }
  for (size_t i = 0; i < t->capacity; ++i) {
    if (!t->slots[i].ptr) continue;
    size_t j = t->hashes[i] & (cap - 1);
    while (slots[j].ptr) j = (j + 1) & (cap - 1);
    slots[j] = t->slots[i];
    hashes[j] = t->hashes[i];
  }
  free(t->slots);
  free(t->hashes);
  t->slots = slots;
  t->hashes = hashes;
  t->capacity = cap;
  return true;
}

/* Returns an earlier op equal to `op`, or inserts `op` and returns null. If
 * the table cannot grow, nothing is merged (still correct). */
static MlirOperation table_find_or_insert(cse_table_t *t, MlirOperation op) {
  if ((t->count + 1) * 2 > t->capacity && !table_grow(t))
    return (MlirOperation){NULL};
  uint64_t h = op_hash(op);
  size_t j = h & (t->capacity - 1);
  while (t->slots[j].ptr) {
    if (t->hashes[j] == h && op_equal(t->slots[j], op)) return t->slots[j];
    j = (j + 1) & (t->capacity - 1);
  }
  t->slots[j] = op;
  t->hashes[j] = h;
  t->count++;
  return (MlirOperation){NULL};
}

static void simplify_block(MlirBlock block, const moai_simplify_options_t *o,
                           moai_simplify_stats_t *stats);

static bool op_named(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

/* A transpose's permutation (the default reverses the axes); false if it
 * cannot be read. */
static bool transpose_perm(MlirOperation op, int64_t *perm, intptr_t *rank) {
  MlirType t = mlirValueGetType(mlirOperationGetOperand(op, 0));
  if (!mlirTypeIsARankedTensor(t)) return false;
  intptr_t r = mlirShapedTypeGetRank(t);
  if (r > 8) return false;
  MlirAttribute a = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString("perm"));
  if (mlirAttributeIsNull(a)) {
    for (intptr_t i = 0; i < r; ++i) perm[i] = r - 1 - i;
  } else {
    if (!mlirAttributeIsADenseI64Array(a) || mlirDenseArrayGetNumElements(a) != r) return false;
    for (intptr_t i = 0; i < r; ++i) perm[i] = mlirDenseI64ArrayGetElement(a, i);
  }
  *rank = r;
  return true;
}

/* transpose(transpose(x, p), q) == transpose(x, p∘q): backward of a
 * `x @ W^T` (nn.Linear) transposes the forward's W^T back. The pair becomes
 * one transpose of x, or x itself when the composition is the identity. */
static bool fold_transpose_pair(MlirOperation op) {
  if (!op_named(op, "moai.transpose")) return false;
  MlirValue in = mlirOperationGetOperand(op, 0);
  if (!mlirValueIsAOpResult(in)) return false;
  MlirOperation inner = mlirOpResultGetOwner(in);
  if (!op_named(inner, "moai.transpose")) return false;
  int64_t p[8], q[8], c[8];
  intptr_t rp, rq;
  if (!transpose_perm(inner, p, &rp) || !transpose_perm(op, q, &rq) || rp != rq) return false;
  bool identity = true;
  for (intptr_t i = 0; i < rq; ++i) {
    c[i] = p[q[i]]; /* out[i] = mid[q[i]] = x[p[q[i]]] */
    identity &= c[i] == i;
  }
  MlirValue x = mlirOperationGetOperand(inner, 0);
  if (identity) {
    mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(op, 0), x);
  } else {
    MlirContext ctx = mlirOperationGetContext(op);
    mlirOperationSetOperand(op, 0, x);
    mlirOperationSetAttributeByName(op, mlirStringRefCreateFromCString("perm"),
                                    mlirDenseI64ArrayGet(ctx, rq, c));
    return false; /* op stays, now of x; the inner one may have died */
  }
  mlirOperationDestroy(op);
  return true;
}

/* A Dropout that is the identity (inference mode, or a ratio of exactly 0:
 * PyTorch's p=0) and whose mask is unused: replaced by its input, so no pass
 * after this one needs to know about it. */
static bool remove_identity_dropout(MlirOperation op) {
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  if (name.length != 12 || memcmp(name.data, "moai.dropout", 12) != 0) return false;
  if (mlirOperationGetNumResults(op) > 1 &&
      !mlirOpOperandIsNull(mlirValueGetFirstUse(mlirOperationGetResult(op, 1))))
    return false;
  const moai_op_def_t *def = moai_op_def_find("dropout", 7);
  int32_t counts[MOAI_OP_MAX_OPERANDS] = {1, 0, 0};
  MlirAttribute seg = mlirOperationGetAttributeByName(
      op, mlirStringRefCreateFromCString("operandSegmentSizes"));
  if (!mlirAttributeIsNull(seg) && mlirAttributeIsADenseI32Array(seg)) {
    int32_t sizes[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
    intptr_t n = mlirDenseArrayGetNumElements(seg);
    if (n > (intptr_t)(sizeof(sizes) / sizeof(sizes[0]))) return false;
    for (intptr_t i = 0; i < n; ++i) sizes[i] = mlirDenseI32ArrayGetElement(seg, i);
    if (!def || !moai_op_def_decode_segments(def, false, sizes, (size_t)n, counts)) return false;
  } else if (mlirOperationGetNumOperands(op) != 1) {
    return false;
  }
  double ratio = 0.5, mode = 0.0;
  bool training = counts[2] && !(moai_const_scalar(mlirOperationGetOperand(op, 1 + counts[1]), &mode) &&
                                 mode == 0.0);
  bool zero = counts[1] && moai_const_scalar(mlirOperationGetOperand(op, 1), &ratio) && ratio == 0.0;
  if (training && !zero) return false;
  mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(op, 0), mlirOperationGetOperand(op, 0));
  mlirOperationDestroy(op);
  return true;
}

static void simplify_regions(MlirOperation op, const moai_simplify_options_t *o,
                             moai_simplify_stats_t *stats) {
  for (intptr_t r = 0; r < mlirOperationGetNumRegions(op); ++r) {
    MlirRegion region = mlirOperationGetRegion(op, r);
    for (MlirBlock b = mlirRegionGetFirstBlock(region); !mlirBlockIsNull(b);
         b = mlirBlockGetNextInRegion(b))
      simplify_block(b, o, stats);
  }
}

static void simplify_block(MlirBlock block, const moai_simplify_options_t *o,
                           moai_simplify_stats_t *stats) {
  if (o->cse) {
    cse_table_t table = {0};
    MlirOperation op = mlirBlockGetFirstOperation(block);
    while (!mlirOperationIsNull(op)) {
      MlirOperation next = mlirOperationGetNextInBlock(op);
      if (mlirOperationGetNumRegions(op)) {
        simplify_regions(op, o, stats);
      } else if (remove_identity_dropout(op) || fold_transpose_pair(op)) {
        stats->erased++;
      } else if (op_is_pure_moai(op)) {
        MlirOperation prior = table_find_or_insert(&table, op);
        if (!mlirOperationIsNull(prior)) {
          for (intptr_t i = 0; i < mlirOperationGetNumResults(op); ++i)
            mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(op, i),
                                          mlirOperationGetResult(prior, i));
          mlirOperationDestroy(op);
          stats->merged++;
        }
      }
      op = next;
    }
    free(table.slots);
    free(table.hashes);
  } else {
    for (MlirOperation op = mlirBlockGetFirstOperation(block);
         !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op))
      if (mlirOperationGetNumRegions(op)) simplify_regions(op, o, stats);
  }
  if (!o->dce) return;
  /* Walk backwards so a chain of dead ops goes in one sweep. The C API has
   * no "previous op", so collect the block's ops first. */
  size_t n = 0, cap = 0;
  MlirOperation *ops = NULL;
  for (MlirOperation it = mlirBlockGetFirstOperation(block);
       !mlirOperationIsNull(it); it = mlirOperationGetNextInBlock(it)) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 256;
      MlirOperation *grown = realloc(ops, ncap * sizeof(*ops));
      if (!grown) {
        free(ops);
        return; /* DCE is an optimisation: skipping it is still correct */
      }
      ops = grown;
      cap = ncap;
    }
    ops[n++] = it;
  }
  for (size_t i = n; i-- > 0;) {
    if (op_is_pure_moai(ops[i]) && op_is_dead(ops[i])) {
      mlirOperationDestroy(ops[i]);
      stats->erased++;
    }
  }
  free(ops);
}

moai_simplify_options_t moai_simplify_options_default(void) {
  return (moai_simplify_options_t){.dce = true, .cse = true};
}

void moai_simplify_run(MlirOperation root, const moai_simplify_options_t *options,
                       moai_simplify_stats_t *out_stats) {
  moai_simplify_stats_t stats = {0};
  simplify_regions(root, options, &stats);
  if (out_stats) *out_stats = stats;
}

static void run_pass(MlirOperation op, MlirExternalPass pass,
                     const void *options) {
  (void)pass;
  moai_simplify_run(op, options, NULL);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_simplify_pass_create(const moai_simplify_options_t *options) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiSimplify",
      .argument = "moai-simplify",
      .description = "DCE and CSE for moai ops",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  return moai_external_pass_create(&def, options, sizeof(*options));
}
