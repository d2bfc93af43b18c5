/* Unit tests for runtime/io/npy: the writer's exact bytes, round trips, and
 * the strict header parser against malformed user files. NumPy itself reads
 * and writes files against this code in io_interop.py. */
#include <string.h>

#include "../../moai_run/runtime_test_util.h"
#include "io/dtype.h"
#include "io/npy.h"
#include "moai_test.h"

static char g_dir[256];

static int suite_init(void) { return rt_mkdtemp(g_dir, sizeof(g_dir), "npy-test"); }
static int suite_clean(void) {
  rt_rm_tree(g_dir);
  return 0;
}

/* A .npy file: version 1.0 or 2.0 framing around `header` (unpadded), then
 * `data_size` bytes. Returns the malloc'd bytes and their count. */
static unsigned char *make_npy(int major, const char *header, size_t data_size, size_t *out_size) {
  size_t hlen = strlen(header), start = major == 1 ? 10 : 12;
  unsigned char *buf = calloc(1, start + hlen + data_size + 1);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  buf[8] = (unsigned char)(hlen & 255);
  buf[9] = (unsigned char)(hlen >> 8);
  memcpy(buf + start, header, hlen);
  *out_size = start + hlen + data_size;
  return buf;
}

static moai_status_t parse_text(int major, const char *header, size_t data_size,
                                moai_npy_header_t *h) {
  size_t size = 0;
  unsigned char *buf = make_npy(major, header, data_size, &size);
  moai_status_t s = moai_npy_parse("x.npy", buf, size, h);
  free(buf);
  return s;
}

static void test_write_matches_numpy_bytes(void) {
  char path[512];
  snprintf(path, sizeof(path), "%s/a.npy", g_dir);
  const float data[6] = {1, 2, 3, 4, 5, 6};
  int64_t dims[2] = {2, 3};
  RT_ASSERT_OK(moai_npy_write(path, MOAI_ABI_F32, 2, dims, data));
  size_t n = 0;
  char *bytes = rt_read_file(path, &n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
  /* What numpy 1.24's np.save writes for np.float32 of shape (2, 3). */
  const char *header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CU_ASSERT_EQUAL(n, 128 + 24);
  CU_ASSERT_EQUAL(memcmp(bytes, "\x93NUMPY\x01\x00\x76\x00", 10), 0);
  CU_ASSERT_EQUAL(memcmp(bytes + 10, header, strlen(header)), 0);
  CU_ASSERT_EQUAL(bytes[127], '\n');
  CU_ASSERT_EQUAL(bytes[126], ' ');
  CU_ASSERT_EQUAL(memcmp(bytes + 128, data, 24), 0);
  free(bytes);
  unlink(path);
}

static void test_round_trips(void) {
  static const struct {
    int32_t dtype;
    int32_t rank;
    int64_t dims[3];
  } cases[] = {
      {MOAI_ABI_F64, 1, {5}},       {MOAI_ABI_F16, 3, {1, 2, 3}}, {MOAI_ABI_I64, 0, {0}},
      {MOAI_ABI_I32, 2, {0, 3}},    {MOAI_ABI_I16, 1, {1}},       {MOAI_ABI_I8, 2, {2, 2}},
      {MOAI_ABI_U64, 1, {2}},       {MOAI_ABI_U32, 1, {2}},       {MOAI_ABI_U16, 1, {2}},
      {MOAI_ABI_U8, 1, {3}},        {MOAI_ABI_BOOL, 1, {4}},      {MOAI_ABI_F32, 3, {2, 1, 2}},
  };
  char path[512];
  snprintf(path, sizeof(path), "%s/rt.npy", g_dir);
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); ++c) {
    uint64_t nbytes = 0;
    CU_ASSERT_TRUE(moai_shape_nbytes(cases[c].dtype, cases[c].rank, cases[c].dims, &nbytes));
    unsigned char data[64];
    for (uint64_t j = 0; j < nbytes; ++j) data[j] = (unsigned char)(cases[c].dtype == MOAI_ABI_BOOL ? j & 1 : 3 * j + c);
    RT_ASSERT_OK(moai_npy_write(path, cases[c].dtype, cases[c].rank, cases[c].dims, data));
    moai_npy_t *npy = NULL;
    RT_ASSERT_OK(moai_npy_open(path, moai_allocator_system(), &npy));
    if (!npy) continue;
    const moai_npy_header_t *h = moai_npy_header(npy);
    CU_ASSERT_EQUAL(h->dtype, cases[c].dtype);
    CU_ASSERT_EQUAL(h->rank, cases[c].rank);
    CU_ASSERT_EQUAL(memcmp(h->dims, cases[c].dims, sizeof(int64_t) * (size_t)h->rank), 0);
    CU_ASSERT_EQUAL(h->nbytes, nbytes);
    CU_ASSERT_EQUAL(h->data_offset % 64, 0);
    CU_ASSERT_TRUE(nbytes == 0 || memcmp(moai_npy_data(npy), data, (size_t)nbytes) == 0);
    moai_npy_close(npy);
  }
  CU_ASSERT_EQUAL(rt_count_entries(g_dir), 1);
  unlink(path);
}

