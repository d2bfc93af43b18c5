/* Internal to the ONNX frontend: the state of one import and the helpers
 * its files share. Not installed; nothing outside frontends/onnx includes
 * it. */
#ifndef MOAI_FRONTENDS_ONNX_IMPORTER_H
#define MOAI_FRONTENDS_ONNX_IMPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/allocator.h"
#include "base/status.h"
#include "ir/diag.h"
#include "ir/dtype.h"
#include "ir/op_defs.h"
#include "mlir-c/IR.h"
#include "onnx.pb-c.h"
#include "onnx/onnx_import.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- name -> value map (open addressing, keys borrowed) ---------------- */

/* Who defined a value: a node index (>= 0) or one of these. */
enum { MOAI_ONNX_DEF_INPUT = -1, MOAI_ONNX_DEF_INITIALIZER = -2 };

typedef struct moai_onnx_name_entry_t {
  const char *key; /* NULL: empty slot */
  uint64_t hash;
  MlirValue value;
  const void *ptr; /* what the map holds besides a value */
  long index;      /* defining node index, MOAI_ONNX_DEF_*, or an item index */
} moai_onnx_name_entry_t;

typedef struct moai_onnx_name_map_t {
  moai_allocator_t allocator;
  moai_onnx_name_entry_t *entries;
  size_t capacity; /* a power of two, or 0 */
  size_t count;
} moai_onnx_name_map_t;

void moai_onnx_name_map_init(moai_onnx_name_map_t *map,
                             moai_allocator_t allocator);
void moai_onnx_name_map_deinit(moai_onnx_name_map_t *map);
/* Makes room for `count` more names without growing again. */
moai_status_t moai_onnx_name_map_reserve(moai_onnx_name_map_t *map,
                                         size_t count) MOAI_MUST_USE;
/* The entry for `key`, or NULL. */
moai_onnx_name_entry_t *moai_onnx_name_map_find(const moai_onnx_name_map_t *map,
                                                const char *key);
/* The entry for `key`, added zeroed (but for the key) if new;
 * *out_existed tells which. The key must outlive the map. */
moai_status_t moai_onnx_name_map_insert(moai_onnx_name_map_t *map,
                                        const char *key,
                                        moai_onnx_name_entry_t **out_entry,
                                        bool *out_existed) MOAI_MUST_USE;

/* ---- the import ---------------------------------------------------------- */

/* A growable array reused across nodes. */
typedef struct moai_onnx_scratch_t {
  void *data;
  size_t capacity; /* in bytes */
} moai_onnx_scratch_t;

typedef struct moai_onnx_importer_t {
  MlirContext ctx;
  moai_allocator_t allocator;
  moai_onnx_import_options_t options;
  const char *path;     /* the model as named in errors and locations */
  const char *base_dir; /* where external data files are */
  const uint8_t *data;  /* the serialized model */
  size_t size;
  Onnx__ModelProto *model;
  Onnx__GraphProto *graph;
  int64_t opset;
  MlirLocation file_loc;
  MlirBlock body; /* of @main */

  moai_onnx_name_map_t values; /* value name -> MlirValue, defining index */
  moai_onnx_name_map_t value_infos;  /* value name -> ValueInfoProto (ptr) */
  moai_onnx_name_map_t initializers; /* name -> initializer index */
  bool *trainable;                   /* per initializer */
  int64_t *raw_offsets;              /* per initializer, -1: none; lazily */

  /* Scratch space reused from node to node. */
  moai_onnx_scratch_t scratch_values; /* MlirValue */
  moai_onnx_scratch_t scratch_types;  /* MlirType */
  moai_onnx_scratch_t scratch_dims;   /* int64_t */
  moai_onnx_scratch_t scratch_ints;   /* int */
  moai_onnx_scratch_t scratch_bytes;  /* uint8_t */

  moai_diag_sink_t diag;
} moai_onnx_importer_t;

