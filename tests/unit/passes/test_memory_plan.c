/* Unit tests of the memory planner on synthetic lifetimes
 * (moai_memory_plan_buffers, moai_memory_plan_check): cases whose optimum is
 * known by hand, aliasing, the checker itself, bad requests, and random
 * lifetimes. The pass on IR is tested in test_memory_plan_pass.c. */
#include <stdio.h>
#include <string.h>

#include "memory_plan/memory_plan.h"
#include "moai_test.h"

#define U 64 /* one alignment unit */

typedef struct result_t {
  uint64_t offsets[512];
  uint64_t arena, lower;
} result_t;

/* Plans and checks; fails the test if either fails. */
static void plan_ok(const moai_buffer_req_t *reqs, size_t n, uint64_t align,
                    result_t *r) {
  CU_ASSERT_FATAL(n <= sizeof(r->offsets) / sizeof(r->offsets[0]));
  moai_status_t s = moai_memory_plan_buffers(reqs, n, align, r->offsets,
                                             &r->arena, &r->lower);
  if (s) fprintf(stderr, "plan: %s\n", moai_status_message(s));
  CU_ASSERT_FATAL(s == NULL);
  s = moai_memory_plan_check(reqs, n, align, r->offsets, r->arena);
  if (s) fprintf(stderr, "check: %s\n", moai_status_message(s));
  CU_ASSERT_FATAL(s == NULL);
  CU_ASSERT_TRUE(r->arena >= r->lower);
}

static moai_buffer_req_t req(uint64_t size, int64_t first, int64_t last) {
  return (moai_buffer_req_t){size, first, last, -1};
}

/* a -> b -> c: each op reads the previous buffer and writes the next, so only
 * neighbours overlap and the arena is the largest adjacent pair. */
static void test_chain(void) {
  moai_buffer_req_t reqs[] = {req(100, -1, 0), req(200, 0, 1), req(64, 1, 2),
                              req(1000, 2, 3), req(10, 3, 4)};
  result_t r;
  plan_ok(reqs, 5, U, &r);
  /* Sizes round to 128, 256, 64, 1024, 64: worst pair 64 + 1024. */
  CU_ASSERT_EQUAL(r.lower, 64 + 1024);
  CU_ASSERT_EQUAL(r.arena, 64 + 1024);
}

static void test_disjoint_share_one_slot(void) {
  moai_buffer_req_t reqs[] = {req(256, 0, 0), req(256, 1, 1), req(200, 2, 2),
                              req(256, 3, 5)};
  result_t r;
  plan_ok(reqs, 4, U, &r);
  CU_ASSERT_EQUAL(r.arena, 256);
  CU_ASSERT_EQUAL(r.lower, 256);
  for (int i = 0; i < 4; ++i) CU_ASSERT_EQUAL(r.offsets[i], 0);
}

static void test_all_overlapping_is_sum(void) {
  moai_buffer_req_t reqs[] = {req(64, 0, 9), req(128, 3, 4), req(1, 4, 5),
                              req(640, -1, 4), req(64, 4, 4)};
  result_t r;
  plan_ok(reqs, 5, U, &r);
  CU_ASSERT_EQUAL(r.arena, 64 + 128 + 64 + 640 + 64);
  CU_ASSERT_EQUAL(r.lower, r.arena);
}

/* Found by a search over small random instances: visiting buffers by size,
 * first fit (lowest gap that fits) needs 23 units, best fit (smallest gap
 * that fits, TFLite's rule) reaches the lower bound of 20. */
static void test_best_fit_beats_first_fit(void) {
  static const int64_t k[][3] = {{5, 8, 8}, {4, 3, 5}, {3, 4, 7},
                                 {4, 5, 6}, {1, 4, 5}, {5, 0, 3},
                                 {4, 2, 5}, {4, 1, 4}, {3, 2, 4}};
  moai_buffer_req_t reqs[9];
  for (int i = 0; i < 9; ++i) reqs[i] = req((uint64_t)k[i][0] * U, k[i][1], k[i][2]);
  result_t r;
  plan_ok(reqs, 9, U, &r);
  CU_ASSERT_EQUAL(r.lower, 20 * U);
  CU_ASSERT_EQUAL(r.arena, 20 * U);
}

