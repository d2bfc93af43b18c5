/* A TorchScript archive read with libzip (https://libzip.org/documentation/).
 *
 * torch.jit.save writes a zip (PyTorchStreamWriter) whose tensor storages
 * are stored uncompressed and 64-byte aligned, so a byte range of one is a
 * zip_fseek away; pickles and code may be deflated. Whole-entry reads go to
 * the end of the entry so libzip checks its CRC. Entries are looked up by
 * binary search in a sorted copy of the central directory's names, so a
 * pickle naming many tensors costs O(log entries) per tensor. */
#include "torchscript/archive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

/* The archive versions moai reads: pickle-based archives (data.pkl), up to
 * the newest torch writes today. */
#define MOAI_TS_MIN_VERSION 2
#define MOAI_TS_MAX_VERSION 10

typedef struct ts_entry_t {
  const char *name; /* relative to PREFIX/ (points into zip's own names) */
  zip_uint64_t index;
} ts_entry_t;

struct moai_ts_archive_t {
  zip_t *zip;
  char *path;
  char *prefix;
  int64_t version;
  ts_entry_t *entries; /* sorted by name */
  size_t nentries;
};

const char *moai_ts_archive_path(const moai_ts_archive_t *a) { return a->path; }
const char *moai_ts_archive_prefix(const moai_ts_archive_t *a) {
  return a->prefix;
}
int64_t moai_ts_archive_version(const moai_ts_archive_t *a) {
  return a->version;
}

void moai_ts_archive_close(moai_ts_archive_t *a) {
  if (!a) return;
  if (a->zip) zip_discard(a->zip);
  free(a->entries);
  free(a->path);
  free(a->prefix);
  free(a);
}

static int entry_cmp(const void *x, const void *y) {
  return strcmp(((const ts_entry_t *)x)->name, ((const ts_entry_t *)y)->name);
}

static const ts_entry_t *find(const moai_ts_archive_t *a, const char *name) {
  ts_entry_t key = {name, 0};
  return bsearch(&key, a->entries, a->nentries, sizeof key, entry_cmp);
}

bool moai_ts_archive_has(const moai_ts_archive_t *a, const char *name) {
  return find(a, name) != NULL;
}

/* Lists the entries: all under one PREFIX/, sorted for lookup. */
static moai_status_t index_entries(moai_ts_archive_t *a) {
  zip_int64_t n = zip_get_num_entries(a->zip, 0);
  if (n <= 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: not a TorchScript archive: the zip is empty",
                       a->path);
  a->entries = calloc((size_t)n, sizeof *a->entries);
  if (!a->entries)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", a->path);
  for (zip_int64_t i = 0; i < n; ++i) {
    const char *name = zip_get_name(a->zip, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
    if (!name)
      return MOAI_STATUS(MOAI_DATA_LOSS, "%s: zip entry %lld has no name: %s",
                         a->path, (long long)i, zip_strerror(a->zip));
    if (!a->prefix) {
      const char *slash = strchr(name, '/');
      if (!slash || slash == name)
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "%s: not a TorchScript archive: entry '%s' is not "
                           "under a top directory", a->path, name);
      a->prefix = strndup(name, (size_t)(slash - name));
      if (!a->prefix)
        return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", a->path);
    }
    size_t plen = strlen(a->prefix);
    if (strncmp(name, a->prefix, plen) || name[plen] != '/')
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: not a TorchScript archive: entry '%s' is "
                         "outside its top directory '%s/'",
                         a->path, name, a->prefix);
    a->entries[a->nentries].name = name + plen + 1;
    a->entries[a->nentries].index = (zip_uint64_t)i;
    a->nentries++;
  }
  qsort(a->entries, a->nentries, sizeof *a->entries, entry_cmp);
  for (size_t i = 1; i < a->nentries; ++i)
    if (!strcmp(a->entries[i - 1].name, a->entries[i].name))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: entry '%s/%s' appears twice", a->path,
                         a->prefix, a->entries[i].name);
  return moai_ok_status();
}

