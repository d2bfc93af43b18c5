/* runtime/comm's MPI backend under `mpirun -np 4` (comm_mpi_test.sh):
 *   comm_mpi LIBMOAI_MPI           sub-groups of a 2x2 grid with sum and max
 *                                  all-reduces, a send-first ring, FIFO order,
 *                                  a size mismatch; prints "comm_mpi: ok"
 *   comm_mpi LIBMOAI_MPI abort     rank 3 aborts while rank 0 waits in a
 *                                  receive and rank 2 in a sub-group
 *                                  all-reduce: the job must end, not hang.
 * The same checks as tests/unit/runtime/test_comm_threads.c; a failed check
 * prints what differed and aborts the job (exit code != 0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/moai_abi.h"
#include "comm/comm.h"

#define RANKS 4
#define COUNT (((size_t)1 << 20) + 3) /* floats: more than one 4 MiB chunk */

static moai_comm_t *world;

static void fail(const char *what, moai_status_t s) {
  fprintf(stderr, "comm_mpi: rank %d: FAILED: %s%s%s\n", moai_comm_rank(world), what,
          s ? ": " : "", s ? moai_status_message(s) : "");
  fflush(stderr);
  moai_comm_abort(world);
  exit(1);
}

static void ok(moai_status_t s, const char *what) {
  if (s) fail(what, s);
}

static void check(int cond, const char *what) {
  if (!cond) fail(what, NULL);
}

static float grid_value(int rank, size_t i) {
  return 1.0f / (float)(i % 1000 + 3) + 1e-3f * (float)(rank * 5 + 1);
}

/* Rank = row * 2 + col; rows ordered by key 1 - col, columns by row. */
static void grid(int me) {
  int row = me / 2, col = me % 2;
  moai_comm_t *rowc = NULL, *colc = NULL;
  ok(moai_comm_split(world, row, 1 - col, &rowc), "row split");
  ok(moai_comm_split(world, 2 + col, row, &colc), "column split");
  check(moai_comm_size(rowc) == 2 && moai_comm_rank(rowc) == 1 - col, "row group rank/size");
  check(moai_comm_size(colc) == 2 && moai_comm_rank(colc) == row, "column group rank/size");

  float *sum = malloc(COUNT * sizeof(float));
  check(sum != NULL, "memory");
  for (size_t i = 0; i < COUNT; ++i) sum[i] = grid_value(me, i);
  ok(moai_comm_allreduce(rowc, MOAI_ABI_F32, MOAI_COMM_SUM, sum, COUNT), "row sum");
  for (size_t i = 0; i < COUNT; ++i) {
    float want = grid_value(row * 2 + 1, i) + grid_value(row * 2, i); /* row rank order */
    if (memcmp(&want, &sum[i], sizeof(want)) != 0) fail("row sum is not in rank order", NULL);
  }
  free(sum);

  double max[4] = {-1.0 - row, row == 1 ? 7.5 : -0.25, col + 0.125 * row, row == 1 ? NAN : 1e300};
  ok(moai_comm_allreduce(colc, MOAI_ABI_F64, MOAI_COMM_MAX, max, 4), "column max");
  check(max[0] == -1.0 && max[1] == 7.5 && max[2] == col + 0.125 && isnan(max[3]),
        "column max values");

  /* Point-to-point addressed by the row group's ranks. */
  int token = me * 10;
  if (moai_comm_rank(rowc) == 0) {
    ok(moai_comm_send(rowc, &token, sizeof(token), 1, 0), "row send");
  } else {
    ok(moai_comm_recv(rowc, &token, sizeof(token), 0, 0), "row recv");
    check(token == (row * 2 + 1) * 10, "row message from the row's rank 0 (column 1)");
  }
  ok(moai_comm_barrier(rowc), "row barrier");
  moai_comm_destroy(rowc);
  moai_comm_destroy(colc);
}

/* Everyone sends first: tag 7 twice, a large tag 3 message, then receives
 * tag 3 before the two tag 7 messages (which must come in order). */
