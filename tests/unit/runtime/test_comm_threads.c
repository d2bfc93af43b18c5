/* Unit tests for runtime/comm's threads backend: the all-reduce sums in rank
 * order (bit-exact against a sequential sum), broadcast, and a rank's abort
 * releasing the others from a collective instead of leaving them blocked;
 * sub-groups from moai_comm_split, the max all-reduce, and buffered
 * point-to-point messages (a ring where everyone sends first, FIFO order,
 * size mismatches, an abort waking a receiver). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* ---- many ranks: a helper ------------------------------------------------ */

#define MAX_RANKS 6
#define GRID_ROWS 2
#define GRID_COLS 3
#define GRID_COUNT 257

/* What one rank saw; CUnit is not thread-safe, so the main thread checks. */
typedef struct peer_t {
  moai_comm_t *comm;
  int world_rank;
  moai_status_code_t code;
  char message[256];
  int row_rank, row_size, col_rank, col_size;
  float row_sum[GRID_COUNT];
  double col_max[4];
  int received[3][2]; /* ring: the payloads received, in order */
} peer_t;

static void record(peer_t *p, moai_status_t s) {
  p->code = moai_status_code(s);
  snprintf(p->message, sizeof(p->message), "%s", moai_status_message(s));
  moai_status_free(s);
}

/* Runs fn on `n` threads, one per rank of a fresh world; returns the world's
 * failed rank after every thread is done. */
static int run_world(int n, peer_t *peers, void *(*fn)(void *)) {
  moai_comm_threads_t *world = NULL;
  moai_status_t s = moai_comm_threads_create(n, moai_allocator_system(), &world);
  CU_ASSERT_PTR_NULL_FATAL(s);
  pthread_t tid[MAX_RANKS];
  for (int r = 0; r < n; ++r) {
    memset(&peers[r], 0, sizeof(peers[r]));
    peers[r].comm = moai_comm_threads_rank(world, r);
    peers[r].world_rank = r;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[r], NULL, fn, &peers[r]), 0);
  }
  for (int r = 0; r < n; ++r) pthread_join(tid[r], NULL);
  int failed = moai_comm_threads_failed_rank(world);
  moai_comm_threads_destroy(world); /* frees what the ranks left: sub-groups, messages */
  return failed;
}

/* ---- sub-groups of a 2x3 grid --------------------------------------------- */

static float grid_value(int world_rank, size_t i) {
  return 1.0f / (float)(i + 3) + 1e-3f * (float)(world_rank * 5 + 1);
}

/* World rank = row * GRID_COLS + col. Rows are ordered by key 2 - col (the
 * reverse of the world's order), columns by row. */
static void *grid_main(void *arg) {
  peer_t *p = arg;
  int row = p->world_rank / GRID_COLS, col = p->world_rank % GRID_COLS;
  moai_comm_t *rowc = NULL, *colc = NULL;
  moai_status_t s = moai_comm_split(p->comm, row, GRID_COLS - 1 - col, &rowc);
  if (!s) s = moai_comm_split(p->comm, GRID_ROWS + col, row, &colc);
  if (!s) {
    p->row_rank = moai_comm_rank(rowc);
    p->row_size = moai_comm_size(rowc);
    p->col_rank = moai_comm_rank(colc);
    p->col_size = moai_comm_size(colc);
    for (size_t i = 0; i < GRID_COUNT; ++i) p->row_sum[i] = grid_value(p->world_rank, i);
    /* Column max: a NaN from row 1 in element 3, negatives elsewhere. */
    p->col_max[0] = -1.0 - row;
    p->col_max[1] = row == 1 ? 7.5 : -0.25;
    p->col_max[2] = col + 0.125 * row;
    p->col_max[3] = row == 1 ? NAN : 1e300;
    s = moai_comm_allreduce(rowc, MOAI_ABI_F32, MOAI_COMM_SUM, p->row_sum, GRID_COUNT);
  }
  if (!s) s = moai_comm_allreduce(colc, MOAI_ABI_F64, MOAI_COMM_MAX, p->col_max, 4);
  if (!s) s = moai_comm_barrier(rowc);
  record(p, s);
  moai_comm_destroy(rowc);
  moai_comm_destroy(colc);
  return NULL;
}