static moai_status_t read_version(moai_ts_archive_t *a) {
  /* torch >= 2.1 also writes .data/version; either names the version. */
  const char *name = find(a, "version") ? "version" : ".data/version";
  char *text = NULL;
  size_t size = 0;
  if (!find(a, name))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: not a TorchScript archive: no %s/version entry",
                       a->path, a->prefix);
  MOAI_RETURN_IF_ERROR(moai_ts_archive_read(a, name, &text, &size));
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  bool ok = end != text && size < 32;
  while (ok && *end) ok = *end == '\n' || *end == '\r' || *end == ' ', ++end;
  free(text);
  if (!ok)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s: not a version number", a->path,
                       name);
  if (v < MOAI_TS_MIN_VERSION || v > MOAI_TS_MAX_VERSION)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: TorchScript archive version %lld (moai reads %d "
                       "to %d)", a->path, v, MOAI_TS_MIN_VERSION,
                       MOAI_TS_MAX_VERSION);
  a->version = v;
  return moai_ok_status();
}

moai_status_t moai_ts_archive_open(const char *path, moai_ts_archive_t **out) {
  moai_ts_archive_t *a = calloc(1, sizeof *a);
  if (!a || !(a->path = strdup(path))) {
    free(a);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  int err = 0;
  a->zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  moai_status_t st = moai_ok_status();
  if (!a->zip) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    if (err == ZIP_ER_NOENT)
      st = MOAI_STATUS(MOAI_NOT_FOUND, "%s: no such file", path);
    else if (err == ZIP_ER_OPEN || err == ZIP_ER_READ)
      st = MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot read: %s", path,
                       zip_error_strerror(&ze));
    else
      st = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: not a TorchScript archive (zip): %s", path,
                       zip_error_strerror(&ze));
    zip_error_fini(&ze);
  }
  if (!st) st = index_entries(a);
  if (!st && !find(a, "data.pkl"))
    st = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "%s: not a TorchScript archive: no %s/data.pkl entry "
                     "(a file saved by torch.save rather than torch.jit.save?)",
                     path, a->prefix);
  if (!st) st = read_version(a);
  if (st) {
    moai_ts_archive_close(a);
    return st;
  }
  *out = a;
  return moai_ok_status();
}

/* Opens entry `e` positioned at byte `offset`; *out_size gets its size. */
static moai_status_t open_at(moai_ts_archive_t *a, const ts_entry_t *e,
                             uint64_t offset, zip_file_t **out_f,
                             uint64_t *out_size) {
  zip_stat_t zs;
  if (zip_stat_index(a->zip, e->index, 0, &zs) != 0 ||
      !(zs.valid & ZIP_STAT_SIZE))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s: cannot stat the entry: %s",
                       a->path, e->name, zip_strerror(a->zip));
  if (offset > zs.size)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: %s: offset %llu past the entry's %llu bytes",
                       a->path, e->name, (unsigned long long)offset,
                       (unsigned long long)zs.size);
  zip_file_t *f = zip_fopen_index(a->zip, e->index, 0);
  if (!f)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s: cannot open the entry: %s",
                       a->path, e->name, zip_strerror(a->zip));
  bool stored = (zs.valid & ZIP_STAT_COMP_METHOD) &&
                zs.comp_method == ZIP_CM_STORE &&
                (!(zs.valid & ZIP_STAT_ENCRYPTION_METHOD) ||
                 zs.encryption_method == ZIP_EM_NONE);
  if (offset && stored && zip_fseek(f, (zip_int64_t)offset, SEEK_SET) == 0)
    offset = 0;
  /* Compressed (or not seekable): read and drop the bytes before offset. */
  char skip[4096];
  while (offset) {
    zip_uint64_t want = offset < sizeof skip ? offset : sizeof skip;
    zip_int64_t got = zip_fread(f, skip, want);
    if (got <= 0) {
      moai_status_t st = MOAI_STATUS(
          MOAI_DATA_LOSS, "%s: %s: truncated or corrupt entry: %s", a->path,
          e->name, got < 0 ? zip_file_strerror(f) : "ends early");
      zip_fclose(f);
      return st;
    }
    offset -= (uint64_t)got;
  }
  *out_f = f;
  *out_size = zs.size;
  return moai_ok_status();
}

/* Reads exactly n bytes from f. */
static moai_status_t read_exact(moai_ts_archive_t *a, const char *name,
                                zip_file_t *f, void *dst, uint64_t n) {
  char *p = dst;
  while (n) {
    zip_int64_t got = zip_fread(f, p, n);
    if (got <= 0)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: %s: truncated or corrupt entry: %s", a->path,
                         name, got < 0 ? zip_file_strerror(f) : "ends early");
    p += got;
    n -= (uint64_t)got;
  }
  return moai_ok_status();
}

static moai_status_t missing(const moai_ts_archive_t *a, const char *name) {
  return MOAI_STATUS(MOAI_NOT_FOUND, "%s: %s: no such entry in the archive",
                     a->path, name);
}

