/* The MPI backend of comm.h, built as libmoai_mpi.so (the only moai object
 * that links libmpi) and loaded by moai_comm_mpi_open under mpirun.
 *
 * The all-reduce is an MPI_Allgather of fixed-size chunks followed by the
 * reduction in rank order on every rank (comm/reduce.h, as the threads
 * backend), not MPI_Allreduce: MPI leaves the order of MPI_SUM's additions
 * to the implementation (it may depend on the process count and the
 * algorithm chosen) and MPI_MAX's treatment of NaN unsaid, and moai
 * promises the same bits run to run and as the threads backend. The
 * chunking bounds the extra memory to size x MPI_CHUNK_BYTES.
 *
 * A send copies the bytes and starts an MPI_Isend of the copy; the copy is
 * freed once MPI_Test says the send is done (checked on later calls) or, at
 * the latest, when the handle is destroyed (MPI_Wait). Barriers only test:
 * waiting there could deadlock a receiver that receives after the barrier.
 *
 * MPI is initialised asking for MPI_THREAD_MULTIPLE, so that moai-run's
 * communication thread can reduce gradients on its own communicator while
 * the main thread uses others; a handle's `concurrent` says whether the
 * library granted it (if not, only the thread that opened the backend may
 * call these functions, as with MPI_THREAD_FUNNELED). One handle is never
 * used by two threads at once. */
#include <limits.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/moai_abi.h"
#include "comm/comm.h"
#include "comm/reduce.h"

#define MPI_CHUNK_BYTES ((size_t)4 << 20)

/* A send not known to be done, and the copy of its bytes. */
typedef struct pending_send_t {
  struct pending_send_t *next;
  MPI_Request request;
  int dst, tag;
  unsigned char data[];
} pending_send_t;

typedef struct mpi_comm_t {
  moai_comm_t base;
  MPI_Comm comm;   /* MPI_COMM_WORLD, or a communicator from MPI_Comm_split */
  void *scratch;   /* the all-reduce's gathered chunk, made on first use */
  size_t scratch_bytes;
  pending_send_t *pending;
} mpi_comm_t;

static moai_status_t mpi_error(int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof(msg), "error %d", rc);
  return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "MPI %s failed: %s", what, msg);
}

/* ---- collectives ---------------------------------------------------------- */

static moai_status_t mpi_allreduce(moai_comm_t *comm, int32_t dtype, moai_comm_reduce_t op,
                                   void *data, size_t count) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  size_t esize = dtype == MOAI_ABI_F32 ? 4 : 8;
  size_t chunk = MPI_CHUNK_BYTES / esize;
  size_t need = (size_t)comm->size * (count < chunk ? count : chunk) * esize;
  if (need > c->scratch_bytes) {
    void *grown = realloc(c->scratch, need);
    if (!grown)
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory for the MPI all-reduce buffer (%zu "
                         "bytes)", need);
    c->scratch = grown;
    c->scratch_bytes = need;
  }
  MPI_Datatype type = dtype == MOAI_ABI_F32 ? MPI_FLOAT : MPI_DOUBLE;
  for (size_t lo = 0; lo < count; lo += chunk) {
    size_t n = count - lo < chunk ? count - lo : chunk;
    char *mine = (char *)data + lo * esize;
    int rc = MPI_Allgather(mine, (int)n, type, c->scratch, (int)n, type, c->comm);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "all-gather");
    if (dtype == MOAI_ABI_F32) {
      const float *all = c->scratch;
      float *out = (float *)mine;
      for (size_t i = 0; i < n; ++i) {
        float s = all[i];
        for (int r = 1; r < comm->size; ++r)
          s = moai_comm_combine_f32(op, s, all[(size_t)r * n + i]);
        out[i] = s;
      }
    } else {
      const double *all = c->scratch;
      double *out = (double *)mine;
      for (size_t i = 0; i < n; ++i) {
        double s = all[i];
        for (int r = 1; r < comm->size; ++r)
          s = moai_comm_combine_f64(op, s, all[(size_t)r * n + i]);
        out[i] = s;
      }
    }
  }
  return moai_ok_status();
}

static moai_status_t mpi_broadcast(moai_comm_t *comm, void *data, size_t bytes, int root) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  for (size_t lo = 0; lo < bytes; lo += MPI_CHUNK_BYTES) {
    size_t n = bytes - lo < MPI_CHUNK_BYTES ? bytes - lo : MPI_CHUNK_BYTES;
    int rc = MPI_Bcast((char *)data + lo, (int)n, MPI_BYTE, root, c->comm);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "broadcast");
  }
  return moai_ok_status();
}

/* ---- point-to-point ------------------------------------------------------- */

/* Frees the copies of the sends that are done (all of them, waiting, with
 * `wait`); returns the first send's failure. */
static moai_status_t reap_sends(mpi_comm_t *c, bool wait) {
  moai_status_t status = moai_ok_status();
  for (pending_send_t **p = &c->pending; *p;) {
    pending_send_t *s = *p;
    int done = 1;
    int rc = wait ? MPI_Wait(&s->request, MPI_STATUS_IGNORE)
                  : MPI_Test(&s->request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS && !status) {
      status = mpi_error(rc, "send");
      status = moai_status_annotate(status, "while sending to rank %d with tag %d (rank %d)",
                                    s->dst, s->tag, c->base.rank);
    }
    if (done || rc != MPI_SUCCESS) {
      *p = s->next;
      free(s);
    } else {
      p = &s->next;
    }
  }
  return status;
}

