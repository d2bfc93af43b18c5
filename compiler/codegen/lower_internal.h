/* Internal to compiler/codegen: the state of one lowering (lower.c) and the
 * helpers the per-op rules (lower_ops.c) use to build a descriptor. */
#ifndef MOAI_CODEGEN_LOWER_INTERNAL_H
#define MOAI_CODEGEN_LOWER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/moai_ops.h"
#include "codegen/codegen.h"
#include "ir/op_defs.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most tensors one descriptor holds (a variadic slot has at most
 * MOAI_VARIADIC_SLOTS values). */
#define MOAI_LOWER_MAX_TENSORS 16
#define MOAI_LOWER_MAX_ATTRS 256

/* Pointer -> u64 map (open addressing), keyed by MLIR op pointers. */
typedef struct moai_ptr_map_t {
  const void **keys;
  uint64_t *values;
  size_t capacity; /* a power of two, or 0 */
  size_t count;
} moai_ptr_map_t;

typedef struct moai_lower_t {
  moai_allocator_t allocator;
  MlirContext ctx;
  MlirOperation func;
  moai_device_program_t *program;
  moai_ptr_map_t weight_index; /* moai.weight op -> index in weights */
  moai_ptr_map_t const_offset; /* moai.constant op -> offset in const_data */
  moai_ptr_map_t state_index;  /* moai.state op -> index in program->state */
  MlirAttribute training;      /* the module's moai.training, or null */
  /* Pipeline stages: the op defining the sent output (null when it is a
   * graph input), its name, and whether its descriptors are all emitted. */
  bool has_send, forward_closed;
  MlirOperation send_def;
  MlirStringRef send_name;
  int64_t *arg_offsets;        /* per block argument */
  intptr_t num_args;
  size_t descs_capacity, offsets_capacity, const_capacity;
  bool oom; /* an allocation failed (reported once, at the end) */
} moai_lower_t;

/* One moai op being lowered into one (or, rarely, two) descriptors. */
typedef struct moai_lower_op_t {
  MlirOperation op;
  const moai_op_def_t *def;
  /* Per entry of the op table: where its values start among the op's
   * operands (results) and how many there are (0: an absent optional). */
  int in_start[MOAI_OP_MAX_OPERANDS], in_count[MOAI_OP_MAX_OPERANDS];
  int out_start[MOAI_OP_MAX_RESULTS], out_count[MOAI_OP_MAX_RESULTS];
  int n_in_entries, n_out_entries;
  /* The descriptor being built. */
  uint32_t kernel;
  uint32_t n_in, n_out;
  moai_tensor_t ins[MOAI_LOWER_MAX_TENSORS], outs[MOAI_LOWER_MAX_TENSORS];
  _Alignas(8) unsigned char attrs[MOAI_LOWER_MAX_ATTRS];
  uint32_t attrs_size;
} moai_lower_op_t;

/* A lowering rule: fills the descriptor of `o` (kernel, tensors, attrs) and
 * emits it with moai_lower_emit, or emits nothing for a no-op. False after a
 * diagnostic at the op. */
typedef bool (*moai_lower_rule_fn_t)(moai_lower_t *L, moai_lower_op_t *o);

/* The rule and default kernel for a moai op mnemonic ("add"); NULL rule for
 * ops that are no kernels (weight, constant) or unknown ops. */
typedef struct moai_lower_rule_t {
  const char *mnemonic;
  uint32_t kernel;
  moai_lower_rule_fn_t fn;
} moai_lower_rule_t;
const moai_lower_rule_t *moai_lower_rule_find(const char *mnemonic, size_t len);

/* ---- training (lower_train.c) ---------------------------------------------- */

/* Collects the moai.state ops of `block` (state_index, program->state;
 * same name = same tensor, which must have one type). */
bool moai_lower_collect_state(moai_lower_t *L, MlirBlock block);
/* Lays out MOAI_REGION_PERSIST: trainable weights (weight order), then the
 * state, each 64-byte aligned; points their tensors there. */
