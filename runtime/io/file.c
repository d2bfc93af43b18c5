#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

moai_status_t moai_file_map(const char *path, moai_file_map_t *out_map) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return MOAI_STATUS(errno == ENOENT ? MOAI_NOT_FOUND : MOAI_IO_ERROR,
                       "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: not a regular file", path);
  }
  moai_file_map_t map = {NULL, (size_t)st.st_size};
  if (map.size > 0) {
    void *p = mmap(NULL, map.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close(fd);
      return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot map %zu bytes: %s", path,
                         map.size, strerror(e));
    }
    map.data = p;
  }
  close(fd); /* the mapping keeps the file */
  *out_map = map;
  return moai_ok_status();
}

void moai_file_unmap(moai_file_map_t *map) {
  if (map->data) munmap((void *)map->data, map->size);
  map->data = NULL;
  map->size = 0;
}

moai_status_t moai_atomic_file_open(const char *path, moai_atomic_file_t *out_file) {
  moai_atomic_file_t f;
  f.fd = -1;
  if (snprintf(f.path, sizeof(f.path), "%s", path) >= (int)sizeof(f.path))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: path too long", path);
  /* open(O_EXCL) with mode 0666 rather than mkstemp: the file gets the usual
   * permissions (umask applied by the kernel) without touching the
   * process-wide umask. The name mixes pid, time and the attempt; O_EXCL
   * makes a clash (another thread in the same nanosecond) retry. */
  for (int attempt = 0; attempt < 100 && f.fd < 0; ++attempt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long c = (unsigned long)attempt;
    if (snprintf(f.tmp, sizeof(f.tmp), "%s.tmp-%ld-%lx%lx", path, (long)getpid(),
                 (unsigned long)ts.tv_nsec, c) >= (int)sizeof(f.tmp))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: path too long", path);
    f.fd = open(f.tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f.fd < 0 && errno != EEXIST)
      return MOAI_STATUS(errno == ENOENT ? MOAI_NOT_FOUND : MOAI_IO_ERROR,
                         "%s: cannot create a file in its directory: %s", path,
                         strerror(errno));
  }
  if (f.fd < 0)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot create a temporary file beside it", path);
  *out_file = f;
  return moai_ok_status();
}

moai_status_t moai_atomic_file_write(moai_atomic_file_t *file, const void *data,
                                     size_t size) {
  const unsigned char *p = data;
  while (size > 0) {
    ssize_t n = write(file->fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return MOAI_STATUS(MOAI_IO_ERROR, "%s: write failed: %s", file->path,
                         n < 0 ? strerror(errno) : "no progress");
    p += n;
    size -= (size_t)n;
  }
  return moai_ok_status();
}

void moai_atomic_file_abort(moai_atomic_file_t *file) {
  if (file->fd >= 0) close(file->fd);
  file->fd = -1;
  unlink(file->tmp);
}

/* fsyncs the directory holding `path` so the rename itself is durable. */
static void sync_parent_dir(const char *path) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof(dir), ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

moai_status_t moai_atomic_file_commit(moai_atomic_file_t *file) {
  moai_status_t status = moai_ok_status();
  if (fsync(file->fd) != 0)
    status = MOAI_STATUS(MOAI_IO_ERROR, "%s: fsync failed: %s", file->path,
                         strerror(errno));
  if (close(file->fd) != 0 && !status)
    status = MOAI_STATUS(MOAI_IO_ERROR, "%s: close failed: %s", file->path,
                         strerror(errno));
  file->fd = -1;
  if (!status && rename(file->tmp, file->path) != 0)
    status = MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot rename the finished file into place: %s",
                         file->path, strerror(errno));
  if (status) {
    unlink(file->tmp);
    return status;
  }
  sync_parent_dir(file->path);
  return moai_ok_status();
}
