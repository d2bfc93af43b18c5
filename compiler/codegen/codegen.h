/* The backend: from a planned module in the moai dialect to a device binary
 * that implements the device ABI (runtime/abi/moai_abi.h).
 *
 *   moai_device_lower      moai ops -> op descriptors, constants, weights,
 *                          io tables (a moai_device_program_t)
 *   moai_codegen_build     program -> MLIR module in the LLVM dialect (the
 *                          descriptor globals, the table, step())
 *   moai_codegen_compile   LLVM dialect -> LLVM IR -> O3 -> object file
 *   moai_codegen_link      object -> shared object (`cc -shared`)
 *
 * The module must have been through moai-memory-plan: every arena value's
 * offset comes from its attributes (passes/memory_plan/memory_plan.h).
 * Problems found in the model (an op the backend cannot run) are
 * diagnostics at the op's location and a failing status. */
#ifndef MOAI_CODEGEN_CODEGEN_H
#define MOAI_CODEGEN_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/moai_abi.h"
#include "base/allocator.h"
#include "base/status.h"
#include "ir/strbuf.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- target ----------------------------------------------------------- */

/* What a device binary is compiled for; strings owned by the struct. */
typedef struct moai_target_t {
  char *triple;   /* LLVM triple, e.g. x86_64-pc-linux-gnu */
  char *cpu;      /* LLVM CPU name, e.g. sapphirerapids */
  char *features; /* the complete LLVM feature string ("+avx2,-avx512f,...") */
} moai_target_t;

/* Picks the target: the host's triple; `cpu` (NULL: the host CPU) and
 * `features` (NULL: the host's features when cpu is NULL, else that CPU's
 * own; otherwise "+a,-b" on top of the CPU's). An unknown CPU name is an
 * error. The resolved string lists every feature the CPU has, so the
 * manifest can say what the binary needs. Free with moai_target_deinit. */
moai_status_t moai_target_resolve(const char *cpu, const char *features,
                                  moai_target_t *out_target) MOAI_MUST_USE;
void moai_target_deinit(moai_target_t *target);

/* Calls `fn` for each feature the target enables ("+avx512f" gives
 * "avx512f"), in the order of the feature string. */
void moai_target_for_each_feature(const moai_target_t *target,
                                  void (*fn)(void *user, const char *name,
                                             size_t len),
                                  void *user);

/* ---- lowering ------------------------------------------------------------ */

/* Where a weight's bytes come from (the moai.weight op's attributes). */
typedef struct moai_device_weight_t {
  char *name;            /* the ONNX initializer name */
  int32_t dtype;         /* moai_abi_dtype_t */
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK];
  uint64_t nbytes;
  uint64_t offset;       /* in the weights file's data section (layout) */
  char *storage;         /* "raw", "external", "field", "zip" or "absent" */
  char *file;            /* raw: the model; external: relative to the model's
                            directory; zip: the TorchScript archive (as the
                            model path); NULL when none */
  char *entry;           /* zip: the archive entry ("data/0", relative to its
                            top directory); NULL otherwise */
  int64_t file_offset;   /* raw, external and zip (into the entry): where the
                            bytes start */
  int64_t file_length;
  bool trainable;        /* training modules: trained, so placed in
                            MOAI_REGION_PERSIST (its weight_ios entry points
                            there; the weights file holds its initial value) */
  /* A tensor-parallel shard (the op's shard_axis/index/count): dims and
   * nbytes are the local slice, number shard_index of shard_count equal parts
   * along shard_axis of the stored tensor (file_length is the full tensor's).
   * shard_count 0 or 1: the whole tensor. */
  int32_t shard_axis, shard_index, shard_count;
} moai_device_weight_t;

/* A training-state tensor (moai.state), in MOAI_REGION_PERSIST. */
typedef struct moai_device_state_t {
  char *name;
  char *param; /* the weight it belongs to, or NULL */
  uint32_t role; /* moai_state_role_t */
  uint32_t grad_bucket; /* 1 + the bucket of the grad_ready naming it; 0: none */
  moai_tensor_t tensor;
} moai_device_state_t;

/* One list of op descriptors, one after another (each a multiple of 8
 * bytes); offsets[i] is where descriptor i starts. */
typedef struct moai_device_ops_t {
  unsigned char *descs;
  size_t descs_size;
  size_t *offsets;
  uint32_t count;
} moai_device_ops_t;

/* A graph input, output or weight of the binary. */
typedef struct moai_device_io_t {
  char *name;
  moai_tensor_t tensor;
} moai_device_io_t;

/* One device's program, owned by its creator (moai_device_program_destroy). */
typedef struct moai_device_program_t {
  moai_allocator_t allocator;
  uint32_t device;
  uint64_t arena_size, arena_alignment, live_lower_bound;
  /* The op descriptors, one after another (each a multiple of 8 bytes);
   * desc_offsets[i] is where descriptor i starts. */
  unsigned char *descs;
  size_t descs_size;
  size_t *desc_offsets;
  uint32_t num_ops;
  unsigned char *const_data; /* MOAI_REGION_CONST */
  uint64_t const_size;
  moai_device_io_t *inputs, *outputs, *weight_ios;
  uint32_t num_inputs, num_outputs, num_weights;
  moai_device_weight_t *weights; /* num_weights, same order as weight_ios */
  uint64_t weights_size;         /* the weights file's data section */
  size_t lowered_ops;            /* moai ops lowered (views that are no-ops
                                    included) */
  /* Training modules (docs/training.md), else all zero: @update's op
   * descriptors (run by table->training->update), the persistent region's
   * size (trainable weights, then state) and the state tensors in order of
   * first appearance (@main, then @update). */
  bool training;
  moai_device_ops_t update;
  uint64_t persist_size;
  moai_device_state_t *state;
  uint32_t num_state;
  /* Pipeline stages (module attribute moai.pipeline = {send = "h"}): the
   * step's first num_forward_ops descriptors compute outputs[forward_output]
   * ("h"), and the binary gets a forward entry running just those. */
  bool pipeline;
  uint32_t num_forward_ops, forward_output;
  /* Off: every step op is its own kernel call (moaicc --no-fuse-elementwise);
   * on (the default, false here): chains of elementwise ops become one
   * generated loop (moai_codegen_elementwise_groups). */
  bool no_elementwise_fusion;
} moai_device_program_t;

