/* A loaded plan: the runtime's API for running what moaicc compiled.
 *
 *   moai_plan_t *plan;
 *   MOAI_RETURN_IF_ERROR(moai_plan_open("model.plan", NULL, moai_allocator_system(), &plan));
 *   moai_plan_set_input(plan, "input_ids", MOAI_ABI_I64, 2, dims, ids);   // every input
 *   moai_plan_run(plan, 0);                                                // 0: all threads
 *   moai_plan_output(plan, 0, &desc, &logits);                             // borrowed
 *   moai_plan_close(plan);
 *
 * Opening checks everything before anything runs: the manifest's schema and
 * versions, the SHA-256 of every device binary and weights file (before they
 * are mapped or dlopened), the CPU's features, and that the device table
 * agrees with the manifest and the weights file. A step allocates nothing.
 * See docs/plan-format.md. Not thread-safe: one plan, one caller at a time. */
#ifndef MOAI_LOADER_PLAN_H
#define MOAI_LOADER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/moai_abi.h"
#include "base/allocator.h"
#include "base/log.h"
#include "base/status.h"
#include "loader/manifest.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_plan_options_t {
  /* Check the SHA-256 of binaries and weights against the manifest (default
   * true; turning it off only saves reading the weights once at load). */
  bool verify_checksums;
  /* The CPU features to check the plan's target.features against, as a
   * comma-separated list ("avx2,fma"); NULL: this CPU's. Lets a caller ask
   * whether a plan would load on another machine. Borrowed during open. */
  const char *cpu_features;
  /* Where progress messages go (NULL: nowhere). Borrowed for the plan's life. */
  const moai_log_sink_t *log;
} moai_plan_options_t;

/* verify_checksums on, this CPU, no log. */
moai_plan_options_t moai_plan_options_default(void);

typedef struct moai_plan_t moai_plan_t;

/* Opens the plan directory `dir` (options NULL: the defaults). The plan keeps
 * `allocator` and frees everything with it in moai_plan_close; *out_plan is
 * untouched on failure. Errors name the file and field at fault and say
 * what to do, e.g. "PLAN/device-0.so: SHA-256 mismatch: the plan was modified
 * after it was written; recompile it". A multi-device plan (format 3, mesh
 * tp or pp > 1) is refused: open its devices with moai_plan_open_device. A
 * data-parallel plan (mesh dp > 1) opens as one
 * rank: every rank opens the plan once (its own arena and persistent region)
 * and the caller sums the accumulators over ranks (runtime/comm,
 * docs/training.md "Data parallelism"). */
moai_status_t moai_plan_open(const char *dir, const moai_plan_options_t *options,
                             moai_allocator_t allocator, moai_plan_t **out_plan) MOAI_MUST_USE;

/* Opens device `device` of the plan directory `dir`. A multi-device plan
 * (format 3): checks DIR/device-<k>/manifest.json's SHA-256 against the top
 * manifest (DATA_LOSS naming both files on a mismatch), opens that
 * sub-directory as moai_plan_open does (which checks its own files), and
 * checks the device's shards and pipeline names against it. A single-device
 * plan: device 0 is moai_plan_open. moai_plan_manifest gives the device's
 * own manifest; read DIR/manifest.json (moai_manifest_read_file) for the
 * mesh, ranks, shards and pipeline roles. */
moai_status_t moai_plan_open_device(const char *dir, uint32_t device,
                                    const moai_plan_options_t *options,
                                    moai_allocator_t allocator,
                                    moai_plan_t **out_plan) MOAI_MUST_USE;

/* Unloads the device binaries, unmaps the weights, frees the arena (NULL is fine). */
void moai_plan_close(moai_plan_t *plan);

/* The parsed manifest (borrowed). */
const moai_manifest_t *moai_plan_manifest(const moai_plan_t *plan);

/* Graph inputs and outputs, in manifest order (borrowed; NULL past the end). */
size_t moai_plan_input_count(const moai_plan_t *plan);
const moai_tensor_desc_t *moai_plan_input_desc(const moai_plan_t *plan, size_t i);
size_t moai_plan_output_count(const moai_plan_t *plan);
const moai_tensor_desc_t *moai_plan_output_desc(const moai_plan_t *plan, size_t i);
/* Index of the input named `name`, or -1. */
long moai_plan_find_input(const moai_plan_t *plan, const char *name);

/* Copies one input into the plan's arena. The dtype and shape must equal the
 * plan's exactly ("input 'input_ids': shape 2x8 does not match the plan's
 * 2x16"). Every input must be set before each run: a step may reuse input
 * memory for intermediates, so a run consumes its inputs. */
moai_status_t moai_plan_set_input(moai_plan_t *plan, const char *name, int32_t dtype,
                                  int32_t rank, const int64_t *dims,
                                  const void *data) MOAI_MUST_USE;

/* Runs one step with `threads` OpenMP threads (<= 0: omp_get_max_threads()),
 * one parallel region in which every thread calls the device's step. Fails
 * before running when an input is not set, and after it when a kernel
 * reported a failure ("step failed at op 12 'Softmax_3': ..."). */
moai_status_t moai_plan_run(moai_plan_t *plan, int threads) MOAI_MUST_USE;

/* ---- multi-device plans (tensor and pipeline parallelism) --------------- */

