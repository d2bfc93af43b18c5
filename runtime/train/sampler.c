#include "train/sampler.h"

#include <string.h>

uint64_t moai_sampler_step_size(const moai_sampler_config_t *c) {
  return c->micro_batch_size * (uint64_t)c->micro_batches;
}

uint64_t moai_sampler_steps_per_epoch(const moai_sampler_config_t *c) {
  uint64_t s = moai_sampler_step_size(c);
  if (s == 0) return 0;
  return c->drop_last ? c->example_count / s : (c->example_count + s - 1) / s;
}

/* splitmix64's output function (Steele, Lea and Flood, 2014). */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t moai_splitmix64_next(uint64_t *state) {
  *state += 0x9E3779B97F4A7C15ull;
  return mix64(*state);
}

moai_xoshiro256_t moai_xoshiro256_for_epoch(uint64_t seed, uint64_t epoch) {
  /* Hashing the epoch (rather than adding it) keeps the splitmix64 streams
   * of neighbouring epochs from being shifts of each other. */
  uint64_t sm = seed ^ mix64(epoch + 1);
  moai_xoshiro256_t rng;
  for (int i = 0; i < 4; ++i) rng.s[i] = moai_splitmix64_next(&sm);
  return rng;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t moai_xoshiro256_next(moai_xoshiro256_t *r) {
  uint64_t *s = r->s;
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t moai_xoshiro256_below(moai_xoshiro256_t *r, uint64_t bound) {
  /* Reject the lowest 2^64 mod bound values so every residue is equally
   * likely; the loop runs more than once with probability < bound / 2^64. */
  uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    uint64_t x = moai_xoshiro256_next(r);
    if (x >= threshold) return x % bound;
  }
}

void moai_sampler_epoch_order(bool shuffle, uint64_t seed, uint64_t epoch, uint64_t n,
                              uint64_t *order) {
  for (uint64_t i = 0; i < n; ++i) order[i] = i;
  if (!shuffle || n < 2) return;
  moai_xoshiro256_t rng = moai_xoshiro256_for_epoch(seed, epoch);
  for (uint64_t i = n - 1; i > 0; --i) {
    uint64_t j = moai_xoshiro256_below(&rng, i + 1);
    uint64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

moai_status_t moai_sampler_init(const moai_sampler_config_t *config,
                                moai_allocator_t allocator, moai_sampler_t *out) {
  const moai_sampler_config_t *c = config;
  if (c->example_count == 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the data has no examples");
  if (c->micro_batch_size == 0 || c->micro_batches == 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "micro-batch size and micro-batches must be at least 1");
  if (c->micro_batch_size > UINT64_MAX / c->micro_batches ||
      c->example_count > SIZE_MAX / sizeof(uint64_t))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "batch or data set too large");
  uint64_t step = moai_sampler_step_size(c);
  if (moai_sampler_steps_per_epoch(c) == 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "the data has %llu example%s, one optimizer step needs %llu (%llu x %u "
                       "micro-batch%s); use --no-drop-last or more data",
                       (unsigned long long)c->example_count, c->example_count == 1 ? "" : "s",
                       (unsigned long long)step, (unsigned long long)c->micro_batch_size,
                       c->micro_batches, c->micro_batches == 1 ? "" : "es");
  void *order = NULL;
  MOAI_RETURN_IF_ERROR(
      moai_allocator_malloc(allocator, (size_t)c->example_count * sizeof(uint64_t), &order));
  moai_sampler_t s = {.allocator = allocator, .config = *c, .order = order};
  moai_sampler_epoch_order(c->shuffle, c->seed, 0, c->example_count, s.order);
  *out = s;
  return moai_ok_status();
}

void moai_sampler_deinit(moai_sampler_t *s) {
  if (!s) return;
  moai_allocator_free(s->allocator, s->order);
  s->order = NULL;
}

moai_status_t moai_sampler_seek(moai_sampler_t *s, uint64_t epoch, uint64_t position) {
  const moai_sampler_config_t *c = &s->config;
  uint64_t step = moai_sampler_step_size(c);
  uint64_t end = moai_sampler_steps_per_epoch(c) * step; /* the epoch's last start + 1 */
  if (position % step != 0 || position >= (c->drop_last ? end : c->example_count))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "position %llu is not the start of a step of an epoch of %llu examples "
                       "in steps of %llu",
                       (unsigned long long)position, (unsigned long long)c->example_count,
                       (unsigned long long)step);
  if (epoch != s->epoch) moai_sampler_epoch_order(c->shuffle, c->seed, epoch, c->example_count,
                                                  s->order);
  s->epoch = epoch;
  s->position = position;
  return moai_ok_status();
}

void moai_sampler_next(moai_sampler_t *s, uint64_t *indices, uint64_t *out_count,
                       uint64_t *out_epoch) {
  const moai_sampler_config_t *c = &s->config;
  uint64_t step = moai_sampler_step_size(c);
  uint64_t left = c->example_count - s->position;
  uint64_t n = left < step ? left : step;
  memcpy(indices, s->order + s->position, (size_t)n * sizeof(uint64_t));
  for (uint64_t i = n; i < step; ++i) indices[i] = indices[0]; /* filler: see header */
  *out_count = n;
  *out_epoch = s->epoch;
  s->position += n;
  /* The epoch ends when no whole step (drop_last) or no example is left. */
  uint64_t remaining = c->example_count - s->position;
  if (remaining == 0 || (c->drop_last && remaining < step)) {
    s->epoch += 1;
    s->position = 0;
    moai_sampler_epoch_order(c->shuffle, c->seed, s->epoch, c->example_count, s->order);
  }
}
