/* A string-keyed hash map (open addressing, linear probing) so that value
 * lookups stay O(1) on graphs of thousands of nodes. Keys are borrowed from
 * the parsed model, which outlives the import. */
#include <string.h>

#include "onnx/importer.h"

/* FNV-1a, 64 bit. */
static uint64_t hash_string(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

void moai_onnx_name_map_init(moai_onnx_name_map_t *map,
                             moai_allocator_t allocator) {
  memset(map, 0, sizeof(*map));
  map->allocator = allocator;
}

void moai_onnx_name_map_deinit(moai_onnx_name_map_t *map) {
  moai_allocator_free(map->allocator, map->entries);
  map->entries = NULL;
  map->capacity = map->count = 0;
}

static moai_onnx_name_entry_t *probe(const moai_onnx_name_map_t *map,
                                     const char *key, uint64_t hash) {
  size_t mask = map->capacity - 1;
  for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
    moai_onnx_name_entry_t *e = &map->entries[i];
    if (!e->key || (e->hash == hash && strcmp(e->key, key) == 0)) return e;
  }
}

/* Rehashes into `capacity` slots (a power of two above the count). */
static moai_status_t rehash(moai_onnx_name_map_t *map, size_t capacity) {
  void *mem = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(
      map->allocator, capacity * sizeof(moai_onnx_name_entry_t), &mem));
  moai_onnx_name_map_t grown = *map;
  grown.entries = mem;
  grown.capacity = capacity;
  for (size_t i = 0; i < map->capacity; ++i) {
    const moai_onnx_name_entry_t *e = &map->entries[i];
    if (e->key) *probe(&grown, e->key, e->hash) = *e;
  }
  moai_allocator_free(map->allocator, map->entries);
  *map = grown;
  return moai_ok_status();
}

moai_status_t moai_onnx_name_map_reserve(moai_onnx_name_map_t *map,
                                         size_t count) {
  size_t want = map->count + count;
  if (want > SIZE_MAX / 4 / sizeof(moai_onnx_name_entry_t))
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "too many names (%zu)", want);
  /* Keep the load factor at or below one half. */
  size_t capacity = map->capacity ? map->capacity : 16;
  while (capacity < 2 * want) capacity *= 2;
  if (capacity == map->capacity) return moai_ok_status();
  return rehash(map, capacity);
}

moai_onnx_name_entry_t *moai_onnx_name_map_find(const moai_onnx_name_map_t *map,
                                                const char *key) {
  if (!map->capacity) return NULL;
  moai_onnx_name_entry_t *e = probe(map, key, hash_string(key));
  return e->key ? e : NULL;
}

moai_status_t moai_onnx_name_map_insert(moai_onnx_name_map_t *map,
                                        const char *key,
                                        moai_onnx_name_entry_t **out_entry,
                                        bool *out_existed) {
  uint64_t hash = hash_string(key);
  if (map->capacity) {
    moai_onnx_name_entry_t *e = probe(map, key, hash);
    if (e->key) {
      *out_entry = e;
      *out_existed = true;
      return moai_ok_status();
    }
  }
  MOAI_RETURN_IF_ERROR(moai_onnx_name_map_reserve(map, 1));
  moai_onnx_name_entry_t *e = probe(map, key, hash);
  memset(e, 0, sizeof(*e));
  e->key = key;
  e->hash = hash;
  map->count++;
  *out_entry = e;
  *out_existed = false;
  return moai_ok_status();
}
