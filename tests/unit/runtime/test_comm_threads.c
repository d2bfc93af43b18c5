/* Unit tests for runtime/comm's threads backend: the all-reduce sums in rank
 * order (bit-exact against a sequential sum), broadcast, and a rank's abort
 * releasing the others from a collective instead of leaving them blocked. */
#include <pthread.h>
#include <string.h>

#include "abi/moai_abi.h"
#include "comm/comm.h"
#include "moai_test.h"

#define RANKS 3
#define COUNT 1001 /* not a multiple of RANKS: uneven slices */

typedef struct rank_arg_t {
  moai_comm_t *comm;
  float data[COUNT];
  double stats[2];
  char text[8];
  bool abort_first; /* rank 2 aborts instead of joining the all-reduce */
  moai_status_code_t code;
} rank_arg_t;

static float value(int rank, size_t i) { return 1.0f / (float)(i + 1) + 1e-3f * (float)(rank * 7 + 1); }

static void *rank_main(void *p) {
  rank_arg_t *a = p;
  int r = moai_comm_rank(a->comm);
  for (size_t i = 0; i < COUNT; ++i) a->data[i] = value(r, i);
  a->stats[0] = r + 0.5;
  a->stats[1] = 1e-17 * r;
  if (r == 0) memcpy(a->text, "rank0!", 7);
  if (a->abort_first && r == 2) {
    moai_comm_abort(a->comm);
    a->code = MOAI_FAILED_PRECONDITION;
    return NULL;
  }
  moai_status_t s = moai_comm_allreduce_sum(a->comm, MOAI_ABI_F32, a->data, COUNT);
  if (!s) s = moai_comm_allreduce_sum(a->comm, MOAI_ABI_F64, a->stats, 2);
  if (!s) s = moai_comm_broadcast(a->comm, a->text, sizeof(a->text), 0);
  if (!s) s = moai_comm_barrier(a->comm);
  a->code = moai_status_code(s);
  moai_status_free(s);
  return NULL;
}

static void run_ranks(rank_arg_t *args, bool abort_first) {
  moai_comm_threads_t *world = NULL;
  moai_status_t s = moai_comm_threads_create(RANKS, moai_allocator_system(), &world);
  CU_ASSERT_PTR_NULL_FATAL(s);
  pthread_t tid[RANKS];
  for (int r = 0; r < RANKS; ++r) {
    memset(&args[r], 0, sizeof(args[r]));
    args[r].comm = moai_comm_threads_rank(world, r);
    args[r].abort_first = abort_first;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[r], NULL, rank_main, &args[r]), 0);
  }
  for (int r = 0; r < RANKS; ++r) pthread_join(tid[r], NULL);
  CU_ASSERT_EQUAL(moai_comm_threads_failed_rank(world), abort_first ? 2 : -1);
  moai_comm_threads_destroy(world);
}

static void test_allreduce_in_rank_order(void) {
  static rank_arg_t args[RANKS];
  run_ranks(args, false);
  for (int r = 0; r < RANKS; ++r) {
    CU_ASSERT_EQUAL(args[r].code, MOAI_OK);
    for (size_t i = 0; i < COUNT; ++i) {
      float want = value(0, i);
      for (int k = 1; k < RANKS; ++k) want += value(k, i);
      if (memcmp(&want, &args[r].data[i], 4) != 0) {
        CU_FAIL("all-reduce is not the rank-order sum");
        break;
      }
    }
    CU_ASSERT_EQUAL(args[r].stats[0], (0.5 + 1.5) + 2.5);
    CU_ASSERT_EQUAL(args[r].stats[1], (0.0 + 1e-17) + 2e-17);
    CU_ASSERT_STRING_EQUAL(args[r].text, "rank0!");
  }
}

static void test_abort_releases_waiters(void) {
  static rank_arg_t args[RANKS];
  run_ranks(args, true);
  CU_ASSERT_EQUAL(args[0].code, MOAI_FAILED_PRECONDITION);
  CU_ASSERT_EQUAL(args[1].code, MOAI_FAILED_PRECONDITION);
}

static void test_bad_arguments(void) {
  moai_comm_threads_t *world = NULL;
  moai_status_t s = moai_comm_threads_create(0, moai_allocator_system(), &world);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(world);
  moai_status_free(s);
  int32_t x = 1;
  s = moai_comm_allreduce_sum(NULL, MOAI_ABI_I32, &x, 1);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_UNIMPLEMENTED);
  moai_status_free(s);
  /* One rank (or no group): a no-op. */
  float f = 2.5f;
  s = moai_comm_allreduce_sum(NULL, MOAI_ABI_F32, &f, 1);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT_EQUAL(f, 2.5f);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"allreduce_in_rank_order", test_allreduce_in_rank_order},
      {"abort_releases_waiters", test_abort_releases_waiters},
      {"bad_arguments", test_bad_arguments},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("comm_threads", tests);
}