void moai_lower_place_persist(moai_lower_t *L);
/* Rules of moai.accumulate, moai.adamw, moai.sgd, moai.optimizer_finish. */
bool moai_lower_rule_accumulate(moai_lower_t *L, moai_lower_op_t *o);
bool moai_lower_rule_optimizer(moai_lower_t *L, moai_lower_op_t *o);
bool moai_lower_rule_optimizer_finish(moai_lower_t *L, moai_lower_op_t *o);
/* moai.grad_ready: marks its states' grad_bucket. */
bool moai_lower_rule_grad_ready(moai_lower_t *L, moai_lower_op_t *o);

/* ---- support (lower_support.c) -------------------------------------------- */

bool moai_lower_str_eq(MlirStringRef s, const char *lit);
MlirStringRef moai_lower_op_name(MlirOperation op);
/* The attribute `name` of `op`, or null. */
MlirAttribute moai_lower_get_attr(MlirOperation op, const char *name);
/* Grows *ptr to hold `need` elements of `elem` bytes (doubling); sets
 * L->oom and returns false when memory runs out. */
bool moai_lower_grow(moai_lower_t *L, void **ptr, size_t *capacity,
                     size_t need, size_t elem);
/* A NUL-terminated copy from L's allocator (NULL and L->oom on failure). */
char *moai_lower_strdup(moai_lower_t *L, MlirStringRef s);
bool moai_ptr_map_put(moai_lower_t *L, moai_ptr_map_t *m, const void *key,
                      uint64_t value);
bool moai_ptr_map_get(const moai_ptr_map_t *m, const void *key,
                      uint64_t *out);
void moai_ptr_map_free(moai_lower_t *L, moai_ptr_map_t *m);
/* Fills dtype, rank and dims of `t` (region and offset zero) from v's type
 * and its size in bytes; false with a diagnostic if the backend cannot
 * describe it. */
bool moai_lower_describe(moai_lower_op_t *o, MlirValue v, moai_tensor_t *t,
                         uint64_t *out_bytes);
/* Splits the op's operands (results) over the table's entries, through the
 * segment attributes where the op has them (ir/op_defs.h). */
bool moai_lower_split_entries(moai_lower_op_t *o, bool results);

/* ---- helpers for rules (lower_support.c, lower_values.c) ------------------- */

