/* The threads backend of comm.h: every rank is a thread of this process.
 *
 * A collective is two barriers around shared-memory work. Each rank posts
 * its buffer, waits for all, then handles its own slice of the elements for
 * every rank (reduced in rank order, written back to every buffer), and
 * waits again: no scratch memory, every element reduced in the same order
 * whatever the slicing. The barrier is a generation counter under a mutex,
 * so a rank's moai_comm_abort wakes every waiter with an error instead of
 * leaving it blocked.
 *
 * Groups split from the world (group_t) share the world's one mutex,
 * condition variable and failed rank: an abort on any handle wakes every
 * rank blocked in any group's barrier or receive. Point-to-point messages
 * are copies queued on the receiver's inbox in the order sent; a receive
 * takes the first one with its (source, tag), which keeps each sender's
 * messages of one tag in order. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi/moai_abi.h"
#include "comm/comm.h"
#include "comm/reduce.h"

typedef struct group_t group_t;

typedef struct threads_rank_t {
  moai_comm_t base; /* first: a moai_comm_t * is a threads_rank_t * */
  group_t *group;
  int world_rank;
  bool destroyed; /* moai_comm_destroy was called on this (sub-group) handle */
} threads_rank_t;

typedef struct message_t {
  struct message_t *next;
  int src, tag;
  size_t bytes;
  unsigned char data[]; /* the sent bytes */
} message_t;

struct group_t {
  moai_comm_threads_t *world;
  int size;
  int arrived; /* the barrier, under world->mutex */
  unsigned long generation;
  int live; /* sub-groups: handles not destroyed yet */
  group_t *prev, *next; /* the world's list of sub-groups */
  /* One allocation (`block`) holds the per-rank arrays: */
  void *block;
  threads_rank_t *ranks;
  void **posted;        /* each rank's buffer in the current collective */
  size_t *posted_count; /* and its element count (or bytes) */
  moai_comm_t **made;   /* split: each rank's new handle (NULL: not made) */
  message_t **inbox, **inbox_tail; /* messages to each rank, under world->mutex */
  int *color, *key;                 /* split: each rank's arguments */
};

struct moai_comm_threads_t {
  moai_allocator_t allocator;
  pthread_mutex_t mutex; /* guards every group's barrier and inboxes */
  pthread_cond_t cond;
  int failed_rank; /* -1; a world rank */
  group_t root;
  group_t *subgroups; /* made by split and not freed yet */
};

static const moai_comm_ops_t threads_ops; /* defined below the functions it holds */

/* ---- groups --------------------------------------------------------------- */

/* Sets up g as a group of `size` ranks whose world ranks are world_rank[i]
 * (NULL: i). */
static moai_status_t group_init(group_t *g, moai_comm_threads_t *w, int size,
                                const int *world_rank) {
  size_t n = (size_t)size;
  size_t per_rank = sizeof(threads_rank_t) + sizeof(void *) + sizeof(size_t) +
                    sizeof(moai_comm_t *) + 2 * sizeof(message_t *) + 2 * sizeof(int);
  memset(g, 0, sizeof(*g));
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(w->allocator, n * per_rank, &g->block)); /* zeroed */
  /* Pointer-aligned arrays first, the ints last. */
  g->ranks = g->block;
  g->posted = (void **)(g->ranks + n);
  g->posted_count = (size_t *)(g->posted + n);
  g->made = (moai_comm_t **)(g->posted_count + n);
  g->inbox = (message_t **)(g->made + n);
  g->inbox_tail = g->inbox + n;
  g->color = (int *)(g->inbox_tail + n);
  g->key = g->color + n;
  g->world = w;
  g->size = size;
  g->live = size;
  for (int r = 0; r < size; ++r)
    g->ranks[r] = (threads_rank_t){
        .base = {.ops = &threads_ops, .backend = "threads", .rank = r, .size = size,
                 .concurrent = true},
        .group = g,
        .world_rank = world_rank ? world_rank[r] : r};
  return moai_ok_status();
}

