/* Unit tests for runtime/io/safetensors: layout, the streaming atomic
 * writer, and the reader's validation of every way a file can be wrong.
 * Interoperability with other implementations is io_interop.py's job. */
#include <string.h>

#include "../../moai_run/runtime_test_util.h"
#include "io/dtype.h"
#include "io/safetensors.h"
#include "moai_test.h"

static char g_dir[256];

static int suite_init(void) { return rt_mkdtemp(g_dir, sizeof(g_dir), "st-test"); }
static int suite_clean(void) {
  rt_rm_tree(g_dir);
  return 0;
}

static void path_of(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", g_dir, name);
}

/* Byte j of entry k: a pattern the checks can recompute. */
static moai_status_t fill_pattern(void *user, size_t index, void *dst, uint64_t nbytes) {
  (void)user;
  for (uint64_t j = 0; j < nbytes; ++j) ((unsigned char *)dst)[j] = (unsigned char)(index * 17 + j);
  return moai_ok_status();
}

static moai_status_t fill_fails(void *user, size_t index, void *dst, uint64_t nbytes) {
  (void)user;
  (void)dst;
  (void)nbytes;
  return index == 1 ? MOAI_STATUS(MOAI_IO_ERROR, "source went away") : moai_ok_status();
}

static void test_layout_orders_by_alignment(void) {
  moai_safetensors_entry_t e[] = {
      {.name = "u8", .dtype = MOAI_ABI_U8, .rank = 1, .dims = {3}},
      {.name = "f32", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {3}},
      {.name = "f16", .dtype = MOAI_ABI_F16, .rank = 1, .dims = {1}},
      {.name = "i64", .dtype = MOAI_ABI_I64, .rank = 2, .dims = {1, 1}},
      {.name = "f32b", .dtype = MOAI_ABI_F32, .rank = 0},
      {.name = "f64", .dtype = MOAI_ABI_F64, .rank = 1, .dims = {2}},
  };
  uint64_t size = 0;
  moai_safetensors_layout(e, 6, &size);
  /* 8-byte: i64 (8) at 0, f64 (16) at 8; 4-byte: f32 (12) at 24, f32b at 36;
   * 2-byte: f16 at 40; 1-byte: u8 at 42. */
  CU_ASSERT_EQUAL(e[3].offset, 0);
  CU_ASSERT_EQUAL(e[5].offset, 8);
  CU_ASSERT_EQUAL(e[1].offset, 24);
  CU_ASSERT_EQUAL(e[4].offset, 36);
  CU_ASSERT_EQUAL(e[2].offset, 40);
  CU_ASSERT_EQUAL(e[0].offset, 42);
  CU_ASSERT_EQUAL(e[0].nbytes, 3);
  CU_ASSERT_EQUAL(size, 45);
  for (int i = 0; i < 6; ++i) CU_ASSERT_EQUAL(e[i].offset % moai_abi_dtype_size(e[i].dtype), 0);
}

