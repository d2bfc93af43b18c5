/* moai-run's gradient sum overlapped with the backward: see overlap.h. */
#include "overlap.h"

#include <stdlib.h>
#include <string.h>

#include "abi/moai_abi.h"
#include "io/dtype.h"

/* Sums bucket b's accumulators over the dp group, in tensor order. */
static moai_status_t reduce_bucket(overlap_t *ov, int b) {
  for (size_t i = 0; i < ov->tensor_count; ++i) {
    if (ov->bucket_of[i] != b) continue;
    const moai_plan_tensor_t *t = &ov->tensors[i];
    MOAI_RETURN_IF_ERROR_CTX(
        moai_comm_allreduce_sum(ov->comm, MOAI_ABI_F32, t->data, (size_t)(t->nbytes / 4)),
        "while summing '%s' (gradient bucket %d) over %d dp ranks", t->name, b,
        moai_comm_size(ov->comm));
  }
  return moai_ok_status();
}

/* The communication thread: sums the buckets handed over, in order, until
 * told to quit; after a failure it only waits for that. */
static void *comm_main(void *arg) {
  overlap_t *ov = arg;
  pthread_mutex_lock(&ov->mutex);
  for (;;) {
    while (!ov->quit && (ov->error || ov->done == ov->handed))
      pthread_cond_wait(&ov->cond, &ov->mutex);
    if (ov->quit) break;
    int b = ov->done;
    pthread_mutex_unlock(&ov->mutex);
    moai_status_t s = reduce_bucket(ov, b);
    pthread_mutex_lock(&ov->mutex);
    if (s) ov->error = s;
    else ov->done = b + 1;
    pthread_cond_broadcast(&ov->cond);
  }
  pthread_mutex_unlock(&ov->mutex);
  return NULL;
}

/* Hands buckets up to `upto` (exclusive) to the thread; under the mutex. */
static void hand_over(overlap_t *ov, int upto) {
  if (upto > ov->handed) {
    ov->handed = upto;
    pthread_cond_broadcast(&ov->cond);
  }
}

/* The plan's grad-ready hook. Buckets come in increasing order; a bucket
 * handed over implies the ones before it (they were all final earlier). */
static moai_status_t on_grad_ready(void *user, int bucket) {
  overlap_t *ov = user;
  moai_status_t status = moai_ok_status();
  pthread_mutex_lock(&ov->mutex);
  if (ov->error) {
    status = MOAI_STATUS(moai_status_code(ov->error), "the gradient sum over the dp group "
                         "failed: %s", moai_status_message(ov->error));
  } else if (ov->armed && bucket >= 0 && bucket < ov->buckets) {
    if (bucket + 1 > ov->handed) ov->hooked += bucket + 1 - ov->handed;
    hand_over(ov, bucket + 1);
  }
  pthread_mutex_unlock(&ov->mutex);
  return status;
}

/* Why this rank cannot overlap (NULL: it can). */
static const char *cannot_overlap(const overlap_t *ov, bool disable) {
  if (disable) return "--no-overlap";
  if (ov->buckets == 0) return "the plan has no gradient buckets (compiled without dp > 1)";
  if (!ov->comm->concurrent)
    return "the MPI library does not provide MPI_THREAD_MULTIPLE, so gradients are summed "
           "after the backward";
  return NULL;
}

/* Frees what overlap_open made before its thread started. */
static void overlap_free(overlap_t *ov) {
  if (ov->sync_ready) {
    pthread_cond_destroy(&ov->cond);
    pthread_mutex_destroy(&ov->mutex);
  }
  moai_status_free(ov->error);
  free(ov->bucket_of);
  free(ov->tensors);
  moai_comm_destroy(ov->comm);
  free(ov);
}

/* Fills the buckets and checks the dtypes. */
static moai_status_t read_buckets(overlap_t *ov, const moai_plan_t *plan,
                                  const moai_plan_tensor_t *tensors, size_t n) {
  ov->tensor_count = n;
  ov->tensors = malloc((n ? n : 1) * sizeof(*ov->tensors));
  ov->bucket_of = malloc((n ? n : 1) * sizeof(*ov->bucket_of));
  if (!ov->tensors || !ov->bucket_of) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  if (n) memcpy(ov->tensors, tensors, n * sizeof(*tensors));
  for (size_t i = 0; i < n; ++i) {
    int b = moai_plan_grad_bucket(plan, i);
    if (b >= 0 && tensors[i].dtype != MOAI_ABI_F32)
      return MOAI_STATUS(MOAI_UNIMPLEMENTED, "state '%s' is %s: data parallelism sums float32 "
                         "accumulators only", tensors[i].name,
                         moai_abi_dtype_name(tensors[i].dtype));
    ov->bucket_of[i] = b;
    if (b >= ov->buckets) ov->buckets = b + 1;
  }
  return moai_ok_status();
}

