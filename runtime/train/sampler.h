/* The order in which training examples are visited: epochs of sequential or
 * shuffled example indices, cut into optimizer steps of
 * micro_batch_size * micro_batches examples (docs/training.md, "Running
 * training").
 *
 * Shuffling is a Fisher-Yates shuffle per epoch driven by xoshiro256**
 * (Blackman and Vigna, 2018) seeded with splitmix64. The generator of epoch e
 * depends only on (seed, e), so a run resumes at any (epoch, position)
 * without replaying the epochs before it. */
#ifndef MOAI_TRAIN_SAMPLER_H
#define MOAI_TRAIN_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/allocator.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_sampler_config_t {
  uint64_t example_count;    /* examples in the data set (>= 1) */
  uint64_t micro_batch_size; /* examples per micro-batch: the plan inputs' dim 0 */
  uint32_t micro_batches;    /* micro-batches per optimizer step (>= 1) */
  bool shuffle;              /* false: 0, 1, 2, ... every epoch */
  uint64_t seed;             /* the shuffle's seed */
  /* true: an epoch's trailing partial step is dropped; false: it is a step
   * of its own, completed with filler rows by the caller. */
  bool drop_last;
} moai_sampler_config_t;

/* Examples per optimizer step: micro_batch_size * micro_batches. */
uint64_t moai_sampler_step_size(const moai_sampler_config_t *config);

/* Optimizer steps per epoch: floor(N / step size) with drop_last, else
 * ceil(N / step size). */
uint64_t moai_sampler_steps_per_epoch(const moai_sampler_config_t *config);

/* splitmix64 and xoshiro256**, exposed for tests and documentation. */
uint64_t moai_splitmix64_next(uint64_t *inout_state);
typedef struct moai_xoshiro256_t {
  uint64_t s[4];
} moai_xoshiro256_t;
/* The generator of epoch `epoch`: splitmix64 started at
 * seed ^ mix(epoch) (mix: splitmix64's output function of epoch + 1) gives
 * s[0..3]. */
moai_xoshiro256_t moai_xoshiro256_for_epoch(uint64_t seed, uint64_t epoch);
uint64_t moai_xoshiro256_next(moai_xoshiro256_t *inout_rng);
/* Uniform in [0, bound) by rejection (no modulo bias); bound >= 1. */
uint64_t moai_xoshiro256_below(moai_xoshiro256_t *inout_rng, uint64_t bound);

/* Writes epoch `epoch`'s order of 0..n-1 into order[0..n-1]: identity when
 * !shuffle, else order = identity shuffled by Fisher-Yates from the end
 * (for i = n-1 down to 1: swap order[i], order[below(i + 1)]). */
void moai_sampler_epoch_order(bool shuffle, uint64_t seed, uint64_t epoch, uint64_t n,
                              uint64_t *order);

/* A position in the stream of steps, and the current epoch's order. */
typedef struct moai_sampler_t {
  moai_allocator_t allocator;
  moai_sampler_config_t config;
  uint64_t *order;   /* example_count indices of the current epoch */
  uint64_t epoch;    /* the epoch the next step comes from */
  uint64_t position; /* examples of that epoch already consumed */
} moai_sampler_t;

/* Creates a sampler positioned at (epoch 0, position 0). INVALID_ARGUMENT
 * when a count is zero or when drop_last leaves no whole step ("the data
 * has 5 examples, one optimizer step needs 8 (4 x 2 micro-batches); use
 * --no-drop-last or more data"). *out is untouched on failure. */
moai_status_t moai_sampler_init(const moai_sampler_config_t *config,
                                moai_allocator_t allocator,
                                moai_sampler_t *out) MOAI_MUST_USE;
void moai_sampler_deinit(moai_sampler_t *sampler);

/* Moves to `position` examples into `epoch` (what a checkpoint saved).
 * INVALID_ARGUMENT when position is not a step boundary of that epoch. */
moai_status_t moai_sampler_seek(moai_sampler_t *sampler, uint64_t epoch,
                                uint64_t position) MOAI_MUST_USE;

/* The next step: writes its example indices to indices[0..step size - 1]
 * (only the first *out_count are real; *out_count < step size only for an
 * epoch's trailing step without drop_last), sets *out_epoch to the epoch
 * they come from, and advances (to the next epoch after the last step). */
void moai_sampler_next(moai_sampler_t *sampler, uint64_t *indices, uint64_t *out_count,
                       uint64_t *out_epoch);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_TRAIN_SAMPLER_H */
