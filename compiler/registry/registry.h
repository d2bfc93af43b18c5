/* The table of moai passes and their registration with MLIR, so they can be
 * named in textual pipelines: `builtin.module(moai-shape-infer,cse)` in
 * moaicc and moai-opt, and from upstream mlir-opt through the plugin. */
#ifndef MOAI_REGISTRY_H
#define MOAI_REGISTRY_H

#include <stddef.h>

#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_pass_info_t {
  const char *argument;    /* stable kebab-case name: "moai-shape-infer" */
  const char *description; /* one line */
  MlirPass (*create)(void); /* a new pass with default options, owned by caller */
} moai_pass_info_t;

/* Every moai pass, in pipeline order. */
const moai_pass_info_t *moai_pass_registry(size_t *out_count);

/* The pass called `argument`, or NULL. */
const moai_pass_info_t *moai_pass_registry_find(const char *argument);

/* Registers every moai pass and every upstream pass with MLIR's global pass
 * registry (idempotent, not thread-safe on first call). Implemented in C++:
 * the C API cannot register a pass by name. */
void moai_register_passes(void);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_REGISTRY_H */