static moai_status_t mpi_send(moai_comm_t *comm, const void *data, size_t bytes, int dst,
                              int tag) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  MOAI_RETURN_IF_ERROR(reap_sends(c, false));
  if (bytes > (size_t)INT_MAX)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "send of %zu bytes from rank %d to rank %d (tag %d): "
                       "the MPI backend sends at most %d bytes at once", bytes, comm->rank, dst,
                       tag, INT_MAX);
  pending_send_t *s = malloc(sizeof(*s) + bytes);
  if (!s)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory copying a message of %zu bytes from "
                       "rank %d to rank %d (tag %d)", bytes, comm->rank, dst, tag);
  s->dst = dst;
  s->tag = tag;
  if (bytes) memcpy(s->data, data, bytes);
  int rc = MPI_Isend(s->data, (int)bytes, MPI_BYTE, dst, tag, c->comm, &s->request);
  if (rc != MPI_SUCCESS) {
    free(s);
    return moai_status_annotate(mpi_error(rc, "send"), "while sending to rank %d with tag %d "
                                "(rank %d)", dst, tag, comm->rank);
  }
  s->next = c->pending;
  c->pending = s;
  return moai_ok_status();
}

/* Probes first, so that a message of the wrong size is reported with both
 * sizes (MPI_Recv would only say "truncated") and still consumed. */
static moai_status_t mpi_recv(moai_comm_t *comm, void *data, size_t bytes, int src, int tag) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  MOAI_RETURN_IF_ERROR(reap_sends(c, false));
  MPI_Message message;
  MPI_Status st;
  int rc = MPI_Mprobe(src, tag, c->comm, &message, &st);
  int sent = 0;
  if (rc == MPI_SUCCESS) rc = MPI_Get_count(&st, MPI_BYTE, &sent);
  if (rc != MPI_SUCCESS)
    return moai_status_annotate(mpi_error(rc, "receive"), "while receiving from rank %d with "
                                "tag %d (rank %d)", src, tag, comm->rank);
  if (sent >= 0 && (size_t)sent == bytes) {
    rc = MPI_Mrecv(data, sent, MPI_BYTE, &message, MPI_STATUS_IGNORE);
    return rc == MPI_SUCCESS
               ? moai_ok_status()
               : moai_status_annotate(mpi_error(rc, "receive"), "while receiving from rank %d "
                                      "with tag %d (rank %d)", src, tag, comm->rank);
  }
  void *dropped = malloc(sent > 0 ? (size_t)sent : 1);
  if (dropped) {
    rc = MPI_Mrecv(dropped, sent > 0 ? sent : 0, MPI_BYTE, &message, MPI_STATUS_IGNORE);
    (void)rc; /* the size mismatch is the error to report */
    free(dropped);
  }
  return MOAI_STATUS(MOAI_INTERNAL, "message from rank %d to rank %d with tag %d: %d bytes sent, "
                     "%zu expected", src, comm->rank, tag, sent, bytes);
}

static moai_status_t mpi_barrier(moai_comm_t *comm) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  MOAI_RETURN_IF_ERROR(reap_sends(c, false));
  int rc = MPI_Barrier(c->comm);
  return rc == MPI_SUCCESS ? moai_ok_status() : mpi_error(rc, "barrier");
}

/* ---- handles -------------------------------------------------------------- */

static const moai_comm_ops_t mpi_ops;

/* A handle on `comm` (which it will free unless it is MPI_COMM_WORLD). */
static moai_status_t wrap(MPI_Comm comm, moai_comm_t **out) {
  mpi_comm_t *c = calloc(1, sizeof(*c));
  if (!c) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  c->comm = comm;
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm, &c->base.rank);
  MPI_Comm_size(comm, &c->base.size);
  c->base.ops = &mpi_ops;
  c->base.backend = "mpi";
  int provided = MPI_THREAD_SINGLE;
  c->base.concurrent = MPI_Query_thread(&provided) == MPI_SUCCESS &&
                       provided == MPI_THREAD_MULTIPLE;
  *out = &c->base;
  return moai_ok_status();
}

static moai_status_t mpi_split(moai_comm_t *comm, int color, int key, moai_comm_t **out) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  MPI_Comm sub;
  int rc = MPI_Comm_split(c->comm, color, key, &sub);
  if (rc != MPI_SUCCESS)
    return moai_status_annotate(mpi_error(rc, "split"), "while splitting with color %d, key %d "
                                "(rank %d)", color, key, comm->rank);
  moai_status_t status = wrap(sub, out);
  if (status) MPI_Comm_free(&sub);
  return status;
}

/* The other processes may be blocked in a collective: only MPI_Abort frees
 * them (it ends the job with exit code 1). A job of one process has nobody
 * to free: the caller reports its error itself. */
static void mpi_abort(moai_comm_t *comm) {
  (void)comm;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Waits for this handle's sends, then frees a split's communicator, or
 * finalises MPI for the world's handle (destroy the splits first). */
static void mpi_destroy(moai_comm_t *comm) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) moai_status_free(reap_sends(c, true));
  bool world = c->comm == MPI_COMM_WORLD;
  if (!world && !finalized) MPI_Comm_free(&c->comm);
  free(c->scratch);
  free(c);
  if (world && !finalized) MPI_Finalize();
}

static const moai_comm_ops_t mpi_ops = {
    .allreduce = mpi_allreduce,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .send = mpi_send,
    .recv = mpi_recv,
    .split = mpi_split,
    .abort = mpi_abort,
    .destroy = mpi_destroy,
};

__attribute__((visibility("default"))) moai_status_t moai_comm_mpi_create_v1(moai_comm_t **out);

moai_status_t moai_comm_mpi_create_v1(moai_comm_t **out) {
  int initialized = 0, provided = 0;
  MPI_Initialized(&initialized);
  /* MULTIPLE if the library has it (moai-run's gradient thread); OpenMP
   * threads of a step never call MPI. */
  if (!initialized) {
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "initialisation");
  }
  return wrap(MPI_COMM_WORLD, out);
}
