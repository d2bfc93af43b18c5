/* Unit tests for the TorchScript frontend's restricted unpickler
 * (frontends/torchscript/pickle.c): values Python's own pickler wrote at
 * protocols 2 and 4 read back exactly; tensors and module objects from
 * hand-built pickles; every refused input (forbidden globals, nesting,
 * LONG1 over 64 bits, unknown opcodes, truncation, persistent ids that are
 * not storages, cycles, unapplied storages) gives its own message; every
 * truncation and many byte flips of the fixtures end in a status. Fixtures:
 * tests/models/torchscript/ (make_fixtures.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moai_test.h"
#include "torchscript/pickle.h"

static unsigned char *read_fixture(const char *name, size_t *out_size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/models/torchscript/%s",
           moai_test_source_dir(), name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *out_size = (size_t)n;
  return buf;
}

/* Loads bytes; on failure returns the status message copied into msg. */
static moai_pk_arena_t *load(const void *data, size_t n, moai_pk_value_t **out,
                             char *msg, size_t cap) {
  moai_pk_arena_t *arena = NULL;
  moai_status_t st = moai_pk_load(data, n, "t.pkl", &arena, out);
  if (msg) snprintf(msg, cap, "%s", st ? moai_status_message(st) : "");
  moai_status_free(st);
  return st ? NULL : arena;
}

