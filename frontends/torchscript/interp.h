/* Internal to the TorchScript frontend: the interpreter that runs a
 * module's forward over compile-time values (interp.c: statements,
 * expressions, calls) and the import state it shares with import.c (the
 * archive, the module objects, the weights made so far). */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_INTERP_H
#define MOAI_FRONTENDS_TORCHSCRIPT_INTERP_H

#include <stdbool.h>
#include <stddef.h>

#include "onnx/onnx_import.h"
#include "torchscript/archive.h"
#include "torchscript/ast.h"
#include "torchscript/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest chain of calls (forward into submodule forward, functions). */
#define MOAI_TS_MAX_CALL_DEPTH 64
/* Most statements one import executes (bounds loops). */
#define MOAI_TS_MAX_STEPS 10000000
/* Buffers with at most this many elements become constants, not weights. */
#define MOAI_TS_MAX_CONST_BUFFER_ELEMENTS 64

typedef struct moai_ts_weight_t {
  const moai_pk_tensor_t *tensor;
  const char *name;       /* "model.layers.0.self_attn.q_proj.weight" */
  moai_ts_value_t *value; /* the moai.weight's TENSOR (or a constant) */
  bool trainable;
} moai_ts_weight_t;

typedef struct moai_ts_source_entry_t {
  char *file; /* "code/__torch__/a/b.py" */
  moai_ts_source_t *source;
} moai_ts_source_entry_t;

typedef struct moai_ts_interp_t {
  moai_ts_emit_t em; /* ctx, block, arena, archive name, current file/line */
  moai_ts_archive_t *archive;
  const char *path; /* the archive as given (weights' `file`) */
  const moai_pk_value_t *constants; /* TUPLE of TENSORs (CONSTANTS.c<i>) */
  moai_ts_value_t **constant_values; /* made on first use */
  const moai_onnx_import_options_t *options;
  moai_ts_source_entry_t *sources;
  size_t source_count, source_capacity;
  moai_ts_weight_t *weights;
  size_t weight_count, weight_capacity;
  int call_depth;
  uint64_t steps;
} moai_ts_interp_t;

/* A failure "ARCHIVE: FILE:LINE: message" at the interpreter's current file
 * and `line`. */
moai_status_t moai_ts_interp_error(moai_ts_interp_t *in, int line,
                                   moai_status_code_t code, const char *fmt,
                                   ...) MOAI_PRINTF(4, 5) MOAI_MUST_USE;

/* Points em.file/line/loc at `line` of the current file. */
void moai_ts_interp_at(moai_ts_interp_t *in, int line);

/* The parsed class `qualified` ("__torch__.a.b.C", in code/__torch__/a/b.py)
 * or function ("__torch__.a.f"); the source is cached. */
moai_status_t moai_ts_interp_find_class(moai_ts_interp_t *in,
                                        const char *qualified,
                                        const moai_ts_source_t **out_source,
                                        const moai_ts_class_t **out_class)
    MOAI_MUST_USE;
moai_status_t moai_ts_interp_find_function(moai_ts_interp_t *in,
                                           const char *qualified,
                                           const moai_ts_source_t **out_source,
                                           const moai_ts_def_t **out_def)
    MOAI_MUST_USE;

/* Calls method `method` of MODULE `self` with positional `args` (self not
 * included) and keyword args; *out its result. (interp.c) */
moai_status_t moai_ts_interp_call_method(moai_ts_interp_t *in,
                                         moai_ts_value_t *self,
                                         const char *method,
                                         moai_ts_value_t **args, size_t nargs,
                                         const moai_ts_kwarg_t *kwargs,
                                         size_t nkwargs,
                                         moai_ts_value_t **out) MOAI_MUST_USE;

/* Attribute `name` of MODULE `self` at `line` of the current code: a
 * submodule (MODULE), a parameter or buffer (the weight's TENSOR, made
 * once per tensor), a number, bool, string or list; a class constant
 * (`in_features : Final[int] = 8`). (import.c) */
moai_status_t moai_ts_interp_module_attr(moai_ts_interp_t *in,
                                         moai_ts_value_t *self,
                                         const char *name, int line,
                                         moai_ts_value_t **out) MOAI_MUST_USE;

/* CONSTANTS.c<index>. (import.c) */
moai_status_t moai_ts_interp_constant(moai_ts_interp_t *in, int64_t index,
                                      int line,
                                      moai_ts_value_t **out) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_INTERP_H */
