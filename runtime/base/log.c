#include "log.h"

#include <stdio.h>
#include <string.h>

static const char *level_name(moai_log_level_t level) {
  switch (level) {
    case MOAI_LOG_LEVEL_ERROR: return "error";
    case MOAI_LOG_LEVEL_WARNING: return "warning";
    case MOAI_LOG_LEVEL_INFO: return "info";
    case MOAI_LOG_LEVEL_DEBUG: return "debug";
  }
  return "log";
}

moai_log_sink_t moai_log_sink_stderr(moai_log_level_t max_level) {
  return (moai_log_sink_t){.self = NULL, .fn = NULL, .max_level = max_level};
}

int moai_log_level_parse(const char *text, moai_log_level_t *out_level) {
  static const moai_log_level_t levels[] = {
      MOAI_LOG_LEVEL_ERROR, MOAI_LOG_LEVEL_WARNING, MOAI_LOG_LEVEL_INFO,
      MOAI_LOG_LEVEL_DEBUG};
  for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); ++i) {
    if (strcmp(text, level_name(levels[i])) == 0) {
      *out_level = levels[i];
      return 1;
    }
  }
  return 0;
}

void moai_log_writev(const moai_log_sink_t *sink, moai_log_level_t level,
                     const char *fmt, va_list args) {
  if (!sink || level > sink->max_level) return;
  char buf[2048];
  vsnprintf(buf, sizeof(buf), fmt, args);
  if (sink->fn) {
    sink->fn(sink->self, level, buf);
  } else {
    fprintf(stderr, "moai: %s: %s\n", level_name(level), buf);
  }
}

void moai_log_write(const moai_log_sink_t *sink, moai_log_level_t level,
                    const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  moai_log_writev(sink, level, fmt, args);
  va_end(args);
}