static void test_round_trip(void) {
  char path[512];
  path_of(path, sizeof(path), "round.safetensors");
  moai_safetensors_entry_t e[] = {
      {.name = "embed.weight", .dtype = MOAI_ABI_BF16, .rank = 2, .dims = {4, 3}},
      {.name = "ids", .dtype = MOAI_ABI_I64, .rank = 1, .dims = {5}},
      {.name = "mask", .dtype = MOAI_ABI_BOOL, .rank = 3, .dims = {1, 2, 3}},
      {.name = "empty", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {0, 7}},
      {.name = "scalar", .dtype = MOAI_ABI_F64, .rank = 0},
  };
  uint64_t size = 0;
  moai_safetensors_layout(e, 5, &size);
  const char *kv[] = {"format", "pt", "moai.note", "hello \"world\""};
  RT_ASSERT_OK(moai_safetensors_write(path, e, 5, kv, 2, fill_pattern, NULL));
  moai_safetensors_t *st = NULL;
  RT_ASSERT_OK(moai_safetensors_open(path, moai_allocator_system(), &st));
  if (!st) return;
  CU_ASSERT_EQUAL(moai_safetensors_count(st), 5);
  CU_ASSERT_EQUAL(moai_safetensors_data_size(st), size);
  CU_ASSERT_EQUAL(moai_safetensors_data_file_offset(st) % MOAI_SAFETENSORS_DATA_ALIGN, 0);
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "moai.note"), "hello \"world\"");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "format"), "pt");
  CU_ASSERT_PTR_NULL(moai_safetensors_metadata(st, "nope"));
  CU_ASSERT_PTR_NULL(moai_safetensors_find(st, "nope"));
  uint64_t prev_end = 0;
  for (size_t i = 0; i < moai_safetensors_count(st); ++i) {
    const moai_safetensors_entry_t *r = moai_safetensors_entry(st, i);
    CU_ASSERT_EQUAL(r->offset, prev_end); /* entries come in offset order */
    prev_end = r->offset + r->nbytes;
  }
  for (size_t k = 0; k < 5; ++k) {
    const moai_safetensors_entry_t *r = moai_safetensors_find(st, e[k].name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->dtype, e[k].dtype);
    CU_ASSERT_EQUAL(r->rank, e[k].rank);
    CU_ASSERT_EQUAL(memcmp(r->dims, e[k].dims, sizeof(int64_t) * (size_t)e[k].rank), 0);
    CU_ASSERT_EQUAL(r->offset, e[k].offset);
    CU_ASSERT_EQUAL(r->nbytes, e[k].nbytes);
    const unsigned char *p = moai_safetensors_data(st) + r->offset;
    int same = 1;
    for (uint64_t j = 0; j < r->nbytes; ++j) same &= p[j] == (unsigned char)(k * 17 + j);
    CU_ASSERT_TRUE(same);
  }
  moai_safetensors_close(st);
  /* No temporary files are left beside it. */
  CU_ASSERT_EQUAL(rt_count_entries(g_dir), 1);
  unlink(path);
}

static void test_empty_file(void) {
  char path[512];
  path_of(path, sizeof(path), "empty.safetensors");
  RT_ASSERT_OK(moai_safetensors_write(path, NULL, 0, NULL, 0, NULL, NULL));
  moai_safetensors_t *st = NULL;
  RT_ASSERT_OK(moai_safetensors_open(path, moai_allocator_system(), &st));
  if (!st) return;
  CU_ASSERT_EQUAL(moai_safetensors_count(st), 0);
  CU_ASSERT_PTR_NULL(moai_safetensors_data(st));
  moai_safetensors_close(st);
  unlink(path);
}

static void test_writer_refuses_bad_entries(void) {
  char path[512];
  path_of(path, sizeof(path), "bad.safetensors");
  moai_safetensors_entry_t e[2] = {
      {.name = "a", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {2}},
      {.name = "a", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {2}},
  };
  uint64_t size;
  moai_safetensors_layout(e, 2, &size);
  RT_EXPECT_ERROR(moai_safetensors_write(path, e, 2, NULL, 0, fill_pattern, NULL),
                  MOAI_INVALID_ARGUMENT, "'a' appears twice", NULL);
  e[1].name = "b";
  e[1].offset += 4; /* a hole */
  RT_EXPECT_ERROR(moai_safetensors_write(path, e, 2, NULL, 0, fill_pattern, NULL),
                  MOAI_INVALID_ARGUMENT, "contiguous", NULL);
  moai_safetensors_layout(e, 2, &size);
  e[1].nbytes = 4;
  RT_EXPECT_ERROR(moai_safetensors_write(path, e, 2, NULL, 0, fill_pattern, NULL),
                  MOAI_INVALID_ARGUMENT, "does not match its shape", NULL);
  moai_safetensors_layout(e, 2, &size);
  e[1].dtype = 99;
  RT_EXPECT_ERROR(moai_safetensors_write(path, e, 2, NULL, 0, fill_pattern, NULL),
                  MOAI_INVALID_ARGUMENT, "unknown dtype", NULL);
  e[1].dtype = MOAI_ABI_F32;
  e[1].name = "__metadata__";
  RT_EXPECT_ERROR(moai_safetensors_write(path, e, 2, NULL, 0, fill_pattern, NULL),
                  MOAI_INVALID_ARGUMENT, "reserved", NULL);
  e[1].name = "b";
  const char *kv[] = {"k", "v", "k", "w"};
  RT_EXPECT_ERROR(moai_safetensors_write(path, e, 2, kv, 2, fill_pattern, NULL),
                  MOAI_INVALID_ARGUMENT, "repeats key 'k'", NULL);
  CU_ASSERT_EQUAL(rt_count_entries(g_dir), 0);
}

