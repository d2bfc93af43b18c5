/* Interpreter values of the TorchScript frontend: the arena they live in,
 * the materialisation of compile-time tensors as moai.constant ops, and
 * the error format every operator uses. */
#include "torchscript/value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"

/* ------------------------------------------------------------------ arena */

#define ARENA_CHUNK_BYTES (64u << 10)

typedef struct arena_chunk_t {
  struct arena_chunk_t *next;
  size_t used, size;
  max_align_t data[]; /* `size` bytes */
} arena_chunk_t;

struct moai_ts_arena_t {
  arena_chunk_t *head;
};

moai_ts_arena_t *moai_ts_arena_create(void) {
  return calloc(1, sizeof(moai_ts_arena_t));
}

void moai_ts_arena_destroy(moai_ts_arena_t *arena) {
  if (!arena) return;
  for (arena_chunk_t *c = arena->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(arena);
}

void *moai_ts_arena_alloc(moai_ts_arena_t *arena, size_t size) {
  const size_t align = sizeof(max_align_t);
  if (!arena || size > SIZE_MAX / 2) return NULL;
  size = (size + align - 1) / align * align;
  if (size == 0) size = align;
  arena_chunk_t *c = arena->head;
  if (!c || c->size - c->used < size) {
    size_t want = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
    c = malloc(sizeof(arena_chunk_t) + want);
    if (!c) return NULL;
    c->size = want;
    c->used = 0;
    c->next = arena->head;
    arena->head = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

char *moai_ts_arena_strdup(moai_ts_arena_t *arena, const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s);
  char *d = moai_ts_arena_alloc(arena, n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

/* ----------------------------------------------------------------- errors */

moai_status_t moai_ts_emit_error(const moai_ts_emit_t *em, const char *fn,
                                 moai_status_code_t code, const char *fmt,
                                 ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  const char *archive = em && em->archive ? em->archive : "<archive>";
  if (em && em->file && fn)
    return MOAI_STATUS(code, "%s: %s:%d: %s: %s", archive, em->file, em->line,
                       fn, msg);
  if (em && em->file)
    return MOAI_STATUS(code, "%s: %s:%d: %s", archive, em->file, em->line,
                       msg);
  if (fn) return MOAI_STATUS(code, "%s: %s: %s", archive, fn, msg);
  return MOAI_STATUS(code, "%s: %s", archive, msg);
}

/* -------------------------------------------------- constant tensors -> IR */

static MlirType const_element_type(MlirContext ctx, moai_pk_dtype_t dtype) {
  switch (dtype) {
    case MOAI_PK_I64: return mlirIntegerTypeGet(ctx, 64);
    case MOAI_PK_F64: return mlirF64TypeGet(ctx);
    case MOAI_PK_F32: return mlirF32TypeGet(ctx);
    case MOAI_PK_BOOL_DT: return mlirIntegerTypeGet(ctx, 1);
    default: return (MlirType){NULL};
  }
}

moai_status_t moai_ts_tensor_value(moai_ts_emit_t *em, moai_ts_value_t *v,
                                   MlirValue *out) {
  if (!v || v->kind != MOAI_TS_TENSOR)
    return moai_ts_emit_error(em, NULL, MOAI_INTERNAL,
                              "a tensor was expected");
  if (!mlirValueIsNull(v->tensor)) {
    *out = v->tensor;
    return moai_ok_status();
  }
  const moai_ts_const_t *k = v->konst;
  if (!k || k->numel < 0 || k->numel > MOAI_TS_MAX_CONST_ELEMENTS ||
      k->rank < 0 || k->rank > MOAI_PK_MAX_RANK)
    return moai_ts_emit_error(em, NULL, MOAI_INTERNAL,
                              "a tensor has neither a value nor data");
  MlirType elem = const_element_type(em->ctx, k->dtype);
  if (mlirTypeIsNull(elem))
    return moai_ts_emit_error(em, NULL, MOAI_INTERNAL,
                              "a constant tensor of dtype %d", (int)k->dtype);
  MlirType type = mlirRankedTensorTypeGet(k->rank, k->dims, elem,
                                          mlirAttributeGetNull());
  MlirAttribute value;
  intptr_t n = (intptr_t)k->numel;
  switch (k->dtype) {
    case MOAI_PK_I64:
      value = mlirDenseElementsAttrInt64Get(type, n, k->data);
      break;
    case MOAI_PK_F64:
      value = mlirDenseElementsAttrDoubleGet(type, n, k->data);
      break;
    case MOAI_PK_F32:
      value = mlirDenseElementsAttrFloatGet(type, n, k->data);
      break;
    default: {
      int *bits = malloc((size_t)(n ? n : 1) * sizeof(int));
      if (!bits)
        return moai_ts_emit_error(em, NULL, MOAI_OUT_OF_MEMORY,
                                  "out of memory for a constant");
      for (intptr_t i = 0; i < n; ++i) bits[i] = ((const uint8_t *)k->data)[i] != 0;
      value = mlirDenseElementsAttrBoolGet(type, n, bits);
      free(bits);
      break;
    }
  }
  if (mlirAttributeIsNull(value))
    return moai_ts_emit_error(em, NULL, MOAI_INTERNAL,
                              "could not build a constant's data");
  MlirNamedAttribute attr = mlirNamedAttributeGet(
      mlirIdentifierGet(em->ctx, mlirStringRefCreateFromCString("value")),
      value);
  MlirOperationState state = mlirOperationStateGet(
      mlirStringRefCreateFromCString("moai.constant"), em->loc);
  mlirOperationStateAddResults(&state, 1, &type);
  mlirOperationStateAddAttributes(&state, 1, &attr);
  MlirOperation op = mlirOperationCreate(&state);
  if (mlirOperationIsNull(op))
    return moai_ts_emit_error(em, NULL, MOAI_INTERNAL,
                              "could not create a moai.constant");
  mlirBlockAppendOwnedOperation(em->block, op);
  v->tensor = mlirOperationGetResult(op, 0);
  *out = v->tensor;
  return moai_ok_status();
}
