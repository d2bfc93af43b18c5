/* import_7b.no_weights: Mistral-7B-shaped models whose weights are declared
 * external but do not exist (bench/import_7b/make_mistral7b_shape.py) must
 * import through the library API with check_external_data off, verify, and
 * pass MOAI_DEFAULT_PIPELINE: planning a 7B model needs no weights.
 *
 *   import_7b_no_weights MODEL.onnx...
 *
 * Also checks what the importer made of the weights: one `moai.weight` per
 * parameter (291), each trainable, stored "external" in mistral7b.weights,
 * offsets and lengths packed as the generator wrote them (float32, 7.24e9
 * parameters), and the module's `moai.trainable_parameters` listing all. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver/pipeline.h"
#include "ir/diag.h"
#include "ir/dialect.h"
#include "mlir-c/BuiltinAttributes.h"
#include "onnx/onnx_import.h"

/* Mistral-7B: embed + 32 x 9 + norm + lm_head. */
#define EXPECTED_WEIGHTS 291
#define EXPECTED_PARAMETERS 7241732096LL /* float32 elements */
#define WEIGHTS_FILE "mistral7b.weights"

typedef struct weight_stats_t {
  long count, trainable, external, in_file;
  long long bytes;     /* sum of lengths */
  long long next;      /* packed: each offset is the previous end */
  bool packed;
  char first_problem[512];
} weight_stats_t;

static bool string_attr(MlirOperation op, const char *name, MlirStringRef *out) {
  MlirAttribute a = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a)) return false;
  *out = mlirStringAttrGetValue(a);
  return true;
}

static bool int_attr(MlirOperation op, const char *name, long long *out) {
  MlirAttribute a = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAInteger(a)) return false;
  *out = (long long)mlirIntegerAttrGetValueInt(a);
  return true;
}

static bool ends_with(MlirStringRef s, const char *suffix) {
  size_t n = strlen(suffix);
  return s.length >= n && memcmp(s.data + s.length - n, suffix, n) == 0;
}

static MlirWalkResult visit(MlirOperation op, void *user) {
  weight_stats_t *st = user;
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  if (name.length != strlen("moai.weight") || memcmp(name.data, "moai.weight", name.length))
    return MlirWalkResultAdvance;
  st->count++;
  MlirStringRef storage, file;
  long long trainable = 0, offset = -1, length = -1;
  if (int_attr(op, "trainable", &trainable) && trainable) st->trainable++;
  if (string_attr(op, "storage", &storage) && storage.length == 8 &&
      memcmp(storage.data, "external", 8) == 0)
    st->external++;
  if (string_attr(op, "file", &file) && ends_with(file, WEIGHTS_FILE)) st->in_file++;
  if (int_attr(op, "offset", &offset) && int_attr(op, "length", &length)) {
    if (offset != st->next) st->packed = false;
    st->next = offset + length;
    st->bytes += length;
  } else {
    st->packed = false;
  }
  return MlirWalkResultAdvance;
}

static long trainable_list_size(MlirModule module) {
  MlirAttribute a = mlirOperationGetAttributeByName(
      mlirModuleGetOperation(module),
      mlirStringRefCreateFromCString("moai.trainable_parameters"));
  return (!mlirAttributeIsNull(a) && mlirAttributeIsAArray(a))
             ? (long)mlirArrayAttrGetNumElements(a)
             : -1;
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int check(bool ok, const char *what) {
  printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  return ok ? 0 : 1;
}

/* Checks the imported module; returns the number of failed checks. */
static int check_module(MlirModule module) {
  weight_stats_t st = {.packed = true};
  mlirOperationWalk(mlirModuleGetOperation(module), visit, &st, MlirWalkPreOrder);
  printf("%ld moai.weight ops, %ld trainable, %ld external in %s, %lld bytes\n",
         st.count, st.trainable, st.external, WEIGHTS_FILE, st.bytes);
  int failures = 0;
  failures += check(st.count == EXPECTED_WEIGHTS, "one moai.weight per parameter (291)");
  failures += check(st.trainable == EXPECTED_WEIGHTS, "every weight trainable");
  failures += check(st.external == EXPECTED_WEIGHTS && st.in_file == EXPECTED_WEIGHTS,
                    "every weight stored \"external\" in " WEIGHTS_FILE);
  failures += check(st.packed && st.bytes == 4 * EXPECTED_PARAMETERS,
                    "offsets and lengths as written (packed float32, 27 GiB)");
  failures += check(trainable_list_size(module) == EXPECTED_WEIGHTS,
                    "moai.trainable_parameters lists the 291 parameters");
  return failures;
}

/* Imports `path`, verifies it, checks the weights and runs the default
 * pipeline; *out_failures counts failed checks of a module that imported. */
static moai_status_t import_and_check(MlirContext ctx, moai_diag_sink_t *diag,
                                      const char *path, int *out_failures) {
  moai_onnx_import_options_t options;
  memset(&options, 0, sizeof options);
  options.check_external_data = false;
  MlirModule module = {NULL};
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  moai_status_t s = moai_onnx_import_file(ctx, path, &options, moai_allocator_system(), &module);
  if (s) return s;
  printf("imported in %.2f s\n", seconds_since(&t0));
  s = moai_module_verify(module, diag);
  if (!s) {
    *out_failures = check_module(module);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    moai_pipeline_options_t p = {.pipeline = MOAI_DEFAULT_PIPELINE, .verify_each = true};
    s = moai_pipeline_run(module, &p, diag);
    if (!s) printf("%s in %.2f s\n", MOAI_DEFAULT_PIPELINE, seconds_since(&t0));
  }
  mlirModuleDestroy(module);
  return s;
}

/* 0 when the weights file beside `path` is absent, as the test needs. */
static int check_weights_absent(const char *path) {
  char weights[4096];
  const char *slash = strrchr(path, '/');
  snprintf(weights, sizeof weights, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path,
           WEIGHTS_FILE);
  if (access(weights, F_OK) != 0) return 0;
  fprintf(stderr, "FAIL: %s exists; this test needs it absent\n", weights);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.onnx...\n", argv[0]);
    return 2;
  }
  MlirContext ctx;
  moai_status_t s = moai_context_create(false, &ctx);
  if (s) {
    moai_status_fprint(stderr, s, true);
    moai_status_free(s);
    return 1;
  }
  moai_diag_sink_t diag;
  moai_diag_attach(ctx, &diag, stderr);
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    printf("%s\n", argv[i]);
    if (check_weights_absent(argv[i])) {
      failures++;
      continue;
    }
    int checks_failed = 0;
    s = import_and_check(ctx, &diag, argv[i], &checks_failed);
    failures += checks_failed;
    if (s) {
      fprintf(stderr, "FAIL: %s: ", moai_status_code_name(moai_status_code(s)));
      moai_status_fprint(stderr, s, true);
      moai_status_free(s);
      failures++;
    }
  }
  moai_diag_detach(&diag);
  mlirContextDestroy(ctx);
  printf("%s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
