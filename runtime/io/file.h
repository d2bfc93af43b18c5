/* File helpers shared by the readers and writers of runtime/io: read-only
 * mappings of whole files, and atomic replacement (a temporary file in the
 * same directory, fsync, rename, fsync of the directory), so a reader never
 * sees a half-written file and a failed write leaves nothing behind. */
#ifndef MOAI_IO_FILE_H
#define MOAI_IO_FILE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* A read-only, private mapping of a whole regular file. An empty file maps
 * to data == NULL, size == 0. */
typedef struct moai_file_map_t {
  const unsigned char *data;
  size_t size;
} moai_file_map_t;

/* Maps `path`; *out_map is untouched on failure (errors name the path). */
moai_status_t moai_file_map(const char *path, moai_file_map_t *out_map) MOAI_MUST_USE;
/* Unmaps (a zeroed map is fine). */
void moai_file_unmap(moai_file_map_t *map);

/* A file being written under a temporary name next to its final path. */
typedef struct moai_atomic_file_t {
  int fd;
  char path[PATH_MAX];
  char tmp[PATH_MAX];
} moai_atomic_file_t;

/* Creates a temporary `path`.tmp-PID-XXXX beside `path` (mode 0666 less the umask). */
moai_status_t moai_atomic_file_open(const char *path, moai_atomic_file_t *out_file) MOAI_MUST_USE;
/* Writes all `size` bytes at the current position. */
moai_status_t moai_atomic_file_write(moai_atomic_file_t *file, const void *data,
                                     size_t size) MOAI_MUST_USE;
/* fsyncs, closes and renames the temporary onto `path`, then fsyncs the
 * directory. On failure the temporary is removed. Either way `file` is done. */
moai_status_t moai_atomic_file_commit(moai_atomic_file_t *file) MOAI_MUST_USE;
/* Closes and removes the temporary (after a failure). */
void moai_atomic_file_abort(moai_atomic_file_t *file);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IO_FILE_H */
