/* A growable string for building text (IRDL, diagnostics, reports). Append
 * failures are sticky and reported once by moai_strbuf_finish. */
#ifndef MOAI_IR_STRBUF_H
#define MOAI_IR_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/allocator.h"
#include "base/status.h"
#include "mlir-c/Support.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_strbuf_t {
  moai_allocator_t allocator;
  char *data;
  size_t length;
  size_t capacity;
  bool failed;
} moai_strbuf_t;

void moai_strbuf_init(moai_strbuf_t *sb, moai_allocator_t allocator);
void moai_strbuf_append(moai_strbuf_t *sb, const char *text);
void moai_strbuf_append_n(moai_strbuf_t *sb, const char *text, size_t n);
void moai_strbuf_appendf(moai_strbuf_t *sb, const char *fmt, ...)
    MOAI_PRINTF(2, 3);
/* An MlirStringCallback that appends to the moai_strbuf_t in user_data. */
void moai_strbuf_mlir_callback(MlirStringRef text, void *user_data);
/* Hands the text (NUL-terminated) to the caller, or fails if any append
 * failed; the buffer is reset either way. */
moai_status_t moai_strbuf_finish(moai_strbuf_t *sb,
                                 char **out_text) MOAI_MUST_USE;
/* Frees the text. */
void moai_strbuf_reset(moai_strbuf_t *sb);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IR_STRBUF_H */
