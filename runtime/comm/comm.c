/* The backend-independent half of comm.h and the MPI backend's loader. */
#include "comm/comm.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi/moai_abi.h"

moai_status_t moai_comm_allreduce(moai_comm_t *comm, int32_t dtype, moai_comm_reduce_t op,
                                  void *data, size_t count) {
  if (dtype != MOAI_ABI_F32 && dtype != MOAI_ABI_F64)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "all-reduce of dtype %d: only float32 and float64 "
                       "are reduced", (int)dtype);
  if (op != MOAI_COMM_SUM && op != MOAI_COMM_MAX)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "all-reduce with reduction %d: only "
                       "MOAI_COMM_SUM (0) and MOAI_COMM_MAX (1)", (int)op);
  if (!comm || comm->size == 1) return moai_ok_status();
  return comm->ops->allreduce(comm, dtype, op, data, count);
}

moai_status_t moai_comm_allreduce_sum(moai_comm_t *comm, int32_t dtype, void *data,
                                      size_t count) {
  return moai_comm_allreduce(comm, dtype, MOAI_COMM_SUM, data, count);
}

moai_status_t moai_comm_broadcast(moai_comm_t *comm, void *data, size_t bytes, int root) {
  if (!comm || comm->size == 1) return moai_ok_status();
  if (root < 0 || root >= comm->size)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "broadcast from rank %d of %d", root, comm->size);
  return comm->ops->broadcast(comm, data, bytes, root);
}

moai_status_t moai_comm_barrier(moai_comm_t *comm) {
  if (!comm || comm->size == 1) return moai_ok_status();
  return comm->ops->barrier(comm);
}

/* The checks send and recv share: `what` is "send to" or "receive from". */
static moai_status_t check_peer(const moai_comm_t *comm, const char *what, int peer, int tag) {
  if (!comm)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s rank %d (tag %d) without a group: "
                       "point-to-point needs a moai_comm_t", what, peer, tag);
  if (peer < 0 || peer >= comm->size)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s rank %d (tag %d) on rank %d: the group has "
                       "ranks 0..%d", what, peer, tag, comm->rank, comm->size - 1);
  if (tag < 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s rank %d with tag %d on rank %d: tags are "
                       ">= 0", what, peer, tag, comm->rank);
  return moai_ok_status();
}

moai_status_t moai_comm_send(moai_comm_t *comm, const void *data, size_t bytes, int dst,
                             int tag) {
  MOAI_RETURN_IF_ERROR(check_peer(comm, "send to", dst, tag));
  return comm->ops->send(comm, data, bytes, dst, tag);
}

moai_status_t moai_comm_recv(moai_comm_t *comm, void *data, size_t bytes, int src, int tag) {
  MOAI_RETURN_IF_ERROR(check_peer(comm, "receive from", src, tag));
  return comm->ops->recv(comm, data, bytes, src, tag);
}

moai_status_t moai_comm_split(moai_comm_t *comm, int color, int key, moai_comm_t **out) {
  if (color < 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "split with color %d: colors are >= 0", color);
  if (!comm) {
    *out = NULL;
    return moai_ok_status();
  }
  return comm->ops->split(comm, color, key, out);
}

void moai_comm_abort(moai_comm_t *comm) {
  if (comm) comm->ops->abort(comm);
}

void moai_comm_destroy(moai_comm_t *comm) {
  if (comm && comm->ops->destroy) comm->ops->destroy(comm);
}

static int env_int(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return 0;
  char *end = NULL;
  long n = strtol(v, &end, 10);
  return end && !*end && n > 0 && n <= INT_MAX ? (int)n : 0;
}

int moai_comm_mpi_job_size(void) {
  int n = env_int("OMPI_COMM_WORLD_SIZE");
  return n ? n : env_int("PMI_SIZE");
}

/* DIR/../lib/libmoai_mpi.so for the running executable in DIR. */
static bool library_beside_exe(char *buf, size_t size) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return false;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return false;
  *slash = '\0';
  int w = snprintf(buf, size, "%s/../lib/%s", exe, MOAI_COMM_MPI_LIBRARY);
  return w > 0 && (size_t)w < size && access(buf, R_OK) == 0;
}

moai_status_t moai_comm_mpi_open(const char *library, moai_comm_t **out) {
  char path[PATH_MAX + 64];
  if (!library) library = library_beside_exe(path, sizeof(path)) ? path : MOAI_COMM_MPI_LIBRARY;
  /* RTLD_GLOBAL: Open MPI's own plugins resolve libmpi's symbols globally. */
  void *handle = dlopen(library, RTLD_NOW | RTLD_GLOBAL);
  if (!handle)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "running under mpirun, but the MPI backend cannot be loaded: %s (build "
                       "moai with Open MPI installed: apt-get install libopenmpi-dev "
                       "openmpi-bin, then rebuild)", dlerror());
  moai_comm_mpi_create_fn create;
  *(void **)&create = dlsym(handle, MOAI_COMM_MPI_CREATE_SYMBOL);
  if (!create)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "%s: no %s symbol: not moai's MPI backend",
                       library, MOAI_COMM_MPI_CREATE_SYMBOL);
  /* The library stays loaded: MPI cannot be initialised twice in a process. */
  return create(out);
}
