/* The safetensors writer: layout, header and streamed data. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/dtype.h"
#include "io/file.h"
#include "io/safetensors.h"

void moai_safetensors_layout(moai_safetensors_entry_t *entries, size_t n,
                             uint64_t *out_data_size) {
  uint64_t cursor = 0;
  /* Sizes are multiples of the element size, so placing the widest class
   * first keeps every tensor naturally aligned without padding (safetensors
   * forbids holes). Unknown dtypes (size 0) go last, empty. */
  static const size_t classes[] = {8, 4, 2, 1, 0};
  for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]); ++c) {
    for (size_t i = 0; i < n; ++i) {
      moai_safetensors_entry_t *e = &entries[i];
      if (moai_abi_dtype_size(e->dtype) != classes[c]) continue;
      uint64_t nbytes = 0;
      if (!moai_shape_nbytes(e->dtype, e->rank, e->dims, &nbytes)) nbytes = 0;
      e->nbytes = nbytes;
      e->offset = cursor;
      cursor += nbytes;
    }
  }
  *out_data_size = cursor;
}

static int compare_offset(const void *a, const void *b) {
  const moai_safetensors_entry_t *x = *(const moai_safetensors_entry_t *const *)a;
  const moai_safetensors_entry_t *y = *(const moai_safetensors_entry_t *const *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  /* Empty tensors sort before a non-empty one at the same offset. */
  if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
  return 0;
}

static int compare_name(const void *a, const void *b) {
  const moai_safetensors_entry_t *x = *(const moai_safetensors_entry_t *const *)a;
  const moai_safetensors_entry_t *y = *(const moai_safetensors_entry_t *const *)b;
  return strcmp(x->name, y->name);
}

/* Checks the entries and returns them sorted by offset in *out_order
 * (malloc'd: the writer has no allocator parameter, and this is small). */
static moai_status_t check_entries(const char *path, const moai_safetensors_entry_t *entries,
                                   size_t n, const moai_safetensors_entry_t ***out_order,
                                   uint64_t *out_data_size) {
  const moai_safetensors_entry_t **order = calloc(n ? n : 1, sizeof(*order));
  if (!order) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", path);
  moai_status_t status = moai_ok_status();
  for (size_t i = 0; i < n && !status; ++i) {
    const moai_safetensors_entry_t *e = &entries[i];
    order[i] = e;
    uint64_t nbytes = 0;
    if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0)
      status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: tensor %zu has no name (or a reserved one)",
                           path, i);
    else if (!moai_dtype_safetensors_name(e->dtype))
      status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: tensor '%s': unknown dtype %d", path,
                           e->name, (int)e->dtype);
    else if (!moai_shape_nbytes(e->dtype, e->rank, e->dims, &nbytes))
      status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: tensor '%s': bad shape (rank %d)", path,
                           e->name, (int)e->rank);
    else if (nbytes != e->nbytes)
      status = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "%s: tensor '%s': nbytes %llu does not match its shape (%llu)",
                           path, e->name, (unsigned long long)e->nbytes,
                           (unsigned long long)nbytes);
  }
  if (!status && n > 1) {
    qsort(order, n, sizeof(*order), compare_name);
    for (size_t i = 1; i < n && !status; ++i)
      if (strcmp(order[i - 1]->name, order[i]->name) == 0)
        status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: tensor '%s' appears twice", path,
                             order[i]->name);
  }
  uint64_t end = 0;
  if (!status) {
    qsort(order, n, sizeof(*order), compare_offset);
    for (size_t i = 0; i < n && !status; ++i) {
      if (order[i]->offset != end)
        status = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                             "%s: tensor '%s' starts at %llu, expected %llu: entries must "
                             "be contiguous (use moai_safetensors_layout)",
                             path, order[i]->name, (unsigned long long)order[i]->offset,
                             (unsigned long long)end);
      else if (order[i]->nbytes > INT64_MAX - end)
        status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: data too large", path);
      else
        end += order[i]->nbytes;
    }
  }
  if (status) {
    free(order);
    return status;
  }
  *out_order = order;
  *out_data_size = end;
  return moai_ok_status();
}

