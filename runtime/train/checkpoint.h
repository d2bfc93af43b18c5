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

/* ---- meshes (docs/training.md, "Meshes") ----------------------------------
 *
 * A checkpoint holds full tensors under their original names whatever the
 * mesh that wrote it. On a tensor-parallel device a weight, and every state
 * tensor of that weight, is one slice of the full tensor; a pipeline stage
 * holds only its own tensors. Rank 0 assembles the full tensors from the
 * devices' parts (moai_checkpoint_gather_*) to save them; on resume every
 * rank loads its own part (moai_checkpoint_load_part). */

/* Where a plan tensor lies in the full tensor: part `index` of `count` equal
 * parts along `axis` (count 0 or 1: the whole tensor). */
typedef struct moai_checkpoint_slice_t {
  int32_t axis;
  uint32_t index, count;
} moai_checkpoint_slice_t;

/* Whether `slice` (NULL is fine) cuts the tensor at all. */
static inline bool moai_checkpoint_slice_cuts(const moai_checkpoint_slice_t *slice) {
  return slice && slice->count > 1;
}

/* Checks that `slice` fits a local tensor of rank `rank` and that the full
 * tensor's dims fit in int64 (`name` is used in messages); on success writes
 * the full tensor's dims to out_full_dims (MOAI_MAX_RANK entries). */
moai_status_t moai_checkpoint_slice_full_dims(const char *name, const moai_checkpoint_slice_t *slice,
                                              int32_t rank, const int64_t *dims,
                                              int64_t *out_full_dims) MOAI_MUST_USE;

/* Copies the slice of the full tensor `full` into `local` (dims: the local
 * tensor's, checked by moai_checkpoint_slice_full_dims; elsize: bytes per
 * element), or, with moai_checkpoint_slice_write, `local` into its place in
 * `full`. A NULL or uncut slice copies the whole tensor. */
void moai_checkpoint_slice_read(const moai_checkpoint_slice_t *slice, int32_t rank,
                                const int64_t *dims, size_t elsize, const void *full,
                                void *local);
void moai_checkpoint_slice_write(const moai_checkpoint_slice_t *slice, int32_t rank,
                                 const int64_t *dims, size_t elsize, const void *local,
                                 void *full);

/* moai_checkpoint_load for one rank of a mesh: tensors[i] is slice
 * slices[i] of the file's tensor of its name (slices NULL: every tensor
 * whole), and with `subset` the file may hold tensors the list lacks (other
 * devices' tensors). Every other check is moai_checkpoint_load's; frozen
 * weights are compared slice to slice. On failure no tensor is written. */
moai_status_t moai_checkpoint_load_part(const char *dir, const moai_plan_tensor_t *tensors,
                                        const moai_checkpoint_slice_t *slices, size_t n,
                                        bool subset, const moai_checkpoint_position_t *run,
                                        moai_allocator_t allocator,
                                        moai_checkpoint_position_t *out_position) MOAI_MUST_USE;

/* One device's tensors and where each lies in the full tensor (borrowed). */
typedef struct moai_checkpoint_part_t {
  const moai_plan_tensor_t *tensors;
  const moai_checkpoint_slice_t *slices; /* per tensor; NULL: every tensor whole */
  size_t count;
} moai_checkpoint_part_t;

/* The full tensors of a mesh, assembled from its devices' parts. */
typedef struct moai_checkpoint_gather_t moai_checkpoint_gather_t;

/* Plans the full tensors of parts[0..n-1] (in device order) and allocates
 * them (zeroed) with `allocator`, which the result keeps; names are copied,
 * so the parts may be freed afterwards. A whole tensor present on several
 * devices is taken from the lowest one; a cut one needs every index
 * 0..count-1 (each from its lowest device), all with the same axis and
 * count, dtype and local shape. A tensor both whole and cut, or otherwise
 * inconsistent, is an error naming it and the devices. */
moai_status_t moai_checkpoint_gather_create(const moai_checkpoint_part_t *parts, size_t n,
                                            moai_allocator_t allocator,
                                            moai_checkpoint_gather_t **out_gather) MOAI_MUST_USE;
/* Whether tensor i of part `part` is the source of (its slice of) a full
 * tensor; the others are duplicates and are not needed. */
bool moai_checkpoint_gather_wants(const moai_checkpoint_gather_t *gather, size_t part, size_t i);
/* Copies `data` (tensor i of part `part`: its nbytes local bytes) into its
 * place in the full tensor; an error if the gather does not want it. */
moai_status_t moai_checkpoint_gather_put(moai_checkpoint_gather_t *gather, size_t part, size_t i,
                                         const void *data) MOAI_MUST_USE;
/* The full tensors (borrowed, writable, in first-seen order): what
 * moai_checkpoint_save and moai_gradients_write take. */
const moai_plan_tensor_t *moai_checkpoint_gather_tensors(const moai_checkpoint_gather_t *gather,
                                                         size_t *out_count);
/* Frees the gather and its buffers (NULL is fine). */
void moai_checkpoint_gather_destroy(moai_checkpoint_gather_t *gather);

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
