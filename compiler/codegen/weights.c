/* The weights file of a plan (weights-<k>.safetensors): laid out and written
 * by runtime/io's safetensors writer, one tensor at a time, with each
 * weight's bytes read from where the model keeps them (the moai.weight op's
 * storage): a byte range of the model file ("raw") or of an external data
 * file next to it ("external"), or of an entry of a TorchScript archive
 * ("zip": file is the archive, entry the storage "data/<key>"), or the
 * initializer's typed fields, decoded by the ONNX frontend ("field").
 * Nothing is gathered in memory, except a "field" weight that is a shard
 * (its full tensor is decoded, then sliced) and a "zip" shard along an axis
 * other than the first (read whole, then sliced: each archive read opens the
 * zip, so it is not read row by row).
 *
 * A shard (shard_count > 1) is slice shard_index of shard_count equal parts
 * along shard_axis of the stored tensor. Seen as [outer, full_dim, inner]
 * (outer = product of the dims before the axis), local row r of
 * row = local_dim * inner elements starts at element
 * (r * full_dim + index * local_dim) * inner = (r * count + index) * row. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "io/safetensors.h"
#include "onnx/onnx_import.h"
#include "torchscript/archive.h"
#include "version.h"

static moai_status_t make_entries(const moai_device_weight_t *w, size_t n,
                                  moai_safetensors_entry_t **out) {
  moai_safetensors_entry_t *e = calloc(n ? n : 1, sizeof(*e));
  if (!e) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory laying out weights");
  for (size_t i = 0; i < n; ++i) {
    e[i].name = w[i].name;
    e[i].dtype = w[i].dtype;
    e[i].rank = w[i].rank;
    memcpy(e[i].dims, w[i].dims, sizeof(e[i].dims));
    e[i].offset = w[i].offset;
    e[i].nbytes = w[i].nbytes;
  }
  *out = e;
  return moai_ok_status();
}

moai_status_t moai_weights_layout_safetensors(void *user,
                                              moai_device_weight_t *weights,
                                              size_t count,
                                              uint64_t *out_data_size) {
  (void)user;
  moai_safetensors_entry_t *e = NULL;
  MOAI_RETURN_IF_ERROR(make_entries(weights, count, &e));
  moai_safetensors_layout(e, count, out_data_size);
  moai_status_t status = moai_ok_status();
  for (size_t i = 0; i < count && !status; ++i) {
    if (e[i].nbytes != weights[i].nbytes)
      status = MOAI_STATUS(MOAI_UNIMPLEMENTED,
                           "weight '%s': its element type cannot be stored in "
                           "a safetensors file",
                           weights[i].name);
    weights[i].offset = e[i].offset;
  }
  free(e);
  return status;
}

static bool is_shard(const moai_device_weight_t *w) { return w->shard_count > 1; }

/* The stored (full) tensor's size: the slice's times the shard count. */
static uint64_t stored_nbytes(const moai_device_weight_t *w) {
  return is_shard(w) ? w->nbytes * (uint64_t)w->shard_count : w->nbytes;
}

/* Rows of a shard: the product of the dims before its axis. */
static uint64_t shard_rows(const moai_device_weight_t *w) {
  uint64_t outer = 1;
  for (int32_t r = 0; r < w->shard_axis; ++r) outer *= (uint64_t)w->dims[r];
  return outer;
}

moai_status_t moai_weights_check(const moai_device_program_t *p) {
  for (uint32_t i = 0; i < p->num_weights; ++i) {
    const moai_device_weight_t *w = &p->weights[i];
    if (is_shard(w) && (w->shard_axis < 0 || w->shard_axis >= w->rank ||
                        w->shard_index < 0 || w->shard_index >= w->shard_count ||
                        w->nbytes > UINT64_MAX / (uint64_t)w->shard_count))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "weight '%s': shard %d of %d along axis %d does not fit its "
                         "rank-%d type", w->name, w->shard_index, w->shard_count,
                         w->shard_axis, w->rank);
    if (strcmp(w->storage, "absent") == 0)
      return MOAI_STATUS(MOAI_NOT_FOUND,
                         "weight '%s' has no data in the model; cannot write "
                         "a plan",
                         w->name);
    bool zip = strcmp(w->storage, "zip") == 0;
    bool ranged = zip || strcmp(w->storage, "raw") == 0 ||
                  strcmp(w->storage, "external") == 0;
    if (zip && !w->entry)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "weight '%s': storage \"zip\" without an entry "
                         "attribute naming the archive entry", w->name);
    if (ranged && (!w->file || w->file_offset < 0 ||
                   (uint64_t)w->file_length != stored_nbytes(w)))
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "weight '%s': its data (%lld bytes) does not match "
                         "its type (%llu bytes%s)",
                         w->name, (long long)w->file_length,
                         (unsigned long long)stored_nbytes(w),
                         is_shard(w) ? ", the whole of which it is a shard" : "");
    if (!ranged && strcmp(w->storage, "field") != 0)
      return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                         "weight '%s': unknown storage '%s'", w->name,
                         w->storage);
  }
  return moai_ok_status();
}