static void check_values(const char *fixture) {
  size_t n;
  unsigned char *data = read_fixture(fixture, &n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(data);
  moai_pk_value_t *v = NULL;
  char msg[512];
  moai_pk_arena_t *arena = load(data, n, &v, msg, sizeof msg);
  if (!arena) fprintf(stderr, "%s: %s\n", fixture, msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(arena);
  CU_ASSERT_EQUAL(v->kind, MOAI_PK_DICT);
  CU_ASSERT_EQUAL(v->len, 10);
  static const int64_t ints[] = {0, 1, -1, 255, 256, 65535, 65536, -129,
                                 2147483647, -2147483647 - 1,
                                 1099511627776, INT64_MIN, INT64_MAX};
  const moai_pk_value_t *l = moai_pk_dict_get(v, "ints");
  CU_ASSERT_PTR_NOT_NULL_FATAL(l);
  CU_ASSERT_EQUAL(l->kind, MOAI_PK_LIST);
  CU_ASSERT_EQUAL_FATAL(l->len, sizeof ints / sizeof ints[0]);
  for (size_t i = 0; i < l->len; ++i) {
    CU_ASSERT_EQUAL(l->items[i]->kind, MOAI_PK_INT);
    CU_ASSERT_EQUAL(l->items[i]->i, ints[i]);
  }
  const moai_pk_value_t *f = moai_pk_dict_get(v, "floats");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(f->kind, MOAI_PK_TUPLE);
  CU_ASSERT_EQUAL_FATAL(f->len, 3);
  CU_ASSERT_EQUAL(f->items[0]->f, 1.5);
  CU_ASSERT(f->items[1]->f == 0.0 && signbit(f->items[1]->f));
  CU_ASSERT_EQUAL(f->items[2]->f, 1e300);
  const moai_pk_value_t *s = moai_pk_dict_get(v, "text");
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_EQUAL(s->kind, MOAI_PK_STR);
  CU_ASSERT_EQUAL(s->len, 6);
  CU_ASSERT_STRING_EQUAL(s->str, "h\xc3\xa9llo");
  const moai_pk_value_t *b = moai_pk_dict_get(v, "flags");
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_EQUAL_FATAL(b->len, 3);
  CU_ASSERT(b->items[0]->kind == MOAI_PK_BOOL && b->items[0]->b);
  CU_ASSERT(b->items[1]->kind == MOAI_PK_BOOL && !b->items[1]->b);
  CU_ASSERT_EQUAL(b->items[2]->kind, MOAI_PK_NONE);
  const moai_pk_value_t *nested = moai_pk_dict_get(v, "nested");
  CU_ASSERT_PTR_NOT_NULL_FATAL(nested);
  const moai_pk_value_t *t = moai_pk_dict_get(nested, "t");
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT(t->kind == MOAI_PK_TUPLE && t->len == 2);
  CU_ASSERT(t->items[1]->kind == MOAI_PK_TUPLE &&
            t->items[1]->items[1]->items[0]->i == 3);
  const moai_pk_value_t *e = moai_pk_dict_get(nested, "empty");
  CU_ASSERT(e && e->kind == MOAI_PK_DICT && e->len == 0);
  CU_ASSERT_PTR_NULL(moai_pk_dict_get(v, "absent"));
  moai_pk_arena_free(arena);
  free(data);
}

static void test_python_values_p2(void) { check_values("values_p2.pkl"); }
static void test_python_values_p4(void) { check_values("values_p4.pkl"); }

/* A __torch__ module with a parameter, a tensor, typed lists, a second
 * BUILD-less object, memo sharing of one tensor under two names. */
static const unsigned char kModule[] =
    "\x80\x02"
    "c__torch__.m\nFoo\n" ")" "\x81" /* NEWOBJ Foo */
    "}" "("                          /* state = {...} */
    "X\x01\x00\x00\x00w"
    "ctorch._utils\n_rebuild_parameter\n"
    "("
    "ctorch._utils\n_rebuild_tensor_v2\n"
    "(" "(X\x07\x00\x00\x00storage" "ctorch\nFloatStorage\n"
    "X\x01\x00\x00\x00" "7" "X\x03\x00\x00\x00" "cpu" "K\x0c" "t" "Q"
    "K\x02" "(K\x02K\x03t" "(K\x01K\x02t" "\x89"
    "ccollections\nOrderedDict\n)R"
    "t" "R"                          /* the tensor */
    "q\x00"                          /* memo 0 = tensor */
    "\x88" ")" "t" "R"               /* _rebuild_parameter(t, True, ()) */
    "X\x01\x00\x00\x00v" "h\x00"      /* the same tensor, as a plain one */
    "X\x02\x00\x00\x00il"
    "ctorch.jit._pickle\nbuild_intlist\n" "]" "(K\x01K\x02" "e" "\x85R"
    "X\x03\x00\x00\x00sub" "c__torch__.m\nBar\n)\x81"
    "X\x03\x00\x00\x00tag"
    "ctorch.jit._pickle\nrestore_type_tag\n" "(K\x05X\x03\x00\x00\x00intt" "R"
    "u" "b" ".";

static void test_module_and_tensors(void) {
  moai_pk_value_t *v = NULL;
  char msg[512];
  moai_pk_arena_t *arena = load(kModule, sizeof kModule - 1, &v, msg, sizeof msg);
  if (!arena) fprintf(stderr, "%s\n", msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(arena);
  CU_ASSERT_EQUAL_FATAL(v->kind, MOAI_PK_OBJECT);
  CU_ASSERT_STRING_EQUAL(v->str, "__torch__.m.Foo");
  CU_ASSERT_EQUAL(v->state->kind, MOAI_PK_DICT);
  const moai_pk_value_t *w = moai_pk_dict_get(v, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(w);
  CU_ASSERT_EQUAL_FATAL(w->kind, MOAI_PK_TENSOR);
  CU_ASSERT_STRING_EQUAL(w->tensor.storage_key, "7");
  CU_ASSERT_EQUAL(w->tensor.dtype, MOAI_PK_F32);
  CU_ASSERT_EQUAL(w->tensor.storage_numel, 12);
  CU_ASSERT_EQUAL(w->tensor.storage_offset, 2);
  CU_ASSERT_EQUAL(w->tensor.rank, 2);
  CU_ASSERT(w->tensor.sizes[0] == 2 && w->tensor.sizes[1] == 3);
  CU_ASSERT(w->tensor.strides[0] == 1 && w->tensor.strides[1] == 2);
  CU_ASSERT(w->tensor.is_parameter && w->tensor.requires_grad);
  const moai_pk_value_t *t = moai_pk_dict_get(v, "v");
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT(t->kind == MOAI_PK_TENSOR && !t->tensor.is_parameter &&
            !t->tensor.requires_grad && t->tensor.storage_offset == 2);
  const moai_pk_value_t *il = moai_pk_dict_get(v, "il");
  CU_ASSERT_PTR_NOT_NULL_FATAL(il);
  CU_ASSERT(il->kind == MOAI_PK_LIST && il->len == 2 && il->items[1]->i == 2);
  const moai_pk_value_t *sub = moai_pk_dict_get(v, "sub");
  CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
  CU_ASSERT(sub->kind == MOAI_PK_OBJECT && !strcmp(sub->str, "__torch__.m.Bar"));
  CU_ASSERT(sub->state && sub->state->kind == MOAI_PK_DICT && sub->state->len == 0);
  const moai_pk_value_t *tag = moai_pk_dict_get(v, "tag");
  CU_ASSERT(tag && tag->kind == MOAI_PK_INT && tag->i == 5);
  CU_ASSERT_EQUAL(moai_pk_dtype_size(MOAI_PK_F32), 4);
  CU_ASSERT_EQUAL(moai_pk_dtype_size(MOAI_PK_BF16), 2);
  CU_ASSERT_EQUAL(moai_pk_dtype_size(MOAI_PK_I64), 8);
  CU_ASSERT_EQUAL(moai_pk_dtype_size((moai_pk_dtype_t)9), 0);
  moai_pk_arena_free(arena);
}

/* Each bad fixture fails with a message holding `want`. */
static void expect_error(const char *fixture, const char *want) {
  size_t n;
  unsigned char *data = read_fixture(fixture, &n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(data);
  moai_pk_value_t *v = NULL;
  char msg[512];
  moai_pk_arena_t *arena = load(data, n, &v, msg, sizeof msg);
  CU_ASSERT_PTR_NULL(arena);
  moai_pk_arena_free(arena);
  if (!strstr(msg, want))
    fprintf(stderr, "\n%s: message '%s' lacks '%s'\n", fixture, msg, want);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "t.pkl: byte "));
  free(data);
}

static void test_errors(void) {
  expect_error("bad_os_system.pkl", "global 'os.system' is not allowed");
  expect_error("bad_eval.pkl", "global 'builtins.eval' is not allowed");
  expect_error("bad_getattr.pkl", "global '__builtin__.getattr' is not allowed");
  expect_error("bad_deep.pkl", "nested more than 256 deep");
  expect_error("bad_marks.pkl", "more than 1000 MARKs open");
  expect_error("bad_long1.pkl", "LONG1 of 9 bytes does not fit in 64 bits");
  expect_error("bad_opcode.pkl", "opcode 0xff is not one a TorchScript archive uses");
  expect_error("bad_truncated.pkl", "truncated pickle");
  expect_error("bad_persid.pkl", "persistent id that is not ('storage'");
  expect_error("bad_cycle.pkl", "placed inside itself");
  expect_error("bad_bare_storage.pkl", "never applied");
}

static void expect_bytes_error(const char *bytes, size_t n, const char *want) {
  moai_pk_value_t *v = NULL;
  char msg[512];
  moai_pk_arena_t *arena = load(bytes, n, &v, msg, sizeof msg);
  CU_ASSERT_PTR_NULL(arena);
  moai_pk_arena_free(arena);
  if (!strstr(msg, want)) fprintf(stderr, "\nmessage '%s' lacks '%s'\n", msg, want);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
}

#define BYTES(s) s, sizeof(s) - 1

static void test_more_errors(void) {
  expect_bytes_error(BYTES(""), "truncated pickle (no STOP)");
  expect_bytes_error(BYTES("\x80\x02N"), "no STOP");
  expect_bytes_error(BYTES("\x80\x02NN."), "STOP with 2 values");
  expect_bytes_error(BYTES("\x80\x02."), "STOP with 0 values");
  expect_bytes_error(BYTES("\x80\x02h\x05."), "memo entry 5 is not set");
  expect_bytes_error(BYTES("\x80\x02Nr\xff\xff\xff\x7f."), "memo index 2147483647 over the limit");
  expect_bytes_error(BYTES("\x80\x02" "a."), "stack underflow");
  expect_bytes_error(BYTES("\x80\x02Na."), "stack underflow");
  expect_bytes_error(BYTES("\x80\x02NNa."), "APPEND on a value that is not a list");
  expect_bytes_error(BYTES("\x80\x02u."), "no MARK to pop to");
  /* A list placed in a tuple is frozen: appending to it afterwards fails. */
  expect_bytes_error(BYTES("\x80\x02]q\x00\x85h\x00Na."), "already placed inside another");
  expect_bytes_error(BYTES("\x80\x02X\x02\x00\x00\x00\xff\xfe."), "not UTF-8");
  expect_bytes_error(BYTES("\x80\x02X\x01\x00\x00\x00\x00."), "not UTF-8 (or holds a NUL)");
  expect_bytes_error(BYTES("\x80\x02X\xff\xff\xff\x7f."), "a string of 2147483647 bytes");
  expect_bytes_error(BYTES("\x80\x09N."), "pickle protocol 9");
  expect_bytes_error(BYTES("\x80\x02" "c__torch__.m\nFoo\n(K\x01t\x81."), "NEWOBJ of __torch__.m.Foo with arguments");
  expect_bytes_error(BYTES("\x80\x02" "c__torch__.m\nFoo\n)R."), "cannot be called");
  expect_bytes_error(BYTES("\x80\x02" "c__torch__.m;x\nFoo\n."), "global '__torch__.m;x.Foo' is not allowed");
  expect_bytes_error(BYTES("\x80\x02" "c__torch__.m\nFoo\n)\x81K\x01" "b."), "BUILD with a state that is not a dict");
  expect_bytes_error(BYTES("\x80\x02" "c__torch__.m\nFoo\n)\x81}X\x01\x00\x00\x00" "aK\x01sb}b."), "a second BUILD of a __torch__.m.Foo object");
  expect_bytes_error(BYTES("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n)R."), "_rebuild_tensor_v2 with 0 arguments");
}

/* BUILD on a dict merges the state into it; a None state changes nothing. */
static void test_build_on_dict(void) {
  moai_pk_value_t *v = NULL;
  char msg[512];
  static const char kBuild[] =
      "\x80\x02" "ccollections\nOrderedDict\n)R"
      "}X\x01\x00\x00\x00" "aK\x07sb" "Nb.";
  moai_pk_arena_t *arena = load(kBuild, sizeof kBuild - 1, &v, msg, sizeof msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(arena);
  const moai_pk_value_t *a = moai_pk_dict_get(v, "a");
  CU_ASSERT(a && a->kind == MOAI_PK_INT && a->i == 7);
  moai_pk_arena_free(arena);
}

/* Every prefix and many single-byte changes of each fixture: a value or a
 * status, never a crash (ASan build: no invalid access or leak). */
static void test_truncations_and_flips(void) {
  static const char *const kFixtures[] = {"values_p2.pkl", "values_p4.pkl"};
  unsigned failures = 0, successes = 0;
  for (size_t k = 0; k < 2; ++k) {
    size_t n;
    unsigned char *data = read_fixture(kFixtures[k], &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (size_t cut = 0; cut < n; ++cut) {
      moai_pk_value_t *v;
      moai_pk_arena_t *arena = load(data, cut, &v, NULL, 0);
      if (arena) ++successes; else ++failures;
      moai_pk_arena_free(arena);
    }
    unsigned char *copy = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    for (size_t at = 0; at < n; ++at) {
      static const unsigned char kValues[] = {0x00, 0xff, 0x80, '(', '.', 'h', 'q', 'a', 'u', 'b', 'R', 0x81};
      for (size_t j = 0; j < sizeof kValues; ++j) {
        memcpy(copy, data, n);
        copy[at] = kValues[j];
        moai_pk_value_t *v;
        moai_pk_arena_t *arena = load(copy, n, &v, NULL, 0);
        if (arena) ++successes; else ++failures;
        moai_pk_arena_free(arena);
      }
    }
    free(copy);
    free(data);
  }
  /* A prefix of a pickle has no STOP (the last byte is STOP) */
  CU_ASSERT(failures > 0);
  CU_ASSERT(successes > 0);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"python_values_protocol_2", test_python_values_p2},
      {"python_values_protocol_4", test_python_values_p4},
      {"module_and_tensors", test_module_and_tensors},
      {"errors", test_errors},
      {"more_errors", test_more_errors},
      {"build_on_dict", test_build_on_dict},
      {"truncations_and_flips", test_truncations_and_flips},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("ts_pickle", tests);
}
