/* Unit tests for moai-optimizer's gradient buckets (moai_grad_buckets_assign):
 * where a bucket closes (at the cap, passing it by at most one gradient; at
 * the count limit; at the end) and that the numbering is consecutive. */
#include "moai_test.h"
#include "optimizer/optimizer.h"

#define MIB ((uint64_t)1 << 20)

static void test_cap(void) {
  /* 10 + 10 < 25, + 10 reaches it: closed with 30 MiB; a 40 MiB gradient
   * fills one alone; the rest end the last. */
  uint64_t bytes[] = {10 * MIB, 10 * MIB, 10 * MIB, 40 * MIB, 1 * MIB, 2 * MIB};
  uint32_t b[6];
  CU_ASSERT_EQUAL(moai_grad_buckets_assign(bytes, 6, 25 * MIB, 0, b), 3);
  uint32_t want[] = {0, 0, 0, 1, 2, 2};
  for (int i = 0; i < 6; ++i) CU_ASSERT_EQUAL(b[i], want[i]);
}

static void test_exact_cap(void) {
  /* Reaching the cap exactly closes the bucket. */
  uint64_t bytes[] = {25 * MIB, 25 * MIB - 1, 1, 1};
  uint32_t b[4];
  CU_ASSERT_EQUAL(moai_grad_buckets_assign(bytes, 4, MOAI_GRAD_BUCKET_CAP_BYTES, 0, b), 3);
  CU_ASSERT(b[0] == 0 && b[1] == 1 && b[2] == 1 && b[3] == 2);
}

static void test_count_limit(void) {
  /* 19 small gradients, at most 8 per bucket: 8 + 8 + 3. */
  uint64_t bytes[19];
  uint32_t b[19];
  for (int i = 0; i < 19; ++i) bytes[i] = 256;
  CU_ASSERT_EQUAL(moai_grad_buckets_assign(bytes, 19, MOAI_GRAD_BUCKET_CAP_BYTES, 8, b), 3);
  for (int i = 0; i < 19; ++i) CU_ASSERT_EQUAL(b[i], (uint32_t)(i / 8));
  /* Without the limit they share one bucket. */
  CU_ASSERT_EQUAL(moai_grad_buckets_assign(bytes, 19, MOAI_GRAD_BUCKET_CAP_BYTES, 0, b), 1);
  CU_ASSERT_EQUAL(b[18], 0);
}

static void test_empty(void) {
  uint32_t b[1] = {7};
  CU_ASSERT_EQUAL(moai_grad_buckets_assign(NULL, 0, 25 * MIB, 8, b), 0);
  CU_ASSERT_EQUAL(b[0], 7); /* untouched */
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"closed at the cap", test_cap},
      {"exactly the cap", test_exact_cap},
      {"at most max_count per bucket", test_count_limit},
      {"no gradients", test_empty},
      {NULL, NULL},
  };
  moai_test_add_suite("grad_buckets", tests);
}