static void test_bfloat16_written_as_u2(void) {
  char path[512];
  snprintf(path, sizeof(path), "%s/bf.npy", g_dir);
  const uint16_t bits[2] = {0x3f80, 0xc000}; /* 1.0, -2.0 */
  int64_t dims[1] = {2};
  RT_ASSERT_OK(moai_npy_write(path, MOAI_ABI_BF16, 1, dims, bits));
  moai_npy_t *npy = NULL;
  RT_ASSERT_OK(moai_npy_open(path, moai_allocator_system(), &npy));
  if (!npy) return;
  CU_ASSERT_EQUAL(moai_npy_header(npy)->dtype, MOAI_ABI_U16);
  CU_ASSERT_EQUAL(memcmp(moai_npy_data(npy), bits, 4), 0);
  moai_npy_close(npy);
  unlink(path);
}

static void test_parses_numpy_variants(void) {
  moai_npy_header_t h;
  /* Key order, quotes, spacing, trailing commas, Python 2 longs: all
   * legal Python literals NumPy versions have written. */
  RT_ASSERT_OK(parse_text(1, "{\"shape\":(3,),\"fortran_order\":False,\"descr\":\"|u1\"}\n", 3, &h));
  CU_ASSERT_EQUAL(h.dtype, MOAI_ABI_U8);
  CU_ASSERT_EQUAL(h.rank, 1);
  RT_ASSERT_OK(parse_text(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2L, 1L), }   \n", 16, &h));
  CU_ASSERT_EQUAL(h.dims[0], 2);
  RT_ASSERT_OK(parse_text(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8, &h));
  CU_ASSERT_EQUAL(h.rank, 0);
  RT_ASSERT_OK(parse_text(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 0, 3)}", 0, &h));
  CU_ASSERT_EQUAL(h.nbytes, 0);
  RT_ASSERT_OK(parse_text(2, "{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }\n", 4, &h));
  CU_ASSERT_EQUAL(h.data_offset, 12 + strlen("{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }\n"));
  RT_ASSERT_OK(parse_text(3, "{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }\n", 2, &h));
}

static void expect_parse_error(int major, const char *header, size_t data_size,
                               moai_status_code_t code, const char *needle) {
  moai_npy_header_t h;
  RT_EXPECT_ERROR(parse_text(major, header, data_size, &h), code, needle, NULL);
}

static void test_rejects_bad_headers(void) {
  const char *ok_tail = "'fortran_order': False, 'shape': (2,), }";
  char hdr[256];
  expect_parse_error(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
                     MOAI_UNIMPLEMENTED, "Fortran-ordered");
  snprintf(hdr, sizeof(hdr), "{'descr': '>f4', %s", ok_tail);
  expect_parse_error(1, hdr, 8, MOAI_UNIMPLEMENTED, "big-endian data ('>f4')");
  snprintf(hdr, sizeof(hdr), "{'descr': '<c8', %s", ok_tail);
  expect_parse_error(1, hdr, 16, MOAI_UNIMPLEMENTED, "dtype '<c8' is not supported");
  snprintf(hdr, sizeof(hdr), "{'descr': '|O', %s", ok_tail);
  expect_parse_error(1, hdr, 16, MOAI_UNIMPLEMENTED, "dtype '|O' is not supported");
  snprintf(hdr, sizeof(hdr), "{'descr': [('a', '<f4')], %s", ok_tail);
  expect_parse_error(1, hdr, 8, MOAI_UNIMPLEMENTED, "structured arrays");
  expect_parse_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8,
                     MOAI_INVALID_ARGUMENT, "a 1-d shape is written '(n,)'");
  expect_parse_error(1, "{'descr': '<f4', 'fortran_order': False}", 4, MOAI_INVALID_ARGUMENT,
                     "lacks 'shape'");
  expect_parse_error(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
                     4, MOAI_INVALID_ARGUMENT, "key 'descr' repeats");
  snprintf(hdr, sizeof(hdr), "{'descr': '<f4', 'extra': 1, %s", ok_tail);
  expect_parse_error(1, hdr, 8, MOAI_INVALID_ARGUMENT, "unexpected key 'extra'");
  snprintf(hdr, sizeof(hdr), "{'descr': '<f4', %s x", ok_tail);
  expect_parse_error(1, hdr, 8, MOAI_INVALID_ARGUMENT, "only padding after '}'");
  expect_parse_error(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': ()}", 4,
                     MOAI_INVALID_ARGUMENT, "True or False");
  expect_parse_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 4,
                     MOAI_INVALID_ARGUMENT, "non-negative integer dimension");
  expect_parse_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                     4, MOAI_INVALID_ARGUMENT, "fits in 64 bits");
  expect_parse_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4)}",
                     4, MOAI_INVALID_ARGUMENT, "overflows");
  expect_parse_error(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}",
                     1, MOAI_UNIMPLEMENTED, "rank exceeds");
  expect_parse_error(1, "{'descr': 'a\\x', 'fortran_order': False, 'shape': ()}", 1,
                     MOAI_INVALID_ARGUMENT, "short plain string");
  expect_parse_error(1, "{'descr': '<f4", 0, MOAI_INVALID_ARGUMENT, "closing quote");
  expect_parse_error(1, "", 0, MOAI_INVALID_ARGUMENT, "expected '{'");
  snprintf(hdr, sizeof(hdr), "{'descr': '<f4', %s", ok_tail);
  expect_parse_error(1, hdr, 4, MOAI_DATA_LOSS, "needs 8 data bytes but the file has 4 (truncated)");
  expect_parse_error(1, hdr, 12, MOAI_DATA_LOSS, "(trailing bytes)");
}