static void test_writer_failure_keeps_old_file(void) {
  char path[512];
  path_of(path, sizeof(path), "keep.safetensors");
  CU_ASSERT_EQUAL(rt_write_file(path, "old", 3), 0);
  moai_safetensors_entry_t e[2] = {
      {.name = "a", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {2}},
      {.name = "b", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {2}},
  };
  uint64_t size;
  moai_safetensors_layout(e, 2, &size);
  RT_EXPECT_ERROR(moai_safetensors_write(path, e, 2, NULL, 0, fill_fails, NULL), MOAI_IO_ERROR,
                  "source went away", NULL);
  size_t n = 0;
  char *text = rt_read_file(path, &n);
  CU_ASSERT_TRUE(text && n == 3 && memcmp(text, "old", 3) == 0);
  free(text);
  CU_ASSERT_EQUAL(rt_count_entries(g_dir), 1); /* no temporary left */
  unlink(path);
  char missing[600];
  snprintf(missing, sizeof(missing), "%s/no/such/dir/x.safetensors", g_dir);
  RT_EXPECT_ERROR(moai_safetensors_write(missing, e, 2, NULL, 0, fill_pattern, NULL),
                  MOAI_NOT_FOUND, "no/such/dir/x.safetensors", NULL);
}

/* Writes header text `json` (unpadded) followed by `data_size` zero bytes. */
static void write_raw(const char *path, const char *json, size_t data_size) {
  size_t n = strlen(json);
  unsigned char *buf = calloc(1, 8 + n + data_size);
  for (int i = 0; i < 8; ++i) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(buf + 8, json, n);
  CU_ASSERT_EQUAL(rt_write_file(path, buf, 8 + n + data_size), 0);
  free(buf);
}

static void expect_open_error(const char *json, size_t data_size, moai_status_code_t code,
                              const char *needle, const char *needle2) {
  char path[512];
  path_of(path, sizeof(path), "raw.safetensors");
  write_raw(path, json, data_size);
  moai_safetensors_t *st = NULL;
  RT_EXPECT_ERROR(moai_safetensors_open(path, moai_allocator_system(), &st), code, needle,
                  needle2);
  CU_ASSERT_PTR_NULL(st);
  unlink(path);
}

static void test_reader_accepts_foreign_layouts(void) {
  /* Unpadded header, tensors listed out of offset order, no metadata. */
  char path[512];
  path_of(path, sizeof(path), "foreign.safetensors");
  write_raw(path,
            "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
            6);
  moai_safetensors_t *st = NULL;
  RT_ASSERT_OK(moai_safetensors_open(path, moai_allocator_system(), &st));
  if (!st) return;
  CU_ASSERT_STRING_EQUAL(moai_safetensors_entry(st, 0)->name, "a");
  CU_ASSERT_EQUAL(moai_safetensors_find(st, "b")->offset, 4);
  CU_ASSERT_EQUAL(moai_safetensors_find(st, "a")->rank, 0);
  moai_safetensors_close(st);
  unlink(path);
}

