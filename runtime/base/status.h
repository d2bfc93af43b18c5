/* moai status: one pointer-sized value describing success or failure.
 *
 * Modelled on IREE's iree_status_t: NULL means OK; anything else is a failure
 * that owns a heap payload (code, source location, message and the context
 * added while the error unwound). If the payload cannot be allocated the code
 * alone is encoded in the pointer's low bits, so reporting never fails.
 *
 * Ownership: a function that returns a non-OK status hands it to the caller,
 * who must either return it further (optionally annotated) or free it with
 * moai_status_free. Every status-returning function is MOAI_MUST_USE. */
#ifndef MOAI_BASE_STATUS_H
#define MOAI_BASE_STATUS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MOAI_MUST_USE __attribute__((warn_unused_result))
#define MOAI_PRINTF(fmt_index, first_arg) \
  __attribute__((format(printf, fmt_index, first_arg)))
#else
#define MOAI_MUST_USE
#define MOAI_PRINTF(fmt_index, first_arg)
#endif

typedef enum moai_status_code_e {
  MOAI_OK = 0,
  MOAI_INVALID_ARGUMENT = 1, /* bad input: a malformed model, bad option */
  MOAI_NOT_FOUND = 2,        /* a missing file, name or value */
  MOAI_UNIMPLEMENTED = 3,    /* an unsupported op, attribute or dtype */
  MOAI_OUT_OF_MEMORY = 4,    /* an allocation failed */
  MOAI_IO_ERROR = 5,         /* a read or write failed */
  MOAI_DATA_LOSS = 6,        /* a truncated or corrupt file */
  MOAI_FAILED_PRECONDITION = 7, /* the IR or plan is not in the needed state */
  MOAI_INTERNAL = 8,         /* a bug in moai */
  MOAI_STATUS_CODE_COUNT
} moai_status_code_t;

typedef struct moai_status_payload_t *moai_status_t;

#define moai_ok_status() ((moai_status_t)NULL)

/* Creates a failure with a printf-style message; prefer the MOAI_STATUS macro
 * which records the source location. Returns OK when code is MOAI_OK. */
moai_status_t moai_status_make(moai_status_code_t code, const char *file,
                               int line, const char *fmt, ...)
    MOAI_PRINTF(4, 5) MOAI_MUST_USE;
moai_status_t moai_status_makev(moai_status_code_t code, const char *file,
                                int line, const char *fmt, va_list args)
    MOAI_MUST_USE;

#define MOAI_STATUS(code, ...) \
  moai_status_make((code), __FILE__, __LINE__, __VA_ARGS__)

/* Adds a line of context ("while importing x.onnx") to a failure; takes and
 * returns ownership. OK stays OK. */
moai_status_t moai_status_annotate(moai_status_t status, const char *fmt, ...)
    MOAI_PRINTF(2, 3) MOAI_MUST_USE;

static inline bool moai_status_is_ok(moai_status_t status) {
  return status == NULL;
}

/* The code of a status (MOAI_OK for NULL). */
moai_status_code_t moai_status_code(moai_status_t status);

/* The primary message, borrowed from the status ("" when OK or when the
 * payload could not be allocated). */
const char *moai_status_message(moai_status_t status);

/* The source location the failure was created at (borrowed; may be NULL). */
const char *moai_status_file(moai_status_t status);
int moai_status_line(moai_status_t status);

/* Writes "message\n  while context\n..." to `stream` (no trailing status
 * code); when `with_source` also appends the C source location. */
void moai_status_fprint(FILE *stream, moai_status_t status, bool with_source);

/* A short name for a code, e.g. "INVALID_ARGUMENT". */
const char *moai_status_code_name(moai_status_code_t code);

/* Frees a status (NULL is fine). */
void moai_status_free(moai_status_t status);

/* Returns a non-OK status from the enclosing function. */
#define MOAI_RETURN_IF_ERROR(expr)            \
  do {                                        \
    moai_status_t moai_status_tmp_ = (expr);  \
    if (moai_status_tmp_) return moai_status_tmp_; \
  } while (0)

/* Same, adding a line of context to the failure. */
#define MOAI_RETURN_IF_ERROR_CTX(expr, ...)                       \
  do {                                                            \
    moai_status_t moai_status_tmp_ = (expr);                      \
    if (moai_status_tmp_)                                         \
      return moai_status_annotate(moai_status_tmp_, __VA_ARGS__); \
  } while (0)

#ifdef __cplusplus
}
#endif

#endif /* MOAI_BASE_STATUS_H */
