#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void moai_strbuf_init(moai_strbuf_t *sb, moai_allocator_t allocator) {
  memset(sb, 0, sizeof(*sb));
  sb->allocator = allocator;
}

static bool reserve(moai_strbuf_t *sb, size_t extra) {
  if (sb->failed) return false;
  size_t need = sb->length + extra + 1;
  if (need <= sb->capacity) return true;
  size_t cap = sb->capacity ? sb->capacity * 2 : 256;
  while (cap < need) cap *= 2;
  void *p = sb->data;
  moai_status_t s = moai_allocator_realloc(sb->allocator, cap, &p);
  if (s) {
    moai_status_free(s);
    sb->failed = true;
    return false;
  }
  sb->data = p;
  sb->capacity = cap;
  return true;
}

void moai_strbuf_append_n(moai_strbuf_t *sb, const char *text, size_t n) {
  if (!reserve(sb, n)) return;
  memcpy(sb->data + sb->length, text, n);
  sb->length += n;
  sb->data[sb->length] = '\0';
}

void moai_strbuf_append(moai_strbuf_t *sb, const char *text) {
  moai_strbuf_append_n(sb, text, strlen(text));
}

void moai_strbuf_appendf(moai_strbuf_t *sb, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n >= 0 && reserve(sb, (size_t)n)) {
    vsnprintf(sb->data + sb->length, (size_t)n + 1, fmt, args);
    sb->length += (size_t)n;
  }
  va_end(args);
}

void moai_strbuf_mlir_callback(MlirStringRef text, void *user_data) {
  moai_strbuf_append_n(user_data, text.data, text.length);
}

moai_status_t moai_strbuf_finish(moai_strbuf_t *sb, char **out_text) {
  if (sb->failed || !reserve(sb, 0)) {
    moai_strbuf_reset(sb);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory building text");
  }
  *out_text = sb->data;
  sb->data = NULL;
  sb->length = sb->capacity = 0;
  return moai_ok_status();
}

void moai_strbuf_reset(moai_strbuf_t *sb) {
  moai_allocator_free(sb->allocator, sb->data);
  sb->data = NULL;
  sb->length = sb->capacity = 0;
  sb->failed = false;
}