/* Frees g's arrays and the messages nobody received (not g itself). */
static void group_release(group_t *g) {
  moai_allocator_t a = g->world->allocator;
  for (int r = 0; g->inbox && r < g->size; ++r)
    for (message_t *m = g->inbox[r], *next; m; m = next) {
      next = m->next;
      moai_allocator_free(a, m);
    }
  moai_allocator_free(a, g->block);
  g->block = NULL;
}

static group_t *group_of(moai_comm_t *comm) { return ((threads_rank_t *)comm)->group; }

static moai_status_t aborted(moai_comm_threads_t *w, int failed_rank) {
  return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "rank %d of %d failed; this rank stopped with it",
                     failed_rank, w->root.size);
}

static moai_status_t group_barrier(group_t *g) {
  moai_comm_threads_t *w = g->world;
  pthread_mutex_lock(&w->mutex);
  bool failed = w->failed_rank >= 0;
  if (!failed) {
    unsigned long gen = g->generation;
    if (++g->arrived == g->size) {
      g->arrived = 0;
      g->generation++;
      pthread_cond_broadcast(&w->cond);
    } else {
      while (gen == g->generation && w->failed_rank < 0) pthread_cond_wait(&w->cond, &w->mutex);
      failed = gen == g->generation;
    }
  }
  int failed_rank = w->failed_rank;
  pthread_mutex_unlock(&w->mutex);
  return failed ? aborted(w, failed_rank) : moai_ok_status();
}

/* ---- collectives ---------------------------------------------------------- */

/* Posts this rank's buffer and waits for every rank's; checks the sizes. */
static moai_status_t post(moai_comm_t *comm, void *data, size_t count) {
  group_t *g = group_of(comm);
  g->posted[comm->rank] = data;
  g->posted_count[comm->rank] = count;
  MOAI_RETURN_IF_ERROR(group_barrier(g));
  for (int r = 0; r < g->size; ++r)
    if (g->posted_count[r] != count)
      return MOAI_STATUS(MOAI_INTERNAL, "collective of %zu elements on rank %d, %zu on rank %d",
                         count, comm->rank, g->posted_count[r], r);
  return moai_ok_status();
}

#define REDUCE_SLICE(T, COMBINE)                                                              \
  for (size_t i = lo; i < hi; ++i) {                                                          \
    T s = ((const T *)g->posted[0])[i];                                                       \
    for (int r = 1; r < g->size; ++r) s = COMBINE(op, s, ((const T *)g->posted[r])[i]);       \
    for (int r = 0; r < g->size; ++r) ((T *)g->posted[r])[i] = s;                             \
  }

static moai_status_t threads_allreduce(moai_comm_t *comm, int32_t dtype, moai_comm_reduce_t op,
                                       void *data, size_t count) {
  group_t *g = group_of(comm);
  MOAI_RETURN_IF_ERROR(post(comm, data, count));
  size_t lo = count * (size_t)comm->rank / (size_t)g->size;
  size_t hi = count * (size_t)(comm->rank + 1) / (size_t)g->size;
  if (dtype == MOAI_ABI_F32) {
    REDUCE_SLICE(float, moai_comm_combine_f32)
  } else {
    REDUCE_SLICE(double, moai_comm_combine_f64)
  }
  return group_barrier(g);
}

static moai_status_t threads_broadcast(moai_comm_t *comm, void *data, size_t bytes, int root) {
  group_t *g = group_of(comm);
  MOAI_RETURN_IF_ERROR(post(comm, data, bytes));
  if (comm->rank != root && bytes) memcpy(data, g->posted[root], bytes);
  return group_barrier(g);
}

static moai_status_t threads_barrier(moai_comm_t *comm) { return group_barrier(group_of(comm)); }

/* ---- point-to-point ------------------------------------------------------- */