/* One node being imported. */
typedef struct moai_onnx_node_t {
  const Onnx__NodeProto *proto;
  long index;
  const char *name; /* the node's name, or "<op_type>_<index>" */
  const char *op_type;
  const moai_op_def_t *def;
  char name_buf[96];
} moai_onnx_node_t;

/* "" for a NULL string (absent proto2 strings are NULL). */
static inline const char *moai_onnx_str(const char *s) { return s ? s : ""; }

/* A failure "PATH: message". */
moai_status_t moai_onnx_error(const moai_onnx_importer_t *im,
                              const char *src_file, int src_line,
                              moai_status_code_t code, const char *fmt, ...)
    MOAI_PRINTF(5, 6) MOAI_MUST_USE;
/* A failure "PATH: node 'NAME' (OP): message". */
moai_status_t moai_onnx_node_error(const moai_onnx_importer_t *im,
                                   const moai_onnx_node_t *node,
                                   const char *src_file, int src_line,
                                   moai_status_code_t code, const char *fmt,
                                   ...) MOAI_PRINTF(6, 7) MOAI_MUST_USE;
#define MOAI_ONNX_ERROR(im, code, ...) \
  moai_onnx_error((im), __FILE__, __LINE__, (code), __VA_ARGS__)
#define MOAI_ONNX_NODE_ERROR(im, node, code, ...) \
  moai_onnx_node_error((im), (node), __FILE__, __LINE__, (code), __VA_ARGS__)

/* Grows a scratch array to at least `count` elements of `elem_size` bytes
 * (never leaving it NULL). */
moai_status_t moai_onnx_scratch_reserve(moai_onnx_importer_t *im,
                                        moai_onnx_scratch_t *s,
                                        size_t elem_size,
                                        size_t count) MOAI_MUST_USE;

/* MLIR helpers. */
MlirNamedAttribute moai_onnx_named(MlirContext ctx, const char *name,
                                   MlirAttribute attr);
MlirAttribute moai_onnx_string_attr(MlirContext ctx, const char *s);
MlirAttribute moai_onnx_i64_attr(MlirContext ctx, int64_t v);
/* Creates an op from `state` and appends it to the body. */
MlirOperation moai_onnx_append_op(moai_onnx_importer_t *im,
                                  MlirOperationState *state);
/* Formats a type's shape as "2x3", "scalar", "?x4" or "*" into buf. */
void moai_onnx_format_shape(MlirType type, char *buf, size_t size);

/* ---- tensors.c: TensorProto and TypeProto ------------------------------- */

/* Where a TensorProto's data is. */
typedef enum moai_onnx_data_kind_e {
  MOAI_ONNX_DATA_ABSENT,   /* none at all */
  MOAI_ONNX_DATA_RAW,      /* raw_data */
  MOAI_ONNX_DATA_FIELD,    /* float_data, int32_data, ... */
  MOAI_ONNX_DATA_EXTERNAL, /* an external file */
} moai_onnx_data_kind_t;

typedef struct moai_onnx_tensor_info_t {
  moai_dtype_t dtype;
  int64_t numel;
  int64_t nbytes; /* numel * element size */
  moai_onnx_data_kind_t data;
  MlirType type; /* ranked tensor type */
} moai_onnx_tensor_info_t;

/* Checks a TensorProto (dtype, dims, data sizes) and describes it. `what`
 * ("initializer 'w'") prefixes errors after the path. */
moai_status_t moai_onnx_tensor_describe(
    moai_onnx_importer_t *im, const Onnx__TensorProto *t, const char *what,
    moai_onnx_tensor_info_t *out_info) MOAI_MUST_USE;

/* The tensor's data as a DenseElementsAttr; the data must be inline (raw or
 * typed fields, or no elements). */