moai_status_t moai_ts_archive_read(moai_ts_archive_t *a, const char *name,
                                   char **out_data, size_t *out_size) {
  const ts_entry_t *e = find(a, name);
  if (!e) return missing(a, name);
  zip_file_t *f;
  uint64_t size;
  MOAI_RETURN_IF_ERROR(open_at(a, e, 0, &f, &size));
  moai_status_t st = moai_ok_status();
  char *buf = NULL;
  if (size > MOAI_TS_MAX_ENTRY_BYTES)
    st = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "%s: %s: entry of %llu bytes (the limit is %u MiB)",
                     a->path, name, (unsigned long long)size,
                     MOAI_TS_MAX_ENTRY_BYTES >> 20);
  if (!st && !(buf = malloc(size + 1)))
    st = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: %s: out of memory", a->path,
                     name);
  if (!st) st = read_exact(a, name, f, buf, size);
  if (!st) {
    /* Reading on to the end makes libzip check the CRC. */
    char extra;
    zip_int64_t got = zip_fread(f, &extra, 1);
    if (got != 0)
      st = MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s: corrupt entry: %s", a->path,
                       name, got < 0 ? zip_file_strerror(f)
                                     : "longer than its recorded size");
  }
  zip_fclose(f);
  if (st) {
    free(buf);
    return st;
  }
  buf[size] = '\0';
  *out_data = buf;
  *out_size = (size_t)size;
  return moai_ok_status();
}

/* Reads `n` bytes at `offset` of entry `name`, checked against its size. */
static moai_status_t read_range(moai_ts_archive_t *a, const char *name,
                                uint64_t offset, void *dst, uint64_t n) {
  const ts_entry_t *e = find(a, name);
  if (!e) return missing(a, name);
  zip_file_t *f;
  uint64_t size;
  MOAI_RETURN_IF_ERROR(open_at(a, e, offset, &f, &size));
  moai_status_t st = moai_ok_status();
  if (n > size - offset)
    st = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "%s: %s: bytes %llu..%llu past the entry's %llu bytes",
                     a->path, name, (unsigned long long)offset,
                     (unsigned long long)(offset + n),
                     (unsigned long long)size);
  if (!st) st = read_exact(a, name, f, dst, n);
  zip_fclose(f);
  return st;
}

moai_status_t moai_ts_archive_read_range(moai_ts_archive_t *archive, const char *name,
                                         uint64_t offset, void *dst, uint64_t nbytes) {
  return read_range(archive, name, offset, dst, nbytes);
}

moai_status_t moai_ts_read_entry_range(const char *path, const char *entry,
                                       uint64_t offset, void *dst,
                                       uint64_t nbytes) {
  moai_ts_archive_t *a;
  MOAI_RETURN_IF_ERROR(moai_ts_archive_open(path, &a));
  moai_status_t st = read_range(a, entry, offset, dst, nbytes);
  moai_ts_archive_close(a);
  return st;
}

/* ---- Tensors ------------------------------------------------------------- */

static void storage_name(const char *dir, const moai_pk_tensor_t *t, char *buf,
                         size_t cap) {
  snprintf(buf, cap, "%s/%s", dir, t->storage_key ? t->storage_key : "?");
}

static int64_t tensor_numel(const moai_pk_tensor_t *t) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; ++d) n *= t->sizes[d]; /* bounded by pickle.c */
  return n;
}

bool moai_ts_tensor_contiguous(const moai_pk_tensor_t *t) {
  int64_t expect = 1;
  for (int d = t->rank - 1; d >= 0; --d) {
    if (t->sizes[d] != 1 && t->strides[d] != expect) return false;
    expect *= t->sizes[d];
  }
  return true;
}

/* The storage elements a tensor spans from its offset: 1 + the offset of its
 * last element, or 0 when it has none; false on overflow. */
static bool tensor_extent(const moai_pk_tensor_t *t, uint64_t *out) {
  uint64_t last = (uint64_t)t->storage_offset;
  for (int d = 0; d < t->rank; ++d) {
    if (t->sizes[d] == 0) {
      *out = 0;
      return true;
    }
    uint64_t span;
    if (__builtin_mul_overflow((uint64_t)(t->sizes[d] - 1),
                               (uint64_t)t->strides[d], &span) ||
        __builtin_add_overflow(last, span, &last))
      return false;
  }
  *out = last + 1;
  return true;
}

