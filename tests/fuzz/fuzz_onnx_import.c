/* libFuzzer target for the ONNX importer: any bytes must give a module or a
 * status, never a crash, a leak or undefined behaviour (built with
 * -fsanitize=fuzzer,address,undefined by scripts/fuzz.sh).
 *
 * The context is made once and reused, as a long-lived compiler would; MLIR
 * interns every attribute, type and location it sees, so it is remade every
 * kContextRuns inputs to keep memory bounded over long runs. External data
 * files are looked for in a directory that does not exist. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ir/dialect.h"
#include "onnx/onnx_import.h"

enum { kContextRuns = 20000 };

typedef struct fuzz_state_t {
  MlirContext ctx;
  long runs;
} fuzz_state_t;

/* libFuzzer calls a plain function: the state has to live somewhere. */
static fuzz_state_t g_state;

static void make_context(void) {
  if (g_state.ctx.ptr) mlirContextDestroy(g_state.ctx);
  moai_status_t s = moai_context_create(false, &g_state.ctx);
  if (s) {
    moai_status_fprint(stderr, s, true);
    abort(); /* the harness, not the input, is broken */
  }
  g_state.runs = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_state.ctx.ptr || g_state.runs >= kContextRuns) make_context();
  g_state.runs++;
  moai_onnx_import_options_t options = moai_onnx_import_options_default();
  MlirModule module = {NULL};
  moai_status_t s = moai_onnx_import_buffer(
      g_state.ctx, data, size, "fuzz.onnx", "/nonexistent-moai-fuzz-dir",
      &options, moai_allocator_system(), &module);
  if (s) {
    /* Every failure must say something. */
    if (!moai_status_message(s)[0]) abort();
    moai_status_free(s);
  } else {
    mlirModuleDestroy(module);
  }
  return 0;
}
