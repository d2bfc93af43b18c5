#include "status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Payloads are plain malloc: a status must be creatable when the caller's
 * allocator is the one that just failed. */
struct moai_status_payload_t {
  moai_status_code_t code;
  const char *file;
  int line;
  char *message;  /* owned */
  char **context; /* owned array of owned strings, innermost first */
  size_t context_count;
};

/* A status whose payload could not be allocated is the code shifted left by
 * one with the low bit set: payload pointers are always even. */
static bool status_is_code_only(moai_status_t status) {
  return ((uintptr_t)status & 1u) != 0;
}

static moai_status_t status_code_only(moai_status_code_t code) {
  return (moai_status_t)(((uintptr_t)code << 1) | 1u);
}

static char *vformat(const char *fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  vsnprintf(s, (size_t)n + 1, fmt, args);
  return s;
}

moai_status_t moai_status_makev(moai_status_code_t code, const char *file,
                                int line, const char *fmt, va_list args) {
  if (code == MOAI_OK) return NULL;
  struct moai_status_payload_t *p = calloc(1, sizeof(*p));
  if (!p) return status_code_only(code);
  p->code = code;
  p->file = file;
  p->line = line;
  p->message = vformat(fmt, args);
  return p;
}

moai_status_t moai_status_make(moai_status_code_t code, const char *file,
                               int line, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  moai_status_t s = moai_status_makev(code, file, line, fmt, args);
  va_end(args);
  return s;
}

moai_status_t moai_status_annotate(moai_status_t status, const char *fmt, ...) {
  if (!status || status_is_code_only(status)) return status;
  va_list args;
  va_start(args, fmt);
  char *line = vformat(fmt, args);
  va_end(args);
  if (!line) return status;
  char **grown = realloc(status->context,
                         (status->context_count + 1) * sizeof(char *));
  if (!grown) {
    free(line);
    return status;
  }
  status->context = grown;
  status->context[status->context_count++] = line;
  return status;
}

moai_status_code_t moai_status_code(moai_status_t status) {
  if (!status) return MOAI_OK;
  if (status_is_code_only(status))
    return (moai_status_code_t)((uintptr_t)status >> 1);
  return status->code;
}

const char *moai_status_message(moai_status_t status) {
  if (!status || status_is_code_only(status) || !status->message) return "";
  return status->message;
}

const char *moai_status_file(moai_status_t status) {
  if (!status || status_is_code_only(status)) return NULL;
  return status->file;
}

int moai_status_line(moai_status_t status) {
  if (!status || status_is_code_only(status)) return 0;
  return status->line;
}

const char *moai_status_code_name(moai_status_code_t code) {
  static const char *const names[MOAI_STATUS_CODE_COUNT] = {
      "OK",          "INVALID_ARGUMENT", "NOT_FOUND",
      "UNIMPLEMENTED", "OUT_OF_MEMORY", "IO_ERROR",
      "DATA_LOSS",   "FAILED_PRECONDITION", "INTERNAL"};
  if ((unsigned)code >= MOAI_STATUS_CODE_COUNT) return "UNKNOWN";
  return names[code];
}

void moai_status_fprint(FILE *stream, moai_status_t status, bool with_source) {
  if (!status) return;
  const char *msg = moai_status_message(status);
  if (!*msg) msg = moai_status_code_name(moai_status_code(status));
  fprintf(stream, "%s\n", msg);
  if (status_is_code_only(status)) return;
  for (size_t i = 0; i < status->context_count; ++i)
    fprintf(stream, "  while %s\n", status->context[i]);
  if (with_source && status->file)
    fprintf(stream, "  (%s, raised at %s:%d)\n",
            moai_status_code_name(status->code), status->file, status->line);
}

void moai_status_free(moai_status_t status) {
  if (!status || status_is_code_only(status)) return;
  free(status->message);
  for (size_t i = 0; i < status->context_count; ++i) free(status->context[i]);
  free(status->context);
  free(status);
}
