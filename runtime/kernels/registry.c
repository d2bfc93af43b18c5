#include "kernels/kernels.h"

#include <stdio.h>
#include <string.h>

const char *moai_isa_name(moai_isa_t isa) {
  switch (isa) {
    case MOAI_ISA_REFERENCE: return "reference";
    case MOAI_ISA_GENERIC: return "generic";
    case MOAI_ISA_AVX2: return "avx2";
    case MOAI_ISA_AVX512: return "avx512";
  }
  return "unknown";
}

moai_isa_t moai_isa_detect(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return MOAI_ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return MOAI_ISA_AVX2;
#endif
  return MOAI_ISA_GENERIC;
}

void moai_kernel_missing(const moai_exec_t *ex, const moai_op_desc_t *op,
                         int ith, int nth) {
  (void)nth;
  if (ith != 0) return;
  char msg[128];
  const char *name = moai_kernel_name(op->kernel);
  snprintf(msg, sizeof(msg), "no kernel for op kind %s (id %u)",
           name ? name : "unknown", op->kernel);
  moai_kernel_fail(ex, op, msg);
}

void moai_kernels_fill(moai_isa_t isa, moai_kernel_fn_t *table) {
  for (int i = 0; i < MOAI_KERNEL_COUNT; ++i) table[i] = moai_kernel_missing;
  /* Lower ISAs first so a family can leave an id to its portable version. */
  for (int level = MOAI_ISA_REFERENCE; level <= (int)isa; ++level) {
    if (level == MOAI_ISA_REFERENCE && isa != MOAI_ISA_REFERENCE) continue;
    moai_kernels_register_elementwise((moai_isa_t)level, table);
    moai_kernels_register_nn((moai_isa_t)level, table);
    moai_kernels_register_grad_index((moai_isa_t)level, table);
    moai_kernels_register_grad_nn((moai_isa_t)level, table);
    moai_kernels_register_train((moai_isa_t)level, table);
    moai_kernels_register_comm((moai_isa_t)level, table);
  }
}

void moai_kernel_fail(const moai_exec_t *ex, const moai_op_desc_t *op,
                      const char *message) {
  moai_kernel_status_t *st = ex ? (moai_kernel_status_t *)ex->runtime : NULL;
  if (!st) return;
  int expected = 0;
  if (!__atomic_compare_exchange_n(&st->failed, &expected, 1, false,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return;
  st->op_index = op->index;
  snprintf(st->op_name, sizeof(st->op_name), "%.*s", MOAI_OP_NAME_MAX - 1,
           op->name);
  snprintf(st->message, sizeof(st->message), "%s", message);
}