static void test_reader_rejects(void) {
  const char *ok_a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  char json[512];
  expect_open_error("{}", 4, MOAI_DATA_LOSS, "holds 4 bytes but the tensors cover 0",
                    "trailing");
  snprintf(json, sizeof(json), "{%s}", ok_a);
  expect_open_error(json, 4, MOAI_DATA_LOSS, "run past the data section", NULL);
  expect_open_error(json, 12, MOAI_DATA_LOSS, "holds 12 bytes but the tensors cover 8", NULL);
  snprintf(json, sizeof(json),
           "{%s,\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", ok_a);
  expect_open_error(json, 8, MOAI_DATA_LOSS, "holes and overlaps", "'b'");
  snprintf(json, sizeof(json),
           "{%s,\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", ok_a);
  expect_open_error(json, 16, MOAI_DATA_LOSS, "'b' starts at data byte 12", "end at 8");
  expect_open_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                    MOAI_DATA_LOSS, "'a': shape 3 of F32 needs 12 bytes but data_offsets span 8",
                    NULL);
  expect_open_error("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                    MOAI_UNIMPLEMENTED, "dtype 'F8_E4M3' is not supported", NULL);
  expect_open_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                    "\"data_offsets\":[0,1]}}", 1, MOAI_UNIMPLEMENTED, "rank 9", NULL);
  expect_open_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1,
                    MOAI_DATA_LOSS, "shape[0] is not a non-negative integer", NULL);
  expect_open_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,0]}}", 1,
                    MOAI_DATA_LOSS, "0 <= begin <= end", NULL);
  expect_open_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, MOAI_DATA_LOSS,
                    "needs a string 'dtype'", NULL);
  expect_open_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}",
                    1, MOAI_DATA_LOSS, "unknown field 'x'", NULL);
  expect_open_error("{\"a\":[]}", 0, MOAI_DATA_LOSS, "'a': header entry is an array", NULL);
  expect_open_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                    MOAI_DATA_LOSS, "not valid JSON", "duplicate");
  expect_open_error("{\"__metadata__\":{\"k\":1}}", 0, MOAI_DATA_LOSS,
                    "__metadata__ 'k' is an integer", NULL);
  expect_open_error("{\"__metadata__\":[]}", 0, MOAI_DATA_LOSS, "__metadata__ is an array",
                    NULL);
  expect_open_error("{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                    MOAI_DATA_LOSS, "empty name", NULL);
  expect_open_error("{\"a\":", 0, MOAI_DATA_LOSS, "not valid JSON", NULL);
  expect_open_error("[1]", 0, MOAI_DATA_LOSS, "does not start with '{'", NULL);
}

static void test_reader_rejects_bad_framing(void) {
  char path[512];
  path_of(path, sizeof(path), "framing.safetensors");
  moai_safetensors_t *st = NULL;
  CU_ASSERT_EQUAL(rt_write_file(path, "\x02\0\0", 3), 0);
  RT_EXPECT_ERROR(moai_safetensors_open(path, moai_allocator_system(), &st), MOAI_DATA_LOSS,
                  "framing.safetensors: truncated safetensors file (3 bytes", NULL);
  CU_ASSERT_EQUAL(rt_write_file(path, "\xff\xff\xff\xff\xff\xff\0\0{}", 10), 0);
  RT_EXPECT_ERROR(moai_safetensors_open(path, moai_allocator_system(), &st), MOAI_DATA_LOSS,
                  "implausible", NULL);
  CU_ASSERT_EQUAL(rt_write_file(path, "\x10\0\0\0\0\0\0\0{}", 10), 0);
  RT_EXPECT_ERROR(moai_safetensors_open(path, moai_allocator_system(), &st), MOAI_DATA_LOSS,
                  "truncated: the header claims 16 bytes", NULL);
  CU_ASSERT_EQUAL(rt_write_file(path, "", 0), 0);
  RT_EXPECT_ERROR(moai_safetensors_open(path, moai_allocator_system(), &st), MOAI_DATA_LOSS,
                  "(0 bytes", NULL);
  unlink(path);
  RT_EXPECT_ERROR(moai_safetensors_open(path, moai_allocator_system(), &st), MOAI_NOT_FOUND,
                  "framing.safetensors: cannot open", NULL);
  RT_EXPECT_ERROR(moai_safetensors_open(g_dir, moai_allocator_system(), &st),
                  MOAI_INVALID_ARGUMENT, "not a regular file", NULL);
}

