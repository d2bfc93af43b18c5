/* Internal to the TorchScript frontend: the values the interpreter of the
 * TorchScript code works with, and the interface between the interpreter
 * (interp.c: statements, attribute access, submodule calls, constants) and
 * the operator translation (aten.c: torch.* / ops.aten.* calls -> moai ops).
 *
 * Everything shape-like is known at compile time: sizes, ints computed from
 * them (NumToTensor, int(), floor_divide of scalar tensors, ...), lists of
 * ints. Only tensors whose data depends on the model's inputs or weights
 * become MLIR values. A tensor whose data is known (a CONSTANTS.c<i>, a
 * NumToTensor of a size, torch.tensor(3)) keeps it in `konst` and becomes a
 * `moai.constant` only when an op needs it as an operand. */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_VALUE_H
#define MOAI_FRONTENDS_TORCHSCRIPT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "mlir-c/IR.h"
#include "torchscript/pickle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum moai_ts_kind_e {
  MOAI_TS_NONE,
  MOAI_TS_BOOL,
  MOAI_TS_INT,
  MOAI_TS_FLOAT,
  MOAI_TS_STR,    /* also a device ("cpu") */
  MOAI_TS_LIST,
  MOAI_TS_TUPLE,
  MOAI_TS_TENSOR,
  MOAI_TS_MODULE, /* a module object of the archive (self, self.layers, ...) */
} moai_ts_kind_t;

/* A tensor's compile-time data: row-major, dtype MOAI_PK_I64, F64, F32 or
 * BOOL_DT (one byte per element). At most MOAI_TS_MAX_CONST_ELEMENTS. */
#define MOAI_TS_MAX_CONST_ELEMENTS 4096
typedef struct moai_ts_const_t {
  moai_pk_dtype_t dtype;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  int64_t numel;
  void *data;
  /* A 0-dim tensor that came from a Python number (NumToTensor, a scalar
   * argument): it takes part in type promotion as a "wrapped number". */
  bool wrapped_number;
} moai_ts_const_t;

typedef struct moai_ts_value_t moai_ts_value_t;
struct moai_ts_value_t {
  moai_ts_kind_t kind;
  bool b;
  int64_t i;
  double f;
  const char *str;
  size_t len;               /* LIST/TUPLE items */
  moai_ts_value_t **items;  /* LIST/TUPLE */
  MlirValue tensor;         /* TENSOR: null (ptr NULL) when only `konst` */
  moai_ts_const_t *konst;   /* TENSOR: compile-time data, or NULL */
  const moai_pk_value_t *module; /* MODULE: the OBJECT */
  const char *module_path;  /* MODULE: "model.layers.0" ("" for the root) */
};

/* A bump allocator for values of one import (freed all at once). */
typedef struct moai_ts_arena_t moai_ts_arena_t;
moai_ts_arena_t *moai_ts_arena_create(void);
void moai_ts_arena_destroy(moai_ts_arena_t *arena);
/* Zeroed memory, or NULL when out of memory. */
void *moai_ts_arena_alloc(moai_ts_arena_t *arena, size_t size);
char *moai_ts_arena_strdup(moai_ts_arena_t *arena, const char *s);

/* What an operator call sees of the import. */
typedef struct moai_ts_emit_t {
  MlirContext ctx;
  MlirBlock block;        /* ops are appended here, in order */
  moai_ts_arena_t *arena; /* for result values */
  const char *archive;    /* the .pt file as named in errors */
  /* Where the call is: the code file ("code/__torch__/m.py") and 1-based
   * line; errors say "m.pt: code/__torch__/m.py:12: aten::foo: ...". */
  const char *file;
  int line;
  MlirLocation loc; /* the location to give created ops */
} moai_ts_emit_t;

typedef struct moai_ts_kwarg_t {
  const char *name;
  moai_ts_value_t *value;
} moai_ts_kwarg_t;

/* Calls operator `fn` as spelled in the code ("torch.linear", "torch.size",
 * "ops.prim.NumToTensor", "ops.aten.foo", "int", "float", "len",
 * "annotate" is handled by the interpreter) with positional `args` and
 * keyword `kwargs`, appending the moai ops it needs; *out gets the result
 * (a TUPLE for several). An operator not in the table, or arguments it
 * cannot take (a dtype, a non-constant where a constant is needed, wrong
 * shapes), is an error naming the operator and em->file:em->line. */
moai_status_t moai_ts_call_op(moai_ts_emit_t *em, const char *fn,
                              moai_ts_value_t **args, size_t nargs,
                              const moai_ts_kwarg_t *kwargs, size_t nkwargs,
                              moai_ts_value_t **out) MOAI_MUST_USE;

/* Whether `fn` is an operator moai_ts_call_op knows (for error messages
 * and the docs' list). */
bool moai_ts_op_known(const char *fn);
/* The known operator names, NULL-terminated, sorted. */
const char *const *moai_ts_op_names(void);

/* The MLIR value of a TENSOR, materialising `konst` as a moai.constant
 * when it has none (cached in v->tensor). */
moai_status_t moai_ts_tensor_value(moai_ts_emit_t *em, moai_ts_value_t *v,
                                   MlirValue *out) MOAI_MUST_USE;

/* A failure "ARCHIVE: FILE:LINE: FN: message". */
moai_status_t moai_ts_emit_error(const moai_ts_emit_t *em, const char *fn,
                                 moai_status_code_t code, const char *fmt, ...)
    MOAI_PRINTF(4, 5) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_VALUE_H */