static void test_alignment_and_zero_size(void) {
  moai_buffer_req_t reqs[] = {req(1, 0, 1), req(0, 0, 1), req(65, 0, 1)};
  result_t r;
  plan_ok(reqs, 3, U, &r);
  CU_ASSERT_EQUAL(r.arena, 64 + 128); /* zero-size takes no room */
  CU_ASSERT_EQUAL(r.lower, 64 + 128);
  CU_ASSERT_EQUAL(r.offsets[1], 0);
  for (int i = 0; i < 3; ++i) CU_ASSERT_EQUAL(r.offsets[i] % U, 0);
  /* Alignment 1: exact sizes. */
  plan_ok(reqs, 3, 1, &r);
  CU_ASSERT_EQUAL(r.arena, 66);
  /* Nothing to place. */
  plan_ok(reqs, 0, U, &r);
  CU_ASSERT_EQUAL(r.arena, 0);
  CU_ASSERT_EQUAL(r.lower, 0);
}

/* A view (1 of 0) extends its parent's buffer; a chain of aliases (3 of 2 of
 * 1) all land on one offset; an unrelated buffer live during the view must
 * not overlap it even though the parent itself died. */
static void test_alias(void) {
  moai_buffer_req_t reqs[] = {
      req(256, 0, 1),             /* 0: parent, last read by the view op */
      {256, 1, 4, 0},             /* 1: view of 0, used until 4 */
      req(256, 2, 3),             /* 2: live while the view is */
      {256, 3, 5, 2},             /* 3: in place into 2 */
      {256, 5, 6, 3},             /* 4: view of 3 (a chain to 2) */
      req(256, 5, 6),             /* 5: may reuse 0/1's slot */
  };
  result_t r;
  plan_ok(reqs, 6, U, &r);
  CU_ASSERT_EQUAL(r.offsets[0], r.offsets[1]);
  CU_ASSERT_EQUAL(r.offsets[2], r.offsets[3]);
  CU_ASSERT_EQUAL(r.offsets[3], r.offsets[4]);
  CU_ASSERT_NOT_EQUAL(r.offsets[0], r.offsets[2]);
  CU_ASSERT_EQUAL(r.arena, 2 * 256);
  CU_ASSERT_EQUAL(r.lower, 2 * 256);
  /* The alias is larger than its root: the buffer takes the larger size. */
  moai_buffer_req_t grow[] = {req(64, 0, 0), {512, 0, 1, 0}, req(64, 1, 1)};
  plan_ok(grow, 3, U, &r);
  CU_ASSERT_EQUAL(r.arena, 512 + 64);
}

