/* Candidate cuts of a forward pass: see cuts.h. */
#include "partition/cuts.h"

#include <stdlib.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "mlir-c/BuiltinTypes.h"


static size_t pmap_slot(const moai_pmap_t *m, uintptr_t k) {
  size_t i = (size_t)((k >> 4) * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
  return i;
}

bool moai_pmap_put(moai_pmap_t *m, const void *key, int64_t v) {
  if ((m->n + 1) * 2 > m->cap) {
    moai_pmap_t g = {.cap = m->cap ? m->cap * 2 : 256};
    g.keys = calloc(g.cap, sizeof(*g.keys));
    g.vals = calloc(g.cap, sizeof(*g.vals));
    if (!g.keys || !g.vals) {
      free(g.keys);
      free(g.vals);
      return false;
    }
    for (size_t i = 0; i < m->cap; ++i)
      if (m->keys[i]) {
        size_t j = pmap_slot(&g, m->keys[i]);
        g.keys[j] = m->keys[i];
        g.vals[j] = m->vals[i];
        g.n++;
      }
    free(m->keys);
    free(m->vals);
    *m = g;
  }
  size_t i = pmap_slot(m, (uintptr_t)key);
  if (!m->keys[i]) {
    m->keys[i] = (uintptr_t)key;
    m->n++;
  }
  m->vals[i] = v;
  return true;
}

int64_t moai_pmap_get(const moai_pmap_t *m, const void *key, int64_t dflt) {
  if (!m->cap) return dflt;
  size_t i = pmap_slot(m, (uintptr_t)key);
  return m->keys[i] ? m->vals[i] : dflt;
}

void moai_pmap_free(moai_pmap_t *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof(*m));
}

static bool name_is(MlirOperation op, const char *name) {
  MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
  return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

double moai_op_cost(MlirOperation op) {
  if (mlirOperationGetNumResults(op) == 0) return 0;
  MlirValue out = mlirOperationGetResult(op, 0);
  if (!mlirTypeIsARankedTensor(mlirValueGetType(out))) return 0;
  double n = (double)ad_numel(out);
  if (name_is(op, "moai.matmul")) {
    int64_t d[AD_MAX_RANK];
    int r = ad_dims(mlirOperationGetOperand(op, 0), d);
    return 2.0 * n * (double)(r ? d[r - 1] : 1);
  }
  return n;
}

int64_t moai_cuts_position(const moai_cuts_t *c, MlirOperation op) {
  return moai_pmap_get(&c->index, op.ptr, (int64_t)c->n);
}

void moai_cuts_free(moai_cuts_t *c) {
  free(c->ops);
  free(c->prefix);
  free(c->after);
  free(c->value);
  moai_pmap_free(&c->index);
  moai_pmap_free(&c->dep);
  memset(c, 0, sizeof(*c));
}

bool moai_cuts_find(MlirBlock block, size_t limit, bool outside_live, moai_cuts_t *c) {
  memset(c, 0, sizeof(*c));
  MlirOperation ret = mlirBlockGetTerminator(block);
  size_t n = 0, cap = 256;
  int64_t *live = NULL, *idsum = NULL;
  MlirValue *acts = NULL;
  bool ok = (c->ops = malloc(cap * sizeof(*c->ops))) != NULL;
  for (MlirOperation op = mlirBlockGetFirstOperation(block);
       ok && n < limit && !mlirOperationEqual(op, ret); op = mlirOperationGetNextInBlock(op)) {
    if (n == cap) {
      MlirOperation *g = realloc(c->ops, 2 * cap * sizeof(*g));
      if (!g) {
        ok = false;
        break;
      }
      c->ops = g;
      cap *= 2;
    }
    ok = moai_pmap_put(&c->index, op.ptr, (int64_t)n);
    c->ops[n++] = op;
  }
  c->n = n;
  for (intptr_t i = 0; ok && i < mlirBlockGetNumArguments(block); ++i)
    ok = moai_pmap_put(&c->dep, mlirBlockGetArgument(block, i).ptr, MOAI_DEP_INPUT);
  if (ok) {
    c->prefix = calloc(n + 1, sizeof(*c->prefix));
    c->after = calloc(n + 1, sizeof(*c->after));
    c->value = calloc(n + 1, sizeof(*c->value));
    live = calloc(n + 2, sizeof(*live)); /* difference arrays */
    idsum = calloc(n + 2, sizeof(*idsum));
    acts = calloc(n + 1, sizeof(*acts));
    ok = c->prefix && c->after && c->value && live && idsum && acts;
  }
  for (size_t i = 0; ok && i < n; ++i) {
    MlirOperation op = c->ops[i];
    int64_t d = 0;
    if (name_is(op, "moai.weight") && ad_attr_int(op, "trainable", 0)) d = MOAI_DEP_WEIGHT;
    for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); ++k)
      d |= moai_pmap_get(&c->dep, mlirOperationGetOperand(op, k).ptr, 0);
    c->prefix[i + 1] = c->prefix[i] + moai_op_cost(op);
    for (intptr_t k = 0; ok && k < mlirOperationGetNumResults(op); ++k) {
      MlirValue v = mlirOperationGetResult(op, k);
      ok = moai_pmap_put(&c->dep, v.ptr, d);
      if (d != (MOAI_DEP_WEIGHT | MOAI_DEP_INPUT) || !ad_is_float(v) || k > 0) continue;
      int64_t end = (int64_t)i;
      for (MlirOpOperand u = mlirValueGetFirstUse(v); !mlirOpOperandIsNull(u);
           u = mlirOpOperandGetNextUse(u)) {
        int64_t j = moai_pmap_get(&c->index, mlirOpOperandGetOwner(u).ptr, -1);
        if (j < 0) j = outside_live ? (int64_t)n : (int64_t)i;
        if (j > end) end = j;
      }
      /* live across the cuts after ops i .. end - 1 */
      live[i] += 1;
      live[end] -= 1;
      idsum[i] += (int64_t)i + 1;
      idsum[end] -= (int64_t)i + 1;
      acts[i] = v;
    }
  }
  int64_t count = 0, sum = 0;
  for (size_t i = 0; ok && i + 1 < n; ++i) {
    count += live[i];
    sum += idsum[i];
    if (count == 1 && sum >= 1 && ad_rank(acts[sum - 1]) >= 1) {
      c->after[c->count] = (int64_t)i;
      c->value[c->count++] = acts[sum - 1];
    }
  }
  free(live);
  free(idsum);
  free(acts);
  if (!ok) moai_cuts_free(c);
  return ok;
}
