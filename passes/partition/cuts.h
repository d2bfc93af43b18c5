/* Where a forward pass can be cut with a single activation crossing: shared
 * by moai-partition (pipeline stages) and moai-recompute (checkpoints).
 *
 * An activation is a float value that depends on both a graph input and a
 * trainable weight; values depending on only one of them (masks, rotary
 * tables, transposed weights) can be recomputed anywhere. A cut after op i
 * is a candidate when exactly one activation defined at or before i is used
 * after it: in a transformer, the residual stream between sub-blocks. */
#ifndef MOAI_PASSES_PARTITION_CUTS_H
#define MOAI_PASSES_PARTITION_CUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An open-addressing map from pointers (values, ops) to integers. */
typedef struct moai_pmap_t {
  uintptr_t *keys;
  int64_t *vals;
  size_t cap, n;
} moai_pmap_t;

bool moai_pmap_put(moai_pmap_t *m, const void *key, int64_t v); /* false: out of memory */
int64_t moai_pmap_get(const moai_pmap_t *m, const void *key, int64_t dflt);
void moai_pmap_free(moai_pmap_t *m);

typedef struct moai_cuts_t {
  MlirOperation *ops;  /* the ops considered, in block order */
  size_t n;
  double *prefix;      /* prefix[i]: cost of ops[0 .. i) (moai_op_cost); n + 1 entries */
  size_t count;        /* candidate cuts, in order */
  int64_t *after;      /* cut k lies after ops[after[k]] */
  MlirValue *value;    /* the one activation crossing cut k */
  moai_pmap_t index;   /* op -> its position in ops */
  moai_pmap_t dep;     /* value -> MOAI_DEP_* bits (what it depends on) */
} moai_cuts_t;

enum { MOAI_DEP_WEIGHT = 1, MOAI_DEP_INPUT = 2 }; /* a trainable weight, a graph input */

/* The candidate cuts of the first `limit` ops of `block` (SIZE_MAX: every op
 * before the terminator). A use by an op outside them keeps a value live to
 * the end when `outside_live` (moai-partition: the return), and is ignored
 * otherwise (moai-recompute: the backward). False when memory runs out. */
bool moai_cuts_find(MlirBlock block, size_t limit, bool outside_live, moai_cuts_t *out);
/* op's position in cuts->ops, or cuts->n when it is not among them. */
int64_t moai_cuts_position(const moai_cuts_t *cuts, MlirOperation op);
void moai_cuts_free(moai_cuts_t *cuts);

/* Rough cost of an op for balancing: 2 M N K for a MatMul, else the elements
 * it writes. */
double moai_op_cost(MlirOperation op);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_PARTITION_CUTS_H */
