/* safetensors files (the HuggingFace format): an 8-byte little-endian header
 * length N, N bytes of JSON header, then the data section. moai writes every
 * plan's weights-<k>.safetensors with moai_safetensors_write and maps them
 * read-only with moai_safetensors_open; the device binary addresses weights by
 * their data offsets (MOAI_REGION_WEIGHTS in abi/moai_abi.h).
 *
 * moai's files are ordinary safetensors files (any reader accepts them) with
 * two extra guarantees: the data section starts at a multiple of 64 bytes in
 * the file (the header is padded with spaces) and every tensor is naturally
 * aligned in it (see moai_safetensors_layout). See docs/plan-format.md. */
#ifndef MOAI_IO_SAFETENSORS_H
#define MOAI_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "abi/moai_abi.h"
#include "base/allocator.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The data section starts at a multiple of this in moai's files. */
#define MOAI_SAFETENSORS_DATA_ALIGN 64
/* Headers longer than this are refused (the limit of HuggingFace's reader). */
#define MOAI_SAFETENSORS_MAX_HEADER 100000000u

typedef struct moai_safetensors_entry_t {
  const char *name;
  int32_t dtype;               /* moai_abi_dtype_t */
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK];
  uint64_t offset;             /* data offset relative to the data section (set by layout) */
  uint64_t nbytes;             /* numel * dtype size */
} moai_safetensors_entry_t;

/* Assigns offsets: entries laid out contiguously (safetensors forbids holes),
 * ordered so every tensor is naturally aligned (8-byte dtypes first, then 4,
 * 2, 1; stable within a class); sets offset (and nbytes, from dtype and dims)
 * of each entry; returns the data size. Entries with an unknown dtype or a
 * bad shape get nbytes 0: moai_safetensors_write refuses them. */
void moai_safetensors_layout(moai_safetensors_entry_t *entries, size_t n,
                             uint64_t *out_data_size);

/* Supplies the bytes of entries[index]: writes exactly nbytes at dst. Never
 * called for empty tensors. */
typedef moai_status_t (*moai_safetensors_fill_fn)(void *user, size_t index,
                                                  void *dst, uint64_t nbytes);

/* Writes `path` atomically (temporary in the same directory, fsync, rename):
 * the header lists the entries in offset order, then "__metadata__" (string
 * pairs k0,v0,k1,v1...; none when n_kv is 0), padded with spaces so the data
 * section starts at a multiple of 64 in the file; then each entry's bytes from
 * fill(), in offset order. The entries must be laid out already (contiguous
 * from 0, no holes: moai_safetensors_layout does it) with unique, non-empty
 * names. Streams: the data is written through a mapping of the file, one
 * tensor at a time, never gathered in memory. On failure nothing is left at
 * `path` (an existing file there is kept). */
moai_status_t moai_safetensors_write(const char *path,
                                     const moai_safetensors_entry_t *entries, size_t n,
                                     const char *const *metadata_kv, size_t n_kv,
                                     moai_safetensors_fill_fn fill, void *user) MOAI_MUST_USE;

typedef struct moai_safetensors_t moai_safetensors_t;

/* Maps `path` read-only and validates it fully: header length sane, header
 * JSON (no duplicate keys), known dtypes, shapes whose size matches the
 * data_offsets span, offsets in range, tensors covering the data section
 * exactly (no overlaps, no holes). Errors name the file and the tensor. The
 * result owns the mapping and is freed with moai_safetensors_close. */
moai_status_t moai_safetensors_open(const char *path, moai_allocator_t allocator,
                                    moai_safetensors_t **out) MOAI_MUST_USE;

/* Number of tensors; entries are in data-offset order. Borrowed. */
size_t moai_safetensors_count(const moai_safetensors_t *st);
const moai_safetensors_entry_t *moai_safetensors_entry(const moai_safetensors_t *st, size_t i);
/* The entry named `name`, or NULL. */
const moai_safetensors_entry_t *moai_safetensors_find(const moai_safetensors_t *st,
                                                      const char *name);
/* Start of the data section (borrowed; NULL when it is empty). */
const unsigned char *moai_safetensors_data(const moai_safetensors_t *st);
/* Size of the data section in bytes. */
uint64_t moai_safetensors_data_size(const moai_safetensors_t *st);
/* Byte offset of the data section in the file (8 + header length). */
uint64_t moai_safetensors_data_file_offset(const moai_safetensors_t *st);
/* The "__metadata__" value for `key`, or NULL. Borrowed. */
const char *moai_safetensors_metadata(const moai_safetensors_t *st, const char *key);

/* Unmaps and frees (NULL is fine). */
void moai_safetensors_close(moai_safetensors_t *st);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IO_SAFETENSORS_H */
