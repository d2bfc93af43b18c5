/* Unit tests for the TorchScript archive reader (frontends/torchscript/
 * archive.c): a traced module saved by torch.jit.save reads back as
 * torch.jit.load sees it (module tree, class names, tensor dtypes, sizes,
 * strides, offsets, requires_grad and values, tiny.expect written by
 * make_fixtures.py from the loaded module), constants included; damaged
 * archives give their own messages; every truncation and many byte changes
 * of the archive end in a status, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moai_test.h"
#include "torchscript/archive.h"

static void fixture_path(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/tests/models/torchscript/%s", moai_test_source_dir(),
           name);
}

static moai_ts_archive_t *open_fixture(const char *name) {
  char path[4096];
  fixture_path(name, path, sizeof path);
  moai_ts_archive_t *a = NULL;
  moai_status_t st = moai_ts_archive_open(path, &a);
  if (st) moai_status_fprint(stderr, st, true);
  moai_status_free(st);
  return a;
}

/* The value at dotted `path` under the root ("" is the root itself). */
static const moai_pk_value_t *lookup(const moai_pk_value_t *root,
                                     const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  if (!strcmp(buf, "\"\"")) return root;
  const moai_pk_value_t *v = root;
  for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && v;
       tok = strtok_r(NULL, ".", &save))
    v = moai_pk_dict_get(v, tok);
  return v;
}