moai_status_t moai_onnx_tensor_to_elements(
    moai_onnx_importer_t *im, const Onnx__TensorProto *t,
    const moai_onnx_tensor_info_t *info, const char *what,
    MlirAttribute *out_attr) MOAI_MUST_USE;

/* A DenseElementsAttr of `count` i64 (rank 1, or rank 0 when `scalar`). */
MlirAttribute moai_onnx_i64_elements(MlirContext ctx, const int64_t *values,
                                     size_t count, bool scalar);
/* Same for f32. */
MlirAttribute moai_onnx_f32_elements(MlirContext ctx, const float *values,
                                     size_t count, bool scalar);

/* The element type of a tensor TypeProto (UNDEFINED if not a tensor, not
 * given or unsupported). */
moai_dtype_t moai_onnx_type_dtype(const Onnx__TypeProto *tp);
/* The type as a static ranked tensor type in *out_type, or a null type when
 * the element type or any dimension is unknown. */
moai_status_t moai_onnx_type_static(moai_onnx_importer_t *im,
                                    const Onnx__TypeProto *tp,
                                    MlirType *out_type) MOAI_MUST_USE;
/* A name for an ONNX TensorProto.DataType code ("string", "complex64"). */
const char *moai_onnx_dtype_code_name(int code);

/* ---- wire.c: raw_data offsets -------------------------------------------- */

/* For each of the `count` TensorProtos of ModelProto.graph.initializer, in
 * order, the byte offset in `data` of its raw_data payload (-1 when it has
 * none) and its length. False when the bytes do not have that layout. */
bool moai_onnx_wire_find_raw_data(const uint8_t *data, size_t size,
                                  size_t count, int64_t *out_offsets,
                                  int64_t *out_lengths);

/* ---- initializers.c ------------------------------------------------------ */

/* Fills im->initializers and im->trainable (options, metadata, defaults). */
moai_status_t moai_onnx_resolve_trainable(moai_onnx_importer_t *im)
    MOAI_MUST_USE;
/* Appends a moai.weight or moai.constant op per initializer and maps its
 * name to the op's result. */
moai_status_t moai_onnx_import_initializers(moai_onnx_importer_t *im)
    MOAI_MUST_USE;
/* The module attribute listing the trainable initializers. */
moai_status_t moai_onnx_trainable_attr(moai_onnx_importer_t *im,
                                       MlirAttribute *out_attr) MOAI_MUST_USE;

/* ---- signature.c --------------------------------------------------------- */

/* Creates `func.func @main` in `module` with one argument per graph input
 * that is not an initializer (shapes fixed by the options' input shapes),
 * maps the inputs to the arguments and points im->body at its block. */
moai_status_t moai_onnx_build_main(moai_onnx_importer_t *im, MlirModule module,
                                   MlirOperation *out_func) MOAI_MUST_USE;
/* Returns the graph outputs from @main and sets its function type. */
moai_status_t moai_onnx_finish_main(moai_onnx_importer_t *im,
                                    MlirOperation func) MOAI_MUST_USE;

/* ---- attrs.c ------------------------------------------------------------- */

/* An attribute of an older op form that the opset-21 form lacks or gives
 * another meaning (ReduceSum's `axes` before opset 13, Softmax's `axis`
 * before 13): captured for the upgrade instead of mapped through the op
 * table, and not defaulted. */
typedef struct moai_onnx_legacy_attr_t {
  const char *name;
  int type;                          /* ONNX AttributeProto type */
  const Onnx__AttributeProto *value; /* out: NULL when the node omits it */
} moai_onnx_legacy_attr_t;

/* The node's attributes for its op (defaults filled in) appended to
 * out_attrs (room for MOAI_OP_MAX_ATTRS); attributes named in `legacy` are
 * type-checked and returned there instead. */
moai_status_t moai_onnx_node_attributes(moai_onnx_importer_t *im,
                                        const moai_onnx_node_t *node,
                                        MlirNamedAttribute *out_attrs,
                                        size_t *inout_count,
                                        moai_onnx_legacy_attr_t *legacy,
                                        size_t n_legacy) MOAI_MUST_USE;

