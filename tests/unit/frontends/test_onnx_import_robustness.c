/* Robustness tests for the ONNX importer: every truncation and hundreds of
 * bit flips of a small model must give a status, never a crash (run under
 * ASan/UBSan in the sanitizer build); failing each allocation in turn must
 * give a clean out-of-memory status and leak nothing; a graph of thousands
 * of nodes must import quickly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moai_test.h"
#include "onnx_test_support.h"

/* A model touching most of the importer: raw, field, external and absent
 * initializers, inline constants, attributes with and without defaults,
 * optional operands, value_info, metadata. */
static void build_rich(tb_t *b) {
  static const int64_t xd[2] = {2, 4}, wd[2] = {4, 4}, bd[1] = {4}, sd[1] = {2};
  static const float w[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                              9, 10, 11, 12, 13, 14, 15, 16};
  static const int64_t shape[2] = {4, 2};
  tb_init(b, 17);
  tb_metadata(b, "moai.trainable_parameters", "[\"W\", \"B\"]");
  tb_input(b, "x", F32, 2, xd);
  tb_init_f32(b, "W", 2, wd, w, 1);
  tb_init_f32(b, "B", 1, bd, w, 0);
  tb_init_f32(b, "onnx::max", 0, NULL, w + 5, 1);
  Onnx__TensorProto *e = tb_tensor(b, "E", F32, 2, wd);
  tb_external(b, e, "e.bin", "0", "64");
  tb_initializer(b, e);
  tb_initializer(b, tb_tensor(b, "A", F32, 2, wd)); /* no data */
  Onnx__TensorProto *s = tb_tensor(b, "shape", I64, 1, sd);
  tb_raw(b, s, shape, sizeof(shape));
  tb_initializer(b, s);
  tb_node(b, "MatMul", "mm", LIST("x", "W"), LIST("h"));
  tb_node(b, "Add", "add", LIST("h", "B"), LIST("a"));
  Onnx__NodeProto *sm = tb_node(b, "Softmax", "sm", LIST("a"), LIST("p"));
  tb_attr_int(b, sm, "axis", 1);
  tb_node(b, "Clip", "clip", LIST("p", "", "onnx::max"), LIST("c"));
  Onnx__NodeProto *k = tb_node(b, "Constant", "k", NULL, LIST("k0"));
  tb_attr_ints(b, k, "value_ints", 2, shape);
  tb_node(b, "Reshape", "r", LIST("c", "shape"), LIST("y"));
  Onnx__NodeProto *g = tb_node(b, "Gelu", "g", LIST("y"), LIST("z"));
  tb_attr_string(b, g, "approximate", "tanh");
  b->model->opset_import[0]->version = 20;
  tb_value_info(b, "h", F32, 2, xd);
  tb_output(b, "z", F32, 2, (const int64_t[]){4, 2});
  tb_output(b, "E", F32, -1, NULL);
  tb_output(b, "A", F32, -1, NULL);
}

/* Imports `size` bytes from an exactly sized copy, so that ASan sees any
 * read past the end. Returns whether the import succeeded. */
static bool import_bytes(MlirContext ctx, const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size ? size : 1);
  memcpy(copy, data, size);
  MlirModule m = {NULL};
  moai_status_t s = moai_onnx_import_buffer(ctx, copy, size, "fuzz.onnx", NULL,
                                            NULL, moai_allocator_system(), &m);
  free(copy);
  if (s) {
    CU_ASSERT_PTR_NULL(m.ptr);
    CU_ASSERT_NOT_EQUAL(moai_status_message(s)[0], '\0');
    moai_status_free(s);
    return false;
  }
  CU_ASSERT_TRUE(mlirOperationVerify(mlirModuleGetOperation(m)));
  mlirModuleDestroy(m);
  return true;
}

