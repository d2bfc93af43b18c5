/* moai-simplify: dead-code elimination and common-subexpression elimination
 * for moai ops. IRDL ops carry no side-effect traits, so upstream
 * `canonicalize` and `cse` leave them alone; this pass knows from the op table
 * that every moai op except the random ones (Dropout) is pure. */
#ifndef MOAI_PASSES_SIMPLIFY_H
#define MOAI_PASSES_SIMPLIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_simplify_options_t {
  bool dce; /* erase moai ops whose results are unused */
  bool cse; /* merge identical moai ops on the same operands */
} moai_simplify_options_t;

typedef struct moai_simplify_stats_t {
  size_t erased;  /* ops removed as dead */
  size_t merged;  /* ops replaced by an identical earlier op */
} moai_simplify_stats_t;

moai_simplify_options_t moai_simplify_options_default(void);

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_simplify_pass_create(const moai_simplify_options_t *options);

/* The pass's logic on one operation (usually a module), for direct use and
 * unit tests; *out_stats may be NULL. */
void moai_simplify_run(MlirOperation root, const moai_simplify_options_t *options,
                       moai_simplify_stats_t *out_stats);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_SIMPLIFY_H */
