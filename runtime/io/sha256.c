#include "io/sha256.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"

moai_status_t moai_sha256_buffer(const void *data, size_t size,
                                 char out_hex[MOAI_SHA256_HEX_SIZE]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory starting SHA-256");
  /* Feed in 1 GiB slices: EVP_DigestUpdate takes a size_t, but smaller
   * slices keep every OpenSSL build happy. */
  int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  const unsigned char *p = data;
  while (ok && size > 0) {
    size_t n = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
    ok = EVP_DigestUpdate(ctx, p, n);
    p += n;
    size -= n;
  }
  ok = ok && EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  if (!ok || len != 32) return MOAI_STATUS(MOAI_INTERNAL, "SHA-256 failed in OpenSSL");
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; ++i) {
    out_hex[2 * i] = hex[digest[i] >> 4];
    out_hex[2 * i + 1] = hex[digest[i] & 15];
  }
  out_hex[64] = '\0';
  return moai_ok_status();
}

moai_status_t moai_sha256_file(const char *path, char out_hex[MOAI_SHA256_HEX_SIZE]) {
  moai_file_map_t map;
  MOAI_RETURN_IF_ERROR(moai_file_map(path, &map));
  moai_status_t status = moai_sha256_buffer(map.data ? map.data : (const unsigned char *)"",
                                            map.size, out_hex);
  moai_file_unmap(&map);
  return status;
}

struct moai_sha256_stream_t {
  EVP_MD_CTX *ctx;
};

moai_status_t moai_sha256_begin(moai_sha256_stream_t **out_stream) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory starting SHA-256");
  moai_sha256_stream_t *s = NULL;
  if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) || !(s = malloc(sizeof(*s)))) {
    EVP_MD_CTX_free(ctx);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory starting SHA-256");
  }
  s->ctx = ctx;
  *out_stream = s;
  return moai_ok_status();
}

moai_status_t moai_sha256_update(moai_sha256_stream_t *s, const void *data, size_t size) {
  const unsigned char *p = data;
  while (size > 0) {
    size_t n = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
    if (!EVP_DigestUpdate(s->ctx, p, n))
      return MOAI_STATUS(MOAI_INTERNAL, "SHA-256 failed in OpenSSL");
    p += n;
    size -= n;
  }
  return moai_ok_status();
}

moai_status_t moai_sha256_end(moai_sha256_stream_t *s, char out_hex[MOAI_SHA256_HEX_SIZE]) {
  if (!s) return moai_ok_status();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  int ok = !out_hex || EVP_DigestFinal_ex(s->ctx, digest, &len);
  EVP_MD_CTX_free(s->ctx);
  free(s);
  if (!out_hex) return moai_ok_status();
  if (!ok || len != 32) return MOAI_STATUS(MOAI_INTERNAL, "SHA-256 failed in OpenSSL");
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; ++i) {
    out_hex[2 * i] = hex[digest[i] >> 4];
    out_hex[2 * i + 1] = hex[digest[i] & 15];
  }
  out_hex[64] = '\0';
  return moai_ok_status();
}