static void test_rich_model_imports(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_rich(&b);
  MlirModule m = {NULL};
  moai_status_t s = ts_import(ctx, &b, &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_TRUE(ts_str_attr_is(ts_find_weight(m, "E"), "storage", "external"));
  CU_ASSERT_TRUE(ts_str_attr_is(ts_find_weight(m, "A"), "storage", "absent"));
  CU_ASSERT_TRUE(ts_str_attr_is(ts_find_weight(m, "B"), "storage", "field"));
  CU_ASSERT_TRUE(ts_str_attr_is(ts_find_weight(m, "W"), "storage", "raw"));
  mlirModuleDestroy(m);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_every_truncation(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_rich(&b);
  size_t size = 0;
  uint8_t *data = tb_pack(&b, &size);
  size_t ok = 0;
  for (size_t n = 0; n < size; ++n) ok += import_bytes(ctx, data, n);
  /* The full model imports; cuts at field boundaries may too. */
  CU_ASSERT_TRUE(import_bytes(ctx, data, size));
  CU_ASSERT_TRUE(ok < size);
  free(data);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* xorshift64: deterministic flips. */
static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

static void test_bit_flips(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_rich(&b);
  size_t size = 0;
  uint8_t *data = tb_pack(&b, &size);
  uint8_t *mutated = malloc(size);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int round = 0; round < 600; ++round) {
    memcpy(mutated, data, size);
    /* Single bit flips first, then bursts of up to 8 random bytes. */
    int edits = round < 400 ? 1 : 1 + (int)(next_random(&state) % 8);
    for (int e = 0; e < edits; ++e) {
      size_t at = (size_t)(next_random(&state) % size);
      if (round < 400)
        mutated[at] ^= (uint8_t)(1u << (next_random(&state) % 8));
      else
        mutated[at] = (uint8_t)next_random(&state);
    }
    import_bytes(ctx, mutated, size);
  }
  free(mutated);
  free(data);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* Fails allocation N, for every N, until the import succeeds. */
static void test_fault_injection(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_rich(&b);
  size_t size = 0;
  uint8_t *data = tb_pack(&b, &size);
  bool succeeded = false;
  uint64_t n = 1;
  for (; n < 100000 && !succeeded; ++n) {
    moai_fault_allocator_t state = {.fail_at = n};
    MlirModule m = {NULL};
    moai_status_t s =
        moai_onnx_import_buffer(ctx, data, size, "m.onnx", NULL, NULL,
                                moai_fault_allocator(&state), &m);
    if (s) {
      bool oom = moai_status_code(s) == MOAI_OUT_OF_MEMORY;
      if (!oom)
        fprintf(stderr, "\n  allocation %llu: %s\n", (unsigned long long)n,
                moai_status_message(s));
      CU_ASSERT_TRUE(oom);
      CU_ASSERT_PTR_NULL(m.ptr);
      moai_status_free(s);
      if (!oom) break;
    } else {
      succeeded = true;
      mlirModuleDestroy(m);
    }
    CU_ASSERT_EQUAL(state.live, 0);
  }
  CU_ASSERT_TRUE(succeeded);
  CU_ASSERT_TRUE(n > 10); /* the importer does allocate through it */
  fprintf(stderr, "\n  each of %llu allocations failed in turn ",
          (unsigned long long)(n - 2));
  free(data);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* A transformer-sized graph: thousands of nodes and absent weights. */
static void test_large_graph(void) {
  enum { LAYERS = 32, WIDTH = 64 };
  MlirContext ctx = ts_context();
  tb_t b;
  tb_init(&b, 17);
  static const int64_t xd[2] = {2, WIDTH}, wd[2] = {WIDTH, WIDTH};
  tb_input(&b, "x", F32, 2, xd);
  char prev[64] = "x";
  size_t nodes = 0;
  for (int layer = 0; layer < LAYERS; ++layer) {
    for (int j = 0; j < 30; ++j) {
      char w[64], h[64], a[64], out[64], name[64];
      snprintf(w, sizeof(w), "layers.%d.w%d", layer, j);
      snprintf(h, sizeof(h), "/layers.%d/mm%d", layer, j);
      snprintf(a, sizeof(a), "/layers.%d/act%d", layer, j);
      snprintf(out, sizeof(out), "/layers.%d/res%d", layer, j);
      tb_initializer(&b, tb_tensor(&b, w, F32, 2, wd));
      snprintf(name, sizeof(name), "/layers.%d/MatMul_%d", layer, j);
      tb_node(&b, "MatMul", name, LIST(prev, w), LIST(h));
      snprintf(name, sizeof(name), "/layers.%d/Sigmoid_%d", layer, j);
      tb_node(&b, "Sigmoid", name, LIST(h), LIST(a));
      snprintf(name, sizeof(name), "/layers.%d/Add_%d", layer, j);
      tb_node(&b, "Add", name, LIST(a, prev), LIST(out));
      snprintf(prev, sizeof(prev), "%s", out);
      nodes += 3;
    }
  }
  tb_output(&b, prev, F32, -1, NULL);
  size_t size = 0;
  uint8_t *data = tb_pack(&b, &size);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  MlirModule m = {NULL};
  moai_status_t s = moai_onnx_import_buffer(ctx, data, size, "big.onnx", NULL,
                                            NULL, moai_allocator_system(), &m);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  fprintf(stderr, "\n  imported %zu nodes in %.3f s ", nodes, seconds);
  /* Well under 2 s on a developer machine; generous for sanitizer builds. */
  CU_ASSERT_TRUE(seconds < 20.0);
  mlirModuleDestroy(m);
  free(data);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"rich_model_imports", test_rich_model_imports},
      {"every_truncation", test_every_truncation},
      {"bit_flips", test_bit_flips},
      {"fault_injection", test_fault_injection},
      {"large_graph", test_large_graph},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("onnx_import_robustness", tests);
}
