/* The MPI backend of comm.h, built as libmoai_mpi.so (the only moai object
 * that links libmpi) and loaded by moai_comm_mpi_open under mpirun.
 *
 * The all-reduce is an MPI_Allgather of fixed-size chunks followed by a sum
 * in rank order on every rank, not MPI_Allreduce: MPI leaves the order of
 * MPI_SUM's additions to the implementation (it may depend on the process
 * count and the algorithm chosen), and moai promises the same bits run to
 * run and as the threads backend. The chunking bounds the extra memory to
 * size x MPI_CHUNK_BYTES. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/moai_abi.h"
#include "comm/comm.h"

#define MPI_CHUNK_BYTES ((size_t)4 << 20)

typedef struct mpi_comm_t {
  moai_comm_t base;
  MPI_Comm world;
  void *scratch; /* size x MPI_CHUNK_BYTES */
} mpi_comm_t;

static moai_status_t mpi_error(int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof(msg), "error %d", rc);
  return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "MPI %s failed: %s", what, msg);
}

static moai_status_t mpi_allreduce(moai_comm_t *comm, int32_t dtype, void *data, size_t count) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  size_t esize = dtype == MOAI_ABI_F32 ? 4 : 8;
  size_t chunk = MPI_CHUNK_BYTES / esize;
  MPI_Datatype type = dtype == MOAI_ABI_F32 ? MPI_FLOAT : MPI_DOUBLE;
  for (size_t lo = 0; lo < count; lo += chunk) {
    size_t n = count - lo < chunk ? count - lo : chunk;
    char *mine = (char *)data + lo * esize;
    int rc = MPI_Allgather(mine, (int)n, type, c->scratch, (int)n, type, c->world);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "all-gather");
    if (dtype == MOAI_ABI_F32) {
      const float *all = c->scratch;
      float *out = (float *)mine;
      for (size_t i = 0; i < n; ++i) {
        float s = all[i];
        for (int r = 1; r < comm->size; ++r) s += all[(size_t)r * n + i];
        out[i] = s;
      }
    } else {
      const double *all = c->scratch;
      double *out = (double *)mine;
      for (size_t i = 0; i < n; ++i) {
        double s = all[i];
        for (int r = 1; r < comm->size; ++r) s += all[(size_t)r * n + i];
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
    int rc = MPI_Bcast((char *)data + lo, (int)n, MPI_BYTE, root, c->world);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "broadcast");
  }
  return moai_ok_status();
}

static moai_status_t mpi_barrier(moai_comm_t *comm) {
  int rc = MPI_Barrier(((mpi_comm_t *)comm)->world);
  return rc == MPI_SUCCESS ? moai_ok_status() : mpi_error(rc, "barrier");
}

/* The other processes may be blocked in a collective: only MPI_Abort frees
 * them (it ends the job with exit code 1). */
static void mpi_abort(moai_comm_t *comm) { MPI_Abort(((mpi_comm_t *)comm)->world, 1); }

static void mpi_destroy(moai_comm_t *comm) {
  mpi_comm_t *c = (mpi_comm_t *)comm;
  free(c->scratch);
  free(c);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

static const moai_comm_ops_t mpi_ops = {mpi_allreduce, mpi_broadcast, mpi_barrier, mpi_abort,
                                        mpi_destroy};

__attribute__((visibility("default"))) moai_status_t moai_comm_mpi_create_v1(moai_comm_t **out);

moai_status_t moai_comm_mpi_create_v1(moai_comm_t **out) {
  int initialized = 0, provided = 0;
  MPI_Initialized(&initialized);
  /* FUNNELED: only the thread that initialised MPI calls it; OpenMP threads
   * of a step never do. */
  if (!initialized) {
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "initialisation");
  }
  mpi_comm_t *c = calloc(1, sizeof(*c));
  if (!c) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  c->world = MPI_COMM_WORLD;
  MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN);
  MPI_Comm_rank(c->world, &c->base.rank);
  MPI_Comm_size(c->world, &c->base.size);
  c->base.ops = &mpi_ops;
  c->base.backend = "mpi";
  c->scratch = malloc((size_t)c->base.size * MPI_CHUNK_BYTES);
  if (!c->scratch) {
    free(c);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory for the MPI all-reduce buffer");
  }
  *out = &c->base;
  return moai_ok_status();
}
