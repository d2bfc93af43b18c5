/* Placeholders for the loader's training API (loader/plan.h, "training
 * plans") while it is not in libmoairt: every plan is an inference plan.
 * tools/moai-run/CMakeLists.txt compiles this file only when no source of
 * runtime/loader defines moai_plan_run_update, so it drops out by itself
 * when the real implementation lands (and then this file should be deleted). */
#include "loader/plan.h"

const moai_manifest_training_t *moai_plan_training(const moai_plan_t *plan) {
  (void)plan;
  return NULL;
}

moai_status_t moai_plan_run_update(moai_plan_t *plan, int threads) {
  (void)plan;
  (void)threads;
  return MOAI_STATUS(MOAI_UNIMPLEMENTED, "this runtime was built without the training API");
}

size_t moai_plan_tensor_count(const moai_plan_t *plan) {
  (void)plan;
  return 0;
}

bool moai_plan_tensor(const moai_plan_t *plan, size_t i, moai_plan_tensor_t *out) {
  (void)plan;
  (void)i;
  (void)out;
  return false;
}

long moai_plan_find_tensor(const moai_plan_t *plan, const char *name) {
  (void)plan;
  (void)name;
  return -1;
}
