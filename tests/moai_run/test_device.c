/* A device binary written by hand, standing in for what moaicc's codegen
 * emits, so the loader and moai-run are tested without the compiler:
 *
 *   t = a + b        (op 0 'Add_0', all in the arena)
 *   y = t + w        (op 1 'Add_1', w from the weights file)
 *
 * a, b, y: float32 [2,3]; w: float32 [2,3] at weights offset 16, after
 * 'step' (int64 [2], unused by the ops) at 0, as moai_safetensors_layout
 * places them. It includes only the ABI headers, as generated code does. */
#include "abi/moai_abi.h"
#include "abi/moai_ops.h"

#define T_F32_2x3(region_, offset_) \
  {.region = (region_), .dtype = MOAI_ABI_F32, .offset = (offset_), .rank = 2, .dims = {2, 3}}

enum { A_OFF = 0, B_OFF = 64, T_OFF = 128, Y_OFF = 192, ARENA = 256 };
enum { STEP_OFF = 0, W_OFF = 16, WEIGHTS = 40 };

typedef struct add_op_t {
  moai_op_desc_t h;
  moai_tensor_t t[3];
} add_op_t;

static const add_op_t k_ops[2] = {
    {.h = {.kernel = MOAI_KERNEL_ADD, .n_in = 2, .n_out = 1, .attrs_size = 0,
           .size = sizeof(add_op_t), .index = 0, .name = "Add_0"},
     .t = {T_F32_2x3(MOAI_REGION_ARENA, A_OFF), T_F32_2x3(MOAI_REGION_ARENA, B_OFF),
           T_F32_2x3(MOAI_REGION_ARENA, T_OFF)}},
    {.h = {.kernel = MOAI_KERNEL_ADD, .n_in = 2, .n_out = 1, .attrs_size = 0,
           .size = sizeof(add_op_t), .index = 1, .name = "Add_1"},
     .t = {T_F32_2x3(MOAI_REGION_ARENA, T_OFF), T_F32_2x3(MOAI_REGION_WEIGHTS, W_OFF),
           T_F32_2x3(MOAI_REGION_ARENA, Y_OFF)}},
};

static void step(const moai_exec_t *ex, int ith, int nth) {
  for (int i = 0; i < 2; ++i) {
    const moai_op_desc_t *op = &k_ops[i].h;
    ex->kernels[op->kernel](ex, op, ith, nth);
    ex->barrier(ex);
  }
}

static const moai_io_desc_t k_inputs[] = {
    {"a", T_F32_2x3(MOAI_REGION_ARENA, A_OFF)},
    {"b", T_F32_2x3(MOAI_REGION_ARENA, B_OFF)},
};
static const moai_io_desc_t k_outputs[] = {{"y", T_F32_2x3(MOAI_REGION_ARENA, Y_OFF)}};
static const moai_io_desc_t k_weights[] = {
    {"step", {.region = MOAI_REGION_WEIGHTS, .dtype = MOAI_ABI_I64, .offset = STEP_OFF,
              .rank = 1, .dims = {2}}},
    {"w", T_F32_2x3(MOAI_REGION_WEIGHTS, W_OFF)},
};

#if defined(__x86_64__)
#define TRIPLE "x86_64-pc-linux-gnu"
#else
#define TRIPLE "aarch64-unknown-linux-gnu"
#endif

static const moai_device_table_t k_table = {
    .abi_version = MOAI_ABI_VERSION,
    .device = 0,
    .moai_version = "0.1.0",
    .target_triple = TRIPLE,
    .target_cpu = "generic",
    .target_features = "",
    .arena_size = ARENA,
    .weights_size = WEIGHTS,
    .const_size = 0,
    .const_data = 0,
    .num_inputs = 2,
    .num_outputs = 1,
    .num_weights = 2,
    .num_ops = 2,
    .inputs = k_inputs,
    .outputs = k_outputs,
    .weights = k_weights,
    .step = step,
};

__attribute__((visibility("default"))) const moai_device_table_t *moai_device_table_v3(void) {
  return &k_table;
}