moai_status_t moai_ts_archive_check_tensor(moai_ts_archive_t *a,
                                           const char *dir,
                                           const moai_pk_tensor_t *t,
                                           const char *what) {
  char name[96];
  storage_name(dir, t, name, sizeof name);
  size_t esize = moai_pk_dtype_size(t->dtype);
  if (!esize)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: %s: tensor '%s' has dtype %d, which moai does "
                       "not read", a->path, name, what, (int)t->dtype);
  if (t->rank < 0 || t->rank > MOAI_PK_MAX_RANK || t->storage_offset < 0 ||
      t->storage_numel < 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: %s: tensor '%s' is malformed",
                       a->path, name, what);
  const ts_entry_t *e = find(a, name);
  if (!e)
    return MOAI_STATUS(MOAI_NOT_FOUND, "%s: %s: missing storage of tensor '%s'",
                       a->path, name, what);
  zip_stat_t zs;
  if (zip_stat_index(a->zip, e->index, 0, &zs) != 0 ||
      !(zs.valid & ZIP_STAT_SIZE))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s: cannot stat the entry: %s",
                       a->path, name, zip_strerror(a->zip));
  uint64_t want = (uint64_t)t->storage_numel * esize; /* < 2^63: pickle.c */
  if (zs.size != want)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: %s: storage of tensor '%s' has %llu bytes, not "
                       "%lld elements of %zu bytes", a->path, name, what,
                       (unsigned long long)zs.size,
                       (long long)t->storage_numel, esize);
  uint64_t extent;
  if (!tensor_extent(t, &extent) || extent > (uint64_t)t->storage_numel)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: %s: tensor '%s' (offset %lld, rank %d) reaches "
                       "past its storage of %lld elements", a->path, name,
                       what, (long long)t->storage_offset, t->rank,
                       (long long)t->storage_numel);
  return moai_ok_status();
}

/* Copies the elements of a strided view of `src` (row-major order). */
static void gather(const moai_pk_tensor_t *t, const char *src, char *dst,
                   size_t esize) {
  int64_t idx[MOAI_PK_MAX_RANK] = {0};
  int64_t numel = tensor_numel(t);
  for (int64_t n = 0; n < numel; ++n) {
    int64_t off = 0;
    for (int d = 0; d < t->rank; ++d) off += idx[d] * t->strides[d];
    memcpy(dst + n * (int64_t)esize, src + off * (int64_t)esize, esize);
    for (int d = t->rank - 1; d >= 0; --d) {
      if (++idx[d] < t->sizes[d]) break;
      idx[d] = 0;
    }
  }
}

moai_status_t moai_ts_archive_read_tensor(moai_ts_archive_t *a,
                                          const char *dir,
                                          const moai_pk_tensor_t *t, void *dst,
                                          uint64_t nbytes) {
  MOAI_RETURN_IF_ERROR(moai_ts_archive_check_tensor(a, dir, t, "?"));
  char name[96];
  storage_name(dir, t, name, sizeof name);
  size_t esize = moai_pk_dtype_size(t->dtype);
  uint64_t numel = (uint64_t)tensor_numel(t);
  if (nbytes != numel * esize)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: %s: reading %llu bytes of a tensor of %llu", a->path,
                       name, (unsigned long long)nbytes,
                       (unsigned long long)(numel * esize));
  if (numel == 0) return moai_ok_status();
  uint64_t base = (uint64_t)t->storage_offset * esize;
  if (moai_ts_tensor_contiguous(t))
    return read_range(a, name, base, dst, nbytes);
  uint64_t extent = 0;
  (void)tensor_extent(t, &extent); /* checked above */
  uint64_t span = (extent - (uint64_t)t->storage_offset) * esize;
  char *buf = malloc(span);
  if (!buf)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: %s: out of memory", a->path,
                       name);
  moai_status_t st = read_range(a, name, base, buf, span);
  if (!st) gather(t, buf, dst, esize);
  free(buf);
  return st;
}

/* ---- Pickles ------------------------------------------------------------- */

/* Visits every tensor under `v`, checking it; `path` is its dotted name. */
typedef struct walk_t {
  moai_ts_archive_t *a;
  const char *dir;
  uint64_t visits;
  char path[1024];
} walk_t;

#define MOAI_TS_MAX_WALK (1u << 22)

