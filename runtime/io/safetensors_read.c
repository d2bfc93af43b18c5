/* The safetensors reader: maps a file and validates everything in it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "io/dtype.h"
#include "io/file.h"
#include "io/safetensors.h"

struct moai_safetensors_t {
  moai_allocator_t allocator;
  moai_file_map_t map;
  uint64_t data_file_offset;
  uint64_t data_size;
  size_t count;
  moai_safetensors_entry_t *entries;        /* by offset */
  const moai_safetensors_entry_t **by_name; /* sorted by name */
  size_t n_meta;
  const char **meta; /* k0, v0, k1, v1, ... into `strings` */
  char *strings;     /* every name, key and value, NUL-terminated */
};

static int compare_entry_offset(const void *a, const void *b) {
  const moai_safetensors_entry_t *x = a, *y = b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int compare_entry_name(const void *a, const void *b) {
  const moai_safetensors_entry_t *x = *(const moai_safetensors_entry_t *const *)a;
  const moai_safetensors_entry_t *y = *(const moai_safetensors_entry_t *const *)b;
  return strcmp(x->name, y->name);
}

static const char *json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "a value";
}

/* Reads one tensor's header object into `e` (name set by the caller). */
static moai_status_t parse_entry(const char *path, const char *name, json_t *v,
                                 uint64_t data_size, moai_safetensors_entry_t *e) {
  if (!json_is_object(v))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: tensor '%s': header entry is %s, expected an object",
                       path, name, json_type_name(v));
  const char *key;
  json_t *field;
  json_object_foreach(v, key, field) {
    if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
      return MOAI_STATUS(MOAI_DATA_LOSS, "%s: tensor '%s': unknown field '%s'", path, name, key);
  }
  json_t *dtype = json_object_get(v, "dtype");
  json_t *shape = json_object_get(v, "shape");
  json_t *offsets = json_object_get(v, "data_offsets");
  if (!json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offsets))
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: tensor '%s': needs a string 'dtype', an array 'shape' and an "
                       "array 'data_offsets'", path, name);
  if (!moai_dtype_from_safetensors_name(json_string_value(dtype), &e->dtype))
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: tensor '%s': dtype '%s' is not supported (moai reads F64 F32 "
                       "F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)",
                       path, name, json_string_value(dtype));
  size_t rank = json_array_size(shape);
  if (rank > MOAI_MAX_RANK)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "%s: tensor '%s': rank %zu exceeds moai's limit of %d",
                       path, name, rank, MOAI_MAX_RANK);
  e->rank = (int32_t)rank;
  for (size_t i = 0; i < rank; ++i) {
    json_t *d = json_array_get(shape, i);
    if (!json_is_integer(d) || json_integer_value(d) < 0)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                         name, i);
    e->dims[i] = (int64_t)json_integer_value(d);
  }
  json_t *b = json_array_get(offsets, 0), *en = json_array_get(offsets, 1);
  if (json_array_size(offsets) != 2 || !json_is_integer(b) || !json_is_integer(en) ||
      json_integer_value(b) < 0 || json_integer_value(en) < json_integer_value(b))
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: tensor '%s': data_offsets must be [begin, end] with "
                       "0 <= begin <= end", path, name);
  uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(en);
  if (end > data_size)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: tensor '%s': data_offsets [%llu, %llu] run past the data section "
                       "(%llu bytes): the file is truncated or corrupt",
                       path, name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)data_size);
  uint64_t nbytes = 0;
  if (!moai_shape_nbytes(e->dtype, e->rank, e->dims, &nbytes) || nbytes != end - begin) {
    char shape_text[160];
    moai_shape_format(e->rank, e->dims, shape_text, sizeof(shape_text));
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets "
                       "span %llu",
                       path, name, shape_text, json_string_value(dtype),
                       (unsigned long long)nbytes, (unsigned long long)(end - begin));
  }
  e->offset = begin;
  e->nbytes = nbytes;
  return moai_ok_status();
}

/* Copies names and metadata into one string block and fills the entries. */
static moai_status_t parse_header(const char *path, json_t *root, moai_safetensors_t *st) {
  if (!json_is_object(root))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: header is %s, expected a JSON object", path,
                       json_type_name(root));
  json_t *meta = json_object_get(root, "__metadata__");
  if (meta && !json_is_object(meta))
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: __metadata__ is %s, expected an object", path,
                       json_type_name(meta));
  size_t string_bytes = 0, count = 0;
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (v == meta) continue;
    if (!key[0]) return MOAI_STATUS(MOAI_DATA_LOSS, "%s: a tensor has an empty name", path);
    string_bytes += strlen(key) + 1;
    ++count;
  }
  size_t n_meta = meta ? json_object_size(meta) : 0;
  if (meta) {
    json_object_foreach(meta, key, v) {
      if (!json_is_string(v))
        return MOAI_STATUS(MOAI_DATA_LOSS, "%s: __metadata__ '%s' is %s, expected a string",
                           path, key, json_type_name(v));
      string_bytes += strlen(key) + 1 + json_string_length(v) + 1;
    }
  }
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(st->allocator, string_bytes, (void **)&st->strings));
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(st->allocator, (count ? count : 1) * sizeof(*st->entries),
                                             (void **)&st->entries));
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(st->allocator, (count ? count : 1) * sizeof(*st->by_name),
                                             (void **)&st->by_name));
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(st->allocator, (2 * n_meta + 1) * sizeof(*st->meta),
                                             (void **)&st->meta));
  char *cursor = st->strings;
  size_t i = 0;
  json_object_foreach(root, key, v) {
    if (v == meta) continue;
    moai_safetensors_entry_t *e = &st->entries[i++];
    size_t len = strlen(key) + 1;
    memcpy(cursor, key, len);
    e->name = cursor;
    cursor += len;
    MOAI_RETURN_IF_ERROR(parse_entry(path, e->name, v, st->data_size, e));
  }
  st->count = count;
  if (meta) {
    size_t m = 0;
    json_object_foreach(meta, key, v) {
      size_t klen = strlen(key) + 1, vlen = json_string_length(v);
      memcpy(cursor, key, klen);
      st->meta[m++] = cursor;
      cursor += klen;
      memcpy(cursor, json_string_value(v), vlen);
      cursor[vlen] = '\0';
      st->meta[m++] = cursor;
      cursor += vlen + 1;
    }
    st->n_meta = n_meta;
  }
  return moai_ok_status();
}

