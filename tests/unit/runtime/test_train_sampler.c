/* Unit tests for runtime/train/sampler: the generator against published and
 * independently computed values, determinism, resuming at any position,
 * step counts with and without drop_last, and filler indices. */
#include <string.h>

#include "../../moai_run/runtime_test_util.h"
#include "moai_test.h"
#include "train/sampler.h"

static moai_sampler_config_t config(uint64_t n, uint64_t b, uint32_t k, bool shuffle,
                                    uint64_t seed, bool drop_last) {
  return (moai_sampler_config_t){.example_count = n, .micro_batch_size = b, .micro_batches = k,
                                 .shuffle = shuffle, .seed = seed, .drop_last = drop_last};
}

static void test_generators_match_references(void) {
  /* xoshiro256** from state {1,2,3,4}: the reference implementation's
   * first outputs (xoshiro256starstar.c, Blackman and Vigna). */
  moai_xoshiro256_t r = {{1, 2, 3, 4}};
  CU_ASSERT_EQUAL(moai_xoshiro256_next(&r), 11520u);
  CU_ASSERT_EQUAL(moai_xoshiro256_next(&r), 0u);
  CU_ASSERT_EQUAL(moai_xoshiro256_next(&r), 1509978240u);
  CU_ASSERT_EQUAL(moai_xoshiro256_next(&r), 1215971899390074240ull);
  /* splitmix64 from 1234567 (the reference splitmix64.c). */
  uint64_t sm = 1234567;
  CU_ASSERT_EQUAL(moai_splitmix64_next(&sm), 0x599ed017fb08fc85ull);
  CU_ASSERT_EQUAL(moai_splitmix64_next(&sm), 0x2c73f08458540fa5ull);
  CU_ASSERT_EQUAL(moai_splitmix64_next(&sm), 0x883ebce5a3f27c77ull);
}

/* Orders computed by an independent Python transcription of the documented
 * algorithm (docs/training.md, "Shuffling"). */
static void test_epoch_order_golden(void) {
  uint64_t o[10];
  const uint64_t want_42_0[] = {2, 4, 5, 0, 8, 1, 3, 6, 7, 9};
  const uint64_t want_42_1[] = {3, 5, 7, 1, 9, 4, 8, 2, 6, 0};
  const uint64_t want_7_0[] = {9, 2, 7, 6, 4, 3, 5, 1, 0, 8};
  moai_sampler_epoch_order(true, 42, 0, 10, o);
  CU_ASSERT_EQUAL(memcmp(o, want_42_0, sizeof(o)), 0);
  moai_sampler_epoch_order(true, 42, 1, 10, o);
  CU_ASSERT_EQUAL(memcmp(o, want_42_1, sizeof(o)), 0);
  moai_sampler_epoch_order(true, 7, 0, 10, o);
  CU_ASSERT_EQUAL(memcmp(o, want_7_0, sizeof(o)), 0);
  moai_sampler_epoch_order(false, 42, 3, 10, o);
  for (uint64_t i = 0; i < 10; ++i) CU_ASSERT_EQUAL(o[i], i);
}

static void test_order_is_a_permutation(void) {
  enum { N = 1000 };
  static uint64_t o[N];
  static unsigned char seen[N];
  moai_sampler_epoch_order(true, 123, 5, N, o);
  memset(seen, 0, sizeof(seen));
  for (int i = 0; i < N; ++i) {
    CU_ASSERT_FATAL(o[i] < N);
    seen[o[i]]++;
  }
  for (int i = 0; i < N; ++i) CU_ASSERT_EQUAL(seen[i], 1);
}

static void test_below_is_in_range(void) {
  moai_xoshiro256_t r = moai_xoshiro256_for_epoch(1, 0);
  for (uint64_t b = 1; b < 200; ++b) CU_ASSERT_TRUE(moai_xoshiro256_below(&r, b) < b);
  CU_ASSERT_TRUE(moai_xoshiro256_below(&r, UINT64_MAX) < UINT64_MAX);
}