typedef struct fill_state_t {
  const moai_device_program_t *program;
  const char *model_path;
  char model_dir[4096];
  int fd;            /* the file last read, kept open: weights mostly share one */
  char fd_path[4096];
  moai_ts_archive_t *zip; /* likewise the TorchScript archive last read */
  char zip_path[4096];
} fill_state_t;

static moai_status_t open_cached(fill_state_t *s, const char *path,
                                 const char *weight) {
  if (s->fd >= 0 && strcmp(s->fd_path, path) == 0) return moai_ok_status();
  if (s->fd >= 0) close(s->fd);
  s->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0)
    return MOAI_STATUS(errno == ENOENT ? MOAI_NOT_FOUND : MOAI_IO_ERROR,
                       "cannot read the data of weight '%s' from %s: %s",
                       weight, path, strerror(errno));
  snprintf(s->fd_path, sizeof(s->fd_path), "%s", path);
  return moai_ok_status();
}

/* Reads bytes [offset, offset + size) of `path` into dst. */
static moai_status_t read_range(fill_state_t *s, const char *path,
                                const moai_device_weight_t *w, int64_t offset,
                                uint64_t size, unsigned char *dst) {
  MOAI_RETURN_IF_ERROR(open_cached(s, path, w->name));
  uint64_t done = 0;
  while (done < size) {
    size_t chunk = size - done > (1u << 30) ? (1u << 30) : (size_t)(size - done);
    ssize_t n = pread(s->fd, dst + done, chunk, (off_t)(offset + (int64_t)done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return MOAI_STATUS(MOAI_IO_ERROR, "reading weight '%s' from %s: %s",
                         w->name, path, strerror(errno));
    if (n == 0)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s ends before the data of weight '%s' (bytes %lld "
                         "to %lld)",
                         path, w->name, (long long)w->file_offset,
                         (long long)(w->file_offset + w->file_length));
    done += (uint64_t)n;
  }
  return moai_ok_status();
}

/* The weight's bytes from a file: all of them, or a shard's rows. */
static moai_status_t read_weight(fill_state_t *s, const char *path,
                                 const moai_device_weight_t *w, unsigned char *dst) {
  if (!is_shard(w)) return read_range(s, path, w, w->file_offset, w->nbytes, dst);
  uint64_t rows = shard_rows(w), row = rows ? w->nbytes / rows : 0;
  for (uint64_t r = 0; r < rows && row; ++r) {
    uint64_t at = (r * (uint64_t)w->shard_count + (uint64_t)w->shard_index) * row;
    MOAI_RETURN_IF_ERROR(read_range(s, path, w, w->file_offset + (int64_t)at, row,
                                    dst + r * row));
  }
  return moai_ok_status();
}

/* A shard read as its whole tensor (read_all fills `all`, stored_nbytes(w)
 * bytes), then its rows copied out. */
typedef moai_status_t (*read_all_fn_t)(fill_state_t *s, const moai_device_weight_t *w,
                                       unsigned char *all, uint64_t nbytes);
static moai_status_t read_shard_whole(fill_state_t *s, const moai_device_weight_t *w,
                                      unsigned char *dst, read_all_fn_t read_all) {
  uint64_t full = stored_nbytes(w);
  unsigned char *all = full <= SIZE_MAX ? malloc(full ? (size_t)full : 1) : NULL;
  if (!all)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory reading weight '%s' (%llu bytes)",
                       w->name, (unsigned long long)full);
  moai_status_t status = read_all(s, w, all, full);
  uint64_t rows = shard_rows(w), row = rows ? w->nbytes / rows : 0;
  for (uint64_t r = 0; !status && r < rows && row; ++r)
    memcpy(dst + r * row,
           all + (r * (uint64_t)w->shard_count + (uint64_t)w->shard_index) * row, (size_t)row);
  free(all);
  return status;
}

/* A "field" weight: decoded by the ONNX frontend (a shard: whole, then sliced). */
static moai_status_t read_field_all(fill_state_t *s, const moai_device_weight_t *w,
                                    unsigned char *dst, uint64_t nbytes) {
  return moai_onnx_read_initializer(w->file ? w->file : s->model_path, w->name, dst, nbytes);
}
static moai_status_t read_field(fill_state_t *s, const moai_device_weight_t *w,
                                unsigned char *dst) {
  if (!is_shard(w)) return read_field_all(s, w, dst, w->nbytes);
  return read_shard_whole(s, w, dst, read_field_all);
}

/* A "zip" weight: a byte range of an archive entry (the archive kept open
 * across weights); a shard whose rows are not one run is read whole, then
 * sliced. */
static moai_status_t zip_range(fill_state_t *s, const moai_device_weight_t *w, uint64_t at,
                               unsigned char *dst, uint64_t nbytes) {
  if (!s->zip || strcmp(s->zip_path, w->file) != 0) {
    moai_ts_archive_close(s->zip);
    s->zip = NULL;
    MOAI_RETURN_IF_ERROR(moai_ts_archive_open(w->file, &s->zip));
    snprintf(s->zip_path, sizeof(s->zip_path), "%s", w->file);
  }
  return moai_ts_archive_read_range(s->zip, w->entry, (uint64_t)w->file_offset + at, dst, nbytes);
}
static moai_status_t read_zip_all(fill_state_t *s, const moai_device_weight_t *w,
                                  unsigned char *dst, uint64_t nbytes) {
  return zip_range(s, w, 0, dst, nbytes);
}
static moai_status_t read_zip(fill_state_t *s, const moai_device_weight_t *w,
                              unsigned char *dst) {
  if (!is_shard(w)) return zip_range(s, w, 0, dst, w->nbytes);
  uint64_t rows = shard_rows(w), row = rows ? w->nbytes / rows : 0;
  if (rows <= 1) return zip_range(s, w, (uint64_t)w->shard_index * row, dst, w->nbytes);
  return read_shard_whole(s, w, dst, read_zip_all);
}

static moai_status_t fill_weight(void *user, size_t index, void *dst,
                                 uint64_t nbytes) {
  fill_state_t *s = user;
  const moai_device_weight_t *w = &s->program->weights[index];
  if (nbytes != w->nbytes)
    return MOAI_STATUS(MOAI_INTERNAL, "weight '%s': %llu bytes asked, %llu held",
                       w->name, (unsigned long long)nbytes,
                       (unsigned long long)w->nbytes);
  if (strcmp(w->storage, "raw") == 0) return read_weight(s, w->file, w, dst);
  if (strcmp(w->storage, "external") == 0) {
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", s->model_dir, w->file);
    return read_weight(s, path, w, dst);
  }
  if (strcmp(w->storage, "field") == 0) return read_field(s, w, dst);
  if (strcmp(w->storage, "zip") == 0)
    return moai_status_annotate(read_zip(s, w, dst), "while reading weight '%s'", w->name);
  return moai_weights_check(s->program);
}

moai_status_t moai_weights_write(const char *path,
                                 const moai_device_program_t *p,
                                 const char *model_path) {
  MOAI_RETURN_IF_ERROR(moai_weights_check(p));
  fill_state_t s = {.program = p, .model_path = model_path, .fd = -1};
  snprintf(s.model_dir, sizeof(s.model_dir), "%s", model_path ? model_path : "");
  char *slash = strrchr(s.model_dir, '/');
  if (slash == s.model_dir) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else snprintf(s.model_dir, sizeof(s.model_dir), ".");
  moai_safetensors_entry_t *e = NULL;
  MOAI_RETURN_IF_ERROR(make_entries(p->weights, p->num_weights, &e));
  char producer[64];
  snprintf(producer, sizeof(producer), "moai %s", moai_version_string());
  const char *kv[] = {"producer", producer};
  moai_status_t status =
      moai_safetensors_write(path, e, p->num_weights, kv, 1, fill_weight, &s);
  if (s.fd >= 0) close(s.fd);
  moai_ts_archive_close(s.zip);
  free(e);
  return status;
}
