/* SHA-256 of files and buffers (OpenSSL's EVP interface), as lowercase hex.
 * The plan writer records these in manifest.json; the loader checks them
 * before it maps weights or dlopens a device binary. */
#ifndef MOAI_IO_SHA256_H
#define MOAI_IO_SHA256_H

#include <stddef.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 64 hex digits and a NUL. */
#define MOAI_SHA256_HEX_SIZE 65

/* Hashes `size` bytes at `data` into out_hex (untouched on failure). */
moai_status_t moai_sha256_buffer(const void *data, size_t size,
                                 char out_hex[MOAI_SHA256_HEX_SIZE]) MOAI_MUST_USE;

/* Hashes the whole file at `path` (mapped, not read into memory). */
moai_status_t moai_sha256_file(const char *path,
                               char out_hex[MOAI_SHA256_HEX_SIZE]) MOAI_MUST_USE;

/* Incremental hashing of data that arrives in pieces (a file being
 * written): begin, update any number of times, end (which frees). */
typedef struct moai_sha256_stream_t moai_sha256_stream_t;
moai_status_t moai_sha256_begin(moai_sha256_stream_t **out_stream) MOAI_MUST_USE;
moai_status_t moai_sha256_update(moai_sha256_stream_t *stream, const void *data,
                                 size_t size) MOAI_MUST_USE;
/* Writes the digest and frees the stream (NULL out_hex: just frees). */
moai_status_t moai_sha256_end(moai_sha256_stream_t *stream,
                              char out_hex[MOAI_SHA256_HEX_SIZE]) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IO_SHA256_H */