static void test_split_grid(void) {
  peer_t peers[GRID_ROWS * GRID_COLS];
  CU_ASSERT_EQUAL(run_world(GRID_ROWS * GRID_COLS, peers, grid_main), -1);
  for (int w = 0; w < GRID_ROWS * GRID_COLS; ++w) {
    peer_t *p = &peers[w];
    int row = w / GRID_COLS, col = w % GRID_COLS;
    CU_ASSERT_EQUAL(p->code, MOAI_OK);
    if (p->code != MOAI_OK) fprintf(stderr, "rank %d: %s\n", w, p->message);
    CU_ASSERT_EQUAL(p->row_size, GRID_COLS);
    CU_ASSERT_EQUAL(p->row_rank, GRID_COLS - 1 - col);
    CU_ASSERT_EQUAL(p->col_size, GRID_ROWS);
    CU_ASSERT_EQUAL(p->col_rank, row);
    /* The row's sum in its group's rank order: columns 2, 1, 0. */
    for (size_t i = 0; i < GRID_COUNT; ++i) {
      float want = grid_value(row * GRID_COLS + GRID_COLS - 1, i);
      for (int c = GRID_COLS - 2; c >= 0; --c) want += grid_value(row * GRID_COLS + c, i);
      if (memcmp(&want, &p->row_sum[i], sizeof(want)) != 0) {
        CU_FAIL("row all-reduce is not the sum in the row group's rank order");
        break;
      }
    }
    CU_ASSERT_EQUAL(p->col_max[0], -1.0);
    CU_ASSERT_EQUAL(p->col_max[1], 7.5);
    CU_ASSERT_EQUAL(p->col_max[2], col + 0.125);
    CU_ASSERT(isnan(p->col_max[3]));
  }
}

/* ---- point-to-point -------------------------------------------------------- */

#define RING 4

/* Every rank sends first (tag 7 twice, then tag 3) to the next rank, then
 * receives from the previous one: tag 3 first (matching skips the tag 7
 * messages queued before it), then the two tag 7 messages in order. */
static void *ring_main(void *arg) {
  peer_t *p = arg;
  int r = p->world_rank, next = (r + 1) % RING, prev = (r + RING - 1) % RING;
  int first[2] = {r, 1}, second[2] = {r, 2}, other[2] = {r, 3};
  moai_status_t s = moai_comm_send(p->comm, first, sizeof(first), next, 7);
  if (!s) s = moai_comm_send(p->comm, second, sizeof(second), next, 7);
  if (!s) s = moai_comm_send(p->comm, other, sizeof(other), next, 3);
  if (!s) s = moai_comm_recv(p->comm, p->received[0], sizeof(p->received[0]), prev, 3);
  if (!s) s = moai_comm_recv(p->comm, p->received[1], sizeof(p->received[1]), prev, 7);
  if (!s) s = moai_comm_recv(p->comm, p->received[2], sizeof(p->received[2]), prev, 7);
  record(p, s);
  return NULL;
}

static void test_ring_send_first(void) {
  peer_t peers[RING];
  CU_ASSERT_EQUAL(run_world(RING, peers, ring_main), -1);
  for (int r = 0; r < RING; ++r) {
    int prev = (r + RING - 1) % RING;
    CU_ASSERT_EQUAL(peers[r].code, MOAI_OK);
    CU_ASSERT_EQUAL(peers[r].received[0][0], prev);
    CU_ASSERT_EQUAL(peers[r].received[0][1], 3);
    CU_ASSERT_EQUAL(peers[r].received[1][0], prev);
    CU_ASSERT_EQUAL(peers[r].received[1][1], 1); /* FIFO: the first tag 7 message first */
    CU_ASSERT_EQUAL(peers[r].received[2][0], prev);
    CU_ASSERT_EQUAL(peers[r].received[2][1], 2);
  }
}

/* Sends never block, and a receive whose message is queued does not either:
 * one thread plays both ranks. */
