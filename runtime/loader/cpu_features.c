#include "loader/cpu_features.h"

#include <stdio.h>
#include <string.h>

#define NAME(n) n,
static const char *const k_names[] = {MOAI_CPU_FEATURE_LIST(NAME)};
#undef NAME
#define FEATURE_COUNT (sizeof(k_names) / sizeof(k_names[0]))

size_t moai_cpu_feature_count(void) { return FEATURE_COUNT; }

const char *moai_cpu_feature_name(size_t i) { return i < FEATURE_COUNT ? k_names[i] : NULL; }

bool moai_cpu_feature_known(const char *name) {
  for (size_t i = 0; name && i < FEATURE_COUNT; ++i)
    if (strcmp(k_names[i], name) == 0) return true;
  return false;
}

bool moai_cpu_has_feature(const char *name) {
  if (!name) return false;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  /* __builtin_cpu_supports needs a literal, hence one test per name. */
#define TEST(n) \
  if (strcmp(name, n) == 0) return __builtin_cpu_supports(n) != 0;
  MOAI_CPU_FEATURE_LIST(TEST)
#undef TEST
#endif
  return false;
}

size_t moai_cpu_features_host(char *buf, size_t size) {
  size_t need = 0;
  bool fits = size > 0;
  if (size) buf[0] = '\0';
  for (size_t i = 0; i < FEATURE_COUNT; ++i) {
    if (!moai_cpu_has_feature(k_names[i])) continue;
    size_t sep = need ? 1 : 0, len = strlen(k_names[i]);
    fits = fits && need + sep + len < size;
    if (fits) {
      if (sep) buf[need] = ',';
      memcpy(buf + need + sep, k_names[i], len + 1);
    }
    need += sep + len;
  }
  return need;
}

/* Whether the comma-separated `list` holds `name`. */
static bool list_has(const char *list, const char *name) {
  size_t len = strlen(name);
  for (const char *p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == len && strncmp(p, name, len) == 0) return true;
    if (!end) break;
    p = end + 1;
  }
  return false;
}

size_t moai_cpu_features_missing(const char *const *features, size_t n, const char *cpu,
                                 char *buf, size_t size) {
  size_t count = 0, used = 0;
  if (size) buf[0] = '\0';
  for (size_t i = 0; i < n; ++i) {
    bool has = cpu ? list_has(cpu, features[i]) : moai_cpu_has_feature(features[i]);
    if (has) continue;
    if (size > used) {
      int w = snprintf(buf + used, size - used, "%s%s", count ? ", " : "", features[i]);
      used = w < 0 ? size : used + (size_t)w;
    }
    ++count;
  }
  return count;
}