/* A file written by moai, truncated at every length: always a clean error. */
static void test_reader_truncated_everywhere(void) {
  char path[512], cut[512];
  path_of(path, sizeof(path), "whole.safetensors");
  path_of(cut, sizeof(cut), "cut.safetensors");
  moai_safetensors_entry_t e[2] = {
      {.name = "a", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {3}},
      {.name = "b", .dtype = MOAI_ABI_U8, .rank = 1, .dims = {2}},
  };
  uint64_t size;
  moai_safetensors_layout(e, 2, &size);
  RT_ASSERT_OK(moai_safetensors_write(path, e, 2, NULL, 0, fill_pattern, NULL));
  size_t n = 0;
  char *bytes = rt_read_file(path, &n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
  for (size_t len = 0; len < n; ++len) {
    CU_ASSERT_EQUAL(rt_write_file(cut, bytes, len), 0);
    moai_safetensors_t *st = NULL;
    moai_status_t s = moai_safetensors_open(cut, moai_allocator_system(), &st);
    CU_ASSERT_EQUAL(moai_status_code(s), MOAI_DATA_LOSS);
    CU_ASSERT_PTR_NULL(st);
    moai_status_free(s);
  }
  free(bytes);
  unlink(cut);
  unlink(path);
}

/* Every allocation of open fails in turn: an error, nothing leaked. */
static void test_open_fault_injection(void) {
  char path[512];
  path_of(path, sizeof(path), "faults.safetensors");
  moai_safetensors_entry_t e[2] = {
      {.name = "a", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {3}},
      {.name = "b", .dtype = MOAI_ABI_U8, .rank = 1, .dims = {2}},
  };
  uint64_t size;
  moai_safetensors_layout(e, 2, &size);
  const char *kv[] = {"k", "v"};
  RT_ASSERT_OK(moai_safetensors_write(path, e, 2, kv, 1, fill_pattern, NULL));
  for (uint64_t fail_at = 1;; ++fail_at) {
    moai_fault_allocator_t fa = {.fail_at = fail_at};
    moai_safetensors_t *st = NULL;
    moai_status_t s = moai_safetensors_open(path, moai_fault_allocator(&fa), &st);
    if (!s) {
      moai_safetensors_close(st);
      CU_ASSERT_EQUAL(fa.live, 0);
      break;
    }
    CU_ASSERT_EQUAL(moai_status_code(s), MOAI_OUT_OF_MEMORY);
    CU_ASSERT_EQUAL(fa.live, 0);
    moai_status_free(s);
    if (fail_at > 100) {
      CU_FAIL("open never succeeded");
      break;
    }
  }
  unlink(path);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"layout_orders_by_alignment", test_layout_orders_by_alignment},
      {"round_trip", test_round_trip},
      {"empty_file", test_empty_file},
      {"writer_refuses_bad_entries", test_writer_refuses_bad_entries},
      {"writer_failure_keeps_old_file", test_writer_failure_keeps_old_file},
      {"reader_accepts_foreign_layouts", test_reader_accepts_foreign_layouts},
      {"reader_rejects", test_reader_rejects},
      {"reader_rejects_bad_framing", test_reader_rejects_bad_framing},
      {"reader_truncated_everywhere", test_reader_truncated_everywhere},
      {"open_fault_injection", test_open_fault_injection},
      CU_TEST_INFO_NULL,
  };
  CU_pSuite suite = CU_add_suite("io_safetensors", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