/* Emits an error diagnostic at the op; returns false. */
bool moai_lower_error(moai_lower_op_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The tensor for a value: its type, and its place (arena offset from the
 * memory plan, weight, or constant added to the const blob). */
bool moai_lower_value(moai_lower_t *L, moai_lower_op_t *o, MlirValue v,
                      moai_tensor_t *out);

/* Appends table entry `entry`'s operands (results) to the descriptor: all
 * values of a variadic entry, one NONE tensor for an absent optional. */
bool moai_lower_add_in(moai_lower_t *L, moai_lower_op_t *o, int entry);
bool moai_lower_add_out(moai_lower_t *L, moai_lower_op_t *o, int entry);
/* All operands (results), entry by entry. */
bool moai_lower_add_all_ins(moai_lower_t *L, moai_lower_op_t *o);
bool moai_lower_add_all_outs(moai_lower_t *L, moai_lower_op_t *o);

/* The first value of operand entry `entry`, or a null value when absent. */
MlirValue moai_lower_operand(const moai_lower_op_t *o, int entry);
MlirValue moai_lower_result(const moai_lower_op_t *o, int entry);

/* Reads a constant integer operand (a moai.constant of i64/i32/...) into
 * buf (at most cap values); *out_n = count. Absent: *out_n = 0 and
 * *out_present false. Non-constant: an error naming `what`. */
bool moai_lower_const_ints(moai_lower_op_t *o, int entry, const char *what,
                           int64_t *buf, size_t cap, size_t *out_n,
                           bool *out_present);
/* Whether operand entry `entry` is absent or a moai.constant: a parameter
 * the rule can fold into the attributes. */
bool moai_lower_operand_is_const(const moai_lower_op_t *o, int entry);
/* For a parameter passed at run time: checks that operand entry `entry`
 * holds int32 or int64 values, and is 1-D (or, with `scalar`, holds exactly
 * one value); *out_n = its element count. False after a diagnostic naming
 * `what`. */
bool moai_lower_int_operand(moai_lower_op_t *o, int entry, const char *what,
                            bool scalar, int64_t *out_n);
/* A constant bool/int scalar operand's truth, or `fallback` when absent. */
bool moai_lower_const_bool(moai_lower_op_t *o, int entry, const char *what,
                           bool fallback, bool *out);

/* Attributes, with the op table's default when the op does not carry one. */
bool moai_lower_attr_int(moai_lower_op_t *o, const char *name, int64_t *out,
                         bool *out_present);
bool moai_lower_attr_float(moai_lower_op_t *o, const char *name, double *out);
bool moai_lower_attr_string(moai_lower_op_t *o, const char *name,
                            MlirStringRef *out);
bool moai_lower_attr_ints(moai_lower_op_t *o, const char *name, int64_t *buf,
                          size_t cap, size_t *out_n, bool *out_present);

/* Sets the attribute bytes of the descriptor. */
void moai_lower_set_attrs(moai_lower_op_t *o, const void *attrs, size_t size);

/* Appends the descriptor built in `o` to the program. */
bool moai_lower_emit(moai_lower_t *L, moai_lower_op_t *o);

/* Whether a value has any use. */
bool moai_lower_value_used(MlirValue v);

/* The type's static shape; false (with a diagnostic) if not static or of
 * rank above MOAI_MAX_RANK. */
bool moai_lower_shape(moai_lower_op_t *o, MlirValue v, int32_t *out_rank,
                      int64_t *dims);

/* ---- shared rule pieces (lower_ops.c) --------------------------------------- */

/* Slice's starts/ends/axes/steps (operand entries 1..4, as Slice and
 * slice_grad number them), which must be constants, normalised for a data
 * tensor of `rank` dims into *out (runtime_params 0) and the per-axis
 * element counts out_count[rank]. False after a diagnostic at the op. */
bool moai_lower_slice_params(moai_lower_op_t *o, int32_t rank, const int64_t *dims,
                             moai_attrs_slice_t *out, int64_t *out_count);

/* ---- gradient rules (lower_grad_index.c) ------------------------------------ */

bool moai_lower_rule_gather_grad(moai_lower_t *L, moai_lower_op_t *o);
bool moai_lower_rule_slice_grad(moai_lower_t *L, moai_lower_op_t *o);
/* ---- shared rule pieces (lower_ops.c) -------------------------------------- */

/* The window attributes of conv, the pools and their gradients: kernel,
 * explicit pads (auto_pad resolved), strides and dilations, for a forward
 * input of dims in[rank] whose forward output has dims out[out_rank] (an
 * error unless they agree). Kernel sizes come from kernel_shape or, when it
 * is absent and w_dims (the conv weight's dims) is given, from w_dims[2..];
 * ceil_mode is read when has_ceil. False after a diagnostic at the op. */
bool moai_lower_window_attrs(moai_lower_op_t *o, int32_t rank, const int64_t *in,
                             int32_t out_rank, const int64_t *out,
                             const int64_t *w_dims, bool has_ceil,
                             moai_attrs_window_t *a);

/* ---- gradient rules (lower_grad_nn.c) --------------------------------------- */

bool moai_lower_rule_conv_grad(moai_lower_t *L, moai_lower_op_t *o);
bool moai_lower_rule_pool_grad(moai_lower_t *L, moai_lower_op_t *o);
bool moai_lower_rule_batch_norm_grad(moai_lower_t *L, moai_lower_op_t *o);
bool moai_lower_rule_layer_norm_grad(moai_lower_t *L, moai_lower_op_t *o);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_CODEGEN_LOWER_INTERNAL_H */
