/* Internal to the unpickler (pickle.c: the machine and its opcodes;
 * pickle_globals.c: the allow-listed globals and what REDUCE, NEWOBJ and
 * BINPERSID make of them). Not for the rest of the frontend. */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_PICKLE_INTERNAL_H
#define MOAI_FRONTENDS_TORCHSCRIPT_PICKLE_INTERNAL_H

#include "torchscript/pickle.h"

/* Limits: every input, however malformed, ends in a value or a status. They
 * are far above what torch.jit.save writes for any model (data.pkl of a
 * 7B-parameter model holds a few thousand values). */
#define MOAI_PK_MAX_STACK 100000         /* values on the stack */
#define MOAI_PK_MAX_MARKS 1000           /* MARKs open at once */
#define MOAI_PK_MAX_MEMO 1000000         /* memo index */
#define MOAI_PK_MAX_STR (16u << 20)      /* bytes of one string */
#define MOAI_PK_MAX_ITEMS (1u << 20)     /* items of one tuple or list */
#define MOAI_PK_MAX_DICT_PAIRS (1u << 14) /* pairs of one dict (keys are
                                             checked for duplicates by scan) */
#define MOAI_PK_MAX_DEPTH 256            /* nesting of containers */
#define MOAI_PK_MAX_NODES (1ull << 24)   /* values reachable from one value,
                                            a shared one counted each time */
#define MOAI_PK_MAX_ARENA_BYTES (512ull << 20) /* memory of one unpickling */

/* The globals the unpickler knows (a GLOBAL value's `i`). */
typedef enum pk_global_e {
  PK_G_REBUILD_TENSOR_V2 = 1,
  PK_G_REBUILD_PARAMETER,
  PK_G_ORDERED_DICT,
  PK_G_STORAGE_CLASS,  /* torch.<Dtype>Storage; dtype in tensor.dtype */
  PK_G_BUILD_INTLIST,
  PK_G_BUILD_DOUBLELIST,
  PK_G_BUILD_BOOLLIST,
  PK_G_BUILD_TENSORLIST,
  PK_G_RESTORE_TYPE_TAG,
  PK_G_TORCH_CLASS,    /* __torch__.*: str is the qualified class name */
  PK_G_STORAGE_REF,    /* a storage from BINPERSID (tensor.storage_key,
                          dtype, storage_numel); only _rebuild_tensor_v2
                          takes it */
} pk_global_t;

/* A value with the bookkeeping the limits need; `v` first, so a
 * moai_pk_value_t * of this unpickling is a pk_node_t *. */
typedef struct pk_node_t {
  moai_pk_value_t v;
  size_t cap;        /* LIST/DICT: capacity of v.items */
  uint32_t depth;    /* 1 + the deepest child */
  uint64_t nodes;    /* 1 + the children's counts (saturating) */
  bool frozen;       /* inside another value: no more mutation (no cycles) */
  bool internal;     /* is or holds a GLOBAL (unapplied global, storage) */
} pk_node_t;

typedef struct pk_machine_t pk_machine_t;

/* Failure "NAME: byte POS: message" at the current opcode. */
moai_status_t pk_error(const pk_machine_t *m, moai_status_code_t code,
                       const char *fmt, ...) MOAI_PRINTF(3, 4) MOAI_MUST_USE;
/* A new zeroed value of `kind` from the machine's arena. */
moai_status_t pk_new(pk_machine_t *m, moai_pk_kind_t kind,
                     pk_node_t **out) MOAI_MUST_USE;
/* A copy of NUL-terminated `s` in the arena. */
moai_status_t pk_strdup(pk_machine_t *m, const char *s,
                        const char **out) MOAI_MUST_USE;

/* GLOBAL / STACK_GLOBAL: the value for `module`.`name`, or an error naming
 * it when it is not allow-listed. */
moai_status_t pk_global(pk_machine_t *m, const char *module, const char *name,
                        pk_node_t **out) MOAI_MUST_USE;
/* REDUCE: applies an allowed global to its argument tuple. */
moai_status_t pk_reduce(pk_machine_t *m, pk_node_t *fn, pk_node_t *args,
                        pk_node_t **out) MOAI_MUST_USE;
/* NEWOBJ: an instance of a __torch__ class. */
moai_status_t pk_newobj(pk_machine_t *m, pk_node_t *cls, pk_node_t *args,
                        pk_node_t **out) MOAI_MUST_USE;
/* BINPERSID: a storage reference from ('storage', cls, key, loc, numel). */
moai_status_t pk_persistent(pk_machine_t *m, pk_node_t *pid,
                            pk_node_t **out) MOAI_MUST_USE;

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_PICKLE_INTERNAL_H */
