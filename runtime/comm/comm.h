/* Communication between the ranks of a data-parallel plan
 * (docs/training.md, "Data parallelism"): all-reduce (sum), broadcast and
 * barrier over a group of ranks.
 *
 * Two backends implement it: threads (every rank a thread of one process,
 * shared memory; moai_comm_threads_create) and MPI (one rank per process
 * under mpirun; moai_comm_mpi_open loads libmoai_mpi.so with dlopen, so
 * nothing here links libmpi). Every rank of a group must make the same
 * collective calls in the same order with the same sizes.
 *
 * Determinism: an all-reduce adds the ranks' values in rank order (0, 1,
 * ..., n-1) in the buffer's dtype, element by element, on both backends, so
 * results are the same run to run and between backends. */
#ifndef MOAI_COMM_COMM_H
#define MOAI_COMM_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/allocator.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_comm_t moai_comm_t;

/* A backend's operations. `allreduce_sum` handles MOAI_ABI_F32 and
 * MOAI_ABI_F64 (moai_comm_allreduce_sum checks the dtype first). */
typedef struct moai_comm_ops_t {
  moai_status_t (*allreduce_sum)(moai_comm_t *comm, int32_t dtype, void *data, size_t count);
  moai_status_t (*broadcast)(moai_comm_t *comm, void *data, size_t bytes, int root);
  moai_status_t (*barrier)(moai_comm_t *comm);
  void (*abort)(moai_comm_t *comm);
  void (*destroy)(moai_comm_t *comm);
} moai_comm_ops_t;

/* One rank's handle on its group; backends embed it first in their own
 * struct. */
struct moai_comm_t {
  const moai_comm_ops_t *ops;
  const char *backend; /* "threads" or "mpi" */
  int rank, size;
};

/* This rank's index in the group and the group's size. */
static inline int moai_comm_rank(const moai_comm_t *comm) { return comm ? comm->rank : 0; }
static inline int moai_comm_size(const moai_comm_t *comm) { return comm ? comm->size : 1; }

/* Replaces data[0..count-1] (MOAI_ABI_F32 or MOAI_ABI_F64) on every rank by
 * the sum over ranks, added in rank order. */
moai_status_t moai_comm_allreduce_sum(moai_comm_t *comm, int32_t dtype, void *data,
                                      size_t count) MOAI_MUST_USE;
/* Copies `bytes` bytes at data on rank `root` to data on every other rank. */
moai_status_t moai_comm_broadcast(moai_comm_t *comm, void *data, size_t bytes,
                                  int root) MOAI_MUST_USE;
/* Returns when every rank of the group has called it. */
moai_status_t moai_comm_barrier(moai_comm_t *comm) MOAI_MUST_USE;
/* Tells the group this rank failed: threads: the others' pending and later
 * collectives fail (ABORTED-like FAILED_PRECONDITION "rank R failed");
 * MPI: MPI_Abort ends every process of the job. */
void moai_comm_abort(moai_comm_t *comm);
/* Frees a handle from moai_comm_mpi_open (threads handles belong to their
 * world; NULL is fine). */
void moai_comm_destroy(moai_comm_t *comm);

/* ---- threads backend ---------------------------------------------------- */

typedef struct moai_comm_threads_t moai_comm_threads_t;

/* A group of `size` ranks that are threads of this process (1..65536). The
 * world keeps `allocator`. */
moai_status_t moai_comm_threads_create(int size, moai_allocator_t allocator,
                                       moai_comm_threads_t **out) MOAI_MUST_USE;
/* Rank r's handle (borrowed from the world; each rank's thread uses its
 * own). */
moai_comm_t *moai_comm_threads_rank(moai_comm_threads_t *world, int rank);
/* The first rank that called moai_comm_abort, or -1. */
int moai_comm_threads_failed_rank(const moai_comm_threads_t *world);
/* Frees the world once every rank's thread is done (NULL is fine). */
void moai_comm_threads_destroy(moai_comm_threads_t *world);

/* ---- MPI backend -------------------------------------------------------- */

/* The name of the shared object and of the function it exports:
 * moai_status_t moai_comm_mpi_create_v1(moai_comm_t **out) (MPI_Init, the
 * world communicator). */
#define MOAI_COMM_MPI_LIBRARY "libmoai_mpi.so"
#define MOAI_COMM_MPI_CREATE_SYMBOL "moai_comm_mpi_create_v1"
typedef moai_status_t (*moai_comm_mpi_create_fn)(moai_comm_t **out);

/* The process count of the MPI job this process was started in, from the
 * launcher's environment (OMPI_COMM_WORLD_SIZE, else PMI_SIZE), or 0 when
 * not under mpirun. */
int moai_comm_mpi_job_size(void);

/* Loads `library` (NULL: MOAI_COMM_MPI_LIBRARY next to the calling
 * executable's lib/ directory, then the dynamic linker's search path) and
 * creates this process's handle on the job's world. Errors say what to
 * install (libopenmpi-dev openmpi-bin) or build. */
moai_status_t moai_comm_mpi_open(const char *library, moai_comm_t **out) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_COMM_COMM_H */
