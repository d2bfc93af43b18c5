/* The threads backend of comm.h: every rank is a thread of this process.
 *
 * A collective is two barriers around shared-memory work. Each rank posts
 * its buffer, waits for all, then handles its own slice of the elements for
 * every rank (sum in rank order, written back to every buffer), and waits
 * again: no scratch memory, every element summed in the same order whatever
 * the slicing. The barrier is a generation counter under a mutex, so a
 * rank's moai_comm_abort wakes every waiter with an error instead of
 * leaving it blocked. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "abi/moai_abi.h"
#include "comm/comm.h"

typedef struct threads_rank_t {
  moai_comm_t base; /* first: a moai_comm_t * is a threads_rank_t * */
  moai_comm_threads_t *world;
} threads_rank_t;

struct moai_comm_threads_t {
  moai_allocator_t allocator;
  int size;
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  int arrived;
  unsigned long generation;
  int failed_rank; /* -1 */
  threads_rank_t *ranks;
  void **posted;        /* each rank's buffer in the current collective */
  size_t *posted_count; /* and its element count (or bytes) */
};

static moai_status_t aborted(moai_comm_threads_t *w) {
  return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "rank %d of %d failed; this rank stopped with it",
                     w->failed_rank, w->size);
}

static moai_status_t world_barrier(moai_comm_threads_t *w) {
  pthread_mutex_lock(&w->mutex);
  bool failed = w->failed_rank >= 0;
  if (!failed) {
    unsigned long gen = w->generation;
    if (++w->arrived == w->size) {
      w->arrived = 0;
      w->generation++;
      pthread_cond_broadcast(&w->cond);
    } else {
      while (gen == w->generation && w->failed_rank < 0) pthread_cond_wait(&w->cond, &w->mutex);
      failed = gen == w->generation;
    }
  }
  pthread_mutex_unlock(&w->mutex);
  return failed ? aborted(w) : moai_ok_status();
}

static moai_comm_threads_t *world_of(moai_comm_t *comm) {
  return ((threads_rank_t *)comm)->world;
}

/* Posts this rank's buffer and waits for every rank's; checks the sizes. */
static moai_status_t post(moai_comm_t *comm, void *data, size_t count) {
  moai_comm_threads_t *w = world_of(comm);
  w->posted[comm->rank] = data;
  w->posted_count[comm->rank] = count;
  MOAI_RETURN_IF_ERROR(world_barrier(w));
  for (int r = 0; r < w->size; ++r)
    if (w->posted_count[r] != count)
      return MOAI_STATUS(MOAI_INTERNAL, "collective of %zu elements on rank %d, %zu on rank %d",
                         count, comm->rank, w->posted_count[r], r);
  return moai_ok_status();
}

static moai_status_t threads_allreduce(moai_comm_t *comm, int32_t dtype, void *data,
                                       size_t count) {
  moai_comm_threads_t *w = world_of(comm);
  MOAI_RETURN_IF_ERROR(post(comm, data, count));
  size_t lo = count * (size_t)comm->rank / (size_t)w->size;
  size_t hi = count * (size_t)(comm->rank + 1) / (size_t)w->size;
  if (dtype == MOAI_ABI_F32) {
    for (size_t i = lo; i < hi; ++i) {
      float s = ((const float *)w->posted[0])[i];
      for (int r = 1; r < w->size; ++r) s += ((const float *)w->posted[r])[i];
      for (int r = 0; r < w->size; ++r) ((float *)w->posted[r])[i] = s;
    }
  } else {
    for (size_t i = lo; i < hi; ++i) {
      double s = ((const double *)w->posted[0])[i];
      for (int r = 1; r < w->size; ++r) s += ((const double *)w->posted[r])[i];
      for (int r = 0; r < w->size; ++r) ((double *)w->posted[r])[i] = s;
    }
  }
  return world_barrier(w);
}

static moai_status_t threads_broadcast(moai_comm_t *comm, void *data, size_t bytes, int root) {
  moai_comm_threads_t *w = world_of(comm);
  MOAI_RETURN_IF_ERROR(post(comm, data, bytes));
  if (comm->rank != root && bytes) memcpy(data, w->posted[root], bytes);
  return world_barrier(w);
}

static moai_status_t threads_barrier(moai_comm_t *comm) { return world_barrier(world_of(comm)); }

static void threads_abort(moai_comm_t *comm) {
  moai_comm_threads_t *w = world_of(comm);
  pthread_mutex_lock(&w->mutex);
  if (w->failed_rank < 0) w->failed_rank = comm->rank;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->mutex);
}

static const moai_comm_ops_t threads_ops = {threads_allreduce, threads_broadcast,
                                            threads_barrier, threads_abort, NULL};

moai_status_t moai_comm_threads_create(int size, moai_allocator_t allocator,
                                       moai_comm_threads_t **out) {
  if (size < 1 || size > 65536)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "a threads group of %d ranks (1 to 65536)", size);
  moai_comm_threads_t *w = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, sizeof(*w), (void **)&w));
  memset(w, 0, sizeof(*w));
  w->allocator = allocator;
  w->size = size;
  w->failed_rank = -1;
  moai_status_t status =
      moai_allocator_malloc(allocator, (size_t)size * sizeof(*w->ranks), (void **)&w->ranks);
  if (!status)
    status = moai_allocator_malloc(allocator, (size_t)size * sizeof(void *), (void **)&w->posted);
  if (!status)
    status = moai_allocator_malloc(allocator, (size_t)size * sizeof(size_t),
                                   (void **)&w->posted_count);
  if (status) {
    moai_allocator_free(allocator, w->ranks);
    moai_allocator_free(allocator, w->posted);
    moai_allocator_free(allocator, w);
    return status;
  }
  pthread_mutex_init(&w->mutex, NULL);
  pthread_cond_init(&w->cond, NULL);
  for (int r = 0; r < size; ++r)
    w->ranks[r] = (threads_rank_t){
        .base = {.ops = &threads_ops, .backend = "threads", .rank = r, .size = size}, .world = w};
  *out = w;
  return moai_ok_status();
}

moai_comm_t *moai_comm_threads_rank(moai_comm_threads_t *world, int rank) {
  return world && rank >= 0 && rank < world->size ? &world->ranks[rank].base : NULL;
}

int moai_comm_threads_failed_rank(const moai_comm_threads_t *world) {
  return world ? world->failed_rank : -1;
}

void moai_comm_threads_destroy(moai_comm_threads_t *w) {
  if (!w) return;
  pthread_mutex_destroy(&w->mutex);
  pthread_cond_destroy(&w->cond);
  moai_allocator_t a = w->allocator;
  moai_allocator_free(a, w->ranks);
  moai_allocator_free(a, w->posted);
  moai_allocator_free(a, w->posted_count);
  moai_allocator_free(a, w);
}
