/* The target a device binary is compiled for: the host (LLVM's default
 * triple, host CPU name and features), or a named CPU for cross-compiling
 * (--target-cpu, --target-features). Host-feature objects are not portable,
 * so the plan records the resolved target (table and manifest). */
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "llvm-c/Core.h"
#include "llvm-c/Target.h"
#include "llvm-c/TargetMachine.h"

/* target_info.cpp */
int moai_llvm_cpu_features(const char *triple, const char *cpu,
                           const char *features, char **out_features,
                           char **out_error);

static char *take_llvm_string(char *s) {
  char *copy = s ? strdup(s) : NULL;
  LLVMDisposeMessage(s);
  return copy;
}

moai_status_t moai_target_resolve(const char *cpu, const char *features,
                                  moai_target_t *out_target) {
  if (LLVMInitializeNativeTarget())
    return MOAI_STATUS(MOAI_INTERNAL, "LLVM has no native target here");
  moai_target_t t = {0};
  moai_status_t status = moai_ok_status();
  char *def = LLVMGetDefaultTargetTriple();
  t.triple = take_llvm_string(LLVMNormalizeTargetTriple(def));
  LLVMDisposeMessage(def);
  if (!cpu && !features) {
    t.cpu = take_llvm_string(LLVMGetHostCPUName());
    t.features = take_llvm_string(LLVMGetHostCPUFeatures());
  } else {
    t.cpu = cpu ? strdup(cpu) : take_llvm_string(LLVMGetHostCPUName());
    char *error = NULL;
    if (t.triple && t.cpu &&
        moai_llvm_cpu_features(t.triple, t.cpu, features ? features : "",
                               &t.features, &error) != 0) {
      status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s",
                           error ? error : "bad target");
      free(error);
    }
  }
  if (!status && (!t.triple || !t.cpu || !t.features))
    status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory resolving the target");
  if (status) {
    moai_target_deinit(&t);
    return status;
  }
  *out_target = t;
  return moai_ok_status();
}

void moai_target_deinit(moai_target_t *t) {
  free(t->triple);
  free(t->cpu);
  free(t->features);
  memset(t, 0, sizeof(*t));
}

void moai_target_for_each_feature(const moai_target_t *target,
                                  void (*fn)(void *user, const char *name,
                                             size_t len),
                                  void *user) {
  for (const char *p = target->features; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 1 && p[0] == '+') fn(user, p + 1, len - 1);
    p += len;
    if (*p == ',') ++p;
  }
}