static void test_steps_per_epoch(void) {
  moai_sampler_config_t c = config(10, 2, 2, false, 0, true);
  CU_ASSERT_EQUAL(moai_sampler_step_size(&c), 4);
  CU_ASSERT_EQUAL(moai_sampler_steps_per_epoch(&c), 2);
  c.drop_last = false;
  CU_ASSERT_EQUAL(moai_sampler_steps_per_epoch(&c), 3);
  c.example_count = 12;
  CU_ASSERT_EQUAL(moai_sampler_steps_per_epoch(&c), 3);
  c.drop_last = true;
  CU_ASSERT_EQUAL(moai_sampler_steps_per_epoch(&c), 3);
}

static void test_init_errors(void) {
  moai_sampler_t s;
  moai_sampler_config_t c = config(5, 4, 2, false, 0, true);
  RT_EXPECT_ERROR(moai_sampler_init(&c, moai_allocator_system(), &s), MOAI_INVALID_ARGUMENT,
                  "the data has 5 examples, one optimizer step needs 8 (4 x 2 micro-batches)",
                  "--no-drop-last");
  c = config(0, 4, 1, false, 0, true);
  RT_EXPECT_ERROR(moai_sampler_init(&c, moai_allocator_system(), &s), MOAI_INVALID_ARGUMENT,
                  "no examples", NULL);
  c = config(5, 0, 1, false, 0, true);
  RT_EXPECT_ERROR(moai_sampler_init(&c, moai_allocator_system(), &s), MOAI_INVALID_ARGUMENT,
                  "at least 1", NULL);
  /* Without drop_last a partial step is a step. */
  c = config(5, 4, 2, false, 0, false);
  RT_ASSERT_OK(moai_sampler_init(&c, moai_allocator_system(), &s));
  uint64_t idx[8], count, epoch;
  moai_sampler_next(&s, idx, &count, &epoch);
  CU_ASSERT_EQUAL(count, 5);
  CU_ASSERT_EQUAL(epoch, 0);
  CU_ASSERT_EQUAL(s.epoch, 1);
  moai_sampler_deinit(&s);
}

/* drop_last: 10 examples in steps of 4 give 2 steps per epoch; examples
 * 8, 9 of each epoch's order are never seen. */
static void test_sequential_drop_last(void) {
  moai_sampler_t s;
  moai_sampler_config_t c = config(10, 2, 2, false, 0, true);
  RT_ASSERT_OK(moai_sampler_init(&c, moai_allocator_system(), &s));
  uint64_t idx[4], count, epoch;
  for (int step = 0; step < 6; ++step) {
    moai_sampler_next(&s, idx, &count, &epoch);
    CU_ASSERT_EQUAL(count, 4);
    CU_ASSERT_EQUAL(epoch, (uint64_t)step / 2);
    for (int i = 0; i < 4; ++i) CU_ASSERT_EQUAL(idx[i], (uint64_t)(step % 2 * 4 + i));
  }
  moai_sampler_deinit(&s);
}

/* No drop_last: the third step has 2 real examples and 2 filler indices,
 * both the step's first example. */
static void test_partial_step_filler(void) {
  moai_sampler_t s;
  moai_sampler_config_t c = config(10, 2, 2, true, 9, false);
  RT_ASSERT_OK(moai_sampler_init(&c, moai_allocator_system(), &s));
  uint64_t order[10];
  moai_sampler_epoch_order(true, 9, 0, 10, order);
  uint64_t idx[4], count, epoch;
  moai_sampler_next(&s, idx, &count, &epoch);
  moai_sampler_next(&s, idx, &count, &epoch);
  CU_ASSERT_EQUAL(count, 4);
  moai_sampler_next(&s, idx, &count, &epoch);
  CU_ASSERT_EQUAL(count, 2);
  CU_ASSERT_EQUAL(epoch, 0);
  CU_ASSERT_EQUAL(idx[0], order[8]);
  CU_ASSERT_EQUAL(idx[1], order[9]);
  CU_ASSERT_EQUAL(idx[2], order[8]);
  CU_ASSERT_EQUAL(idx[3], order[8]);
  CU_ASSERT_EQUAL(s.epoch, 1);
  CU_ASSERT_EQUAL(s.position, 0);
  moai_sampler_deinit(&s);
}

/* The same seed gives the same stream; another seed another one; each
 * epoch a permutation and epochs differ. */
