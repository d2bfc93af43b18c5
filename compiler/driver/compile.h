/* The compile flow behind moaicc: read a model with the right frontend, run
 * the pass pipeline, summarise the result and write the plan directory. */
#ifndef MOAI_DRIVER_COMPILE_H
#define MOAI_DRIVER_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"
#include "base/status.h"
#include "ir/diag.h"
#include "ir/strbuf.h"
#include "cost/plan_module.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Training settings (moaicc --train): every field has an "unset" value
 * (NULL, NaN, -1) that leaves the optimizer's default (docs/training.md). */
typedef struct moai_training_options_t {
  const char *optimizer;          /* "adamw" (default) or "sgd" */
  double lr, beta1, beta2, eps, weight_decay, momentum, dampening;
  int nesterov;                   /* -1, 0 or 1 */
  const char *schedule;           /* "constant" (default) or "cosine" */
  int64_t warmup_steps, total_steps;
  int64_t micro_batches;          /* micro-batches per optimizer step */
} moai_training_options_t;

/* Everything unset. */
moai_training_options_t moai_training_options_default(void);

/* One device of a tensor/pipeline-parallel plan (moai_compile_module's
 * out_devices; moai_plan_write_mesh). Device k = pp * tp_size + tp. */
typedef struct moai_plan_device_module_t {
  MlirModule module; /* fully compiled device module (through moai-memory-plan) */
  int tp, pp;        /* the device's coordinates */
  /* ZeRO-1: this device serves data-parallel rank `dp` only (its share of
   * the optimizer state); false: every data-parallel rank runs it. */
  bool zero;
  int dp;
} moai_plan_device_module_t;

typedef struct moai_compile_options_t {
  const char *model_path;
  const char *const *input_shapes; /* "name=2x16" */
  size_t input_shape_count;
  const char *const *dim_values;   /* "batch=4": symbolic dims by name */
  size_t dim_value_count;
  const char *const *trainable;    /* NULL: from the model */
  size_t trainable_count;
  const char *const *frozen;
  size_t frozen_count;
  bool check_external_data;        /* external weight files must exist */
  const char *pipeline;            /* NULL: MOAI_DEFAULT_PIPELINE */
  bool print_ir_after_all;
  bool print_ir_before_all;
  const moai_log_sink_t *log;      /* progress messages (may be NULL) */
  /* Non-NULL: compile the training step (autodiff, optimizer) with these
   * settings, through MOAI_TRAIN_PIPELINE unless `pipeline` is set. */
  const moai_training_options_t *training;
  /* Compile forward + backward with no optimizer (MOAI_GRADIENTS_PIPELINE):
   * the outputs are the loss, its weight and the gradients of every
   * trainable weight and float graph input (gradient checking). */
  bool gradients;
  /* Non-NULL: plan parallelism after moai-shape-infer and record
   * `moai.parallel` before the pipeline; with dry_run the pipeline is not
   * run (the module is only shape-inferred). */
  moai_parallel_options_t *parallel;
  /* Non-NULL: when the recorded plan has tp or pp > 1 (a training plan),
   * each of its tp x pp devices is compiled from a copy of the module through
   * MOAI_DEVICE_TRAIN_PIPELINE into *out_devices (malloc'ed, count in
   * *out_device_count; free with moai_plan_device_modules_free); the
   * returned module is then the planned module before partitioning. */
  moai_plan_device_module_t **out_devices;
  size_t *out_device_count;
} moai_compile_options_t;

/* Defaults: check external data, default pipeline. */
moai_compile_options_t moai_compile_options_default(void);

/* Imports options->model_path into a module of `ctx` and runs the pipeline.
 * `diag` must be attached to ctx. The caller owns *out_module. */
moai_status_t moai_compile_module(MlirContext ctx,
                                  const moai_compile_options_t *options,
                                  moai_diag_sink_t *diag,
                                  MlirModule *out_module) MOAI_MUST_USE;

/* Frees what moai_compile_module put in out_devices. */
void moai_plan_device_modules_free(moai_plan_device_module_t *devices, size_t count);

/* Appends a human summary of a compiled module (inputs, outputs, parameters,
 * op counts) to `sb`. */
void moai_module_summarize(MlirModule module, moai_strbuf_t *sb);

/* Prints the module (with locations when `debuginfo`) into `sb`. */
void moai_module_print(MlirModule module, bool debuginfo, moai_strbuf_t *sb);

/* How a plan's device binaries are built. A zeroed struct (or NULL) means:
 * for this host's CPU and features. */
typedef struct moai_plan_options_t {
  const char *target_cpu;      /* LLVM CPU name (--target-cpu); NULL: host */
  const char *target_features; /* "+a,-b" (--target-features); NULL: the
                                  host's, or the named CPU's own */
  const moai_log_sink_t *log;  /* progress messages (may be NULL) */
  /* Every elementwise op its own kernel call (--no-fuse-elementwise);
   * default: chains of them become one generated loop. */
  bool no_fuse_elementwise;
} moai_plan_options_t;

/* Writes the plan directory `dir` atomically: files go to a temporary
 * sibling directory that is fsync'ed and renamed into place, replacing an
 * earlier plan only once the new one is complete. `module` must have been
 * through the default pipeline (moai-memory-plan included). Writes
 *   device-0.so            the device binary (runtime/abi/moai_abi.h)
 *   weights-0.safetensors  the weights it uses, read from the model
 *   manifest.json          format, target, model, inputs/outputs, devices
 *                          with SHA-256 of their files
 *   model.mlir             the module
 *   plan.txt               `summary` and the backend's summary. */
moai_status_t moai_plan_write(const char *dir, MlirModule module,
                              const char *summary,
                              const moai_plan_options_t *options) MOAI_MUST_USE;


/* Writes the multi-device plan directory `dir` atomically (as
 * moai_plan_write): for device k = devices[k] (k = pp * mesh_tp + tp),
 * DIR/device-<k>/ holds the single-device plan moai_plan_write writes for
 * its module; DIR/manifest.json (format 3) the mesh (from `global`'s
 * moai.parallel), ranks, each device's sub-plan hash, coordinates, shards
 * (its moai.weight ops' shard_*) and pipeline role (its moai.pipeline);
 * DIR/plan.txt `summary` and a line per device; DIR/model.mlir `global`,
 * the module before partitioning, whose @main gives the inputs/outputs. */
moai_status_t moai_plan_write_mesh(const char *dir, MlirModule global,
                                   const moai_plan_device_module_t *devices, size_t count,
                                   const char *summary,
                                   const moai_plan_options_t *options) MOAI_MUST_USE;

/* The optimised LLVM IR of device 0 (what moai_plan_write compiles), as
 * text owned by the caller (free()). */
moai_status_t moai_plan_emit_llvm(MlirModule module,
                                  const moai_plan_options_t *options,
                                  char **out_llvm_ir) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_DRIVER_COMPILE_H */