/* Tensors must tile the data section exactly, as HuggingFace's reader
 * demands: sorted by offset, each begins where the previous ends. */
static moai_status_t check_tiling(const char *path, moai_safetensors_t *st) {
  qsort(st->entries, st->count, sizeof(*st->entries), compare_entry_offset);
  uint64_t end = 0;
  for (size_t i = 0; i < st->count; ++i) {
    const moai_safetensors_entry_t *e = &st->entries[i];
    if (e->offset != end)
      return MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: tensor '%s' starts at data byte %llu but the tensors before it "
                         "end at %llu (holes and overlaps are not allowed)",
                         path, e->name, (unsigned long long)e->offset, (unsigned long long)end);
    end += e->nbytes;
  }
  if (end != st->data_size)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: the data section holds %llu bytes but the tensors cover %llu: "
                       "the file is truncated or has trailing bytes",
                       path, (unsigned long long)st->data_size, (unsigned long long)end);
  for (size_t i = 0; i < st->count; ++i) st->by_name[i] = &st->entries[i];
  qsort(st->by_name, st->count, sizeof(*st->by_name), compare_entry_name);
  return moai_ok_status();
}

static moai_status_t open_mapped(const char *path, moai_safetensors_t *st) {
  const moai_file_map_t *map = &st->map;
  if (map->size < 8)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: truncated safetensors file (%zu bytes; not even the 8-byte header "
                       "length)", path, map->size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | map->data[i];
  if (n > MOAI_SAFETENSORS_MAX_HEADER)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: header length %llu is implausible (limit %u): not a safetensors "
                       "file, or a corrupt one", path, (unsigned long long)n,
                       MOAI_SAFETENSORS_MAX_HEADER);
  if (n > map->size - 8)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: truncated: the header claims %llu bytes but the file has only "
                       "%zu after the length", path, (unsigned long long)n, map->size - 8);
  if (n < 2 || map->data[8] != '{')
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: the header does not start with '{': not a "
                       "safetensors file", path);
  st->data_file_offset = 8 + n;
  st->data_size = map->size - 8 - n;
  json_error_t err;
  json_t *root = json_loadb((const char *)map->data + 8, (size_t)n, JSON_REJECT_DUPLICATES, &err);
  if (!root)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: the header is not valid JSON: %s (at byte %d)",
                       path, err.text, err.position + 8);
  moai_status_t status = parse_header(path, root, st);
  json_decref(root);
  if (!status) status = check_tiling(path, st);
  return status;
}

moai_status_t moai_safetensors_open(const char *path, moai_allocator_t allocator,
                                    moai_safetensors_t **out) {
  moai_safetensors_t *st = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, sizeof(*st), (void **)&st));
  st->allocator = allocator;
  moai_status_t status = moai_file_map(path, &st->map);
  if (!status) status = open_mapped(path, st);
  if (status) {
    moai_safetensors_close(st);
    return status;
  }
  *out = st;
  return moai_ok_status();
}

size_t moai_safetensors_count(const moai_safetensors_t *st) { return st->count; }

const moai_safetensors_entry_t *moai_safetensors_entry(const moai_safetensors_t *st, size_t i) {
  return i < st->count ? &st->entries[i] : NULL;
}

const moai_safetensors_entry_t *moai_safetensors_find(const moai_safetensors_t *st,
                                                      const char *name) {
  size_t lo = 0, hi = st->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(st->by_name[mid]->name, name);
    if (c == 0) return st->by_name[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

const unsigned char *moai_safetensors_data(const moai_safetensors_t *st) {
  return st->data_size ? st->map.data + st->data_file_offset : NULL;
}

uint64_t moai_safetensors_data_size(const moai_safetensors_t *st) { return st->data_size; }

uint64_t moai_safetensors_data_file_offset(const moai_safetensors_t *st) {
  return st->data_file_offset;
}

const char *moai_safetensors_metadata(const moai_safetensors_t *st, const char *key) {
  for (size_t i = 0; i < st->n_meta; ++i)
    if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
  return NULL;
}

void moai_safetensors_close(moai_safetensors_t *st) {
  if (!st) return;
  moai_file_unmap(&st->map);
  moai_allocator_free(st->allocator, st->strings);
  moai_allocator_free(st->allocator, st->entries);
  moai_allocator_free(st->allocator, st->by_name);
  moai_allocator_free(st->allocator, (void *)st->meta);
  moai_allocator_free(st->allocator, st);
}
