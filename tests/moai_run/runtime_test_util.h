/* Helpers for the runtime's IO and loader unit tests (tests/unit/runtime/
 * test_io*.c, test_loader*.c): a scratch directory, whole-file reads and
 * writes, byte edits, and checks of failing statuses. */
#ifndef MOAI_TESTS_RUNTIME_TEST_UTIL_H
#define MOAI_TESTS_RUNTIME_TEST_UTIL_H

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"

/* Creates a fresh directory /tmp/moai-<tag>-XXXXXX into buf. */
static inline int rt_mkdtemp(char *buf, size_t size, const char *tag) {
  snprintf(buf, size, "/tmp/moai-%s-XXXXXX", tag);
  return mkdtemp(buf) ? 0 : -1;
}

/* rm -r of a directory tree. */
static inline void rt_rm_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      size_t len = strlen(path) + strlen(e->d_name) + 2;
      char *child = malloc(len);
      if (!child) continue;
      snprintf(child, len, "%s/%s", path, e->d_name);
      rt_rm_tree(child);
      free(child);
    }
    if (d) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* Number of entries in a directory (-1 if it cannot be read). */
static inline int rt_count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) ++n;
  closedir(d);
  return n;
}

static inline int rt_write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int bad = size && fwrite(data, 1, size, f) != size;
  bad |= fclose(f) != 0;
  return bad ? -1 : 0;
}

/* The whole file, malloc'd and NUL-terminated (NULL on failure). */
static inline char *rt_read_file(const char *path, size_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  if (buf && out_size) *out_size = (size_t)n;
  return buf;
}

/* XORs byte `offset` (negative: from the end) of a file with `mask`. */
static inline int rt_flip_byte(const char *path, long offset, unsigned char mask) {
  size_t size = 0;
  char *buf = rt_read_file(path, &size);
  if (!buf) return -1;
  size_t at = offset < 0 ? size - (size_t)(-offset) : (size_t)offset;
  buf[at] = (char)(buf[at] ^ mask);
  int rc = rt_write_file(path, buf, size);
  free(buf);
  return rc;
}

/* Replaces the first occurrence of `from` by `to` in a text file; -1 if
 * `from` is not there. */
static inline int rt_replace_in_file(const char *path, const char *from, const char *to) {
  size_t size = 0;
  char *buf = rt_read_file(path, &size);
  if (!buf) return -1;
  char *at = strstr(buf, from);
  if (!at) {
    free(buf);
    return -1;
  }
  size_t head = (size_t)(at - buf), from_len = strlen(from), to_len = strlen(to);
  char *out = malloc(size - from_len + to_len + 1);
  memcpy(out, buf, head);
  memcpy(out + head, to, to_len);
  memcpy(out + head + to_len, at + from_len, size - head - from_len);
  int rc = rt_write_file(path, out, size - from_len + to_len);
  free(out);
  free(buf);
  return rc;
}

/* Checks that `status` failed with `code` and that its message holds
 * `needle` (and `needle2` when not NULL); prints it on mismatch. Frees it. */
#define RT_EXPECT_ERROR(status, code, needle, needle2) \
  rt_expect_error((status), (code), (needle), (needle2), __FILE__, __LINE__)

static inline void rt_expect_error(moai_status_t status, moai_status_code_t code,
                                   const char *needle, const char *needle2, const char *file,
                                   int line) {
  const char *msg = moai_status_message(status);
  bool ok = status && moai_status_code(status) == code && strstr(msg, needle) &&
            (!needle2 || strstr(msg, needle2));
  if (!ok)
    fprintf(stderr, "\n%s:%d: expected %s error with '%s'%s%s, got %s: %s\n", file, line,
            moai_status_code_name(code), needle, needle2 ? " and " : "", needle2 ? needle2 : "",
            status ? moai_status_code_name(moai_status_code(status)) : "OK", msg);
  CU_ASSERT_TRUE(ok);
  moai_status_free(status);
}

/* Asserts OK, printing the failure otherwise. */
#define RT_ASSERT_OK(expr)                                  \
  do {                                                      \
    moai_status_t rt_s_ = (expr);                           \
    bool rt_ok_ = rt_s_ == NULL;                            \
    if (!rt_ok_) {                                          \
      fprintf(stderr, "\n%s:%d: %s\n", __FILE__, __LINE__, \
              moai_status_message(rt_s_));                  \
      moai_status_free(rt_s_);                              \
    }                                                       \
    CU_ASSERT_TRUE(rt_ok_);                                 \
  } while (0)

#endif /* MOAI_TESTS_RUNTIME_TEST_UTIL_H */