/* The header JSON (unpadded), malloc'd by jansson. */
static moai_status_t build_header(const char *path, const moai_safetensors_entry_t **order,
                                  size_t n, const char *const *kv, size_t n_kv,
                                  char **out_json) {
  json_t *root = json_object();
  bool ok = root != NULL;
  for (size_t i = 0; i < n && ok; ++i) {
    const moai_safetensors_entry_t *e = order[i];
    json_t *shape = json_array();
    ok = shape != NULL;
    for (int32_t d = 0; d < e->rank && ok; ++d)
      ok = json_array_append_new(shape, json_integer((json_int_t)e->dims[d])) == 0;
    if (!ok) {
      json_decref(shape);
      break;
    }
    /* "o" steals `shape`, also when packing fails. */
    json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype",
                          moai_dtype_safetensors_name(e->dtype), "shape", shape,
                          "data_offsets", (json_int_t)e->offset,
                          (json_int_t)(e->offset + e->nbytes));
    ok = t && json_object_set_new(root, e->name, t) == 0;
  }
  if (ok && n_kv > 0) {
    json_t *meta = json_object();
    ok = meta && json_object_set_new(root, "__metadata__", meta) == 0;
    for (size_t i = 0; i + 1 < 2 * n_kv && ok; i += 2) {
      if (!kv[i] || !kv[i + 1] || json_object_get(meta, kv[i])) {
        json_decref(root);
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "%s: metadata pair %zu is missing or repeats key '%s'", path,
                           i / 2, kv[i] ? kv[i] : "(null)");
      }
      ok = json_object_set_new(meta, kv[i], json_string(kv[i + 1])) == 0;
    }
  }
  char *text = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(root);
  if (!text)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: cannot build the header (out of memory, or a name or "
                       "metadata string that is not UTF-8)", path);
  *out_json = text;
  return moai_ok_status();
}

/* Maps the file's bytes [file_off, file_off + nbytes) writable and lets
 * fill() write them: the data goes straight to the page cache. */
static moai_status_t fill_one(const char *path, int fd, const moai_safetensors_entry_t *e,
                              size_t index, uint64_t file_off,
                              moai_safetensors_fill_fn fill, void *user) {
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t start = file_off - file_off % page;
  uint64_t length = file_off - start + e->nbytes;
  void *map = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
  if (map == MAP_FAILED)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot map tensor '%s' for writing: %s", path,
                       e->name, strerror(errno));
  moai_status_t status = fill(user, index, (unsigned char *)map + (file_off - start), e->nbytes);
  munmap(map, (size_t)length);
  if (status)
    return moai_status_annotate(status, "writing tensor '%s' to %s", e->name, path);
  return moai_ok_status();
}

moai_status_t moai_safetensors_write(const char *path,
                                     const moai_safetensors_entry_t *entries, size_t n,
                                     const char *const *metadata_kv, size_t n_kv,
                                     moai_safetensors_fill_fn fill, void *user) {
  if (!fill && n > 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: no fill function", path);
  const moai_safetensors_entry_t **order = NULL;
  uint64_t data_size = 0;
  MOAI_RETURN_IF_ERROR(check_entries(path, entries, n, &order, &data_size));
  char *json = NULL;
  moai_status_t status = build_header(path, order, n, metadata_kv, n_kv, &json);
  if (status) {
    free(order);
    return status;
  }
  size_t json_len = strlen(json);
  /* Pad with spaces so 8 + header is a multiple of 64 (JSON allows trailing
   * whitespace; HuggingFace's writer pads the same way, to 8). */
  size_t header_len = json_len + (MOAI_SAFETENSORS_DATA_ALIGN -
                                  (8 + json_len) % MOAI_SAFETENSORS_DATA_ALIGN) %
                                     MOAI_SAFETENSORS_DATA_ALIGN;
  unsigned char *head = malloc(8 + header_len);
  moai_atomic_file_t file;
  file.fd = -1;
  if (!head) status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", path);
  else if (header_len > MOAI_SAFETENSORS_MAX_HEADER)
    status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: header of %zu bytes is too long", path,
                         header_len);
  if (!status) {
    for (int i = 0; i < 8; ++i) head[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    memcpy(head + 8, json, json_len);
    memset(head + 8 + json_len, ' ', header_len - json_len);
    status = moai_atomic_file_open(path, &file);
  }
  if (!status) status = moai_atomic_file_write(&file, head, 8 + header_len);
  uint64_t data_start = 8 + header_len;
  if (!status && data_size > 0) {
    /* Reserve the blocks first: a full disk must be an error here, not a
     * SIGBUS when fill() touches the mapping. */
    int err = posix_fallocate(file.fd, (off_t)data_start, (off_t)data_size);
    if (err)
      status = MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot reserve %llu bytes: %s", path,
                           (unsigned long long)data_size, strerror(err));
  }
  for (size_t i = 0; i < n && !status; ++i) {
    if (order[i]->nbytes == 0) continue;
    status = fill_one(path, file.fd, order[i], (size_t)(order[i] - entries),
                      data_start + order[i]->offset, fill, user);
  }
  if (!status) status = moai_atomic_file_commit(&file);
  else if (file.fd >= 0) moai_atomic_file_abort(&file);
  free(head);
  free(json);
  free(order);
  return status;
}
