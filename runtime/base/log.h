/* moai logging: one macro with a level, writing to a sink held by whoever
 * owns the work (a compiler context, a runtime session). No global logger.
 * MOAI_LOG_DEBUG compiles out unless MOAI_ENABLE_DEBUG_LOG is defined. */
#ifndef MOAI_BASE_LOG_H
#define MOAI_BASE_LOG_H

#include <stdarg.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum moai_log_level_e {
  MOAI_LOG_LEVEL_ERROR = 0,
  MOAI_LOG_LEVEL_WARNING = 1,
  MOAI_LOG_LEVEL_INFO = 2,
  MOAI_LOG_LEVEL_DEBUG = 3,
} moai_log_level_t;

/* Receives one formatted message (no trailing newline). */
typedef void (*moai_log_fn_t)(void *self, moai_log_level_t level,
                              const char *message);

typedef struct moai_log_sink_t {
  void *self;
  moai_log_fn_t fn;     /* NULL: write "moai: level: message" to stderr */
  moai_log_level_t max_level; /* messages above this level are dropped */
} moai_log_sink_t;

/* A sink writing to stderr at the given verbosity. */
moai_log_sink_t moai_log_sink_stderr(moai_log_level_t max_level);

/* Parses "error", "warning", "info" or "debug"; returns false otherwise. */
int moai_log_level_parse(const char *text, moai_log_level_t *out_level);

void moai_log_write(const moai_log_sink_t *sink, moai_log_level_t level,
                    const char *fmt, ...) MOAI_PRINTF(3, 4);
void moai_log_writev(const moai_log_sink_t *sink, moai_log_level_t level,
                     const char *fmt, va_list args);

/* Writes when `level` is enabled in `sink` (NULL sink: dropped). */
#define MOAI_LOG(sink, level, ...) moai_log_write((sink), (level), __VA_ARGS__)

#ifdef MOAI_ENABLE_DEBUG_LOG
#define MOAI_LOG_DEBUG(sink, ...) MOAI_LOG(sink, MOAI_LOG_LEVEL_DEBUG, __VA_ARGS__)
#else
#define MOAI_LOG_DEBUG(sink, ...) \
  do {                            \
    (void)(sink);                 \
  } while (0)
#endif

#ifdef __cplusplus
}
#endif

#endif /* MOAI_BASE_LOG_H */