static void expect_error(const moai_buffer_req_t *reqs, size_t n,
                         uint64_t align, const char *needle) {
  uint64_t offsets[8] = {7, 7, 7, 7, 7, 7, 7, 7}, arena = 7, lower = 7;
  moai_status_t s = moai_memory_plan_buffers(reqs, n, align, offsets, &arena, &lower);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  if (!strstr(moai_status_message(s), needle))
    fprintf(stderr, "unexpected: %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), needle));
  moai_status_free(s);
  /* Outputs untouched on failure. */
  CU_ASSERT_EQUAL(arena, 7);
  CU_ASSERT_EQUAL(lower, 7);
  CU_ASSERT_EQUAL(offsets[0], 7);
}

static void test_bad_requests(void) {
  moai_buffer_req_t cycle[] = {{64, 0, 1, 1}, {64, 0, 1, 0}};
  expect_error(cycle, 2, U, "cycle");
  moai_buffer_req_t self[] = {{64, 0, 1, 0}};
  expect_error(self, 1, U, "cycle");
  moai_buffer_req_t range[] = {{64, 0, 1, 5}};
  expect_error(range, 1, U, "out of range");
  moai_buffer_req_t empty[] = {req(64, 3, 2)};
  expect_error(empty, 1, U, "empty");
  moai_buffer_req_t ok[] = {req(64, 0, 1)};
  expect_error(ok, 1, 48, "power of two");
  expect_error(ok, 1, 0, "power of two");
  moai_buffer_req_t huge[] = {req(UINT64_MAX - 3, 0, 1)};
  expect_error(huge, 1, U, "too large");
}

/* The checker finds what it must: a moved buffer, a broken alias, an
 * unaligned offset, an arena too small. */
static void test_checker_catches(void) {
  moai_buffer_req_t reqs[] = {req(128, 0, 2), req(128, 1, 3), {64, 3, 4, 1},
                              req(128, 4, 4)};
  result_t r;
  plan_ok(reqs, 4, U, &r);
  uint64_t bad[4];
  moai_status_t s;

  memcpy(bad, r.offsets, sizeof(bad));
  bad[1] = bad[0] + 64; /* overlaps 0 while both live */
  bad[2] = bad[1];
  s = moai_memory_plan_check(reqs, 4, U, bad, r.arena + 1024);
  CU_ASSERT_PTR_NOT_NULL(s);
  CU_ASSERT_PTR_NOT_NULL(s && strstr(moai_status_message(s), "overlap"));
  moai_status_free(s);

  memcpy(bad, r.offsets, sizeof(bad));
  bad[2] = bad[1] + 1024; /* alias away from its root */
  s = moai_memory_plan_check(reqs, 4, U, bad, r.arena + 2048);
  CU_ASSERT_PTR_NOT_NULL(s && strstr(moai_status_message(s), "aliases"));
  moai_status_free(s);

  memcpy(bad, r.offsets, sizeof(bad));
  bad[3] += 8;
  s = moai_memory_plan_check(reqs, 4, U, bad, r.arena + 1024);
  CU_ASSERT_PTR_NOT_NULL(s && strstr(moai_status_message(s), "aligned"));
  moai_status_free(s);

  s = moai_memory_plan_check(reqs, 4, U, r.offsets, r.arena - 64);
  CU_ASSERT_PTR_NOT_NULL(s && strstr(moai_status_message(s), "exceeds"));
  moai_status_free(s);
}

/* xorshift64*: deterministic, no libc rand state. */
static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* Random lifetimes and aliases: every plan passes the checker, lies between
 * the lower bound and the sum of sizes, and stays close to the bound. */
static void test_random(void) {
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  static moai_buffer_req_t reqs[400];
  static result_t r;
  double worst = 0;
  for (int trial = 0; trial < 200; ++trial) {
    size_t n = 1 + next_random(&seed) % 400;
    int64_t span = 1 + (int64_t)(next_random(&seed) % 300);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; ++i) {
      int64_t first = (int64_t)(next_random(&seed) % (uint64_t)span) - 1;
      int64_t len = (int64_t)(next_random(&seed) % 20);
      /* Mostly activation-like sizes, some zero, some large. */
      uint64_t size = next_random(&seed) % 8 == 0 ? 0 : 1 + next_random(&seed) % 5000;
      if (next_random(&seed) % 16 == 0) size *= 64;
      reqs[i] = req(size, first, first + len);
      if (i > 0 && next_random(&seed) % 6 == 0)
        reqs[i].alias_of = (int64_t)(next_random(&seed) % i);
      sum += (size + U - 1) / U * U;
    }
    plan_ok(reqs, n, U, &r);
    CU_ASSERT_TRUE(r.arena <= sum);
    if (r.lower) {
      double gap = (double)r.arena / (double)r.lower;
      if (gap > worst) worst = gap;
    }
  }
  printf("\n    random lifetimes: worst arena / lower bound %.3f\n", worst);
  CU_ASSERT_TRUE(worst < 1.5);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"chain", test_chain},
      {"disjoint_share_one_slot", test_disjoint_share_one_slot},
      {"all_overlapping_is_sum", test_all_overlapping_is_sum},
      {"best_fit_beats_first_fit", test_best_fit_beats_first_fit},
      {"alignment_and_zero_size", test_alignment_and_zero_size},
      {"alias", test_alias},
      {"bad_requests", test_bad_requests},
      {"checker_catches", test_checker_catches},
      {"random", test_random},
      CU_TEST_INFO_NULL};
  moai_test_add_suite("memory_plan_buffers", tests);
}
