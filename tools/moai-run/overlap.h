/* moai-run's data-parallel gradient sum overlapped with the backward
 * (docs/training.md, "Data parallelism"), as PyTorch's DDP does it: the
 * plan's grad_ready ops (moai-optimizer's buckets) call a hook when a bucket
 * of gradient accumulators is final; during the last micro-batch of a step
 * the hook hands the bucket to this rank's communication thread, which sums
 * it over the dp group on a communicator of its own while the backward goes
 * on. Before the update the main thread hands over what the backward did
 * not (a step whose share was all filler runs no micro-batch) and waits for
 * every bucket. Buckets are reduced in increasing order on every rank, each
 * tensor in rank order, so the results are the bits of the sum after the
 * backward (--no-overlap). */
#ifndef MOAI_TOOLS_MOAI_RUN_OVERLAP_H
#define MOAI_TOOLS_MOAI_RUN_OVERLAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/log.h"
#include "base/status.h"
#include "comm/comm.h"
#include "loader/plan.h"
#include "mesh.h"

/* Heap-allocated: under MPI a failing rank leaves it to its thread until
 * MPI_Abort ends the process. */
typedef struct overlap_t {
  moai_comm_t *comm;      /* the thread's dp communicator (owned) */
  moai_plan_tensor_t *tensors; /* a copy of the rank's plan tensors */
  int *bucket_of;         /* per tensor: its bucket, or -1 */
  size_t tensor_count;
  int buckets;
  pthread_t thread;
  bool started, sync_ready;
  pthread_mutex_t mutex;  /* guards everything below */
  pthread_cond_t cond;
  bool armed, quit;
  int handed, done;       /* this step: buckets handed over, buckets summed */
  int hooked;             /* ... of which the backward handed over */
  moai_status_t error;    /* the thread's first failure (stops it summing) */
} overlap_t;

/* Sets up the overlap of rank r (collective over the world when r has one
 * and dp > 1): splits the thread's dp communicator, agrees with the dp
 * group on whether to overlap (not with `disable`, a plan without buckets,
 * or an MPI library without MPI_THREAD_MULTIPLE, which rank 0 says once in
 * `log` at info level), starts the thread and binds the plan's grad-ready
 * hook. *out is NULL when it is off: the calls below take NULL and do
 * nothing, and the caller sums the gradients itself. */
moai_status_t overlap_open(mesh_rank_t *r, bool disable, const moai_plan_tensor_t *tensors,
                           size_t n, const moai_log_sink_t *log,
                           overlap_t **out) MOAI_MUST_USE;
/* Whether the next run of the step's whole plan is the step's last
 * micro-batch (its backward hands the buckets over). */
void overlap_arm(overlap_t *ov, bool last);
/* After the step's micro-batches: hands over the buckets the backward did
 * not, waits until every bucket is summed, and starts the next step.
 * *out_hooked: the buckets the backward handed over. The thread's failure,
 * if any, is returned. */
moai_status_t overlap_finish(overlap_t *ov, int *out_hooked) MOAI_MUST_USE;
/* Whether tensor i is summed by the thread (else the caller sums it). */
bool overlap_owns(const overlap_t *ov, size_t i);
/* Stops the thread and frees ov (NULL is fine). With `failed`, the rank is going
 * down: the other ranks are told first (threads), so that a thread waiting
 * for them in a sum wakes; under MPI the thread is left to the MPI_Abort
 * that follows. */
void overlap_close(overlap_t *ov, mesh_rank_t *r, bool failed);

#endif /* MOAI_TOOLS_MOAI_RUN_OVERLAP_H */