/* Places the weights in the weights file: sets each weights[i].offset (bytes
 * from the start of the data section) and *out_data_size. */
typedef moai_status_t (*moai_weights_layout_fn_t)(void *user,
                                                  moai_device_weight_t *weights,
                                                  size_t count,
                                                  uint64_t *out_data_size);

typedef struct moai_lower_options_t {
  uint32_t device;
  moai_weights_layout_fn_t layout; /* required */
  void *layout_user;
} moai_lower_options_t;

/* Lowers the function @main of `module` (or its only func.func). A module
 * carrying the `moai.training` attribute is a training module: @main is the
 * step, @update (required) the optimizer update, and trainable weights and
 * moai.state tensors are placed in MOAI_REGION_PERSIST. A training module
 * with `moai.pipeline = {send = "h"}` is a pipeline stage: the descriptors
 * up to the one of the op defining output "h" form its forward (no
 * accumulation or optimizer op may come before that op). Errors in the model
 * are diagnostics at the op (and the returned status carries the first); a
 * module without a memory plan is FAILED_PRECONDITION. */
moai_status_t moai_device_lower(MlirModule module,
                                const moai_lower_options_t *options,
                                moai_allocator_t allocator,
                                moai_device_program_t **out_program)
    MOAI_MUST_USE;
void moai_device_program_destroy(moai_device_program_t *program);

/* Descriptor i of a program. */
static inline const moai_op_desc_t *moai_device_program_op(
    const moai_device_program_t *p, uint32_t i) {
  return (const moai_op_desc_t *)(const void *)(p->descs + p->desc_offsets[i]);
}

/* Descriptor i of a training program's update. */
static inline const moai_op_desc_t *moai_device_program_update_op(
    const moai_device_program_t *p, uint32_t i) {
  return (const moai_op_desc_t *)(const void *)(p->update.descs + p->update.offsets[i]);
}

/* Elementwise fusion (fuse_elementwise.c): group_end[i] (num_ops entries)
 * is the last descriptor of the group starting at i, or i; returns the
 * number of groups. */
uint32_t moai_codegen_elementwise_groups(const moai_device_program_t *p, uint32_t *group_end);
/* Emits the LLVM-dialect function @fn(ex, ith, nth) computing step
 * descriptors first..last as one loop. */
void moai_codegen_emit_elementwise(moai_strbuf_t *sb, const moai_device_program_t *p,
                                   uint32_t first, uint32_t last, const char *fn);

/* Whether `module` is a training module (carries `moai.training`). */
bool moai_module_is_training(MlirModule module);

/* ---- weights --------------------------------------------------------------- */

/* A moai_weights_layout_fn_t placing weights as runtime/io's safetensors
 * writer does (moai_safetensors_layout); `user` is unused. */
moai_status_t moai_weights_layout_safetensors(void *user,
                                              moai_device_weight_t *weights,
                                              size_t count,
                                              uint64_t *out_data_size)
    MOAI_MUST_USE;

/* Checks every weight of the program has data to write (not "absent", a
 * byte range of the right size). */
moai_status_t moai_weights_check(const moai_device_program_t *program)
    MOAI_MUST_USE;

/* Writes the program's weights to the safetensors file `path` (atomically),
 * reading each one's bytes from the model: `model_path` is the model file
 * as imported (external data files are relative to its directory). A shard
 * is written as its slice only, under the weight's name and local shape. */
moai_status_t moai_weights_write(const char *path,
                                 const moai_device_program_t *program,
                                 const char *model_path) MOAI_MUST_USE;

/* ---- code generation ------------------------------------------------------ */

/* Appends the LLVM-dialect module of `program` (text) to `out`. */
void moai_codegen_emit_text(const moai_device_program_t *program,
                            const moai_target_t *target, moai_strbuf_t *out);

/* Parses that text into a module of `ctx`. Caller owns *out_module. */
moai_status_t moai_codegen_build(MlirContext ctx,
                                 const moai_device_program_t *program,
                                 const moai_target_t *target,
                                 MlirModule *out_module) MOAI_MUST_USE;

/* Translates an LLVM-dialect module to LLVM IR, optimises it at O3 for
 * `target` and writes a PIC object file to `object_path` (NULL: none).
 * With `out_llvm_ir`, also hands back the optimised IR as text (free()). */
moai_status_t moai_codegen_compile(MlirModule llvm_module,
                                   const moai_target_t *target,
                                   const char *object_path,
                                   char **out_llvm_ir) MOAI_MUST_USE;

/* Links an object into a shared object with the C compiler driver `cc`
 * found on PATH. */
moai_status_t moai_codegen_link(const char *object_path,
                                const char *so_path) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_CODEGEN_CODEGEN_H */