static moai_status_t threads_send(moai_comm_t *comm, const void *data, size_t bytes, int dst,
                                  int tag) {
  group_t *g = group_of(comm);
  moai_comm_threads_t *w = g->world;
  if (bytes > SIZE_MAX - sizeof(message_t))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "send of %zu bytes to rank %d: too large", bytes,
                       dst);
  message_t *m = NULL;
  MOAI_RETURN_IF_ERROR_CTX(moai_allocator_malloc(w->allocator, sizeof(*m) + bytes, (void **)&m),
                           "while copying a message of %zu bytes from rank %d to rank %d (tag "
                           "%d)", bytes, comm->rank, dst, tag);
  *m = (message_t){.src = comm->rank, .tag = tag, .bytes = bytes};
  if (bytes) memcpy(m->data, data, bytes);
  pthread_mutex_lock(&w->mutex);
  int failed_rank = w->failed_rank;
  if (failed_rank < 0) {
    if (g->inbox_tail[dst]) g->inbox_tail[dst]->next = m;
    else g->inbox[dst] = m;
    g->inbox_tail[dst] = m;
    pthread_cond_broadcast(&w->cond);
  }
  pthread_mutex_unlock(&w->mutex);
  if (failed_rank < 0) return moai_ok_status();
  moai_allocator_free(w->allocator, m);
  return aborted(w, failed_rank);
}

/* Unlinks and returns the first message to `dst` from `src` with `tag`, or
 * NULL (under the mutex). */
static message_t *inbox_take(group_t *g, int dst, int src, int tag) {
  message_t *prev = NULL;
  for (message_t *m = g->inbox[dst]; m; prev = m, m = m->next) {
    if (m->src != src || m->tag != tag) continue;
    if (prev) prev->next = m->next;
    else g->inbox[dst] = m->next;
    if (g->inbox_tail[dst] == m) g->inbox_tail[dst] = prev;
    return m;
  }
  return NULL;
}

static moai_status_t threads_recv(moai_comm_t *comm, void *data, size_t bytes, int src, int tag) {
  group_t *g = group_of(comm);
  moai_comm_threads_t *w = g->world;
  message_t *m = NULL;
  pthread_mutex_lock(&w->mutex);
  while (w->failed_rank < 0 && !(m = inbox_take(g, comm->rank, src, tag)))
    pthread_cond_wait(&w->cond, &w->mutex);
  int failed_rank = w->failed_rank;
  pthread_mutex_unlock(&w->mutex);
  if (!m) return aborted(w, failed_rank);
  moai_status_t status = moai_ok_status();
  if (m->bytes != bytes)
    status = MOAI_STATUS(MOAI_INTERNAL, "message from rank %d to rank %d with tag %d: %zu bytes "
                         "sent, %zu expected", src, comm->rank, tag, m->bytes, bytes);
  else if (bytes)
    memcpy(data, m->data, bytes);
  moai_allocator_free(w->allocator, m);
  return status;
}

/* ---- split ------------------------------------------------------------------ */

typedef struct split_order_t {
  int key, rank;
} split_order_t;

static int split_order_cmp(const void *a, const void *b) {
  const split_order_t *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Makes the sub-group of g's ranks with `color` and sets g->made[r] for each
 * member r; g->color and g->key hold every rank's arguments. */
static moai_status_t make_subgroup(group_t *g, int color) {
  moai_comm_threads_t *w = g->world;
  int n = 0;
  for (int r = 0; r < g->size; ++r) n += g->color[r] == color;
  split_order_t *order = NULL;
  int *world_rank = NULL;
  group_t *sub = NULL;
  moai_status_t status =
      moai_allocator_malloc(w->allocator, (size_t)n * sizeof(*order), (void **)&order);
  if (!status)
    status = moai_allocator_malloc(w->allocator, (size_t)n * sizeof(int), (void **)&world_rank);
  if (!status) status = moai_allocator_malloc(w->allocator, sizeof(*sub), (void **)&sub);
  if (!status) {
    for (int r = 0, i = 0; r < g->size; ++r)
      if (g->color[r] == color) order[i++] = (split_order_t){g->key[r], r};
    qsort(order, (size_t)n, sizeof(*order), split_order_cmp);
    for (int i = 0; i < n; ++i) world_rank[i] = g->ranks[order[i].rank].world_rank;
    status = group_init(sub, w, n, world_rank);
  }
  if (status) {
    moai_allocator_free(w->allocator, sub);
    sub = NULL;
  } else {
    for (int i = 0; i < n; ++i) g->made[order[i].rank] = &sub->ranks[i].base;
    pthread_mutex_lock(&w->mutex);
    sub->next = w->subgroups;
    if (w->subgroups) w->subgroups->prev = sub;
    w->subgroups = sub;
    pthread_mutex_unlock(&w->mutex);
  }
  moai_allocator_free(w->allocator, order);
  moai_allocator_free(w->allocator, world_rank);
  return status;
}

/* The lowest rank of each color makes its group between two barriers; the
 * second barrier publishes g->made. A later collective on g cannot overwrite
 * g->made before every rank has read its entry: it starts with a barrier. */
static moai_status_t threads_split(moai_comm_t *comm, int color, int key, moai_comm_t **out) {
  group_t *g = group_of(comm);
  int me = comm->rank;
  g->color[me] = color;
  g->key[me] = key;
  g->made[me] = NULL;
  MOAI_RETURN_IF_ERROR(group_barrier(g));
  int leader = 0; /* the lowest rank with this color */
  while (g->color[leader] != color) ++leader;
  moai_status_t made = leader == me ? make_subgroup(g, color) : moai_ok_status();
  moai_status_t status = group_barrier(g);
  if (status) {
    moai_status_free(made);
    return status;
  }
  if (made) return made;
  if (!g->made[me])
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "split: rank %d could not make the group of color "
                       "%d (out of memory); rank %d is in it", leader, color, me);
  *out = g->made[me];
  return moai_ok_status();
}