static void test_size_mismatch(void) {
  moai_comm_threads_t *world = NULL;
  moai_status_t s = moai_comm_threads_create(2, moai_allocator_system(), &world);
  CU_ASSERT_PTR_NULL_FATAL(s);
  moai_comm_t *r0 = moai_comm_threads_rank(world, 0), *r1 = moai_comm_threads_rank(world, 1);
  double sent[2] = {1.5, 2.5}, got[2] = {0, 0};
  s = moai_comm_send(r0, sent, sizeof(sent), 1, 5);
  CU_ASSERT_PTR_NULL(s);
  s = moai_comm_recv(r1, got, sizeof(double), 0, 5);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INTERNAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "from rank 0 to rank 1 with tag 5: 16 "
                                                        "bytes sent, 8 expected"));
  moai_status_free(s);
  CU_ASSERT_EQUAL(got[0], 0.0); /* nothing copied */
  /* The bad message was consumed: the next one of the same tag is next. */
  s = moai_comm_send(r0, sent, sizeof(double), 1, 5);
  CU_ASSERT_PTR_NULL(s);
  s = moai_comm_recv(r1, got, sizeof(double), 0, 5);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT_EQUAL(got[0], 1.5);
  /* Bad peers and tags, no group. */
  s = moai_comm_send(r0, sent, 8, 2, 0);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  moai_status_free(s);
  s = moai_comm_recv(r0, got, 8, -1, 0);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  moai_status_free(s);
  s = moai_comm_send(r0, sent, 8, 1, -4);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  moai_status_free(s);
  s = moai_comm_send(NULL, sent, 8, 0, 0);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  moai_status_free(s);
  /* A message to oneself, and one left unreceived (freed with the world). */
  s = moai_comm_send(r1, sent, sizeof(sent), 1, 0);
  CU_ASSERT_PTR_NULL(s);
  s = moai_comm_recv(r1, got, sizeof(got), 1, 0);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT_EQUAL(got[1], 2.5);
  s = moai_comm_send(r1, sent, sizeof(sent), 0, 9);
  CU_ASSERT_PTR_NULL(s);
  /* Split: a negative color; no group gives no handle. */
  moai_comm_t *sub = r0;
  s = moai_comm_split(r0, -1, 0, &sub);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  CU_ASSERT_PTR_EQUAL(sub, r0);
  moai_status_free(s);
  s = moai_comm_split(NULL, 0, 0, &sub);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT_PTR_NULL(sub);
  float x = 1;
  s = moai_comm_allreduce(r0, MOAI_ABI_F32, (moai_comm_reduce_t)2, &x, 1);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  moai_status_free(s);
  moai_comm_threads_destroy(world);
}

/* ---- abort wakes receivers and sub-group collectives ----------------------- */

/* Pairs {0,1} and {2,3}. Rank 0 waits for a message rank 1 never sends;
 * rank 2 all-reduces in its pair, which rank 3 never joins; rank 3 aborts on
 * its pair's handle once both are (very likely) blocked. The sub-group
 * handles are left to the world. */
static void *abort_main(void *arg) {
  peer_t *p = arg;
  int r = p->world_rank;
  moai_comm_t *pair = NULL;
  moai_status_t s = moai_comm_split(p->comm, r / 2, 0, &pair);
  if (!s && r == 0) {
    double x;
    s = moai_comm_recv(p->comm, &x, sizeof(x), 1, 0);
  } else if (!s && r == 1) {
    double x = 1; /* a different tag: never received, freed with the world */
    s = moai_comm_send(p->comm, &x, sizeof(x), 0, 1);
  } else if (!s && r == 2) {
    float x[3] = {1, 2, 3};
    s = moai_comm_allreduce(pair, MOAI_ABI_F32, MOAI_COMM_SUM, x, 3);
  } else if (!s && r == 3) {
    nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
    moai_comm_abort(pair);
  }
  record(p, s);
  return NULL;
}

static void test_abort_wakes_recv_and_subgroup(void) {
  peer_t peers[4];
  CU_ASSERT_EQUAL(run_world(4, peers, abort_main), 3); /* the world's rank, not the pair's 1 */
  CU_ASSERT_EQUAL(peers[1].code, MOAI_OK);
  CU_ASSERT_EQUAL(peers[3].code, MOAI_OK);
  for (int r = 0; r <= 2; r += 2) {
    CU_ASSERT_EQUAL(peers[r].code, MOAI_FAILED_PRECONDITION);
    CU_ASSERT_PTR_NOT_NULL(strstr(peers[r].message, "rank 3 of 4 failed"));
  }
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"allreduce_in_rank_order", test_allreduce_in_rank_order},
      {"abort_releases_waiters", test_abort_releases_waiters},
      {"bad_arguments", test_bad_arguments},
      {"split_grid", test_split_grid},
      {"ring_send_first", test_ring_send_first},
      {"size_mismatch", test_size_mismatch},
      {"abort_wakes_recv_and_subgroup", test_abort_wakes_recv_and_subgroup},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("comm_threads", tests);
}