/* Reduces data[0..count-1] (dtype moai_abi_dtype_t) in place over the group
 * `group` (0 = tp) of the calling rank: op 0 sum, 1 max. Called by the
 * all_reduce kernel from one thread of the step. */
typedef moai_status_t (*moai_plan_allreduce_fn)(void *user, int group, int32_t dtype, int op,
                                                void *data, size_t count);

/* Binds the hook the plan's all_reduce ops call (fn NULL: unbind; then an
 * all_reduce fails the step: "no group is bound"). `user` is borrowed. */
void moai_plan_set_allreduce(moai_plan_t *plan, moai_plan_allreduce_fn fn, void *user);

/* ---- data parallelism: gradient buckets --------------------------------- */

/* Bucket `bucket` of the step's gradient accumulators is final for this run
 * (every gradient of it accumulated): called by the plan's grad_ready ops
 * (moai-optimizer makes them for dp > 1), from one thread of the step, in
 * increasing bucket order. A failure fails the step. */
typedef moai_status_t (*moai_plan_grad_ready_fn)(void *user, int bucket);

/* Binds the hook of the plan's grad_ready ops (fn NULL: unbind; then they do
 * nothing, as on a single rank). `user` is borrowed. */
void moai_plan_set_grad_ready(moai_plan_t *plan, moai_plan_grad_ready_fn fn, void *user);

/* The bucket of tensor i (moai_plan_tensor's index) when it is a gradient
 * accumulator a grad_ready op hands over, else -1. */
int moai_plan_grad_bucket(const moai_plan_t *plan, size_t i);
/* 1 + the largest bucket (0: the plan has no grad_ready op). */
int moai_plan_grad_bucket_count(const moai_plan_t *plan);

/* Pipeline stages (a device with a forward entry, docs/abi.md ABI 3): runs
 * only the forward ops that compute the output sent to the next stage (the
 * manifest's output at moai_plan_forward_output). Every input must be set,
 * as for moai_plan_run, and the run consumes them. Afterwards
 * moai_plan_output gives that output only, until the next moai_plan_run.
 * FAILED_PRECONDITION when the plan has no forward entry. */
moai_status_t moai_plan_run_forward(moai_plan_t *plan, int threads) MOAI_MUST_USE;

/* The index of the output moai_plan_run_forward computes, or -1 when the
 * plan has no forward entry. */
long moai_plan_forward_output(const moai_plan_t *plan);

/* The number of threads the last run used (0 before any). */
int moai_plan_last_thread_count(const moai_plan_t *plan);

/* Borrows output i of the last successful run: its description and data,
 * valid until the next moai_plan_set_input, moai_plan_run or moai_plan_close. */
moai_status_t moai_plan_output(const moai_plan_t *plan, size_t i,
                               const moai_tensor_desc_t **out_desc,
                               const void **out_data) MOAI_MUST_USE;

/* ---- training plans (docs/training.md) ------------------------------------
 *
 * A training step with K = train->micro_batches micro-batches:
 *   for k in 0..K-1: set every input (micro-batch k), moai_plan_run
 *   (forward + backward; gradients and loss weight accumulate in the state)
 *   moai_plan_run_update (optimizer; step += 1, accumulators zeroed)
 * The step's loss is sum(loss_k * w_k) / sum(w_k) over the micro-batches
 * (w_k: the loss weight output). */

/* The manifest's training section, or NULL for an inference plan. */
const moai_manifest_training_t *moai_plan_training(const moai_plan_t *plan);

/* Runs the optimizer update (table->training->update) with `threads`
 * threads. FAILED_PRECONDITION on an inference plan. */
moai_status_t moai_plan_run_update(moai_plan_t *plan, int threads) MOAI_MUST_USE;

/* The named tensors a checkpoint holds: every weight (trainable ones live in
 * the persistent region and are writable, frozen ones are mapped read-only)
 * and every training-state tensor. */
typedef enum moai_plan_tensor_kind_e {
  MOAI_PLAN_TENSOR_WEIGHT = 0,    /* frozen weight: data read-only */
  MOAI_PLAN_TENSOR_TRAINABLE = 1, /* trained weight: data writable */
  MOAI_PLAN_TENSOR_STATE = 2,     /* training state: data writable */
} moai_plan_tensor_kind_t;

typedef struct moai_plan_tensor_t {
  const char *name;  /* borrowed from the plan */
  const char *param; /* state: the weight it belongs to, or NULL */
  uint32_t kind;     /* moai_plan_tensor_kind_t */
  uint32_t role;     /* state: moai_state_role_t; else 0 */
  int32_t dtype;     /* moai_abi_dtype_t */
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK];
  uint64_t nbytes;
  void *data;        /* valid until moai_plan_close; write only if writable */
  bool writable;
} moai_plan_tensor_t;

/* Weights in device-table order, then state tensors. */
size_t moai_plan_tensor_count(const moai_plan_t *plan);
/* Fills *out for tensor i; false past the end. */
bool moai_plan_tensor(const moai_plan_t *plan, size_t i, moai_plan_tensor_t *out);
/* Index of the tensor named `name`, or -1. */
long moai_plan_find_tensor(const moai_plan_t *plan, const char *name);

/* "0.1.0": the runtime's version. */
const char *moai_runtime_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_LOADER_PLAN_H */