static void test_rejects_bad_framing(void) {
  moai_npy_header_t h;
  RT_EXPECT_ERROR(moai_npy_parse("x.npy", "PK\3\4 zip file", 14, &h), MOAI_INVALID_ARGUMENT,
                  "x.npy: not a .npy file", NULL);
  size_t size = 0;
  unsigned char *buf = make_npy(1, "{}", 0, &size);
  buf[6] = 4;
  RT_EXPECT_ERROR(moai_npy_parse("x.npy", buf, size, &h), MOAI_UNIMPLEMENTED, "version 4.0", NULL);
  buf[6] = 1;
  buf[8] = 200; /* header longer than the file */
  RT_EXPECT_ERROR(moai_npy_parse("x.npy", buf, size, &h), MOAI_DATA_LOSS, "truncated .npy file",
                  NULL);
  free(buf);
  RT_EXPECT_ERROR(moai_npy_parse("x.npy", "\x93NUMPY\x02\x00\x01\x00", 10, &h), MOAI_DATA_LOSS,
                  "truncated .npy header", NULL);
  moai_npy_t *npy = NULL;
  char path[512];
  snprintf(path, sizeof(path), "%s/missing.npy", g_dir);
  RT_EXPECT_ERROR(moai_npy_open(path, moai_allocator_system(), &npy), MOAI_NOT_FOUND,
                  "missing.npy: cannot open", NULL);
  CU_ASSERT_PTR_NULL(npy);
  CU_ASSERT_EQUAL(rt_write_file(path, "", 0), 0);
  RT_EXPECT_ERROR(moai_npy_open(path, moai_allocator_system(), &npy), MOAI_INVALID_ARGUMENT,
                  "not a .npy file", NULL);
  unlink(path);
}

/* Every single-byte corruption of a valid file is either accepted or
 * reported: never a crash or an out-of-bounds read (ASan watches). */
static void test_mutations_never_crash(void) {
  const char *hdr = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }\n";
  size_t size = 0;
  unsigned char *good = make_npy(1, hdr, 16, &size);
  static const unsigned char values[] = {0, '(', ')', ',', '\'', '}', '9', 0x80, 0xff, ' '};
  for (size_t at = 0; at < size; ++at) {
    for (size_t v = 0; v < sizeof(values); ++v) {
      unsigned char *copy = malloc(size);
      memcpy(copy, good, size);
      copy[at] = values[v];
      moai_npy_header_t h;
      moai_status_t s = moai_npy_parse("m.npy", copy, size, &h);
      if (!s) CU_ASSERT_TRUE(h.data_offset + h.nbytes == size);
      moai_status_free(s);
      /* and every truncation */
      s = moai_npy_parse("m.npy", copy, at, &h);
      moai_status_free(s);
      free(copy);
    }
  }
  free(good);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"write_matches_numpy_bytes", test_write_matches_numpy_bytes},
      {"round_trips", test_round_trips},
      {"bfloat16_written_as_u2", test_bfloat16_written_as_u2},
      {"parses_numpy_variants", test_parses_numpy_variants},
      {"rejects_bad_headers", test_rejects_bad_headers},
      {"rejects_bad_framing", test_rejects_bad_framing},
      {"mutations_never_crash", test_mutations_never_crash},
      CU_TEST_INFO_NULL,
  };
  CU_pSuite suite = CU_add_suite("io_npy", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