/* ---- abort and destroy -------------------------------------------------------- */

static void threads_abort(moai_comm_t *comm) {
  moai_comm_threads_t *w = group_of(comm)->world;
  pthread_mutex_lock(&w->mutex);
  if (w->failed_rank < 0) w->failed_rank = ((threads_rank_t *)comm)->world_rank;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->mutex);
}

/* Sub-group handles only: the last rank to destroy its handle frees the
 * group (the world's own handles are freed with the world). */
static void threads_destroy(moai_comm_t *comm) {
  threads_rank_t *h = (threads_rank_t *)comm;
  group_t *g = h->group;
  moai_comm_threads_t *w = g->world;
  if (g == &w->root) return;
  pthread_mutex_lock(&w->mutex);
  bool last = false;
  if (!h->destroyed) {
    h->destroyed = true;
    last = --g->live == 0;
  }
  if (last) {
    if (g->prev) g->prev->next = g->next;
    else w->subgroups = g->next;
    if (g->next) g->next->prev = g->prev;
  }
  pthread_mutex_unlock(&w->mutex);
  if (last) {
    group_release(g);
    moai_allocator_free(w->allocator, g);
  }
}

static const moai_comm_ops_t threads_ops = {
    .allreduce = threads_allreduce,
    .broadcast = threads_broadcast,
    .barrier = threads_barrier,
    .send = threads_send,
    .recv = threads_recv,
    .split = threads_split,
    .abort = threads_abort,
    .destroy = threads_destroy,
};

/* ---- the world ---------------------------------------------------------------- */

moai_status_t moai_comm_threads_create(int size, moai_allocator_t allocator,
                                       moai_comm_threads_t **out) {
  if (size < 1 || size > 65536)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "a threads group of %d ranks (1 to 65536)", size);
  moai_comm_threads_t *w = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, sizeof(*w), (void **)&w));
  w->allocator = allocator;
  w->failed_rank = -1;
  moai_status_t status = group_init(&w->root, w, size, NULL);
  if (status) {
    moai_allocator_free(allocator, w);
    return status;
  }
  pthread_mutex_init(&w->mutex, NULL);
  pthread_cond_init(&w->cond, NULL);
  *out = w;
  return moai_ok_status();
}

moai_comm_t *moai_comm_threads_rank(moai_comm_threads_t *world, int rank) {
  return world && rank >= 0 && rank < world->root.size ? &world->root.ranks[rank].base : NULL;
}

int moai_comm_threads_failed_rank(const moai_comm_threads_t *world) {
  return world ? world->failed_rank : -1;
}

void moai_comm_threads_destroy(moai_comm_threads_t *w) {
  if (!w) return;
  moai_allocator_t a = w->allocator;
  for (group_t *g = w->subgroups, *next; g; g = next) {
    next = g->next;
    group_release(g);
    moai_allocator_free(a, g);
  }
  group_release(&w->root);
  pthread_mutex_destroy(&w->mutex);
  pthread_cond_destroy(&w->cond);
  moai_allocator_free(a, w);
}
