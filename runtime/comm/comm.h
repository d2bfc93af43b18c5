/* Communication between the ranks of a parallel plan (docs/training.md,
 * "Data parallelism"): all-reduce (sum, max), broadcast and barrier over a
 * group of ranks, buffered point-to-point messages inside a group, and
 * sub-groups split from a group (the tensor- and pipeline-parallel groups of
 * a dp x tp x pp mesh).
 *
 * Two backends implement it: threads (every rank a thread of one process,
 * shared memory; moai_comm_threads_create) and MPI (one rank per process
 * under mpirun; moai_comm_mpi_open loads libmoai_mpi.so with dlopen, so
 * nothing here links libmpi). Every rank of a group must make the same
 * collective calls in the same order with the same sizes.
 *
 * Determinism: an all-reduce adds (or takes the maximum of) the ranks' values
 * in rank order (0, 1, ..., n-1) in the buffer's dtype, element by element,
 * on both backends, so results are the same run to run and between
 * backends. The maximum is NaN where any rank's value is NaN. */
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

/* The reduction of an all-reduce. */
typedef enum moai_comm_reduce_e { MOAI_COMM_SUM = 0, MOAI_COMM_MAX = 1 } moai_comm_reduce_t;

/* A backend's operations, called by the moai_comm_* functions below once
 * they have checked the arguments: `allreduce` gets MOAI_ABI_F32 or
 * MOAI_ABI_F64 and a valid op, send/recv a peer inside the group and a tag
 * >= 0, split a color >= 0. `abort` is called for groups of one rank too. */
typedef struct moai_comm_ops_t {
  moai_status_t (*allreduce)(moai_comm_t *comm, int32_t dtype, moai_comm_reduce_t op,
                             void *data, size_t count);
  moai_status_t (*broadcast)(moai_comm_t *comm, void *data, size_t bytes, int root);
  moai_status_t (*barrier)(moai_comm_t *comm);
  moai_status_t (*send)(moai_comm_t *comm, const void *data, size_t bytes, int dst, int tag);
  moai_status_t (*recv)(moai_comm_t *comm, void *data, size_t bytes, int src, int tag);
  moai_status_t (*split)(moai_comm_t *comm, int color, int key, moai_comm_t **out);
  void (*abort)(moai_comm_t *comm);
  void (*destroy)(moai_comm_t *comm);
} moai_comm_ops_t;

/* One rank's handle on its group; backends embed it first in their own
 * struct. */
struct moai_comm_t {
  const moai_comm_ops_t *ops;
  const char *backend; /* "threads" or "mpi" */
  int rank, size;
  /* Different threads of a rank may call it on different handles at once
   * (threads: always; MPI: when the library provides MPI_THREAD_MULTIPLE). */
  bool concurrent;
};

/* This rank's index in the group and the group's size. */
static inline int moai_comm_rank(const moai_comm_t *comm) { return comm ? comm->rank : 0; }
static inline int moai_comm_size(const moai_comm_t *comm) { return comm ? comm->size : 1; }

/* data[0..count-1] (MOAI_ABI_F32 or MOAI_ABI_F64) on every rank := the
 * reduction over the group's ranks (sum added in rank order 0..n-1). */
moai_status_t moai_comm_allreduce(moai_comm_t *comm, int32_t dtype, moai_comm_reduce_t op,
                                  void *data, size_t count) MOAI_MUST_USE;
/* moai_comm_allreduce with MOAI_COMM_SUM. */
moai_status_t moai_comm_allreduce_sum(moai_comm_t *comm, int32_t dtype, void *data,
                                      size_t count) MOAI_MUST_USE;
/* Copies `bytes` bytes at data on rank `root` to data on every other rank. */
moai_status_t moai_comm_broadcast(moai_comm_t *comm, void *data, size_t bytes,
                                  int root) MOAI_MUST_USE;
/* Returns when every rank of the group has called it. */
moai_status_t moai_comm_barrier(moai_comm_t *comm) MOAI_MUST_USE;
/* Point-to-point inside the group (dst/src are ranks of `comm`, tag >= 0;
 * NULL comm is an error). send is buffered: it copies the bytes and returns
 * without waiting for the receiver (so schedules where both sides send first
 * never deadlock); recv blocks until the message from `src` with `tag`
 * arrives and copies it to data. Messages from one sender with the same tag
 * arrive in the order sent. A size mismatch between the sent and the
 * expected bytes is an error naming both sizes, src, dst and tag (the
 * message is consumed). */
moai_status_t moai_comm_send(moai_comm_t *comm, const void *data, size_t bytes, int dst,
                             int tag) MOAI_MUST_USE;
moai_status_t moai_comm_recv(moai_comm_t *comm, void *data, size_t bytes, int src,
                             int tag) MOAI_MUST_USE;
/* Collective over `comm` (every rank calls it), like MPI_Comm_split: ranks
 * with the same color (>= 0) form a new group, ordered by (key, then rank in
 * comm). *out is this rank's handle, freed with moai_comm_destroy (threads
 * sub-groups are reference counted and freed when the last rank destroys
 * its handle, or with their world). NULL comm gives *out = NULL (one rank). */
moai_status_t moai_comm_split(moai_comm_t *comm, int color, int key,
                              moai_comm_t **out) MOAI_MUST_USE;
/* Tells every rank this rank failed: threads: the others' pending and later
 * collectives and receives, in every group split from the same world, fail
 * (FAILED_PRECONDITION "rank R of N failed", R and N of the world); MPI:
 * MPI_Abort ends every process of the job (nothing when the job has one). */
void moai_comm_abort(moai_comm_t *comm);
/* Frees a handle from moai_comm_mpi_open or moai_comm_split (the handles of
 * a threads world itself belong to the world; NULL is fine). */
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
/* The first rank (of the world) that called moai_comm_abort on any of its
 * handles, or -1. */
int moai_comm_threads_failed_rank(const moai_comm_threads_t *world);
/* Frees the world once every rank's thread is done, with the sub-groups
 * still alive and the messages never received (NULL is fine). */
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