/* Agrees on overlapping (false: off) and starts the thread. */
static moai_status_t start(overlap_t *ov, mesh_rank_t *r, bool disable,
                           const moai_log_sink_t *log, bool *out_on) {
  *out_on = false;
  /* Every rank of the dp group must sum the same way: any rank that cannot
   * overlap, or buckets that differ between the ranks' devices (ZeRO-1 gives
   * each its own), turn it off for the group. */
  const char *why = cannot_overlap(ov, disable);
  double votes[3] = {why ? 1 : 0, ov->buckets, -ov->buckets};
  MOAI_RETURN_IF_ERROR_CTX(moai_comm_allreduce(ov->comm, MOAI_ABI_F64, MOAI_COMM_MAX, votes, 3),
                           "while agreeing on the gradient overlap");
  if (!why && votes[1] != -votes[2])
    why = "the dp ranks' devices have different gradient buckets";
  if (votes[0] != 0 || votes[1] != -votes[2]) {
    if (r->rank == 0 && why && !disable && ov->buckets > 0)
      MOAI_LOG(log, MOAI_LOG_LEVEL_INFO, "moai-run: no overlap of the gradient sum with the "
               "backward: %s", why);
    return moai_ok_status();
  }
  if (pthread_mutex_init(&ov->mutex, NULL) != 0)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "cannot create the gradient thread's mutex");
  if (pthread_cond_init(&ov->cond, NULL) != 0) {
    pthread_mutex_destroy(&ov->mutex);
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "cannot create the gradient thread's condition");
  }
  ov->sync_ready = true;
  if (pthread_create(&ov->thread, NULL, comm_main, ov) != 0)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "cannot start the gradient thread of rank %d",
                       r->rank);
  ov->started = true;
  *out_on = true;
  return moai_ok_status();
}

moai_status_t overlap_open(mesh_rank_t *r, bool disable, const moai_plan_tensor_t *tensors,
                           size_t n, const moai_log_sink_t *log, overlap_t **out) {
  *out = NULL;
  if (!r->world || r->dp <= 1) return moai_ok_status();
  overlap_t *ov = calloc(1, sizeof(*ov));
  if (!ov) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  /* Collective over the world, like the groups of mesh_rank_join. */
  moai_status_t status =
      moai_status_annotate(moai_comm_split(r->world, (int)(r->s * r->tp + r->t), (int)r->d,
                                           &ov->comm),
                           "while forming the dp groups of the gradient thread");
  if (!status) status = read_buckets(ov, r->plan, tensors, n);
  bool on = false;
  if (!status) status = start(ov, r, disable, log, &on);
  if (status || !on) {
    overlap_free(ov); /* the thread never started */
    return status;
  }
  moai_plan_set_grad_ready(r->plan, on_grad_ready, ov);
  *out = ov;
  return moai_ok_status();
}

void overlap_arm(overlap_t *ov, bool last) {
  if (!ov) return;
  pthread_mutex_lock(&ov->mutex);
  ov->armed = last;
  pthread_mutex_unlock(&ov->mutex);
}

moai_status_t overlap_finish(overlap_t *ov, int *out_hooked) {
  *out_hooked = 0;
  if (!ov) return moai_ok_status();
  pthread_mutex_lock(&ov->mutex);
  ov->armed = false;
  hand_over(ov, ov->buckets);
  while (!ov->error && ov->done < ov->buckets) pthread_cond_wait(&ov->cond, &ov->mutex);
  moai_status_t status = ov->error;
  ov->error = NULL;
  *out_hooked = ov->hooked;
  ov->handed = ov->done = ov->hooked = 0;
  pthread_mutex_unlock(&ov->mutex);
  return status;
}

bool overlap_owns(const overlap_t *ov, size_t i) {
  return ov && i < ov->tensor_count && ov->bucket_of[i] >= 0;
}

void overlap_close(overlap_t *ov, mesh_rank_t *r, bool failed) {
  if (!ov) return;
  moai_plan_set_grad_ready(r->plan, NULL, NULL);
  bool mpi = strcmp(ov->comm->backend, "mpi") == 0;
  /* A thread blocked in a sum waits for the other ranks: on threads, this
   * rank's abort wakes it; under MPI, MPI_Abort ends the process soon. */
  if (failed && !mpi) moai_comm_abort(r->world);
  pthread_mutex_lock(&ov->mutex);
  ov->quit = true;
  pthread_cond_broadcast(&ov->cond);
  pthread_mutex_unlock(&ov->mutex);
  if (failed && mpi) {
    pthread_detach(ov->thread); /* it may still use ov: left to MPI_Abort */
    return;
  }
  pthread_join(ov->thread, NULL);
  overlap_free(ov);
}
