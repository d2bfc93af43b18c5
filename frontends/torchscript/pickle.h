/* Internal to the TorchScript frontend: a restricted unpickler for the
 * pickles inside a TorchScript archive (data.pkl, constants.pkl).
 *
 * Supports the opcodes torch.jit.save writes (protocol 2: PROTO, FRAME,
 * MARK, STOP, NONE, NEWTRUE/NEWFALSE, BININT/BININT1/BININT2, LONG1,
 * BINFLOAT, BINUNICODE/SHORT_BINUNICODE/BINUNICODE8, EMPTY_TUPLE, TUPLE,
 * TUPLE1..3, EMPTY_LIST, APPEND(S), LIST, EMPTY_DICT, SETITEM(S), DICT,
 * BINPUT/LONG_BINPUT/MEMOIZE, BINGET/LONG_BINGET, GLOBAL/STACK_GLOBAL,
 * REDUCE, NEWOBJ, BUILD, BINPERSID). Nothing is ever constructed from a
 * GLOBAL but what this table allows:
 *   torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
 *   collections.OrderedDict, torch.<Dtype>Storage (persistent ids
 *   ('storage', torch.FloatStorage, key, location, numel)),
 *   torch.jit._pickle.build_intlist / build_doublelist / build_boollist /
 *   build_tensorlist / restore_type_tag, and classes under `__torch__.`
 *   (TorchScript module objects: NEWOBJ + BUILD give an OBJECT value with
 *   the class's qualified name and its state dict).
 * Any other global is refused with an error naming it. Limits (stack depth,
 * memo size, string length, container sizes, nesting) make every input,
 * however malformed, end in a value or a status, never a crash. */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_PICKLE_H
#define MOAI_FRONTENDS_TORCHSCRIPT_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum moai_pk_kind_e {
  MOAI_PK_NONE,
  MOAI_PK_BOOL,
  MOAI_PK_INT,    /* fits int64 (LONG1 of more than 8 bytes is an error) */
  MOAI_PK_FLOAT,  /* double */
  MOAI_PK_STR,    /* UTF-8, NUL-terminated, `len` bytes */
  MOAI_PK_TUPLE,
  MOAI_PK_LIST,
  MOAI_PK_DICT,   /* ordered: items[2*i] key, items[2*i+1] value */
  MOAI_PK_OBJECT, /* a __torch__ class instance: class_name + state (a DICT) */
  MOAI_PK_TENSOR, /* a rebuilt tensor (see moai_pk_tensor_t) */
  MOAI_PK_GLOBAL, /* an allowed global not yet applied (internal) */
} moai_pk_kind_t;

/* torch ScalarType codes as stored dtypes. */
typedef enum moai_pk_dtype_e {
  MOAI_PK_U8 = 0, MOAI_PK_I8 = 1, MOAI_PK_I16 = 2, MOAI_PK_I32 = 3,
  MOAI_PK_I64 = 4, MOAI_PK_F16 = 5, MOAI_PK_F32 = 6, MOAI_PK_F64 = 7,
  MOAI_PK_BOOL_DT = 11, MOAI_PK_BF16 = 15,
} moai_pk_dtype_t;

#define MOAI_PK_MAX_RANK 8

typedef struct moai_pk_tensor_t {
  const char *storage_key; /* "0": the archive entry data/0 */
  moai_pk_dtype_t dtype;   /* from the storage class (FloatStorage: F32) */
  int64_t storage_numel;   /* elements in the storage */
  int64_t storage_offset;  /* in elements */
  int rank;
  int64_t sizes[MOAI_PK_MAX_RANK];
  int64_t strides[MOAI_PK_MAX_RANK];
  bool requires_grad;
  bool is_parameter; /* built by _rebuild_parameter */
} moai_pk_tensor_t;

typedef struct moai_pk_value_t moai_pk_value_t;
struct moai_pk_value_t {
  moai_pk_kind_t kind;
  bool b;
  int64_t i;
  double f;
  const char *str; /* STR, also OBJECT's class name ("__torch__.m.Foo") */
  size_t len;      /* STR: bytes; TUPLE/LIST: items; DICT: 2*pairs */
  moai_pk_value_t **items;
  moai_pk_value_t *state;  /* OBJECT: its DICT of attributes */
  moai_pk_tensor_t tensor; /* TENSOR */
};

/* Every value of one unpickling lives in this arena; freeing it frees them. */
typedef struct moai_pk_arena_t moai_pk_arena_t;
void moai_pk_arena_free(moai_pk_arena_t *arena);

/* Unpickles `size` bytes at `data`. `name` names the pickle in errors
 * ("m.pt: data.pkl: ..."). On success *out_arena owns *out_value. */
moai_status_t moai_pk_load(const void *data, size_t size, const char *name,
                           moai_pk_arena_t **out_arena,
                           moai_pk_value_t **out_value) MOAI_MUST_USE;

/* The value of key `key` in a DICT (or an OBJECT's state), or NULL. */
const moai_pk_value_t *moai_pk_dict_get(const moai_pk_value_t *dict,
                                        const char *key);

/* Bytes per element of a stored dtype (0: not a dtype moai reads). */
size_t moai_pk_dtype_size(moai_pk_dtype_t dtype);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_PICKLE_H */