static moai_status_t walk(walk_t *w, const moai_pk_value_t *v, size_t plen) {
  if (++w->visits > MOAI_TS_MAX_WALK)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: the module tree has more than %u values",
                       w->a->path, MOAI_TS_MAX_WALK);
  switch (v->kind) {
    case MOAI_PK_TENSOR:
      return moai_ts_archive_check_tensor(w->a, w->dir, &v->tensor,
                                          plen ? w->path : "<root>");
    case MOAI_PK_OBJECT: return walk(w, v->state, plen);
    case MOAI_PK_TUPLE:
    case MOAI_PK_LIST:
    case MOAI_PK_DICT: {
      bool dict = v->kind == MOAI_PK_DICT;
      for (size_t i = dict ? 1 : 0; i < v->len; i += dict ? 2 : 1) {
        const moai_pk_value_t *key = dict ? v->items[i - 1] : NULL;
        int n;
        if (key && key->kind == MOAI_PK_STR)
          n = snprintf(w->path + plen, sizeof w->path - plen, "%s%s",
                       plen ? "." : "", key->str);
        else
          n = snprintf(w->path + plen, sizeof w->path - plen, "%s%zu",
                       plen ? "." : "", dict ? i / 2 : i);
        size_t nlen = plen + (size_t)n;
        if (nlen >= sizeof w->path) nlen = sizeof w->path - 1;
        MOAI_RETURN_IF_ERROR(walk(w, v->items[i], nlen));
        w->path[plen] = '\0';
      }
      return moai_ok_status();
    }
    default: return moai_ok_status();
  }
}

static moai_status_t load_pickle(moai_ts_archive_t *a, const char *entry,
                                 moai_pk_arena_t **out_arena,
                                 moai_pk_value_t **out_value) {
  char *data = NULL;
  size_t size = 0;
  MOAI_RETURN_IF_ERROR(moai_ts_archive_read(a, entry, &data, &size));
  size_t nlen = strlen(a->path) + strlen(entry) + 3;
  char *name = malloc(nlen);
  if (!name) {
    free(data);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", a->path);
  }
  snprintf(name, nlen, "%s: %s", a->path, entry);
  moai_status_t st = moai_pk_load(data, size, name, out_arena, out_value);
  free(name);
  free(data);
  return st;
}

moai_status_t moai_ts_archive_load_data(moai_ts_archive_t *a,
                                        moai_pk_arena_t **out_arena,
                                        moai_pk_value_t **out_root) {
  moai_pk_arena_t *arena;
  moai_pk_value_t *root;
  MOAI_RETURN_IF_ERROR(load_pickle(a, "data.pkl", &arena, &root));
  moai_status_t st = moai_ok_status();
  if (root->kind != MOAI_PK_OBJECT)
    st = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "%s: data.pkl: the root is not a module object", a->path);
  walk_t *w = st ? NULL : calloc(1, sizeof *w);
  if (!st && !w)
    st = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", a->path);
  if (!st) {
    w->a = a;
    w->dir = "data";
    st = walk(w, root, 0);
  }
  free(w);
  if (st) {
    moai_pk_arena_free(arena);
    return st;
  }
  *out_arena = arena;
  *out_root = root;
  return moai_ok_status();
}

moai_status_t moai_ts_archive_load_constants(moai_ts_archive_t *a,
                                             moai_pk_arena_t **out_arena,
                                             moai_pk_value_t **out_tuple) {
  moai_pk_arena_t *arena;
  moai_pk_value_t *tuple;
  if (!find(a, "constants.pkl")) {
    static const char kEmptyTuple[] = "\x80\x02).";
    return moai_pk_load(kEmptyTuple, sizeof kEmptyTuple - 1, "constants.pkl",
                        out_arena, out_tuple);
  }
  MOAI_RETURN_IF_ERROR(load_pickle(a, "constants.pkl", &arena, &tuple));
  moai_status_t st = moai_ok_status();
  if (tuple->kind != MOAI_PK_TUPLE)
    st = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "%s: constants.pkl: not a tuple of tensors", a->path);
  for (size_t i = 0; !st && i < tuple->len; ++i) {
    char what[48];
    snprintf(what, sizeof what, "CONSTANTS.c%zu", i);
    if (tuple->items[i]->kind != MOAI_PK_TENSOR)
      st = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: constants.pkl: %s is not a tensor", a->path, what);
    else
      st = moai_ts_archive_check_tensor(a, "constants",
                                        &tuple->items[i]->tensor, what);
  }
  if (st) {
    moai_pk_arena_free(arena);
    return st;
  }
  *out_arena = arena;
  *out_tuple = tuple;
  return moai_ok_status();
}