/* Checks a `tensor` line of tiny.expect against t (values read from dir). */
static void check_tensor_line(moai_ts_archive_t *a, const char *dir,
                              const moai_pk_tensor_t *t, char *rest) {
  char *save = NULL;
  long long f[4];
  for (int i = 0; i < 4; ++i) f[i] = atoll(strtok_r(i ? NULL : rest, " ", &save));
  CU_ASSERT_EQUAL(t->dtype, f[0]);
  CU_ASSERT_EQUAL(t->requires_grad, f[1] != 0);
  CU_ASSERT_EQUAL(t->storage_offset, f[2]);
  CU_ASSERT_EQUAL_FATAL(t->rank, f[3]);
  for (int d = 0; d < t->rank; ++d)
    CU_ASSERT_EQUAL(t->sizes[d], atoll(strtok_r(NULL, " ", &save)));
  for (int d = 0; d < t->rank; ++d)
    CU_ASSERT_EQUAL(t->strides[d], atoll(strtok_r(NULL, " ", &save)));
  long long numel = atoll(strtok_r(NULL, " ", &save));
  size_t esize = moai_pk_dtype_size(t->dtype);
  unsigned char *buf = malloc((size_t)numel * esize + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  moai_status_t st = moai_ts_archive_read_tensor(a, dir, t, buf,
                                                 (uint64_t)numel * esize);
  if (st) moai_status_fprint(stderr, st, true);
  CU_ASSERT_PTR_NULL(st);
  moai_status_free(st);
  for (long long i = 0; i < numel; ++i) {
    const char *tok = strtok_r(NULL, " \n", &save);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    if (t->dtype == MOAI_PK_F32) {
      CU_ASSERT_EQUAL(((float *)buf)[i], (float)strtod(tok, NULL));
    } else if (t->dtype == MOAI_PK_I64) {
      CU_ASSERT_EQUAL(((int64_t *)buf)[i], atoll(tok));
    } else {
      CU_FAIL("a dtype tiny.expect does not use");
    }
  }
  CU_ASSERT_PTR_NULL(strtok_r(NULL, " \n", &save));
  free(buf);
}

static void test_tiny_module(void) {
  moai_ts_archive_t *a = open_fixture("tiny.pt");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_STRING_EQUAL(moai_ts_archive_prefix(a), "tiny");
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_ts_archive_path(a), "tiny.pt"));
  CU_ASSERT(moai_ts_archive_has(a, "data.pkl"));
  CU_ASSERT(moai_ts_archive_has(a, "constants.pkl"));
  CU_ASSERT(!moai_ts_archive_has(a, "tiny/data.pkl"));
  CU_ASSERT(!moai_ts_archive_has(a, "data/99"));
  moai_pk_arena_t *arena = NULL, *carena = NULL;
  moai_pk_value_t *root = NULL, *consts = NULL;
  moai_status_t st = moai_ts_archive_load_data(a, &arena, &root);
  CU_ASSERT_PTR_NULL_FATAL(st);
  st = moai_ts_archive_load_constants(a, &carena, &consts);
  CU_ASSERT_PTR_NULL_FATAL(st);
  CU_ASSERT_EQUAL_FATAL(consts->kind, MOAI_PK_TUPLE);

  char path[4096], line[4096];
  fixture_path("tiny.expect", path, sizeof path);
  FILE *f = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  int tensors = 0, classes = 0;
  while (fgets(line, sizeof line, f)) {
    char *save = NULL;
    char *kind = strtok_r(line, " \n", &save);
    char *name = strtok_r(NULL, " \n", &save);
    if (!strcmp(kind, "version")) {
      CU_ASSERT_EQUAL(moai_ts_archive_version(a), atoll(name));
    } else if (!strcmp(kind, "class")) {
      const moai_pk_value_t *v = lookup(root, name);
      CU_ASSERT_PTR_NOT_NULL_FATAL(v);
      CU_ASSERT_EQUAL(v->kind, MOAI_PK_OBJECT);
      CU_ASSERT_STRING_EQUAL(v->str, strtok_r(NULL, " \n", &save));
      ++classes;
    } else if (!strncmp(name, "CONSTANTS.c", 11)) {
      size_t i = (size_t)atoi(name + 11);
      CU_ASSERT_FATAL(i < consts->len);
      CU_ASSERT_EQUAL_FATAL(consts->items[i]->kind, MOAI_PK_TENSOR);
      check_tensor_line(a, "constants", &consts->items[i]->tensor,
                        save + strspn(save, " "));
      ++tensors;
    } else {
      const moai_pk_value_t *v = lookup(root, name);
      CU_ASSERT_PTR_NOT_NULL_FATAL(v);
      CU_ASSERT_EQUAL_FATAL(v->kind, MOAI_PK_TENSOR);
      check_tensor_line(a, "data", &v->tensor, save + strspn(save, " "));
      ++tensors;
    }
  }
  fclose(f);
  CU_ASSERT_EQUAL(classes, 3);
  CU_ASSERT_EQUAL(tensors, 7);

  /* Contiguity; a byte range of a storage entry; a wrong size asked. */
  const moai_pk_value_t *wt = lookup(root, "wt"), *w = lookup(root, "sub.lin.weight");
  CU_ASSERT_FATAL(wt && w);
  CU_ASSERT(!moai_ts_tensor_contiguous(&wt->tensor));
  CU_ASSERT(moai_ts_tensor_contiguous(&w->tensor));
  char entry[64];
  snprintf(entry, sizeof entry, "data/%s", w->tensor.storage_key);
  fixture_path("tiny.pt", path, sizeof path);
  float two[2];
  st = moai_ts_read_entry_range(path, entry, 4, two, sizeof two);
  CU_ASSERT_PTR_NULL(st);
  moai_status_free(st);
  CU_ASSERT(two[0] == -1.0f && two[1] == 2.0f);
  st = moai_ts_read_entry_range(path, entry, 20, two, sizeof two);
  CU_ASSERT_PTR_NOT_NULL(st);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(st), "past the entry's 24 bytes"));
  moai_status_free(st);
  st = moai_ts_read_entry_range(path, "data/77", 0, two, sizeof two);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(st), "data/77: no such entry"));
  moai_status_free(st);
  float big[8];
  st = moai_ts_archive_read_tensor(a, "data", &w->tensor, big, sizeof big);
  CU_ASSERT_EQUAL(moai_status_code(st), MOAI_INVALID_ARGUMENT);
  moai_status_free(st);
  char *text = NULL;
  size_t size = 0;
  st = moai_ts_archive_read(a, "version", &text, &size);
  CU_ASSERT_PTR_NULL(st);
  CU_ASSERT(text && size >= 1 && text[size] == '\0');
  free(text);

  moai_pk_arena_free(arena);
  moai_pk_arena_free(carena);
  moai_ts_archive_close(a);
}

/* Opens `fixture` and loads data and constants: the first failure's message
 * must hold `want`. */
static void expect_error(const char *fixture, const char *want) {
  char path[4096];
  fixture_path(fixture, path, sizeof path);
  moai_ts_archive_t *a = NULL;
  moai_pk_arena_t *arena = NULL;
  moai_pk_value_t *v = NULL;
  moai_status_t st = moai_ts_archive_open(path, &a);
  if (!st) st = moai_ts_archive_load_data(a, &arena, &v);
  if (!st) {
    moai_pk_arena_free(arena);
    arena = NULL;
    st = moai_ts_archive_load_constants(a, &arena, &v);
  }
  moai_pk_arena_free(arena);
  moai_ts_archive_close(a);
  const char *msg = moai_status_message(st);
  CU_ASSERT_PTR_NOT_NULL(st);
  if (!strstr(msg, want) || !strstr(msg, fixture))
    fprintf(stderr, "\n%s: message '%s' lacks '%s'\n", fixture, msg, want);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, fixture));
  moai_status_free(st);
}

