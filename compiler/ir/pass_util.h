/* Creating an MLIR pass written in C (mlirCreateExternalPass) with plain-old-
 * data options. The options are copied into the pass and deep-copied again
 * when MLIR clones the pass for another thread, as MLIR's own
 * mlir/test/CAPI/pass.c requires of external passes. */
#ifndef MOAI_IR_PASS_UTIL_H
#define MOAI_IR_PASS_UTIL_H

#include <stddef.h>

#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_external_pass_t {
  /* 8-byte-aligned static storage whose address identifies the pass. */
  const void *type_id_storage;
  const char *name;        /* "MoaiShapeInfer" */
  const char *argument;    /* "moai-shape-infer" */
  const char *description; /* one line */
  const char *op_name;     /* anchor, e.g. "builtin.module" */
  /* Runs on `op`; signals failure through mlirExternalPassSignalFailure. */
  void (*run)(MlirOperation op, MlirExternalPass pass, const void *options);
} moai_external_pass_t;

/* Creates a pass from `def` with a copy of `options` (options_size bytes,
 * which must not contain owning pointers). Returns a null pass if memory runs
 * out. The caller owns the pass (usually handing it to a pass manager). */
MlirPass moai_external_pass_create(const moai_external_pass_t *def,
                                   const void *options, size_t options_size);

/* Counts of live pass instances, for lifecycle tests (construct == destruct). */
long moai_external_pass_live_count(void);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IR_PASS_UTIL_H */
