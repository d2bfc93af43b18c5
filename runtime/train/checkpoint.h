/* Training checkpoints: DIR/checkpoint.safetensors holds every weight of a
 * plan under its own name (trainable and frozen), every training-state
 * tensor but the per-step accumulators (roles grad and loss_weight) under its
 * state name ("optimizer.exp_avg.W", "optimizer.step"), and in __metadata__
 * where the run stands (docs/training.md, "Checkpoints").
 *
 * Saving is atomic (a temporary in DIR, fsync, rename, fsync of DIR): a crash
 * leaves the previous checkpoint whole. Loading checks everything (format,
 * the data section's SHA-256, every tensor's presence, dtype and shape, the
 * frozen weights' values, the run's data and batching settings) before it
 * writes anything. These functions work on the tensor list that
 * moai_plan_tensor describes, so they never call the plan. */
#ifndef MOAI_TRAIN_CHECKPOINT_H
#define MOAI_TRAIN_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/allocator.h"
#include "base/status.h"
#include "loader/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOAI_CHECKPOINT_FILE "checkpoint.safetensors"
#define MOAI_CHECKPOINT_FORMAT "moai-checkpoint"
#define MOAI_CHECKPOINT_FORMAT_VERSION "1"
/* Test-only: when this environment variable is "1", moai_checkpoint_save
 * calls _exit(3) after writing about half of the temporary file. */
#define MOAI_CHECKPOINT_CRASH_ENV "MOAI_TEST_CRASH_DURING_SAVE"

/* Where a run stands and what it must agree on to resume. */
typedef struct moai_checkpoint_position_t {
  int64_t step;            /* optimizer steps completed */
  uint64_t epoch;          /* the epoch the next step comes from */
  uint64_t position;       /* examples of that epoch already consumed */
  uint64_t seed;
  bool shuffle, drop_last;
  uint32_t micro_batches;
  uint64_t example_count;  /* examples in the data set */
  /* Examples per optimizer step over all data-parallel ranks (dp x
   * micro_batches x batch); 0: unknown (checkpoints before data
   * parallelism). When both sides know it, resuming checks it instead of
   * micro_batches: any split of the same step resumes. */
  uint64_t step_examples;
} moai_checkpoint_position_t;

/* Whether tensor `t` belongs in a checkpoint: every weight, and every state
 * tensor except the accumulators (MOAI_STATE_GRAD, MOAI_STATE_LOSS_WEIGHT),
 * which are zero between steps. */
bool moai_checkpoint_holds(const moai_plan_tensor_t *t);

/* Writes DIR/checkpoint.safetensors (DIR is created if missing) from
 * tensors[0..n-1] (those moai_checkpoint_holds accepts) and `position`. On
 * failure the previous checkpoint is left as it was. */
moai_status_t moai_checkpoint_save(const char *dir, const moai_plan_tensor_t *tensors, size_t n,
                                   const moai_checkpoint_position_t *position) MOAI_MUST_USE;

/* Reads DIR/checkpoint.safetensors and checks it against tensors[0..n-1]
 * and the run's settings in `run` (seed, shuffle, drop_last, micro_batches,
 * example_count; its step and position are ignored); only when all is well
 * copies the saved values into the writable tensors and sets
 * *out_position. Errors name the file and the tensor or setting: "ckpt/
 * checkpoint.safetensors: tensor 'W' is float32 4x4, the plan's is float32
 * 4x8". On failure no tensor is written. */
moai_status_t moai_checkpoint_load(const char *dir, const moai_plan_tensor_t *tensors, size_t n,
                                   const moai_checkpoint_position_t *run,
                                   moai_allocator_t allocator,
                                   moai_checkpoint_position_t *out_position) MOAI_MUST_USE;

/* Writes the full-batch gradients after a step's micro-batches, before the
 * update: for every MOAI_STATE_GRAD tensor of tensors[0..n-1], grad /
 * loss_weight (the MOAI_STATE_LOSS_WEIGHT scalar) under the name of the
 * weight it belongs to, as float32, to the .safetensors file `path`. */
moai_status_t moai_gradients_write(const char *path, const moai_plan_tensor_t *tensors,
                                   size_t n) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_TRAIN_CHECKPOINT_H */