static void test_errors(void) {
  expect_error("bad_missing_storage.pt", "data/1: missing storage of tensor 'index'");
  expect_error("bad_short_storage.pt",
               "data/0: storage of tensor 'scale' has 4 bytes, not 4 elements of 4 bytes");
  expect_error("bad_version.pt", "TorchScript archive version 99 (moai reads 2 to 10)");
  expect_error("bad_no_data_pkl.pt", "not a TorchScript archive: no tiny/data.pkl entry");
  expect_error("bad_evil_data_pkl.pt",
               "data.pkl: byte 2: global 'os.system' is not allowed");
  expect_error("bad_outside_prefix.pt",
               "entry 'elsewhere/version' is outside its top directory 'tiny/'");
  expect_error("bad_not_zip.pt", "not a TorchScript archive (zip): Not a zip archive");
  expect_error("no_such_file.pt", "no_such_file.pt: no such file");
}

/* What the fuzz target does: every step, every tensor; a status each time. */
static int exercise(const char *path) {
  moai_ts_archive_t *a = NULL;
  moai_pk_arena_t *arena = NULL, *carena = NULL;
  moai_pk_value_t *root = NULL, *consts = NULL;
  moai_status_t st = moai_ts_archive_open(path, &a);
  if (!st) st = moai_ts_archive_load_data(a, &arena, &root);
  if (!st) st = moai_ts_archive_load_constants(a, &carena, &consts);
  for (size_t i = 0; !st && i < consts->len; ++i) {
    const moai_pk_tensor_t *t = &consts->items[i]->tensor;
    uint64_t n = moai_pk_dtype_size(t->dtype);
    for (int d = 0; d < t->rank; ++d) n *= (uint64_t)t->sizes[d];
    void *buf = malloc(n ? n : 1);
    st = moai_ts_archive_read_tensor(a, "constants", t, buf, n);
    free(buf);
  }
  const char *names[] = {"scale", "index", "wt", "tail", "sub.lin.weight", "sub.lin.bias"};
  for (size_t i = 0; !st && i < 6; ++i) {
    const moai_pk_value_t *v = lookup(root, names[i]);
    if (!v || v->kind != MOAI_PK_TENSOR) continue;
    uint64_t n = moai_pk_dtype_size(v->tensor.dtype);
    for (int d = 0; d < v->tensor.rank; ++d) n *= (uint64_t)v->tensor.sizes[d];
    void *buf = malloc(n ? n : 1);
    st = moai_ts_archive_read_tensor(a, "data", &v->tensor, buf, n);
    free(buf);
  }
  int failed = st != NULL;
  moai_status_free(st);
  moai_pk_arena_free(arena);
  moai_pk_arena_free(carena);
  moai_ts_archive_close(a);
  return failed;
}

static void test_truncations_and_changes(void) {
  char path[4096], tmp[] = "/tmp/moai_ts_archive_XXXXXX";
  fixture_path("tiny.pt", path, sizeof path);
  FILE *f = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  unsigned char data[1 << 16];
  size_t n = fread(data, 1, sizeof data, f);
  fclose(f);
  CU_ASSERT_FATAL(n > 1000 && n < sizeof data);
  int fd = mkstemp(tmp);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  CU_ASSERT_EQUAL(exercise(path), 0);
  unsigned failures = 0, runs = 0;
  for (size_t cut = 0; cut < n; cut += 1 + cut / 64) {
    FILE *o = fopen(tmp, "wb");
    fwrite(data, 1, cut, o);
    fclose(o);
    failures += (unsigned)exercise(tmp);
    ++runs;
  }
  CU_ASSERT_EQUAL(failures, runs); /* a cut zip has no central directory */
  unsigned changed_ok = 0;
  for (size_t at = 0; at < n; at += 3) {
    unsigned char saved = data[at];
    data[at] ^= (unsigned char)(0x5a + at);
    FILE *o = fopen(tmp, "wb");
    fwrite(data, 1, n, o);
    fclose(o);
    changed_ok += exercise(tmp) == 0;
    data[at] = saved;
  }
  /* Bytes of the zip's padding and timestamps change nothing: some of the
   * changed archives still read. */
  CU_ASSERT(changed_ok > 0);
  unlink(tmp);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"tiny_module", test_tiny_module},
      {"errors", test_errors},
      {"truncations_and_changes", test_truncations_and_changes},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("ts_archive", tests);
}