/* The error for an attribute the node's op does not have at this opset. */
moai_status_t moai_onnx_unknown_attr(moai_onnx_importer_t *im,
                                     const moai_onnx_node_t *node,
                                     const char *name) MOAI_MUST_USE;

/* The value of a Constant node's single attribute as a DenseElementsAttr. */
moai_status_t moai_onnx_constant_node_value(
    moai_onnx_importer_t *im, const moai_onnx_node_t *node,
    MlirAttribute *out_value) MOAI_MUST_USE;

/* ---- nodes.c ------------------------------------------------------------- */

/* Imports node number `index` of the graph. */
moai_status_t moai_onnx_import_node(moai_onnx_importer_t *im,
                                    long index) MOAI_MUST_USE;

/* Appends `moai.<mnemonic>` with `n` single operands, `attrs` and one
 * result, at the node's location, and infers its type (for upgrades that
 * expand a node into several ops). */
moai_status_t moai_onnx_build_op(moai_onnx_importer_t *im,
                                 const moai_onnx_node_t *node, MlirLocation loc,
                                 const char *mnemonic,
                                 const MlirValue *operands, size_t n,
                                 const MlirNamedAttribute *attrs,
                                 size_t n_attrs,
                                 MlirOperation *out_op) MOAI_MUST_USE;

/* Appends a moai.constant holding `value` (a DenseElementsAttr). */
moai_status_t moai_onnx_build_constant(moai_onnx_importer_t *im,
                                       const moai_onnx_node_t *node,
                                       MlirLocation loc, MlirAttribute value,
                                       MlirValue *out_value) MOAI_MUST_USE;

/* ---- upgrade.c: older op forms -> opset 21 ------------------------------- */

enum { MOAI_ONNX_MAX_LEGACY_ATTRS = 4 };

/* How a node of an older opset becomes its opset-21 form. */
typedef struct moai_onnx_upgrade_t {
  int kind;          /* upgrade.c's; 0: the node is already in that form */
  size_t max_inputs; /* inputs the older form takes; SIZE_MAX: the table's */
  moai_onnx_legacy_attr_t legacy[MOAI_ONNX_MAX_LEGACY_ATTRS];
  size_t n_legacy;
} moai_onnx_upgrade_t;

/* Checks that the node's op exists at the model's opset and fills *out_up
 * with the attributes its older form has in place of operands. */
moai_status_t moai_onnx_upgrade_plan(moai_onnx_importer_t *im,
                                     const moai_onnx_node_t *node,
                                     moai_onnx_upgrade_t *out_up) MOAI_MUST_USE;

/* The values an op is built from: operands in table order (the node's
 * inputs, gathered), the number of values per table entry, attributes. */
typedef struct moai_onnx_op_inputs_t {
  MlirValue *values; /* room for MOAI_OP_MAX_OPERANDS more */
  size_t n_values;
  int32_t *segments;
  MlirNamedAttribute *attrs; /* room for MOAI_OP_MAX_ATTRS */
  size_t n_attrs;
} moai_onnx_op_inputs_t;

/* The opset that added attribute `attr` to op `onnx_type` when that is
 * after the oldest opset read, else 0. */
int moai_onnx_attr_since(const char *onnx_type, const char *attr);

/* Turns the captured attributes into constant operands and opset-21
 * attributes in *inout. When the node needs more than one op, builds them
 * and returns the one defining its outputs in *out_op (else a null op). */
moai_status_t moai_onnx_upgrade_apply(moai_onnx_importer_t *im,
                                      const moai_onnx_node_t *node,
                                      MlirLocation loc,
                                      const moai_onnx_upgrade_t *up,
                                      moai_onnx_op_inputs_t *inout,
                                      MlirOperation *out_op) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_ONNX_IMPORTER_H */