static void ring(int me) {
  int next = (me + 1) % RANKS, prev = (me + RANKS - 1) % RANKS;
  int first[2] = {me, 1}, second[2] = {me, 2};
  size_t big_n = 1 << 18; /* 1 MiB: past any eager limit */
  int *big = malloc(big_n * sizeof(int)), *got_big = malloc(big_n * sizeof(int));
  check(big && got_big, "memory");
  for (size_t i = 0; i < big_n; ++i) big[i] = me * 1000003 + (int)i;
  ok(moai_comm_send(world, first, sizeof(first), next, 7), "ring send 1");
  ok(moai_comm_send(world, second, sizeof(second), next, 7), "ring send 2");
  ok(moai_comm_send(world, big, big_n * sizeof(int), next, 3), "ring send big");
  memset(big, 0, big_n * sizeof(int)); /* the send kept its own copy */
  int got[2][2];
  ok(moai_comm_recv(world, got_big, big_n * sizeof(int), prev, 3), "ring recv big");
  ok(moai_comm_recv(world, got[0], sizeof(got[0]), prev, 7), "ring recv 1");
  ok(moai_comm_recv(world, got[1], sizeof(got[1]), prev, 7), "ring recv 2");
  for (size_t i = 0; i < big_n; ++i)
    if (got_big[i] != prev * 1000003 + (int)i) fail("ring: big message content", NULL);
  check(got[0][0] == prev && got[0][1] == 1 && got[1][0] == prev && got[1][1] == 2,
        "ring: same-tag messages out of order");
  free(big);
  free(got_big);
}

static void mismatch(int me) {
  double sent[2] = {1.5, 2.5}, got[2] = {0, 0};
  if (me == 0) {
    ok(moai_comm_send(world, sent, sizeof(sent), 1, 5), "mismatch send");
    ok(moai_comm_send(world, sent, sizeof(double), 1, 5), "mismatch send 2");
  } else if (me == 1) {
    moai_status_t s = moai_comm_recv(world, got, sizeof(double), 0, 5);
    check(moai_status_code(s) == MOAI_INTERNAL &&
              strstr(moai_status_message(s), "from rank 0 to rank 1 with tag 5: 16 bytes sent, "
                                             "8 expected") != NULL,
          "size mismatch error");
    moai_status_free(s);
    ok(moai_comm_recv(world, got, sizeof(double), 0, 5), "receive after a mismatch");
    check(got[0] == 1.5, "the message after a mismatch");
  }
  ok(moai_comm_barrier(world), "barrier");
}

/* Rank 3 aborts on its pair's handle; ranks 0 and 2 are blocked. */
static void abort_blocked(int me) {
  moai_comm_t *pair = NULL;
  ok(moai_comm_split(world, me / 2, 0, &pair), "pair split");
  if (me == 0) {
    double x;
    moai_status_t s = moai_comm_recv(world, &x, sizeof(x), 1, 0);
    fail("rank 0's receive returned", s);
  } else if (me == 2) {
    float x[3] = {1, 2, 3};
    moai_status_t s = moai_comm_allreduce(pair, MOAI_ABI_F32, MOAI_COMM_SUM, x, 3);
    fail("rank 2's all-reduce returned", s);
  } else if (me == 3) {
    fprintf(stderr, "comm_mpi: rank 3 aborts\n");
    fflush(stderr);
    moai_comm_abort(pair);
    fail("moai_comm_abort returned", NULL);
  }
  /* Rank 1 waits in a barrier until the abort ends the job. */
  moai_status_t s = moai_comm_barrier(world);
  fail("rank 1's barrier returned", s);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: comm_mpi LIBMOAI_MPI [abort]\n");
    return 2;
  }
  moai_status_t s = moai_comm_mpi_open(argv[1], &world);
  if (s) {
    moai_status_fprint(stderr, s, false);
    moai_status_free(s);
    return 1;
  }
  int me = moai_comm_rank(world);
  check(moai_comm_size(world) == RANKS, "run under mpirun -np 4");
  if (argc > 2 && strcmp(argv[2], "abort") == 0) abort_blocked(me);
  grid(me);
  ring(me);
  mismatch(me);
  if (me == 0) printf("comm_mpi: ok\n");
  moai_comm_destroy(world);
  return 0;
}