static void test_determinism_and_seed(void) {
  enum { N = 64, STEPS = 40 };
  uint64_t a[STEPS][8], b[STEPS][8], c[STEPS][8];
  moai_sampler_config_t cfg = config(N, 4, 2, true, 5, true);
  moai_sampler_t s;
  uint64_t count, epoch;
  for (int run = 0; run < 3; ++run) {
    cfg.seed = run == 2 ? 6 : 5;
    RT_ASSERT_OK(moai_sampler_init(&cfg, moai_allocator_system(), &s));
    for (int i = 0; i < STEPS; ++i)
      moai_sampler_next(&s, run == 0 ? a[i] : run == 1 ? b[i] : c[i], &count, &epoch);
    moai_sampler_deinit(&s);
  }
  CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0);
  /* Epoch 0 (steps 0..7) and epoch 1 (8..15) are different permutations. */
  CU_ASSERT_NOT_EQUAL(memcmp(a[0], a[8], sizeof(a[0]) * 8), 0);
  unsigned char seen[N] = {0};
  for (int i = 8; i < 16; ++i)
    for (int j = 0; j < 8; ++j) seen[a[i][j]]++;
  for (int i = 0; i < N; ++i) CU_ASSERT_EQUAL(seen[i], 1);
}

/* Seeking to the (epoch, position) after any step gives the rest of the
 * uninterrupted stream, with and without shuffle and drop_last. */
static void test_resume_at_every_position(void) {
  enum { STEPS = 30 };
  for (int variant = 0; variant < 4; ++variant) {
    moai_sampler_config_t cfg = config(11, 3, 1, variant & 1, 77, variant & 2);
    moai_sampler_t s;
    uint64_t full[STEPS][3], counts[STEPS], epochs[STEPS], at_epoch[STEPS], at_pos[STEPS];
    RT_ASSERT_OK(moai_sampler_init(&cfg, moai_allocator_system(), &s));
    for (int i = 0; i < STEPS; ++i) {
      moai_sampler_next(&s, full[i], &counts[i], &epochs[i]);
      at_epoch[i] = s.epoch;
      at_pos[i] = s.position;
    }
    moai_sampler_deinit(&s);
    for (int k = 0; k < STEPS - 1; ++k) {
      RT_ASSERT_OK(moai_sampler_init(&cfg, moai_allocator_system(), &s));
      RT_ASSERT_OK(moai_sampler_seek(&s, at_epoch[k], at_pos[k]));
      for (int i = k + 1; i < STEPS; ++i) {
        uint64_t idx[3], count, epoch;
        moai_sampler_next(&s, idx, &count, &epoch);
        CU_ASSERT_EQUAL(count, counts[i]);
        CU_ASSERT_EQUAL(epoch, epochs[i]);
        CU_ASSERT_EQUAL(memcmp(idx, full[i], sizeof(idx)), 0);
      }
      moai_sampler_deinit(&s);
    }
  }
}

static void test_seek_rejects_non_boundaries(void) {
  moai_sampler_config_t cfg = config(10, 2, 2, true, 1, true);
  moai_sampler_t s;
  RT_ASSERT_OK(moai_sampler_init(&cfg, moai_allocator_system(), &s));
  RT_EXPECT_ERROR(moai_sampler_seek(&s, 0, 3), MOAI_INVALID_ARGUMENT, "position 3", NULL);
  RT_EXPECT_ERROR(moai_sampler_seek(&s, 0, 8), MOAI_INVALID_ARGUMENT, "position 8", NULL);
  RT_ASSERT_OK(moai_sampler_seek(&s, 4, 4));
  moai_sampler_deinit(&s);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"generators_match_references", test_generators_match_references},
      {"epoch_order_golden", test_epoch_order_golden},
      {"order_is_a_permutation", test_order_is_a_permutation},
      {"below_is_in_range", test_below_is_in_range},
      {"steps_per_epoch", test_steps_per_epoch},
      {"init_errors", test_init_errors},
      {"sequential_drop_last", test_sequential_drop_last},
      {"partial_step_filler", test_partial_step_filler},
      {"determinism_and_seed", test_determinism_and_seed},
      {"resume_at_every_position", test_resume_at_every_position},
      {"seek_rejects_non_boundaries", test_seek_rejects_non_boundaries},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("train_sampler", tests);
}
